"""The `o11ykit` command. Subcommands import what they need when they run."""

from __future__ import annotations

import argparse
import sys


def _doctor(args: argparse.Namespace) -> int:
    from o11ykit import doctor

    arguments = {
        k: v
        for k, v in {
            "service_name": args.service_name,
            "backend": args.backend,
            "endpoint": args.endpoint,
            "protocol": args.protocol,
        }.items()
        if v is not None
    }
    return doctor.main(arguments, sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="o11ykit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser(
        "doctor", help="show effective settings and send a test span to the backend"
    )
    doctor.add_argument("--backend", help="otlp, jaeger, honeycomb, console, local or none")
    doctor.add_argument("--endpoint", help="OTLP endpoint URL")
    doctor.add_argument("--protocol", help="http/protobuf or grpc")
    doctor.add_argument("--service-name", dest="service_name")
    doctor.set_defaults(run=_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
