"""Exports to an https endpoint that only a private CA vouches for, and to one that asks for
the client's own certificate: the certificate, client_certificate and client_key settings
(OTEL_EXPORTER_OTLP_CERTIFICATE and its kin), over HTTP and gRPC, against a real receiver
serving TLS on 127.0.0.1 with certificates made for the run."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from o11ykit.config import ConfigError, load_settings
from o11ykit.pipeline import SafeSpanExporter
from o11ykit.privacy import Scrubber
from o11ykit.setup import build_transport
from o11ykit.tls import tls_files
from tests.support.otlp_receiver import OtlpReceiver, TlsServerFiles
from tests.test_doctor import doctor
from tests.test_export import _spans

pytestmark = pytest.mark.integration
PROTOCOLS = ["http/protobuf", "grpc"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem; server.pem/.key for 127.0.0.1; client.pem/.key; other.key (no one's pair);
    client-encrypted.key; stranger-ca.pem (a CA that vouches for nobody here)."""
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    for name, identity in (("server", "127.0.0.1"), ("client", "client.example")):
        issued = ca.issue_cert(identity)
        issued.cert_chain_pems[0].write_to_path(str(directory / f"{name}.pem"))
        issued.private_key_pem.write_to_path(str(directory / f"{name}.key"))
    ca.issue_cert("other.example").private_key_pem.write_to_path(str(directory / "other.key"))
    trustme.CA().cert_pem.write_to_path(str(directory / "stranger-ca.pem"))
    key = serialization.load_pem_private_key((directory / "client.key").read_bytes(), None)
    (directory / "client-encrypted.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    return directory


def _receiver(tmp_path: Path, pki: Path, mutual: bool = False) -> OtlpReceiver:
    files = TlsServerFiles(
        pki / "server.pem", pki / "server.key", pki / "ca.pem" if mutual else None
    )
    return OtlpReceiver(tmp_path, tls=files)


def _export(receiver: OtlpReceiver, protocol: str, **tls: str) -> SafeSpanExporter:
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    settings = load_settings(
        {"service_name": "svc", "backend": "otlp", "endpoint": endpoint, "protocol": protocol}
        | tls,
        {},
    )
    _, transport = build_transport(settings)
    exporter = SafeSpanExporter(transport, Scrubber(), settings.export_timeout)
    exporter.export(_spans(settings, 3))
    exporter.shutdown()
    return exporter


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_private_ca_named_by_certificate_is_trusted(tmp_path, pki, protocol) -> None:
    with _receiver(tmp_path, pki) as receiver:
        assert receiver.http_endpoint.startswith("https://")
        exporter = _export(receiver, protocol, certificate=str(pki / "ca.pem"))
        spans = receiver.wait_for_spans(lambda s: len(s) >= 3)
    assert exporter.stats.exported == 3 and exporter.stats.dropped == 0
    assert {s["name"] for s in spans} == {"work-0", "work-1", "work-2"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("trusted", [None, "stranger-ca.pem"])
def test_a_server_no_trusted_ca_vouches_for_gets_nothing(tmp_path, pki, protocol, trusted) -> None:
    """Without the setting the system's CAs decide, and they do not know the private CA; a
    certificate setting replaces them, it does not add a CA that trusts anything."""
    with _receiver(tmp_path, pki) as receiver:
        tls = {"certificate": str(pki / trusted)} if trusted else {}
        exporter = _export(receiver, protocol, **tls)
        time.sleep(0.3)
        arrived = receiver.requests()
    assert exporter.stats.exported == 0 and exporter.stats.dropped_export_failed == 3
    assert arrived == []
    assert exporter.stats.last_error.startswith("TLS: TLS handshake with "), exporter.stats
    assert "CERTIFICATE_VERIFY_FAILED" in exporter.stats.last_error


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mutual_tls_sends_the_client_certificate(tmp_path, pki, protocol) -> None:
    with _receiver(tmp_path, pki, mutual=True) as receiver:
        refused = _export(receiver, protocol, certificate=str(pki / "ca.pem"))
        exporter = _export(
            receiver,
            protocol,
            certificate=str(pki / "ca.pem"),
            client_certificate=str(pki / "client.pem"),
            client_key=str(pki / "client.key"),
        )
        spans = receiver.wait_for_spans(lambda s: len(s) >= 3)
    assert refused.stats.exported == 0 and refused.stats.dropped_export_failed == 3
    assert exporter.stats.exported == 3 and len(spans) == 3


def test_the_otel_variables_name_the_files(pki) -> None:
    settings = load_settings(
        {},
        {
            "OTEL_EXPORTER_OTLP_CERTIFICATE": str(pki / "stranger-ca.pem"),
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": str(pki / "ca.pem"),
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": str(pki / "client.pem"),
            "OTEL_EXPORTER_OTLP_CLIENT_KEY": str(pki / "client.key"),
        },
    )
    assert settings.certificate == str(pki / "ca.pem")
    assert settings.sources["certificate"] == "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"
    files = tls_files(settings)
    assert files is not None and files.client_key_pem == (pki / "client.key").read_bytes()


@pytest.mark.parametrize(
    ("setting", "file", "message"),
    [
        ("certificate", "missing.pem", "cannot read it (No such file or directory)"),
        ("certificate", "client.key", "no PEM certificate in it"),
        ("client_key", "client.pem", "no PEM private key in it"),
    ],
)
def test_a_file_that_is_not_what_the_setting_holds_is_refused_by_name(
    pki, setting, file, message
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({setting: str(pki / file)}, {})
    assert f"o11ykit setting {setting} (argument=" in str(refused.value)
    assert message in str(refused.value)
    assert "accepted values: the path of a readable PEM file" in str(refused.value)


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"client_certificate": "client.pem"}, "client_certificate is set without its pair"),
        ({"client_key": "client.key"}, "client_key is set without its pair"),
        (
            {"client_certificate": "client.pem", "client_key": "other.key"},
            "are not a certificate and its unencrypted private key",
        ),
        (
            {"client_certificate": "client.pem", "client_key": "client-encrypted.key"},
            "are not a certificate and its unencrypted private key",
        ),
    ],
)
def test_a_client_certificate_tls_cannot_use_is_refused_when_the_transport_is_built(
    pki, tls, message
) -> None:
    """At init(), naming the settings, not as an export failure later; an encrypted key is
    refused without OpenSSL asking for its password on the terminal."""
    files = {name: str(pki / file) for name, file in tls.items()}
    settings = load_settings(
        {"backend": "otlp", "endpoint": "https://collector.example"} | files, {}
    )
    with pytest.raises(ConfigError, match=message):
        build_transport(settings)


