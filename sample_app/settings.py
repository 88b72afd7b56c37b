"""What a sample service reads from its environment, in one place.

The stack (`o11ykit app up`), the tests and docker-compose all start services through
these variables; o11ykit's own settings (O11YKIT_*) are read by o11ykit itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sample_app import topology


@dataclass(frozen=True)
class ServiceEnvironment:
    service: topology.Service
    data_dir: Path
    database_url: str | None  # Postgres base URL; None means SQLite under data_dir
    downstream: dict[str, str]  # service name -> base URL

    def url_of(self, name: str) -> str:
        try:
            return self.downstream[name]
        except KeyError:
            variable = topology.URL_VARIABLES[name]
            raise RuntimeError(f"{self.service.name} needs {variable} to call {name}") from None


def read(
    environ: Mapping[str, str] | None = None, default_service: str = "gateway"
) -> ServiceEnvironment:
    environ = os.environ if environ is None else environ
    name = environ.get("SAMPLE_APP_SERVICE", default_service)
    if name not in topology.BY_NAME:
        raise RuntimeError(
            f"SAMPLE_APP_SERVICE={name!r} is not a service; accepted: {', '.join(topology.BY_NAME)}"
        )
    service = topology.BY_NAME[name]
    downstream = {}
    for callee in service.calls:
        url = environ.get(topology.URL_VARIABLES[callee])
        if url:
            downstream[callee] = url.rstrip("/")
    return ServiceEnvironment(
        service=service,
        data_dir=Path(environ.get("SAMPLE_APP_DATA_DIR", ".o11ykit/sample-app")),
        database_url=environ.get("DATABASE_URL") or None,
        downstream=downstream,
    )
