"""The services, their default ports and who calls whom: read by `o11ykit app`, the
compose checks and the docs, so a port or a name is written in one place only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str  # the process's name; also its folder under sample_app/services
    service_name: str  # service.name in telemetry (the canary shares catalog's)
    port: int  # default port on 127.0.0.1, and the container port in compose
    version: str
    calls: tuple[str, ...] = ()
    has_database: bool = True

    @property
    def module(self) -> str:
        folder = "catalog" if self.name == "catalog-canary" else self.name
        return f"sample_app.services.{folder}.app:app"


SERVICES: tuple[Service, ...] = (
    Service(
        "gateway",
        "gateway",
        8080,
        "1.4.2",
        calls=("catalog", "catalog-canary", "orders"),
        has_database=False,
    ),
    Service("catalog", "catalog", 8081, "1.7.3"),
    # The same code deployed as the next version, taking no traffic until a canary rollout.
    Service("catalog-canary", "catalog", 8085, "1.8.0"),
    Service("orders", "orders", 8082, "2.3.0", calls=("catalog", "payments")),
    Service("payments", "payments", 8083, "0.9.1", has_database=False),
)

BY_NAME = {service.name: service for service in SERVICES}
EDGE = "gateway"
# The service each one's URL setting names, e.g. CATALOG_URL for the gateway and orders.
URL_VARIABLES = {name: name.upper().replace("-", "_") + "_URL" for name in BY_NAME}
