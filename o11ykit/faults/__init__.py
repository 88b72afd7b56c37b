"""Guarded fault injection for incident drills on your own staging systems.

    engine = o11ykit.faults.enable(app, sqlalchemy_engine=db)   # None unless enabled
    ...
    fault = engine.broken("n_plus_one", route="/api/orders")     # a service's own kind
    if fault is not None:
        ...                                                       # the slow path, for real

Off unless `enabled=True` or O11YKIT_FAULTS=true, refused in production, and invisible in
telemetry: a request touched by a fault is just slower or failing, as in a real incident.
See docs/faults.md.
"""

from o11ykit.faults.audit import AuditLog
from o11ykit.faults.client import FaultAdminError, FaultClient
from o11ykit.faults.engine import ActiveFault, FaultEngine
from o11ykit.faults.install import current_engine, enable
from o11ykit.faults.kinds import GENERIC_KINDS
from o11ykit.faults.spec import FaultSpec, FaultSpecError, KindSpec, ParamSpec, Scope

__all__ = [
    "GENERIC_KINDS",
    "ActiveFault",
    "AuditLog",
    "FaultAdminError",
    "FaultClient",
    "FaultEngine",
    "FaultSpec",
    "FaultSpecError",
    "KindSpec",
    "ParamSpec",
    "Scope",
    "current_engine",
    "enable",
]
