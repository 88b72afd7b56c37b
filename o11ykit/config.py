"""One frozen, typed settings object, read from one table.

Precedence: explicit argument > O11YKIT_* environment > standard OTEL_* environment >
default. A bad argument raises ConfigError (the caller can fix their code); a bad
environment value is reported once and ignored, so a typo never takes a service down.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from o11ykit import settings_parsers as p

log = logging.getLogger("o11ykit")

BACKENDS = ("otlp", "jaeger", "honeycomb", "console", "local", "none")
PROTOCOLS = ("http/protobuf", "grpc")
# What the OTLP exporter specification defines for OTEL_EXPORTER_OTLP_COMPRESSION.
COMPRESSIONS = ("none", "gzip")
INSTRUMENTATIONS = ("fastapi", "sqlalchemy", "httpx", "httpx2", "requests", "logging")
# OTEL_PROPAGATORS' values that o11ykit builds; b3 and b3multi need o11ykit[b3].
PROPAGATORS = ("tracecontext", "baggage", "b3", "b3multi", "none")
DEFAULT_EXCLUDED_PATHS = ("/health", "/healthz", "/ready", "/live", "/metrics")
# Loopback, private ranges, compose service names and cluster-internal suffixes.
DEFAULT_BAGGAGE_HOSTS = (
    "localhost",
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
    p.SINGLE_LABEL,
    "*.internal",
    "*.local",
    "*.svc",
    "*.svc.cluster.local",
)


class ConfigError(ValueError):
    """A setting has a value o11ykit cannot use; the message names it and what it accepts.

    `settings` names the settings at fault where the values were checked together (TLS
    files, a backend's key), so the caller can tell code's mistake from a deployment's.
    """

    def __init__(self, message: str, *, settings: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.settings = settings


# The O11YKIT_* forms' ranges, in seconds; the OTEL_* variables give the same in milliseconds.
_EXPORT_TIMEOUT = (0.05, 60.0)
_SCHEDULE_DELAY = (0.01, 60.0)


def _propagators(value: Any) -> tuple[str, ...]:
    """Propagator names in order, each once; `none` (no propagation at all) stands alone."""
    names = tuple(dict.fromkeys(p.choice_list(*PROPAGATORS)(value)))
    if "none" in names and len(names) > 1:
        raise ValueError(
            f"none means no propagation, so it stands alone, not beside {', '.join(names)};"
            f" accepted values: a comma-separated list of {', '.join(PROPAGATORS)}"
        )
    return names


def _milliseconds(minimum: float, maximum: float) -> EnvTransform:
    """Seconds from an OTEL_* variable in milliseconds, refused in the variable's own unit:
    "from 0.05 to 60" next to OTEL_EXPORTER_OTLP_TIMEOUT would read as 60 ms."""
    low, high = minimum * 1000, maximum * 1000
    accepted_values = f"accepted values: milliseconds from {low:g} to {high:g}"

    def to_seconds(raw: str, environ: Mapping[str, str]) -> float:
        try:
            milliseconds = float(raw)
        except ValueError:
            raise ValueError(accepted_values) from None
        if not low <= milliseconds <= high:  # NaN too
            raise ValueError(accepted_values)
        return milliseconds / 1000

    return to_seconds


def _otlp_base_to_traces(raw: str, environ: Mapping[str, str]) -> str:
    # The spec appends the signal path to the generic endpoint, path or not; to the path,
    # not to the URL, which may end in a query (?token=...).
    parts = urlsplit(raw.strip())
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/v1/traces"))


def _sdk_disabled_to_backend(raw: str, environ: Mapping[str, str]) -> str | None:
    return "none" if p.boolean(raw) else None


def _otel_exporter_to_backend(raw: str, environ: Mapping[str, str]) -> str:
    name = raw.strip().lower().split(",")[0]
    if name not in ("otlp", "console", "none"):
        raise ValueError("accepted values: otlp, console, none")
    return name


def _resource_attributes(raw: str, environ: Mapping[str, str]) -> dict[str, str]:
    # Read as a transform, as for the settings that pick one attribute: a malformed value
    # is the variable's fault and reported once for all of them (see _READERS).
    return p.key_values(raw)


def _resource_attribute(key: str) -> EnvTransform:
    def pick(raw: str, environ: Mapping[str, str]) -> str | None:
        return _resource_attributes(raw, environ).get(key)

    return pick


# OpenTelemetry's sampler names, as the share of root traces each keeps. o11ykit always
# honours the caller's decision (parent-based), so always_on and parentbased_always_on agree.
_SAMPLER_RATIOS = {
    "always_on": "1",
    "parentbased_always_on": "1",
    "always_off": "0",
    "parentbased_always_off": "0",
    "traceidratio": None,
    "parentbased_traceidratio": None,
}
_RATIO_SAMPLERS = "OTEL_TRACES_SAMPLER=traceidratio or parentbased_traceidratio"


def _otel_sampler_to_ratio(raw: str, environ: Mapping[str, str]) -> str:
    name = raw.strip().lower()
    if name not in _SAMPLER_RATIOS:
        raise ValueError(f"accepted values: {', '.join(_SAMPLER_RATIOS)}")
    ratio = _SAMPLER_RATIOS[name]
    if ratio is not None:
        return ratio
    # The specification's default for a ratio sampler without an argument.
    argument = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip() or "1"
    try:
        return str(p.number(0.0, 1.0)(argument))
    except ValueError as exc:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG={argument!r}: {exc}") from None


def _otel_sampler_arg_alone(raw: str, environ: Mapping[str, str]) -> None:
    # With OTEL_TRACES_SAMPLER set, the argument was read (or rightly ignored) with it.
    if environ.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    raise ValueError(
        f"it applies only with {_RATIO_SAMPLERS}; the default sampler keeps every trace"
    )


# A transform gets the variable's value and the whole environment, for variables that are
# read together (OTEL_TRACES_SAMPLER and its _ARG); it returns None to skip the variable.
EnvTransform = Callable[[str, Mapping[str, str]], Any]
EnvSource = tuple[str, EnvTransform | None]


@dataclass(frozen=True)
class Setting:
    name: str
    parse: p.Parser
    default: Any
    otel: tuple[EnvSource, ...] = ()
    secret: bool = False
    help: str = ""

    @property
    def env_name(self) -> str:
        return "O11YKIT_" + self.name.upper()


def _s(name: str, parse: p.Parser, default: Any, help: str, *otel: EnvSource, **kw: Any) -> Setting:
    return Setting(name, parse, default, tuple(otel), help=help, **kw)


SETTINGS: tuple[Setting, ...] = (
    _s(
        "service_name",
        p.text,
        None,
        "service.name on every span",
        ("OTEL_SERVICE_NAME", None),
        ("OTEL_RESOURCE_ATTRIBUTES", _resource_attribute("service.name")),
    ),
    _s(
        "service_version",
        p.text,
        None,
        "service.version; else the distribution's version or a CI commit SHA",
        ("OTEL_RESOURCE_ATTRIBUTES", _resource_attribute("service.version")),
    ),
    _s(
        "environment",
        p.text,
        "development",
        "deployment.environment.name",
        ("OTEL_RESOURCE_ATTRIBUTES", _resource_attribute("deployment.environment.name")),
        ("OTEL_RESOURCE_ATTRIBUTES", _resource_attribute("deployment.environment")),
    ),
    _s(
        "resource_attributes",
        p.key_values,
        {},
        "extra resource attributes",
        ("OTEL_RESOURCE_ATTRIBUTES", _resource_attributes),
    ),
    _s(
        "backend",
        p.choice(*BACKENDS),
        None,
        "where spans go; unset: otlp when an OTLP endpoint is set, else local",
        ("OTEL_SDK_DISABLED", _sdk_disabled_to_backend),
        ("OTEL_TRACES_EXPORTER", _otel_exporter_to_backend),
    ),
    _s(
        "endpoint",
        p.http_url,
        None,
        "OTLP endpoint; a URL without a path gets /v1/traces",
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", _otlp_base_to_traces),
    ),
    _s(
        "protocol",
        p.choice(*PROTOCOLS),
        "http/protobuf",
        "OTLP transport",
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", None),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", None),
    ),
    _s(
        "headers",
        p.headers,
        {},
        "headers sent with every export",
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", None),
        ("OTEL_EXPORTER_OTLP_HEADERS", None),
        secret=True,
    ),
    _s(
        "compression",
        p.choice(*COMPRESSIONS),
        "none",
        "export requests gzipped (HTTP Content-Encoding, gRPC message compression)",
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", None),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", None),
    ),
    _s(
        "certificate",
        p.pem_file("CERTIFICATE"),
        None,
        "CA certificates that an https endpoint's certificate must chain to, in place of "
        "the system's",
        ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", None),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", None),
    ),
    _s(
        "client_certificate",
        p.pem_file("CERTIFICATE"),
        None,
        "this client's certificate for an https endpoint that asks for one (mutual TLS); "
        "with client_key",
        ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", None),
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", None),
    ),
    _s(
        "client_key",
        p.pem_file("PRIVATE KEY"),
        None,
        "the private key of client_certificate",
        ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", None),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", None),
    ),
    _s(
        "export_timeout",
        p.number(*_EXPORT_TIMEOUT),
        3.0,
        "seconds one export may take; the OTEL_* variables: milliseconds, 50 to 60000",
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", _milliseconds(*_EXPORT_TIMEOUT)),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", _milliseconds(*_EXPORT_TIMEOUT)),
    ),
    _s(
        "honeycomb_api_key",
        p.text,
        None,
        "Honeycomb ingest key",
        ("HONEYCOMB_API_KEY", None),
        secret=True,
    ),
    _s(
        "honeycomb_dataset",
        p.text,
        None,
        "dataset, for classic keys only",
        ("HONEYCOMB_DATASET", None),
    ),
    _s("honeycomb_region", p.choice("us", "eu"), "us", "Honeycomb region"),
    _s(
        "sample_ratio",
        p.number(0.0, 1.0),
        1.0,
        "share of traces kept, decided at the root",
        ("OTEL_TRACES_SAMPLER", _otel_sampler_to_ratio),
        ("OTEL_TRACES_SAMPLER_ARG", _otel_sampler_arg_alone),
    ),
    _s(
        "debug",
        p.boolean,
        False,
        "after init(), log one WARNING line: the backend, the process id and each "
        "integration's status",
    ),
    _s("tenant_header", p.header_name, "X-Tenant-ID", "edge header carrying the tenant id"),
    _s("user_header", p.header_name, "X-User-ID", "edge header carrying the user id"),
    _s(
        "pseudonym_key",
        p.text,
        None,
        "HMAC key; when set, user ids are recorded only as enduser.pseudo.id",
        secret=True,
    ),
    _s(
        "propagators",
        _propagators,
        ("tracecontext", "baggage"),
        "trace context formats read from requests and written to calls, in order; baggage is"
        " o11ykit's trusted baggage (baggage_* settings)",
        ("OTEL_PROPAGATORS", None),
    ),
    _s(
        "baggage_trust_inbound",
        p.boolean,
        False,
        "read tenant and user from inbound baggage (internal services only)",
    ),
    _s(
        "baggage_propagate_to",
        p.host_patterns,
        DEFAULT_BAGGAGE_HOSTS,
        "hosts that may receive tenant and user baggage",
    ),
    _s("baggage_max_entries", p.whole_number(0, 64), 8, "inbound baggage entries read at most"),
    _s(
        "baggage_max_value_length",
        p.whole_number(1, 4096),
        128,
        "longest baggage value accepted; longer values are dropped",
    ),
    _s("scrub_keys", p.text_list, (), "extra attribute-key words whose values are redacted"),
    _s("scrub_allow", p.text_list, (), "attribute keys never redacted"),
    _s(
        "excluded_paths",
        p.path_list,
        DEFAULT_EXCLUDED_PATHS,
        "request paths not traced, nor anything under them",
    ),
    _s(
        "instrumentations",
        p.choice_list("all", *INSTRUMENTATIONS),
        ("all",),
        "integrations to enable",
    ),
    _s(
        "max_queue_size",
        p.whole_number(1, 1_000_000),
        2048,
        "spans buffered before dropping",
        ("OTEL_BSP_MAX_QUEUE_SIZE", None),
    ),
    _s(
        "max_export_batch_size",
        p.whole_number(1, 100_000),
        512,
        "spans per export request",
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", None),
    ),
    _s(
        "schedule_delay",
        p.number(*_SCHEDULE_DELAY),
        1.0,
        "seconds between exports; OTEL_BSP_SCHEDULE_DELAY: milliseconds, 10 to 60000",
        ("OTEL_BSP_SCHEDULE_DELAY", _milliseconds(*_SCHEDULE_DELAY)),
    ),
    _s("shutdown_timeout", p.number(0.0, 60), 1.0, "seconds shutdown may spend flushing"),
    _s(
        "query_url",
        p.base_url,
        None,
        "trace UI/query base URL for links (Jaeger or the local store); default by backend",
    ),
    _s("faults", p.boolean, False, "fault injection for drills; never in production"),
    _s(
        "faults_token",
        p.text,
        None,
        "bearer token of the fault admin endpoint; without one the endpoint does not exist",
        secret=True,
    ),
    _s("faults_audit_file", p.text, None, "JSONL audit log of injected and cleared faults"),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def _readers() -> dict[str, tuple[Setting, ...]]:
    """The settings each OTEL_* variable feeds: OTEL_RESOURCE_ATTRIBUTES feeds four."""
    readers: dict[str, tuple[Setting, ...]] = {}
    for setting in SETTINGS:
        for variable in dict.fromkeys(variable for variable, _ in setting.otel):
            readers[variable] = (*readers.get(variable, ()), setting)
    return readers


_READERS = _readers()


@dataclass(frozen=True)
class Settings:
    service_name: str | None
    service_version: str | None
    environment: str
    resource_attributes: dict[str, str]
    backend: str | None
    endpoint: str | None
    protocol: str
    headers: dict[str, str]
    compression: str
    certificate: str | None
    client_certificate: str | None
    client_key: str | None
    export_timeout: float
    honeycomb_api_key: str | None
    honeycomb_dataset: str | None
    honeycomb_region: str
    sample_ratio: float
    debug: bool
    tenant_header: str
    user_header: str
    pseudonym_key: str | None
    propagators: tuple[str, ...]
    baggage_trust_inbound: bool
    baggage_propagate_to: tuple[str, ...]
    baggage_max_entries: int
    baggage_max_value_length: int
    scrub_keys: tuple[str, ...]
    scrub_allow: tuple[str, ...]
    excluded_paths: tuple[str, ...]
    instrumentations: tuple[str, ...]
    max_queue_size: int
    max_export_batch_size: int
    schedule_delay: float
    shutdown_timeout: float
    query_url: str | None
    faults: bool
    faults_token: str | None
    faults_audit_file: str | None
    # Where each value came from: "argument", an environment variable's name, or "default".
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # The variables that would have given a setting but could not be read (each reported
    # once and ignored): the fault guard will not guess an environment nobody could read.
    unread: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


_reported: set[str] = set()


def report_once(message: str) -> None:
    """Log a warning the first time it is seen: a misconfiguration is reported, not repeated."""
    if message not in _reported:
        _reported.add(message)
        log.warning("%s", message)


def _error(setting: Setting, origin: str, raw: Any, exc: Exception) -> str:
    return _settings_error((setting,), origin, raw, exc)


def _settings_error(settings: tuple[Setting, ...], origin: str, raw: Any, exc: Exception) -> str:
    if any(setting.secret for setting in settings):
        shown = "***"
    else:
        shown = repr(p.without_secrets(raw) if isinstance(raw, str) else raw)
    names = ", ".join(setting.name for setting in settings)
    if len(settings) == 1:
        return f"o11ykit setting {names} ({origin}={shown}) is invalid; {exc}"
    return f"o11ykit settings {names} ({origin}={shown}) are invalid; {exc}"


def _from_environment(
    setting: Setting,
    environ: Mapping[str, str],
    *,
    strict: bool = False,
    unread: list[str] | None = None,
) -> tuple[Any, str] | None:
    """The setting's value and the variable it came from; None when no variable sets it.
    A malformed value is reported once, added to `unread` and ignored, or with `strict`
    refused (ConfigError)."""
    candidates: list[EnvSource] = [(setting.env_name, None), *setting.otel]
    for variable, transform in candidates:
        raw = environ.get(variable)
        if raw is None or not raw.strip():
            continue
        try:
            value = transform(raw, environ) if transform else raw
        except ValueError as exc:
            # A variable malformed as a whole is one mistake, whichever settings read it:
            # one message naming them all, so report_once says it once.
            problem = _settings_error(_READERS.get(variable, (setting,)), variable, raw, exc)
        else:
            if value is None:
                continue
            try:
                return setting.parse(value), variable
            except ValueError as exc:
                problem = _error(setting, variable, raw, exc)
        if strict:
            raise ConfigError(problem)
        report_once(problem + "; ignored")
        if unread is not None:
            unread.append(variable)
    return None


def environment_setting(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """One setting from the environment, None when unset; ConfigError when malformed. For
    commands, which refuse a bad value, where a service (load_settings) goes on without it."""
    found = _from_environment(
        SETTINGS_BY_NAME[name], os.environ if environ is None else environ, strict=True
    )
    return None if found is None else found[0]


def load_settings(
    arguments: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve every setting. `environ` is injectable so tests never touch os.environ."""
    arguments = dict(arguments or {})
    environ = os.environ if environ is None else environ
    unknown = sorted(set(arguments) - set(SETTINGS_BY_NAME))
    if unknown:
        raise ConfigError(
            f"unknown o11ykit setting(s): {', '.join(unknown)}; "
            f"accepted: {', '.join(SETTINGS_BY_NAME)}"
        )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    unread: dict[str, tuple[str, ...]] = {}
    for setting in SETTINGS:
        given = arguments.get(setting.name)
        if given is not None:
            try:
                values[setting.name] = setting.parse(given)
            except ValueError as exc:
                raise ConfigError(_error(setting, "argument", given, exc)) from None
            sources[setting.name] = "argument"
            continue
        malformed: list[str] = []
        found = _from_environment(setting, environ, unread=malformed)
        if malformed:
            unread[setting.name] = tuple(dict.fromkeys(malformed))
        if found is not None:
            values[setting.name], sources[setting.name] = found
        else:
            values[setting.name], sources[setting.name] = setting.default, "default"
    _from_resource_attributes(values, sources)
    _batch_within_queue(values, sources)
    return Settings(**values, sources=sources, unread=unread)


def _batch_within_queue(values: dict[str, Any], sources: dict[str, str]) -> None:
    """A batch larger than the queue never fills, and spans are dropped as if the queue were
    full (the SDK's own processor refuses it). The default batch shrinks to a small queue;
    a batch given in code is refused, one from the environment reported and shrunk."""
    batch, queue = values["max_export_batch_size"], values["max_queue_size"]
    if batch <= queue:
        return
    values["max_export_batch_size"] = queue
    origin = sources["max_export_batch_size"]
    if origin == "default":
        return
    problem = (
        f"o11ykit setting max_export_batch_size ({origin}={batch}) is larger than "
        f"max_queue_size ({queue}); accepted values: a whole number up to max_queue_size"
    )
    if "argument" in (origin, sources["max_queue_size"]):
        raise ConfigError(problem)
    report_once(f"{problem}; {queue} is used")


# The settings that are resource attributes, by the keys that name them (the older key last).
_RESOURCE_KEYS = {
    "service_name": ("service.name",),
    "service_version": ("service.version",),
    "environment": ("deployment.environment.name", "deployment.environment"),
}


def _from_resource_attributes(values: dict[str, Any], sources: dict[str, str]) -> None:
    """Fill the service's name, version and environment that nothing else gave from the
    resource_attributes setting, as OTEL_RESOURCE_ATTRIBUTES fills them: the resource is
    built from these settings, and would otherwise stamp a default over what was given."""
    given = values["resource_attributes"]
    for name, keys in _RESOURCE_KEYS.items():
        key = next((k for k in keys if given.get(k)), None)
        if sources[name] != "default" or key is None:
            continue
        origin = f"resource_attributes ({sources['resource_attributes']})"
        try:
            values[name] = SETTINGS_BY_NAME[name].parse(given[key])
        except ValueError as exc:
            problem = _error(SETTINGS_BY_NAME[name], origin, given[key], exc)
            if sources["resource_attributes"] == "argument":
                raise ConfigError(problem) from None
            report_once(problem + "; ignored")
            continue
        sources[name] = origin


def masked(settings: Settings) -> dict[str, tuple[str, str]]:
    """Each setting's display value (secrets masked) and its source, for doctor."""
    shown: dict[str, tuple[str, str]] = {}
    for setting in SETTINGS:
        value = getattr(settings, setting.name)
        if setting.secret and value:
            display = (
                "{" + ", ".join(f"{k}=***" for k in value) + "}"
                if isinstance(value, dict)
                else "*** (set)"
            )
        elif isinstance(value, tuple):
            display = ", ".join(value)
        elif isinstance(value, str):
            display = p.without_secrets(value)  # an endpoint may carry a user or a key
        else:
            display = "" if value is None else str(value)
        shown[setting.name] = (display, settings.sources.get(setting.name, "default"))
    return shown


def settings_reference() -> str:
    """The settings table of docs/settings.md, generated so the docs cannot drift."""
    rows = [
        "| setting | environment | default | accepted | what it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for setting in SETTINGS:
        variables = [setting.env_name, *dict.fromkeys(v for v, _ in setting.otel)]
        default = setting.default
        if isinstance(default, tuple):
            default = ", ".join(default)
        shown_default = "" if default in (None, {}, "") else f"`{default}`"
        rows.append(
            f"| `{setting.name}` | {'<br>'.join(f'`{v}`' for v in variables)} | {shown_default} "
            f"| {p.accepted(setting.parse)} | {setting.help} |"
        )
    return "\n".join(rows) + "\n"
