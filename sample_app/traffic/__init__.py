"""The sample system's traffic: shoppers and shop staff, Zipf-distributed over shops and
customers, at a bounded rate, reproducible by seed.

Why our own small asyncio generator and not Locust (the longer argument, with what we
give up, is in docs/traffic.md):

* Weight. Locust 2.47 needs Python >= 3.11 (o11ykit supports 3.10) and brings gevent,
  greenlet, geventhttpclient, pyzmq, Flask and its extensions, socketio, psutil and even
  pytest at run time. This generator needs httpx, which the sample services use anyway.
* Monkey-patching. Importing Locust patches sockets, threads and time with gevent for the
  whole process. Tests and the lab runner run traffic in-process next to asyncio servers,
  the OpenTelemetry SDK's export thread and the local store; gevent and asyncio do not mix.
* Determinism. Locust's users pick tasks from one shared random source in whatever order
  the greenlets happen to run, so the same seed gives different visits on a loaded machine.
  Here visit `i` is drawn from a source seeded by (seed, i) only: drills compute their
  ground truth, and tests their expectations, from `plan()` without sending anything.
* One shared rate. Locust paces each simulated user; the total follows from the user count
  and the latency. Here one token bucket holds the whole run to `rate` requests a second.
* Programmatic use and start-up. `await run_traffic(config, stop=event)` returns a summary
  in-process, starts in a fraction of a second and stops when told; Locust's library mode
  still wants its greenlet runner and environment.

What Locust has and this has not: a web UI, latency percentiles, distributed workers. A
workshop on one machine needs none of them, and a team that wants Locust can point it at
the same gateway API.
"""

from sample_app.traffic.background import BackgroundTraffic
from sample_app.traffic.cli import add_arguments, config_from_args
from sample_app.traffic.config import TrafficConfig
from sample_app.traffic.journal import Outcome
from sample_app.traffic.personas import DEFAULT_MIX, PERSONAS, Step
from sample_app.traffic.planner import Visit, plan
from sample_app.traffic.runner import run, run_traffic
from sample_app.traffic.summary import TrafficSummary

__all__ = [
    "DEFAULT_MIX",
    "PERSONAS",
    "BackgroundTraffic",
    "Outcome",
    "Step",
    "TrafficConfig",
    "TrafficSummary",
    "Visit",
    "add_arguments",
    "config_from_args",
    "plan",
    "run",
    "run_traffic",
]
