"""Settings: precedence, strict parsing, clear errors, and environment typos that never crash."""

from __future__ import annotations

import logging

import pytest

from o11ykit import config
from o11ykit.config import ConfigError, load_settings


def test_defaults_without_any_configuration() -> None:
    settings = load_settings({}, {})
    assert settings.backend is None
    assert settings.protocol == "http/protobuf"
    assert settings.debug is False
    assert settings.excluded_paths == config.DEFAULT_EXCLUDED_PATHS
    assert settings.sources["protocol"] == "default"


def test_precedence_argument_over_o11ykit_over_otel_over_default() -> None:
    environ = {"O11YKIT_SERVICE_NAME": "from-o11ykit", "OTEL_SERVICE_NAME": "from-otel"}
    assert load_settings({"service_name": "from-arg"}, environ).service_name == "from-arg"
    settings = load_settings({}, environ)
    assert settings.service_name == "from-o11ykit"
    assert settings.sources["service_name"] == "O11YKIT_SERVICE_NAME"
    assert load_settings({}, {"OTEL_SERVICE_NAME": "from-otel"}).service_name == "from-otel"


@pytest.mark.parametrize(
    ("raw", "expected"), [("false", False), ("0", False), ("TRUE", True), ("on", True)]
)
def test_booleans_are_parsed_strictly(raw: str, expected: bool) -> None:
    assert load_settings({}, {"O11YKIT_DEBUG": raw}).debug is expected


def test_bad_argument_raises_naming_setting_and_accepted_values() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"backend": "zipkin"}, {})
    message = str(caught.value)
    assert "backend" in message
    assert "otlp, jaeger, honeycomb, console, local, none" in message


def test_a_bad_url_setting_is_named_without_its_password(caplog) -> None:
    url = "http://user:s3cret@127.0.0.1:16686?x=1"
    with pytest.raises(ConfigError) as caught:
        load_settings({"query_url": url}, {})
    # Query values are hidden too: an endpoint's may be a key (?api_key=...).
    assert "query_url (argument='http://***@127.0.0.1:16686?x=***')" in str(caught.value)
    config._reported.clear()
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        load_settings({}, {"O11YKIT_QUERY_URL": url, "O11YKIT_ENDPOINT": "ftp://u:s3cret@h"})
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "O11YKIT_QUERY_URL" in logged and "O11YKIT_ENDPOINT='ftp://***@h'" in logged
    assert "s3cret" not in str(caught.value) + logged


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        # A scheme forgotten: no host for a URL parser, yet the same parts are secrets.
        (
            "bob:s3cret@collector:4318/v1/traces?api_key=k3y",
            "***@collector:4318/v1/traces?api_key=***",
        ),
        ("http://collector:4318/v1/traces#token=k3y", "http://collector:4318/v1/traces#token=***"),
        ("http://[::1/v1/traces?api_key=k3y", "http://[::1/v1/traces?api_key=***"),
        # A password holding "/", "?" or "#" ends a URL parser's host part early.
        ("http://bob:s3cr/t@collector:4318?x=1", "http://***@collector:4318?x=***"),
        ("http://bob:s3cr?t@collector:4318", "http://***@collector:4318"),
        ("http://bob:s3cr#t@collector:4318", "http://***@collector:4318"),
    ],
)
def test_a_malformed_url_setting_is_named_without_its_secrets(caplog, value, shown) -> None:
    config._reported.clear()
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        load_settings({}, {"O11YKIT_QUERY_URL": value})
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"O11YKIT_QUERY_URL={shown!r}" in logged
    assert "s3cr" not in logged and "k3y" not in logged


def test_unknown_argument_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown o11ykit setting"):
        load_settings({"servce_name": "typo"}, {})


def test_bad_environment_value_warns_once_and_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    config._reported.clear()
    environ = {"O11YKIT_DEBUG": "maybe", "O11YKIT_SAMPLE_RATIO": "2"}
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        first = load_settings({}, environ)
        load_settings({}, environ)
    assert first.debug is False and first.sample_ratio == 1.0
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages  # one per bad variable, not one per load
    assert any("O11YKIT_DEBUG='maybe'" in m and "true, false" in m for m in messages)


