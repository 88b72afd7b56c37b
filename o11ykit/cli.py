"""The `o11ykit` command. Subcommands import what they need when they run."""

from __future__ import annotations

import argparse
import importlib
import sys

from o11ykit import argtypes


def _doctor(args: argparse.Namespace) -> int:
    from o11ykit import doctor

    arguments = {
        k: v
        for k, v in {
            "service_name": args.service_name,
            "backend": args.backend,
            "endpoint": args.endpoint,
            "protocol": args.protocol,
            "query_url": args.query_url,
        }.items()
        if v is not None
    }
    return doctor.main(arguments, sys.stdout)


def _store_serve(args: argparse.Namespace) -> int:
    from o11ykit.store import server

    return server.serve(args)


def _add_store(commands: argparse._SubParsersAction) -> None:
    store = commands.add_parser("store", help="the embedded local trace store")
    actions = store.add_subparsers(dest="store_command", required=True, metavar="COMMAND")
    serve = actions.add_parser(
        "serve",
        help="receive OTLP (HTTP 4318, gRPC 4317) and answer Jaeger API v3 (16686)",
        description=(
            "Start the local trace store: OTLP receivers (HTTP and gRPC) and a Jaeger API v3 "
            "query server, listening on loopback only unless --listen-all or --host says "
            "otherwise. Spans go to traces.db, one SQLite database in WAL mode in --dir, "
            "through an ingest log beside it. Retention is unlimited unless --max-spans or "
            "--max-age is given. Stop it with Ctrl-C or SIGTERM: it writes what it "
            "acknowledged first."
        ),
    )
    serve.add_argument(
        "--dir", dest="directory", metavar="DIR", help="data directory (./.o11ykit/store)"
    )
    serve.add_argument(
        "--host", metavar="ADDR", help="listen here (127.0.0.1); overrides --listen-all"
    )
    serve.add_argument(
        "--otlp-http-port", type=argtypes.port, metavar="PORT", help="OTLP/HTTP (4318; 0: any free)"
    )
    serve.add_argument(
        "--otlp-grpc-port", type=argtypes.port, metavar="PORT", help="OTLP/gRPC (4317; 0: any free)"
    )
    serve.add_argument("--no-grpc", action="store_true", help="serve OTLP over HTTP only")
    serve.add_argument(
        "--query-port",
        type=argtypes.port,
        metavar="PORT",
        help="Jaeger API v3 (16686; 0: any free)",
    )
    serve.add_argument(
        "--max-spans", type=argtypes.positive, metavar="N", help="keep ~N spans, evict the oldest"
    )
    serve.add_argument(
        "--max-age",
        type=argtypes.max_age,
        metavar="AGE",
        help="evict spans older than AGE (seconds, or 24h)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=argtypes.positive,
        metavar="N",
        help="largest OTLP request (16 MiB)",
    )
    serve.add_argument(
        "--listen-all", action="store_true", help="listen on 0.0.0.0, not only loopback"
    )
    # For spawn_store(): where to write the real ports, and to die with the parent.
    serve.add_argument("--ready-file", help=argparse.SUPPRESS)
    serve.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(run=_store_serve)


def _add_traces(commands: argparse._SubParsersAction) -> None:
    try:
        from o11ykit import traces_cli
    except ImportError as missing:  # Rich comes with the workshop extra
        reason = f"o11ykit traces needs {missing.name}: pip install 'o11ykit[workshop]'"
        traces = commands.add_parser("traces", help="search, show and break down traces")
        traces.set_defaults(run=lambda args: sys.exit(reason))
        return
    traces_cli.register(commands)


def _add_workshop(commands: argparse._SubParsersAction) -> None:
    """The sample system's and the labs' commands, which ship with the workshop tooling."""
    for module, name in (
        ("sample_app.cli", "app"),
        ("labs.cli", "lab"),
        ("labs.drills.cli", "drill"),
    ):
        try:
            plugin = importlib.import_module(module)
        except ImportError as missing:
            reason = f"o11ykit {name} needs {missing.name}: pip install 'o11ykit[workshop]'"
            commands.add_parser(name, help=f"(unavailable: {reason})").set_defaults(
                run=lambda args, reason=reason: sys.exit(reason)
            )
            continue
        plugin.register(commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="o11ykit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    doctor = commands.add_parser(
        "doctor", help="show effective settings and send a test span to the backend"
    )
    doctor.add_argument("--backend", help="otlp, jaeger, honeycomb, console, local or none")
    doctor.add_argument("--endpoint", help="OTLP endpoint URL")
    doctor.add_argument("--protocol", help="http/protobuf or grpc")
    doctor.add_argument("--service-name", dest="service_name")
    doctor.add_argument(
        "--query-url",
        type=argtypes.query_url,
        help="where to read the test span back: the store's or Jaeger's query port"
        " (http://127.0.0.1:16686)",
    )
    doctor.set_defaults(run=_doctor)
    _add_store(commands)
    _add_traces(commands)
    from o11ykit.faults.cli import register as add_fault_commands  # here: imported lazily

    add_fault_commands(commands)
    _add_workshop(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["store"]:  # the store starts without importing the other commands
        return store_main(argv)
    args = _parse(build_parser(), argv)
    return _run(args)


def store_main(argv: list[str]) -> int:
    """`o11ykit store ...` and `python -m o11ykit.store ...`: the store's commands alone.
    Building every command imports Rich, the labs and the sample system: a store took 0.37
    instead of 0.21 s to be ready (median of 12 alternating starts, 2026-12-06)."""
    parser = argparse.ArgumentParser(prog="o11ykit")
    _add_store(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = _parse(parser, argv)
    return _run(args)


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse argv, an argument no option takes refused by the command it was given to:
    argparse leaves those to the top parser, whose usage line names no command's options
    ("usage: o11ykit [-h] COMMAND ..." after `o11ykit traces search --bogus`)."""
    _name_each_parser(parser)
    args, unrecognized = parser.parse_known_args(argv)
    if unrecognized:
        args.command_parser.error(f"unrecognized arguments: {' '.join(unrecognized)}")
    return args


def _name_each_parser(parser: argparse.ArgumentParser) -> None:
    """Each parser in the tree sets command_parser to itself: the deepest one a command line
    reaches parses last, so its value is the one the namespace keeps."""
    parser.set_defaults(command_parser=parser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _name_each_parser(subparser)


def _run(args: argparse.Namespace) -> int:
    try:
        return args.run(args)
    except KeyboardInterrupt:  # Ctrl-C where the command has no handler of its own
        print("o11ykit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
