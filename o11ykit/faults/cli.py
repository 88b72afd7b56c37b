"""`o11ykit fault`: list, show, inject, fix and clear faults in a service, over its admin API.

This is the generic mode: any service, named by --url and --token. Without --url, a whole
mode (the sample system's catalogue, in MODES) answers first, then TARGET_RESOLVERS find
the target; such a mode can reuse the argument pieces below, add options of its own to
each subcommand (subcommands()) and report as the generic mode does (describe_audit()).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from o11ykit.faults.client import FaultAdminError, FaultClient

TOKEN_VARIABLE = "O11YKIT_FAULTS_TOKEN"
NO_TARGET = "give --url and --token (or run `o11ykit app up` for the sample system)"
# Each takes the parsed arguments and returns (url, token), or None to pass.
TARGET_RESOLVERS: list[Callable[[argparse.Namespace], tuple[str, str] | None]] = []
# Whole modes for commands given without --url (the sample system's catalogue): each
# returns an exit status, or None when it does not apply.
MODES: list[Callable[[argparse.Namespace], int | None]] = []
BAD_SPEC = 2  # exit status: the spec (or the command line) was refused, nothing changed
FAILED = 1


class CliError(Exception):
    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


def register(commands: argparse._SubParsersAction) -> None:
    fault = commands.add_parser("fault", help="inject, fix and clear faults for incident drills")
    add_arguments(fault)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The subcommands of the generic mode, onto `parser` (the `fault` command)."""
    target = argparse.ArgumentParser(add_help=False)
    add_target_arguments(target)
    actions = parser.add_subparsers(dest="fault_command", required=True, metavar="COMMAND")
    listing = actions.add_parser("list", parents=[target], help="the faults injected")
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = actions.add_parser("show", parents=[target], help="one fault, as JSON")
    show.add_argument("fault_id", metavar="ID")
    inject = actions.add_parser("inject", parents=[target], help="inject (or replace) a fault")
    add_inject_arguments(inject)
    fix = actions.add_parser("fix", parents=[target], help="turn a fault's fix switch on")
    fix.add_argument("fault_id", metavar="ID")
    fix.add_argument("--undo", action="store_true", help="turn the fix switch off again")
    clear = actions.add_parser("clear", parents=[target], help="remove one fault, or all")
    clear.add_argument("fault_id", metavar="ID", nargs="?")
    actions.add_parser("status", parents=[target], help="is the admin API there, what is on")
    actions.add_parser("audit", parents=[target], help="who injected, fixed, cleared what")
    parser.set_defaults(run=run)


def subcommands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The subcommands add_arguments put onto `parser`: where a mode adds its own options
    (the sample system's --data-dir)."""
    return [
        command
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for command in action.choices.values()
    ]


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the service's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", help=f"the admin API's bearer token (or ${TOKEN_VARIABLE})")
    parser.add_argument("--actor", help="your name in the audit log")


def add_inject_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", nargs="?", metavar="ID", help="the fault's id (a catalogue id on the sample system)"
    )
    parser.add_argument("--spec", metavar="FILE", help="a JSON spec file, or - for stdin")
    parser.add_argument("--kind", help="latency, error, exception, timeout, pool_hold, ...")
    parser.add_argument("--id", dest="fault_id", help="the fault's id (default: the kind)")
    parser.add_argument("--param", action="append", default=[], metavar="K=V", help="repeatable")
    parser.add_argument("--tenant", action="append", default=[], help="repeatable")
    parser.add_argument("--user", action="append", default=[], help="repeatable")
    parser.add_argument("--route", action="append", default=[], help="path prefix or glob")
    parser.add_argument("--version", action="append", default=[], help="service.version")
    parser.add_argument("--percent", type=float, help="share of matching requests, 0-100")
    parser.add_argument("--seed", type=int, help="seed of the percent draw")
    parser.add_argument("--onset", type=float, help="seconds before the fault starts")
    parser.add_argument("--ramp", type=float, help="seconds over which it grows to full")
    parser.add_argument("--fixed", action="store_true", help="inject with the fix switch on")


def resolve_target(args: argparse.Namespace) -> tuple[str, str]:
    """(url, token) for a command given without --url: the first resolver that knows."""
    for resolver in TARGET_RESOLVERS:
        found = resolver(args)
        if found is not None:
            return found
    raise CliError(NO_TARGET, BAD_SPEC)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if not args.url:
        for mode in MODES:
            status = mode(args)
            if status is not None:
                return status
    try:
        client = _client(args)
        return _COMMANDS[args.fault_command](client, args, out)
    except CliError as exc:
        print(f"o11ykit fault: {exc}", file=sys.stderr)
        return exc.status
    except FaultAdminError as exc:
        print(f"o11ykit fault: {exc}", file=sys.stderr)
        return BAD_SPEC if exc.refused_input else FAILED


def _client(args: argparse.Namespace) -> FaultClient:
    if not args.url:
        url, token = resolve_target(args)
    else:
        url, token = args.url, args.token or os.environ.get(TOKEN_VARIABLE, "")
        if not token:
            raise CliError(f"give --token (or set {TOKEN_VARIABLE})", BAD_SPEC)
    return FaultClient(url, token, actor=args.actor or default_actor())


def default_actor() -> str:
    """Who the audit log names when --actor is not given."""
    return f"cli:{os.environ.get('USER') or os.environ.get('USERNAME') or 'unknown'}"