def test_bad_o11ykit_value_falls_back_to_the_otel_variable() -> None:
    environ = {"O11YKIT_PROTOCOL": "carrier-pigeon", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    settings = load_settings({}, environ)
    assert settings.protocol == "grpc"
    assert settings.sources["protocol"] == "OTEL_EXPORTER_OTLP_PROTOCOL"


def test_otel_exporter_variables_are_honoured() -> None:
    settings = load_settings(
        {},
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc%3D%3D,tenant=t1",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    )
    assert settings.endpoint == "http://collector:4318/v1/traces"
    assert settings.headers == {"x-api-key": "abc==", "tenant": "t1"}
    assert settings.export_timeout == 2.5
    assert settings.schedule_delay == 0.2


def test_signal_specific_otel_variables_win() -> None:
    settings = load_settings(
        {},
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
        },
    )
    assert settings.endpoint == "http://traces:9999/custom"
    assert settings.protocol == "grpc"


def test_compression_is_read_from_the_otel_variables_and_refused_by_name(caplog) -> None:
    assert load_settings({}, {}).compression == "none"
    settings = load_settings(
        {},
        {
            "OTEL_EXPORTER_OTLP_COMPRESSION": "none",
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "GZIP",
        },
    )
    assert settings.compression == "gzip"
    assert settings.sources["compression"] == "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"
    with pytest.raises(ConfigError, match=r"compression .*accepted values: none, gzip"):
        load_settings({"compression": "zstd"}, {})
    config._reported.clear()
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        fallback = load_settings({}, {"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"})
    assert fallback.compression == "none"
    assert [r.getMessage() for r in caplog.records] == [
        "o11ykit setting compression (OTEL_EXPORTER_OTLP_COMPRESSION='zstd') is invalid;"
        " accepted values: none, gzip; ignored"
    ]


def test_sdk_disabled_means_backend_none() -> None:
    assert load_settings({}, {"OTEL_SDK_DISABLED": "true"}).backend == "none"
    assert load_settings({}, {"OTEL_SDK_DISABLED": "false"}).backend is None


def test_resource_attributes_feed_version_and_environment() -> None:
    settings = load_settings(
        {},
        {"OTEL_RESOURCE_ATTRIBUTES": "service.version=1.2.3,deployment.environment.name=staging"},
    )
    assert settings.service_version == "1.2.3"
    assert settings.environment == "staging"


def test_resource_attributes_given_to_o11ykit_feed_name_version_and_environment() -> None:
    given = {
        "service.name": "orders",
        "service.version": "2.0.1",
        "deployment.environment.name": "production",
        "team": "shop",
    }
    settings = load_settings({"resource_attributes": given}, {})
    assert (settings.service_name, settings.service_version, settings.environment) == (
        "orders", "2.0.1", "production",
    )  # fmt: skip
    assert settings.sources["environment"] == "resource_attributes (argument)"
    environ = {"O11YKIT_RESOURCE_ATTRIBUTES": "deployment.environment=staging"}
    assert load_settings({}, environ).environment == "staging"
    # What names the setting itself still wins.
    assert (
        load_settings({"environment": "qa", "resource_attributes": given}, {}).environment == "qa"
    )
    environ = {"OTEL_SERVICE_NAME": "payments"}
    assert load_settings({"resource_attributes": given}, environ).service_name == "payments"


def test_settings_are_frozen() -> None:
    settings = load_settings({}, {})
    with pytest.raises(AttributeError):
        settings.debug = True  # type: ignore[misc]


def test_masked_hides_secrets_but_shows_sources() -> None:
    settings = load_settings(
        {"honeycomb_api_key": "hcxik_secretsecret", "headers": {"authorization": "Bearer zzz"}}, {}
    )
    shown = config.masked(settings)
    assert "secretsecret" not in str(shown) and "zzz" not in str(shown)
    assert shown["honeycomb_api_key"] == ("*** (set)", "argument")
    assert shown["headers"][0] == "{authorization=***}"


def test_settings_doc_matches_the_settings_table() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "settings.md").read_text()
    assert config.settings_reference() in doc


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    ("name", "bad", "accepted"),
    [
        ("baggage_propagate_to", "10.0.0.0/33,*.internal", "CIDR ranges"),
        ("baggage_propagate_to", "orders svc", "*.domain suffixes"),
        ("tenant_header", "X Tenant", "HTTP header name"),
        ("user_header", "X-Üser-ID", "HTTP header name"),
        ("instrumentations", "sqlalchmey,httpx", "all, fastapi, sqlalchemy, httpx"),
        ("excluded_paths", "/health,ready", "starting with /"),
    ],
)
def test_list_and_header_settings_are_validated(
    name: str, bad: str, accepted: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: bad}, {})
    assert name in str(caught.value) and accepted in str(caught.value)
    config._reported.clear()
    variable = "O11YKIT_" + name.upper()
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        settings = load_settings({}, {variable: bad})
        load_settings({}, {variable: bad})
    assert getattr(settings, name) == config.SETTINGS_BY_NAME[name].default
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and variable in warnings[0] and accepted in warnings[0], warnings


