"""o11ykit: one-call OpenTelemetry for multi-tenant services.

import o11ykit
o11ykit.init(app=app)   # the FastAPI app is optional; SQL, HTTP clients, logs are automatic

with o11ykit.context(tenant_id="acme", user_id="u-42"):
    ...                        # jobs and scripts: spans and logs carry tenant and user
"""

from o11ykit._version import __version__
from o11ykit.config import ConfigError, Settings, load_settings
from o11ykit.context import context
from o11ykit.handle import Handle
from o11ykit.instrumentation.asgi import TracingMiddleware
from o11ykit.setup import init, instrument_app, shutdown

__all__ = [
    "ConfigError",
    "Handle",
    "Settings",
    "TracingMiddleware",
    "__version__",
    "context",
    "init",
    "instrument_app",
    "load_settings",
    "shutdown",
]
