"""`o11ykit app up|down|status|traffic`, and `o11ykit fault` by catalogue id.

Registered by o11ykit's command when the sample system is installed (it ships with the
workshop distribution). The stack's state file (0600: it holds the fault token) lives in
the data directory: --data-dir, else $O11YKIT_APP_DIR, else `.o11ykit/sample-app`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_DIR = ".o11ykit/sample-app"
DIR_VARIABLE = "O11YKIT_APP_DIR"
NOT_RUNNING = "the sample system is not running here: `o11ykit app up` starts it"
# What ends `up` while it starts: Ctrl-C, a `kill`, a closed terminal or SSH session.
STOP_SIGNALS = tuple(
    getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)
)


class Stopped(KeyboardInterrupt):
    """What the stop signals raise: caught wherever Ctrl-C's KeyboardInterrupt is, but not
    that class itself. CPython marks a KeyboardInterrupt that leaves an exec() of a string
    as unhandled even when a caller catches it, and then kills itself with SIGINT at exit;
    dataclasses build their methods with such an exec() while modules load, so `up` stopped
    by a signal exited -2 instead of 130 now and then (seen in CI, 4 runs in 15 here)."""


def _catalogue_id(text: str) -> str:
    """A catalogue fault's id, checked as `up` parses it: an unknown one was refused only
    once the whole system had been seeded and started (10 s), and stopped again."""
    from sample_app.faults import catalogue

    try:
        return catalogue.get(text).id
    except KeyError as exc:
        raise argparse.ArgumentTypeError(exc.args[0]) from None


def _backend(text: str) -> str:
    """o11ykit's backend, checked as o11ykit reads O11YKIT_BACKEND: a bad one was passed to
    every service, each of which logged it and fell back to another."""
    from o11ykit.config import BACKENDS
    from o11ykit.settings_parsers import choice

    try:
        return choice(*BACKENDS)(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not accepted; {exc}") from None


def _database_url(text: str) -> str:
    from sample_app.db import database_url_option  # imports SQLAlchemy: only for `up`

    return database_url_option(text)


def data_dir(args: argparse.Namespace | None = None) -> Path:
    given = getattr(args, "data_dir", None) if args is not None else None
    return Path(given or os.environ.get(DIR_VARIABLE) or DEFAULT_DIR)


def register(commands: argparse._SubParsersAction) -> None:
    app = commands.add_parser("app", help="the sample multi-tenant system: up, down, status")
    actions = app.add_subparsers(dest="app_command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    _add_data_dir(common)
    up = actions.add_parser("up", parents=[common], help="start the store and the services")
    up.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        type=_database_url,
        help="Postgres (postgresql+psycopg://...); default SQLite files",
    )
    up.add_argument(
        "--backend",
        type=_backend,
        help="local (the embedded store), or another of o11ykit's backends (otlp, jaeger, "
        "honeycomb, ...) with its settings from the environment; default: $O11YKIT_BACKEND, "
        "else local",
    )
    up.add_argument("--port-offset", type=int, default=0, help="add N to every default port")
    up.add_argument("--free-ports", action="store_true", help="any free ports (for scripts)")
    up.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_catalogue_id,
        metavar="ID",
        help="inject a catalogue fault once started (repeatable)",
    )
    up.add_argument(
        "--foreground", action="store_true", help="stay attached; Ctrl-C stops everything"
    )
    up.set_defaults(run=_up)
    down = actions.add_parser("down", parents=[common], help="stop everything `up` started")
    down.set_defaults(run=_down)
    status = actions.add_parser("status", parents=[common], help="what runs, and its faults")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=_status)
    traffic = actions.add_parser("traffic", parents=[common], help="send shoppers' traffic")
    from sample_app.traffic import add_arguments

    add_arguments(traffic)
    # The parser, so that options wrong only together are reported as the module's are.
    traffic.set_defaults(run=_traffic, traffic_parser=traffic)
    _add_data_dir_to_fault_commands(commands)


def _add_data_dir(parser: argparse.ArgumentParser, what: str = "databases, logs and state") -> None:
    parser.add_argument("--data-dir", help=f"{what} (${DIR_VARIABLE}, else {DEFAULT_DIR})")


def _add_data_dir_to_fault_commands(commands: argparse._SubParsersAction) -> None:
    """`o11ykit fault ...` without --url finds the stack as `app` does: a stack started with
    --data-dir could not be reached by `fault`, which had no such option."""
    from o11ykit.faults import cli as fault_cli

    fault = commands.choices.get("fault")
    for command in fault_cli.subcommands(fault) if fault is not None else ():
        _add_data_dir(command, "without --url: the sample system's data directory")


# ---- app ----------------------------------------------------------------------------------


def _up(args: argparse.Namespace) -> int:
    from sample_app import stack, topology

    backend = _chosen_backend(args)
    if backend is None:
        return 2
    directory = data_dir(args)
    existing = _read_state(directory)
    if existing is not None and _any_alive(existing):
        print(
            f"already running (state in {directory / stack.STATE_FILE}); `o11ykit app down` first",
            file=sys.stderr,
        )
        return 1
    ports = {s.name: s.port + args.port_offset for s in topology.SERVICES}
    store_ports = (4318 + args.port_offset, 16686 + args.port_offset)
    outside = sorted(p for p in [*ports.values(), *store_ports] if not 0 < p < 65536)
    if outside:
        print(
            f"o11ykit app up: --port-offset {args.port_offset} moves port(s) {outside} "
            "outside 1-65535; accepted: an offset that keeps 4318-16686 inside",
            file=sys.stderr,
        )
        return 2
    config = stack.StackConfig(
        data_dir=directory,
        database_url=args.database_url,
        backend=backend,
        ports={} if args.free_ports else ports,
        free_ports=args.free_ports,
        store_ports=store_ports,
        die_with_parent=args.foreground,
    )
    running = stack.Stack(config)
    with _stop_signals_interrupt():
        failed = _start(running, args)
    if failed is not None or not args.foreground:
        return failed or 0
    return _stay_attached(running)


def _chosen_backend(args: argparse.Namespace) -> str | None:
    """--backend, else the shell's O11YKIT_BACKEND, else local; None (said why) when the
    variable names no backend."""
    if args.backend is not None:
        return args.backend
    given = os.environ.get("O11YKIT_BACKEND", "").strip()
    if not given:
        return "local"
    try:
        return _backend(given)
    except argparse.ArgumentTypeError as exc:
        print(f"o11ykit app up: O11YKIT_BACKEND {exc} (or give --backend)", file=sys.stderr)
        return None


def _start(running: Any, args: argparse.Namespace) -> int | None:
    """Start the stack and inject the faults asked for: None once up, else the exit code,
    everything started stopped."""
    from o11ykit.faults import cli as fault_cli
    from sample_app.control import StackFaults

    up = False
    try:
        started = time.perf_counter()
        running.start(progress=print)
        up = True
        # Audited as `o11ykit fault inject` would be: the person who ran the command.
        faults = StackFaults.from_state(running.state(), actor=fault_cli.default_actor())
        for fault_id in args.fault:
            faults.inject(fault_id)
        _print_where(running.state(), time.perf_counter() - started)
    except KeyboardInterrupt:
        # Anywhere up to here, not only in the wait below: a Ctrl-C between the stack
        # coming up and the wait was lost, and the foreground run never ended.
        running.stop()
        if up and args.foreground:
            return 0  # stopping everything is what Ctrl-C in the foreground is for
        print("interrupted: everything started was stopped", file=sys.stderr)
        return 130
    except Exception as exc:
        running.stop()
        print(f"o11ykit app up: {exc}", file=sys.stderr)
        return 1
    return None


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP raise Stopped inside, so that each stops what `up` started:
    a detached stack's processes run in sessions of their own and would outlive `up`
    untracked, its state file not yet written. After the first, they are ignored until the
    block is done, so that nothing interrupts the stopping. A signal whoever started `up`
    ignores (nohup's SIGHUP, a background job's SIGINT) stays ignored."""

    def interrupt(*_: object) -> None:
        for number in taken:
            signal.signal(number, signal.SIG_IGN)
        raise Stopped

    if threading.current_thread() is not threading.main_thread():
        yield  # Python accepts signal handlers from the main thread only
        return
    taken = [n for n in STOP_SIGNALS if signal.getsignal(n) is not signal.SIG_IGN]
    previous = {number: signal.signal(number, interrupt) for number in taken}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _stay_attached(running: Any) -> int:
    """Until a stop signal or a service's exit, then everything stopped: with the signals
    handled as while starting, a second Ctrl-C does not cut the stopping short."""
    with _stop_signals_interrupt():
        try:
            print("running in the foreground: Ctrl-C stops everything")
            while all(e.process.poll() is None for e in running.services.values()):
                time.sleep(0.5)
            print("a service exited; stopping the others", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            running.stop()


def _print_where(state: dict, seconds: float) -> None:
    print(f"the sample system is up ({seconds:.1f} s):")
    for name, info in state["services"].items():
        print(f"  {name:<15} {info['url']}")
    if state.get("query_url"):
        print(f"  {'trace store':<15} {state['query_url']}  (Jaeger API v3; `o11ykit traces`)")
        print(f"  {'OTLP in':<15} {state['traces_url']}")
    print(f"  {'data':<15} {state['data_dir']}")
    print("send traffic: o11ykit app traffic --duration 60   stop: o11ykit app down")


def _any_alive(state: dict) -> bool:
    from sample_app.stack import recorded_processes

    return bool(recorded_processes(state))


def _read_state(directory: Path) -> dict | None:
    """The stack's state in `directory`; one line and exit 1 when it cannot be a directory
    (--data-dir or $O11YKIT_APP_DIR naming a file)."""
    from sample_app import stack

    try:
        return stack.read_state(directory)
    except OSError as exc:
        sys.exit(f"o11ykit app: cannot use {directory} as the data directory: {exc.strerror}")


def _state_or_exit(args: argparse.Namespace) -> dict:
    state = _read_state(data_dir(args))
    if state is None:
        sys.exit(NOT_RUNNING)
    return state


def _down(args: argparse.Namespace) -> int:
    from sample_app import stack

    state = _read_state(data_dir(args))
    if state is None:
        print("nothing to stop: the sample system is not running here")
        return 0
    stopped = stack.stop_from_state(state)
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    import httpx

    from sample_app.control import StackFaults

    state = _state_or_exit(args)
    report: dict[str, Any] = {"services": {}, "faults": {}}
    with httpx.Client(timeout=2.0) as client:
        for name, info in state["services"].items():
            try:
                healthy = client.get(f"{info['url']}/health").status_code == 200
            except httpx.TransportError:
                healthy = False
            report["services"][name] = {"url": info["url"], "healthy": healthy}
    try:
        report["faults"] = StackFaults.from_state(state).status()
    except Exception as exc:  # a service down: its faults are unknown, say so
        report["faults_error"] = str(exc)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, info in report["services"].items():
            faults = ", ".join(
                f["id"] + (" (fixed)" if f.get("fixed") else "")
                for f in report["faults"].get(name, [])
            )
            mark = "healthy" if info["healthy"] else "NOT ANSWERING"
            print(f"  {name:<15} {info['url']:<24} {mark:<14} {faults}")
        if state.get("query_url"):  # where `o11ykit traces --url` and the labs' looks go
            print(f"  {'trace store':<15} {state['query_url']}")
    return 0 if all(i["healthy"] for i in report["services"].values()) else 1


def _traffic(args: argparse.Namespace) -> int:
    import asyncio

    from sample_app.traffic import config_from_args
    from sample_app.traffic.cli import until_signalled

    if args.url is None:  # the running stack's gateway, wherever its ports are
        args.url = _state_or_exit(args)["services"]["gateway"]["url"]
    config = config_from_args(args, args.traffic_parser)
    summary = asyncio.run(until_signalled(config))
    print(json.dumps(summary.as_dict(), indent=2))
    return 0 if summary.total > summary.transport_errors else 1


# ---- fault, by catalogue id ------------------------------------------------------------------


def catalogue_mode(args: argparse.Namespace) -> int | None:
    """`o11ykit fault ...` without --url: the catalogue, on the stack `app up` started."""
    from o11ykit.faults import FaultAdminError, FaultSpecError
    from o11ykit.faults import cli as fault_cli
    from sample_app import stack
    from sample_app.control import StackFaults

    command = args.fault_command
    if command == "list":
        return _list_catalogue(args)
    if command == "show":
        return _show_catalogue(args.fault_id)
    if command not in _ON_THE_STACK:
        return None
    directory = data_dir(args)
    state = _read_state(directory)
    if state is None:
        print(
            f"o11ykit fault: no sample system runs from {directory} (no {stack.STATE_FILE} "
            f"there): name the directory `app up` used with --data-dir or ${DIR_VARIABLE}, "
            "start it with `o11ykit app up`, or give --url and --token for another service",
            file=sys.stderr,
        )
        return fault_cli.BAD_SPEC
    # The same default as the generic mode: the drill's timeline names who did what.
    faults = StackFaults.from_state(state, actor=args.actor or fault_cli.default_actor())
    try:
        return _ON_THE_STACK[command](faults, args)
    except (KeyError, FaultSpecError) as exc:
        print(f"o11ykit fault: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return fault_cli.BAD_SPEC
    except fault_cli.CliError as exc:
        print(f"o11ykit fault: {exc}", file=sys.stderr)
        return exc.status
    except FaultAdminError as exc:
        print(f"o11ykit fault: {exc}", file=sys.stderr)
        return fault_cli.BAD_SPEC if exc.refused_input else fault_cli.FAILED


def _inject(faults: Any, args: argparse.Namespace) -> int:
    from sample_app.faults import catalogue

    fault_id = args.name or args.fault_id
    if not fault_id:
        print(
            f"o11ykit fault inject: give a catalogue id (one of: {', '.join(catalogue.BY_ID)})",
            file=sys.stderr,
        )
        return 2
    spec = faults.inject(fault_id, _overrides(args))
    print(
        f"injected {fault_id} into {', '.join(catalogue.get(fault_id).services)}: "
        f"{json.dumps(spec['scope']) if spec['scope'] else 'everyone'}"
    )
    return 0


def _fix(faults: Any, args: argparse.Namespace) -> int:
    faults.fix(args.fault_id, not args.undo)
    print(f"{'unfixed' if args.undo else 'fixed'} {args.fault_id}")
    return 0


def _clear(faults: Any, args: argparse.Namespace) -> int:
    # A fault named but not injected is the services' 404, as with `fix` and with the
    # generic mode's `clear ID`; clearing every fault when none is there is no mistake.
    cleared = faults.clear(args.fault_id, missing_ok=False)
    print(f"cleared {', '.join(cleared)}" if cleared else "nothing to clear")
    return 0


def _fault_status(faults: Any, args: argparse.Namespace) -> int:
    print(json.dumps(faults.status(), indent=2))
    return 0


def _audit(faults: Any, args: argparse.Namespace) -> int:
    from o11ykit.faults.cli import describe_audit

    for entry in faults.audit():
        print(f"{describe_audit(entry)}  in {entry['service']}")
    return 0


_ON_THE_STACK = {
    "inject": _inject,
    "fix": _fix,
    "clear": _clear,
    "status": _fault_status,
    "audit": _audit,
}


def _overrides(args: argparse.Namespace) -> Any:
    from o11ykit.faults.cli import parse_params
    from sample_app.control import Overrides

    params = {key: _number(value) for key, value in parse_params(args.param).items()}
    return Overrides(
        tenants=args.tenant,
        users=args.user,
        routes=args.route,
        versions=args.version,
        percent=args.percent,
        seed=args.seed,
        onset_s=args.onset,
        ramp_s=args.ramp,
        params=params,
        fixed=args.fixed,
    )


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _list_catalogue(args: argparse.Namespace) -> int:
    from sample_app.faults import catalogue

    if getattr(args, "json", False):
        print(
            json.dumps(
                [
                    {"id": f.id, "class": f.fault_class, "title": f.title, "services": f.services}
                    for f in catalogue.FAULTS
                ],
                indent=2,
            )
        )
        return 0
    for fault in catalogue.FAULTS:
        print(f"  {fault.id:<16} {fault.fault_class:<32} {fault.title}")
    return 0


def _show_catalogue(fault_id: str) -> int:
    from sample_app.faults import catalogue

    try:
        fault = catalogue.get(fault_id)
    except KeyError as exc:
        print(f"o11ykit fault: {exc.args[0]}", file=sys.stderr)
        return 2
    print(f"{fault.id}: {fault.title} ({fault.fault_class})\n")
    print(f"story:      {fault.story}\nmechanism:  {fault.mechanism}\nfix switch: {fault.fix}")
    print(f"services:   {', '.join(fault.services)}\nscope:      {fault.scope or 'everyone'}")
    return 0


def _register_fault_mode() -> None:
    from o11ykit.faults import cli as fault_cli

    fault_cli.MODES.append(catalogue_mode)


# Once, when o11ykit's command first loads this module.
_register_fault_mode()