def test_valid_list_and_header_settings_are_kept() -> None:
    settings = load_settings(
        {
            "baggage_propagate_to": "my_svc, Orders.internal, 8.8.4.4, ::1, 10.0.0.0/8, *.corp",
            "tenant_header": "X-Org_ID",
            "instrumentations": "SQLAlchemy, httpx",
            "excluded_paths": ["/health", "/ping/"],
        },
        {},
    )
    assert settings.baggage_propagate_to[:2] == ("my_svc", "Orders.internal")
    assert settings.tenant_header == "X-Org_ID"
    assert settings.instrumentations == ("sqlalchemy", "httpx")
    assert settings.excluded_paths == ("/health", "/ping/")
    assert load_settings({}, {}).baggage_propagate_to == config.DEFAULT_BAGGAGE_HOSTS


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"OTEL_TRACES_SAMPLER": "always_off"}, 0.0),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, 0.0),
        ({"OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_SAMPLER_ARG": "0.1"}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_on", "OTEL_TRACES_SAMPLER_ARG": "0.1"}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, 0.25),
        (
            {"OTEL_TRACES_SAMPLER": "PARENTBASED_TRACEIDRATIO", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
            0.5,
        ),
        ({"OTEL_TRACES_SAMPLER": "traceidratio"}, 1.0),  # the specification's default argument
        # o11ykit's own setting wins over the OpenTelemetry variables.
        ({"O11YKIT_SAMPLE_RATIO": "0.3", "OTEL_TRACES_SAMPLER": "always_off"}, 0.3),
    ],
)
def test_otel_traces_sampler_is_read_as_the_specification_says(
    environ: dict[str, str], expected: float
) -> None:
    assert load_settings({}, environ).sample_ratio == expected


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_SAMPLER": "xray"}, "OTEL_TRACES_SAMPLER='xray'"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "lots"},
            "OTEL_TRACES_SAMPLER_ARG='lots'",
        ),
        # Without a ratio sampler the argument means nothing: the default keeps every trace.
        ({"OTEL_TRACES_SAMPLER_ARG": "0.1"}, "OTEL_TRACES_SAMPLER_ARG='0.1'"),
    ],
)
def test_unusable_otel_sampler_warns_once_and_keeps_every_trace(
    environ: dict[str, str], named: str, caplog: pytest.LogCaptureFixture
) -> None:
    config._reported.clear()
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        first = load_settings({}, environ)
        load_settings({}, environ)
    assert first.sample_ratio == 1.0 and first.sources["sample_ratio"] == "default"
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and named in warnings[0] and "sample_ratio" in warnings[0], warnings


@pytest.mark.parametrize(
    ("variable", "raw", "accepted"),
    [
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "abc", "milliseconds from 50 to 60000"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "100000", "milliseconds from 50 to 60000"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10", "milliseconds from 50 to 60000"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100000", "milliseconds from 10 to 60000"),
        ("OTEL_BSP_SCHEDULE_DELAY", "nan", "milliseconds from 10 to 60000"),
    ],
)
def test_millisecond_variables_say_their_range_in_milliseconds(
    variable: str, raw: str, accepted: str, caplog: pytest.LogCaptureFixture
) -> None:
    config._reported.clear()
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        settings = load_settings({}, {variable: raw})
    assert (settings.export_timeout, settings.schedule_delay) == (3.0, 1.0)
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and f"{variable}={raw!r}" in warnings[0], warnings
    assert accepted in warnings[0] and "convert" not in warnings[0], warnings
    # Following the advice works: the range's ends are accepted, in milliseconds.
    ends = load_settings(
        {}, {"OTEL_EXPORTER_OTLP_TIMEOUT": "60000", "OTEL_BSP_SCHEDULE_DELAY": "10"}
    )
    assert (ends.export_timeout, ends.schedule_delay) == (60.0, 0.01)