def test_an_http_endpoint_neither_reads_nor_refuses_the_tls_files(pki) -> None:
    settings = load_settings(
        {"backend": "otlp", "endpoint": "http://127.0.0.1:4318"},
        {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": str(pki / "client.pem")},
    )
    backend, transport = build_transport(settings)
    assert backend == "otlp" and transport is not None


def test_tls_files_from_the_environment_that_do_not_pair_export_nothing(pki, caplog) -> None:
    """As any backend setting from the environment that cannot work: said once, the service
    runs on without telemetry."""
    settings = load_settings(
        {},
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": str(pki / "client.pem"),
        },
    )
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        backend, transport = build_transport(settings)
    assert (backend, transport) == ("none", None)
    assert "client_certificate is set without its pair" in caplog.text


def test_who_gave_the_tls_files_decides_between_error_and_warning(pki, caplog) -> None:
    """The TLS files' own source decides, not the backend's: files given in code that do
    not pair are code's mistake even with the backend left to its default, and a half pair
    from the environment is a deployment's, even under a backend asked for in code."""
    settings = load_settings(
        {
            "endpoint": "https://collector.example",
            "client_certificate": str(pki / "client.pem"),
            "client_key": str(pki / "other.key"),
        },
        {},
    )
    with pytest.raises(ConfigError, match="are not a certificate"):
        build_transport(settings)
    settings = load_settings(
        {"backend": "otlp", "endpoint": "https://collector.example"},
        {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": str(pki / "client.pem")},
    )
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        assert build_transport(settings) == ("none", None)
    assert "client_certificate is set without its pair" in caplog.text


def test_doctor_says_the_handshake_failed_and_where_a_private_ca_goes(tmp_path, pki) -> None:
    with _receiver(tmp_path, pki) as receiver:
        failed = doctor("--backend", "otlp", "--endpoint", receiver.http_endpoint)
        passed = doctor(
            "--backend",
            "otlp",
            "--endpoint",
            receiver.http_endpoint,
            env={"OTEL_EXPORTER_OTLP_CERTIFICATE": str(pki / "ca.pem")},
        )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "TLS handshake with" in failed.stdout
    assert "named by certificate (OTEL_EXPORTER_OTLP_CERTIFICATE)" in failed.stdout
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "OTEL_EXPORTER_OTLP_CERTIFICATE" in passed.stdout  # where the setting came from
