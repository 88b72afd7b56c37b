"""The whole sample system as processes on loopback: the local store and five services.

`Stack.start()` seeds the databases if needed, starts every process, waits until each
answers its health check and writes a state file; on any failure, or Ctrl-C, it stops
whatever it started before raising. `Stack.stop()` (or `o11ykit app down`, from the state
file) stops them all. Children started for a foreground run or a test die with their
parent (Linux's parent-death signal, which each asks for itself: with_parent.py), so
nothing is left behind even on a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from o11ykit.config import ConfigError
from o11ykit.faults.guard import declared_environment, is_production
from sample_app import seed, topology
from sample_app.companions import process_started, still_the_same, take_companions

STATE_FILE = "stack.json"
HEALTH_TIMEOUT_S = 30.0
# Services export often, so a learner sees a request in the store within a second.
SCHEDULE_DELAY_S = "0.2"
# The stack's store keeps the newest million spans (~850 MB on disk, the size the store's
# benchmark measures memory and queries at): hours of lab traffic, yet a stack left up for
# days does not fill the learner's disk. `o11ykit store serve` alone keeps everything.
STORE_MAX_SPANS = 1_000_000
# What stops a start half-way: Ctrl-C, and the signals `o11ykit app up` turns into one.
INTERRUPTING_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class StackError(RuntimeError):
    """The stack could not start (or stop); the message says which part and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_other_than(taken: set[int], attempts: int = 100) -> int:
    """A free port not in `taken`: the system hands a port it just gave out, and that
    nobody listens on yet, to the next caller as readily as any other."""
    for _ in range(attempts):
        port = free_port()
        if port not in taken:
            return port
    raise StackError(f"no free port besides {sorted(taken)} after {attempts} tries")


def _refuse_shared_ports(ports: Mapping[str, int]) -> None:
    by_port: dict[int, list[str]] = {}
    for name, port in ports.items():
        if port:
            by_port.setdefault(port, []).append(name)
    shared = {port: names for port, names in by_port.items() if len(names) > 1}
    if shared:
        port, names = next(iter(shared.items()))
        raise StackError(f"port {port} is given to {' and '.join(names)}: each needs its own")


