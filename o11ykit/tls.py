"""TLS for exports to an https endpoint: the CA certificates to trust and this client's own
certificate, from the PEM files the `certificate`, `client_certificate` and `client_key`
settings name (OTEL_EXPORTER_OTLP_CERTIFICATE and its kin, as the OTLP exporter
specification defines them).

The files are read and checked once, when the transport is built (init() or doctor): a
key that does not match its certificate is a ConfigError naming both settings then, not
an export failure a minute later. Without any of them nothing here is imported or read,
and an https endpoint is verified against the system's CA certificates as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from o11ykit.config import ConfigError, Settings

if TYPE_CHECKING:
    import ssl


def _no_password() -> bytes:
    # An encrypted key would otherwise make OpenSSL prompt on the terminal, blocking init().
    return b""


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files' paths, and their bytes as gRPC takes them."""

    certificate: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    certificate_pem: bytes | None = None
    client_certificate_pem: bytes | None = None
    client_key_pem: bytes | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """For HTTP: the system's CA certificates unless `certificate` replaces them."""
        import ssl

        context = ssl.create_default_context(cafile=self.certificate)
        if self.client_certificate:
            context.load_cert_chain(self.client_certificate, self.client_key, _no_password)
        return context

    def grpc_credentials(self) -> Any:
        import grpc

        return grpc.ssl_channel_credentials(
            root_certificates=self.certificate_pem,
            private_key=self.client_key_pem,
            certificate_chain=self.client_certificate_pem,
        )


def tls_files(settings: Settings) -> TlsFiles | None:
    """The settings' TLS files, checked; None when none is set. ConfigError names the
    setting (or the pair) that TLS cannot use."""
    certificate, client_certificate, client_key = (
        settings.certificate,
        settings.client_certificate,
        settings.client_key,
    )
    if not (certificate or client_certificate or client_key):
        return None
    if bool(client_certificate) != bool(client_key):
        given = "client_certificate" if client_certificate else "client_key"
        raise ConfigError(
            f"o11ykit setting {given} is set without its pair: mutual TLS needs both"
            " client_certificate and client_key",
            settings=(given,),
        )
    files = TlsFiles(
        certificate=certificate,
        client_certificate=client_certificate,
        client_key=client_key,
        certificate_pem=_read(certificate, "certificate"),
        client_certificate_pem=_read(client_certificate, "client_certificate"),
        client_key_pem=_read(client_key, "client_key"),
    )
    import ssl

    try:
        ssl.create_default_context(cafile=certificate)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"o11ykit setting certificate ({certificate}) holds no CA certificate TLS can"
            f" use: {exc}",
            settings=("certificate",),
        ) from None
    if client_certificate:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
                client_certificate, client_key, _no_password
            )
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"o11ykit settings client_certificate ({client_certificate}) and client_key"
                f" ({client_key}) are not a certificate and its unencrypted private key: {exc}",
                settings=("client_certificate", "client_key"),
            ) from None
    return files


def _read(path: str | None, setting: str) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise ConfigError(
            f"o11ykit setting {setting} ({path}): cannot read it: {exc}", settings=(setting,)
        ) from None