@pytest.mark.parametrize(
    ("base", "endpoint"),
    [
        ("http://127.0.0.1:38001?token=abc", "http://127.0.0.1:38001/v1/traces?token=abc"),
        ("http://collector:4318/otlp/?a=1&b=2", "http://collector:4318/otlp/v1/traces?a=1&b=2"),
        ("https://collector", "https://collector/v1/traces"),
    ],
)
def test_otlp_base_endpoint_gets_the_traces_path_before_its_query(base: str, endpoint: str) -> None:
    assert load_settings({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": base}).endpoint == endpoint


def test_a_bad_resource_attributes_variable_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config._reported.clear()
    environ = {"OTEL_RESOURCE_ATTRIBUTES": "service.name"}
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        settings = load_settings({}, environ)
        load_settings({}, environ)
    assert settings.service_name is None and settings.environment == "development"
    assert settings.resource_attributes == {}
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "service_name, service_version, environment, resource_attributes" in warnings[0]
    assert "OTEL_RESOURCE_ATTRIBUTES='service.name'" in warnings[0]
    assert "key=value pairs" in warnings[0]
    # A value bad for one setting only is still named by that setting.
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        settings = load_settings({}, {"OTEL_RESOURCE_ATTRIBUTES": "service.name=,team=a"})
    assert settings.service_name is None and settings.resource_attributes["team"] == "a"
    assert "o11ykit setting service_name (OTEL_RESOURCE_ATTRIBUTES=" in _warnings(caplog)[-1]


@pytest.mark.parametrize(
    "value",
    [
        "x-api-key=SEKRITKEY%0Ainjected: 1",
        "x-api-key=SEKRITKEY%0D%0Ainjected: 1",
        "x-api-key=SEKRITKEY%00",
        "x-api-key=SEKRIT%09KEY",
        "x-api-key=SEKRITKEY%7F",
        "x-api%0Akey=SEKRITKEY",
        "x api key=SEKRITKEY",
    ],
)
def test_headers_with_control_characters_are_refused_without_the_value(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    config._reported.clear()
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        settings = load_settings(
            {}, {"O11YKIT_HEADERS": value, "OTEL_EXPORTER_OTLP_HEADERS": "a=b"}
        )
    assert settings.headers == {"a": "b"}  # the next source applies
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "O11YKIT_HEADERS=***" in warnings[0], warnings
    assert "SEKRIT" not in warnings[0] and "injected" not in warnings[0]
    assert "control character" in warnings[0] or "RFC 9110 token" in warnings[0]
    from urllib.parse import unquote

    name, _, secret = value.partition("=")
    with pytest.raises(ConfigError) as caught:
        load_settings({"headers": {unquote(name): unquote(secret)}}, {})
    assert "headers" in str(caught.value) and "SEKRIT" not in str(caught.value)


def test_headers_as_a_list_of_pairs_or_refused_with_the_accepted_forms() -> None:
    pairs = [("x-api-key", "k"), ("x-tenant", "t")]
    assert load_settings({"headers": pairs}, {}).headers == dict(pairs)
    assert load_settings({"headers": (("x-api-key", "k"),)}, {}).headers == {"x-api-key": "k"}
    for junk in (["x-api-key=k", "x-tenant=t"], ("x-api-key=k",), [("a", "b", "c")], b"a=b"):
        with pytest.raises(ConfigError) as caught:
            load_settings({"headers": junk}, {})
        message = str(caught.value)
        assert "headers" in message and "a list of (name, value) pairs" in message, junk
        assert "argument=***" in message and "x-api-key=k" not in message


def test_debug_help_says_what_debug_does() -> None:
    help_text = config.SETTINGS_BY_NAME["debug"].help
    assert "INFO instead of DEBUG" not in help_text
    assert "WARNING" in help_text and "backend" in help_text


def test_a_batch_larger_than_the_queue_is_refused_shrunk_or_reported(caplog) -> None:
    with pytest.raises(
        ConfigError, match=r"max_export_batch_size .* is larger than max_queue_size"
    ):
        load_settings({"max_queue_size": 5, "max_export_batch_size": 1000}, {})
    # The default batch (512) takes the size of a small queue without a word.
    assert load_settings({"max_queue_size": 5}, {}).max_export_batch_size == 5
    config._reported.clear()
    environ = {"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "400"}
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        settings = load_settings({}, environ)
    assert (settings.max_queue_size, settings.max_export_batch_size) == (100, 100)
    assert "larger than max_queue_size (100)" in caplog.text and "100 is used" in caplog.text