def port_is_free(port: int) -> bool:
    """Whether a server could listen on the port now, as the stack's will (uvicorn's and the
    store's set SO_REUSEADDR): connections still in TIME_WAIT on it do not make it taken."""
    with socket.socket() as sock:
        if os.name != "nt":  # on Windows the option lets a socket take a port in use
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Deliver the interrupting signals that arrive inside once it is done. Raised inside
    Popen after the fork, an interrupt loses the child's pid, and the child runs on where
    nothing can stop it; raised just after, it finds the child recorded and stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only: nothing to hold here
        return
    arrived: list[int] = []
    previous = {
        number: signal.signal(number, lambda caught, _frame: arrived.append(caught))
        for number in INTERRUPTING_SIGNALS
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        for number in arrived[:1]:
            signal.raise_signal(number)


@dataclass
class StackConfig:
    data_dir: Path
    database_url: str | None = None
    # "local" starts the embedded store; anything else is o11ykit's backend setting, and the
    # telemetry settings come from the environment (O11YKIT_ENDPOINT, HONEYCOMB_API_KEY...).
    backend: str = "local"
    ports: dict[str, int] = field(default_factory=dict)  # name -> port; 0 or absent: default
    free_ports: bool = False  # every port picked free (tests), instead of the defaults
    store_ports: tuple[int, int] = (4318, 16686)
    faults_token: str | None = None
    pseudonym_key: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    die_with_parent: bool = True


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen | None = None
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.data_dir = Path(config.data_dir)
        self.token = config.faults_token or secrets.token_urlsafe(24)
        self.services: dict[str, ServiceProcess] = {}
        self.store = None
        self.query_url: str | None = None
        self.traces_url: str | None = None

    # ---- start --------------------------------------------------------------------------

    def start(self, *, progress=print) -> Stack:
        try:
            self._start(progress)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, progress) -> None:
        self._check_environment()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        started = time.perf_counter()
        report = seed.seed(self.data_dir, self.config.database_url)
        if any("seconds" in r for r in report.values()):
            progress(f"seeded the databases in {time.perf_counter() - started:.1f} s")
        if self.config.backend == "local":
            self._start_store()
        ports = self._ports()
        for service in topology.SERVICES:
            self.services[service.name] = ServiceProcess(service.name, ports[service.name])
        for service in topology.SERVICES:
            self._spawn(service)
        self._wait_healthy()
        self.write_state()

    def _ports(self) -> dict[str, int]:
        """Each service's port: given, picked free, or its default; never one for two."""
        chosen = {
            s.name: self.config.ports.get(s.name) or (0 if self.config.free_ports else s.port)
            for s in topology.SERVICES
        }
        _refuse_shared_ports(chosen)
        taken = set(chosen.values())
        for name, port in chosen.items():
            if not port:
                chosen[name] = port = free_port_other_than(taken)
                taken.add(port)
            if not port_is_free(port):
                raise StackError(
                    f"port {port} for {name} is in use (another stack? `o11ykit app "
                    "down` stops one; `--port-offset N` moves this one)"
                )
        return chosen

    def _start_store(self) -> None:
        from o11ykit.store.process import spawn_store

        http_port, query_port = (0, 0) if self.config.free_ports else self.config.store_ports
        for port in (http_port, query_port):
            if port and not port_is_free(port):
                raise StackError(f"port {port} for the local trace store is in use")
        with signals_held():  # until the store is ready: a second at most, usually
            self.store = spawn_store(
                self.data_dir / "store",
                http_port=http_port,
                query_port=query_port,
                grpc_port=None,
                max_spans=STORE_MAX_SPANS,
                detach=not self.config.die_with_parent,
                log_path=self.data_dir / "logs" / "store.log",
            )
        self.query_url = self.store.query_url
        self.traces_url = self.store.traces_url

    def _passed_through(self) -> dict[str, str]:
        """The caller's O11YKIT_* and OTEL_* variables the services get: with another backend
        than the local store, where they say where and how to export."""
        if self.config.backend == "local":
            return {}
        return {k: v for k, v in os.environ.items() if k.startswith(("O11YKIT_", "OTEL_"))}

    def _check_environment(self) -> None:
        """The sample system injects faults: never where the caller's settings say production."""
        try:
            declared = declared_environment(self._passed_through())
        except ConfigError as exc:  # it may name production: the stack injects faults
            raise StackError(
                f"{exc}; the sample system injects faults and does not start where its"
                " environment cannot be read"
            ) from None
        if is_production(declared):
            raise StackError(
                f"the environment is {declared!r} (from this shell's O11YKIT_/OTEL_ settings),"
                " which is production: the sample system injects faults and does not start"
                " there; unset it, or name a workshop or staging environment"
            )

    def environment(self, service: topology.Service) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("O11YKIT_", "OTEL_"))}
        passed = self._passed_through()
        env.update(passed)
        if declared_environment(passed) is None:  # else the caller's, checked at start
            env["O11YKIT_ENVIRONMENT"] = "workshop"
        env.update(
            {
                "SAMPLE_APP_SERVICE": service.name,
                "SAMPLE_APP_DATA_DIR": str(self.data_dir),
                "O11YKIT_SERVICE_NAME": service.service_name,
                "O11YKIT_SERVICE_VERSION": service.version,
                "O11YKIT_SCHEDULE_DELAY": SCHEDULE_DELAY_S,
                "O11YKIT_FAULTS": "true",
                "O11YKIT_FAULTS_TOKEN": self.token,
                "O11YKIT_FAULTS_AUDIT_FILE": str(self.data_dir / "fault-audit.jsonl"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.config.backend == "local":
            env.update(
                O11YKIT_BACKEND="local",
                O11YKIT_ENDPOINT=str(self.traces_url),
                O11YKIT_QUERY_URL=str(self.query_url),
            )
        else:
            # The backend this stack was configured with, over one the shell passes through.
            env["O11YKIT_BACKEND"] = self.config.backend
        if self.config.database_url and service.has_database:
            env["DATABASE_URL"] = self.config.database_url
        if self.config.pseudonym_key:
            env["O11YKIT_PSEUDONYM_KEY"] = self.config.pseudonym_key
        if service.name != "gateway":
            env["O11YKIT_BAGGAGE_TRUST_INBOUND"] = "true"
        for callee in service.calls:
            env[topology.URL_VARIABLES[callee]] = self.services[callee].url
        env.update(self.config.extra_env)
        return env

    def _spawn(self, service: topology.Service) -> None:
        entry = self.services[service.name]
        # Dying with this process is asked for by the child itself (sample_app/with_parent.py).
        launcher = ["-m", "sample_app.with_parent", str(os.getpid())]
        command = [
            sys.executable,
            *(launcher if self.config.die_with_parent else ["-m"]),
            "uvicorn",
            service.module,
            "--host",
            "127.0.0.1",
            "--port",
            str(entry.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        log = (self.data_dir / "logs" / f"{service.name}.log").open("ab")
        with log, signals_held():
            entry.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.environment(service),
                start_new_session=not self.config.die_with_parent,
            )
            entry.pid = entry.process.pid

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.data_dir / "logs" / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        waiting = dict(self.services)
        with httpx.Client(timeout=1.0) as client:
            while waiting:
                for name, entry in list(waiting.items()):
                    code = entry.process.poll() if entry.process else None
                    if code is not None:
                        raise StackError(
                            f"{name} exited with {code} during start-up; its log:\n"
                            f"{self.log_tail(name)}"
                        )
                    try:
                        if client.get(f"{entry.url}/health").status_code == 200:
                            del waiting[name]
                    except httpx.TransportError:
                        pass
                if waiting and time.monotonic() > deadline:
                    names = ", ".join(waiting)
                    raise StackError(f"not healthy after {HEALTH_TIMEOUT_S:.0f} s: {names}")
                if waiting:
                    time.sleep(0.05)

    # ---- state ----------------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        return self.services["gateway"].url

    def admin_urls(self) -> dict[str, str]:
        return {name: entry.url for name, entry in self.services.items()}

    def state(self) -> dict:
        return {
            "data_dir": str(self.data_dir),
            "database_url": self.config.database_url,
            "backend": self.config.backend,
            "query_url": self.query_url,
            "traces_url": self.traces_url,
            "store_pid": self.store.pid if self.store else None,
            "store_started": process_started(self.store.pid) if self.store else None,
            "token": self.token,
            "services": {
                n: {"port": e.port, "pid": e.pid, "started": process_started(e.pid), "url": e.url}
                for n, e in self.services.items()
            },
        }

    def write_state(self) -> Path:
        path = self.data_dir / STATE_FILE
        # It holds the fault token: readable by its owner only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self.state(), out, indent=2)
        return path

    # ---- stop -----------------------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> None:
        processes = [e.process for e in self.services.values() if e.process is not None]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.store is not None:
            self.store.stop()
            self.store = None
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / STATE_FILE).unlink()

    def __enter__(self) -> Stack:
        return self.start(progress=lambda _: None) if not self.services else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def read_state(data_dir: Path) -> dict | None:
    try:
        return json.loads((Path(data_dir) / STATE_FILE).read_text())
    except FileNotFoundError:
        return None


def stop_from_state(state: Mapping, timeout: float = 5.0) -> list[str]:
    """Stop a detached stack from its state file: SIGTERM each process, SIGKILL stragglers.

    Its companions (register_companion) first: traffic would only hammer the stopped ports."""
    pids = take_companions(state["data_dir"])
    pids.update(recorded_processes(state))
    stopped = []
    for name, pid in pids.items():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            stopped.append(name)
    deadline = time.monotonic() + timeout
    for pid in pids.values():
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (Path(state["data_dir"]) / STATE_FILE).unlink()
    return stopped


def recorded_processes(state: Mapping) -> dict[str, int]:
    """Name -> pid of the store and services a state file records that still run: a pid
    that now names another program (the stack died, the machine rebooted) is left out, so
    it is neither stopped nor taken for a running stack."""
    recorded = {
        name: (info.get("pid"), info.get("started")) for name, info in state["services"].items()
    }
    recorded["store"] = (state.get("store_pid"), state.get("store_started"))
    return {
        name: pid
        for name, (pid, started) in recorded.items()
        if pid and _alive(pid) and still_the_same(pid, started)
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours counts as gone.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


@contextlib.contextmanager
def running(config: StackConfig) -> Iterator[Stack]:
    stack = Stack(config).start(progress=lambda _: None)
    try:
        yield stack
    finally:
        stack.stop()