def build_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The spec dict from --spec and the flags (flags win); the server validates it."""
    spec: dict[str, Any] = _read_spec(args.spec) if args.spec else {}
    if args.kind:
        spec["kind"] = args.kind
    if "kind" not in spec:
        raise CliError("give --kind (or --spec FILE)", BAD_SPEC)
    if args.fault_id or args.name:
        spec["id"] = args.fault_id or args.name
    spec.setdefault("id", str(spec["kind"]).replace("_", "-"))
    if args.param:
        spec["params"] = {**spec.get("params", {}), **parse_params(args.param)}
    scope = dict(spec.get("scope", {}))
    for field, values in (
        ("tenants", args.tenant),
        ("users", args.user),
        ("routes", args.route),
        ("versions", args.version),
    ):
        if values:
            scope[field] = values
    for field, value in (
        ("percent", args.percent),
        ("seed", args.seed),
        ("onset_s", args.onset),
        ("ramp_s", args.ramp),
    ):
        if value is not None:
            scope[field] = value
    if scope:
        spec["scope"] = scope
    if args.fixed:
        spec["fixed"] = True
    return spec


def _read_spec(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read the spec {source}: {exc}", BAD_SPEC) from None
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise CliError(f"the spec {source} is not JSON: {exc}", BAD_SPEC) from None
    if not isinstance(spec, dict):
        raise CliError(f"the spec {source} is not a JSON object", BAD_SPEC)
    return spec


def parse_params(pairs: list[str]) -> dict[str, str]:
    """--param NAME=VALUE pairs, as text; CliError names the first pair without a name."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--param {pair!r}: accepted: NAME=VALUE, e.g. ms=300", BAD_SPEC)
        # Sent as text: the service knows each param's type and converts it.
        params[key.strip()] = value.strip()
    return params


# -- the subcommands ----------------------------------------------------------------------


def _list(client: FaultClient, args: argparse.Namespace, out: TextIO) -> int:
    faults = client.list()
    if args.json:
        print(json.dumps(faults, indent=2), file=out)
    elif not faults:
        print("no faults injected", file=out)
    else:
        for fault in faults:
            print(describe(fault), file=out)
    return 0


def describe(fault: dict[str, Any]) -> str:
    """One line per fault: id, kind, switch, params, the parts of the scope that narrow it."""
    scope = fault.get("scope", {})
    narrowed = [
        f"{name}={','.join(map(str, value))}"
        for name, value in scope.items()
        if isinstance(value, list) and value
    ]
    defaults = {"percent": 100.0, "seed": 0, "onset_s": 0.0, "ramp_s": 0.0}
    narrowed += [
        f"{name}={scope[name]:g}"
        for name, default in defaults.items()
        if name in scope and scope[name] != default
    ]
    params = " ".join(f"{k}={v}" for k, v in fault.get("params", {}).items())
    switch = "FIXED" if fault.get("fixed") else "broken"
    parts = [fault["id"], fault["kind"], switch, params, " ".join(narrowed) or "everyone"]
    parts.append(f"since {fault.get('injected_at', '?')}")
    return "  ".join(part for part in parts if part)


def _show(client: FaultClient, args: argparse.Namespace, out: TextIO) -> int:
    print(json.dumps(client.get(args.fault_id), indent=2), file=out)
    return 0


def _inject(client: FaultClient, args: argparse.Namespace, out: TextIO) -> int:
    fault = client.inject(build_spec(args))
    print(f"injected {describe(fault)}", file=out)
    return 0


def _fix(client: FaultClient, args: argparse.Namespace, out: TextIO) -> int:
    fault = client.fix(args.fault_id, not args.undo)
    print(f"{'unfixed' if args.undo else 'fixed'} {describe(fault)}", file=out)
    return 0


def _clear(client: FaultClient, args: argparse.Namespace, out: TextIO) -> int:
    cleared = client.clear(args.fault_id)
    print(f"cleared {', '.join(cleared)}" if cleared else "nothing to clear", file=out)
    return 0


def _status(client: FaultClient, args: argparse.Namespace, out: TextIO) -> int:
    overview = client.overview()
    faults = overview["faults"]
    fixed = sum(1 for fault in faults if fault.get("fixed"))
    print(f"fault admin API at {client.base_url}: reachable", file=out)
    print(f"{len(faults)} fault(s) injected, {fixed} of them fixed", file=out)
    kinds = [
        name + (" (unavailable)" if kind.get("unavailable") else "")
        for name, kind in overview["kinds"].items()
    ]
    print(f"kinds: {', '.join(kinds)}", file=out)
    return 0


def _audit(client: FaultClient, args: argparse.Namespace, out: TextIO) -> int:
    for entry in client.audit():
        print(describe_audit(entry), file=out)
    return 0


def describe_audit(entry: dict[str, Any]) -> str:
    """One line per audit entry: when, what was done to which fault, by whom."""
    return f"{entry['time']}  {entry['action']:<6}  {entry['fault']}  by {entry['actor']}"


_COMMANDS: dict[str, Callable[[FaultClient, argparse.Namespace, TextIO], int]] = {
    "list": _list,
    "show": _show,
    "inject": _inject,
    "fix": _fix,
    "clear": _clear,
    "status": _status,
    "audit": _audit,
}
