"""`o11ykit fault` without a service: the spec it builds, where it finds its target."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from o11ykit import cli
from o11ykit.faults import cli as fault_cli


def parse(*argv: str):
    return cli.build_parser().parse_args(["fault", *argv])


def test_inject_flags_become_a_spec():
    args = parse(
        "inject", "--kind", "pool_hold", "--tenant", "acme", "--tenant", "globex",
        "--user", "u-1", "--route", "/api/orders", "--version", "2.0.0", "--percent", "50",
        "--seed", "3", "--onset", "10", "--ramp", "30", "--param", "connections=2",
        "--param", "hold_s=5", "--url", "http://127.0.0.1:1", "--token", "t",
    )  # fmt: skip
    assert fault_cli.build_spec(args) == {
        "id": "pool-hold",  # the kind, as an id
        "kind": "pool_hold",
        "params": {"connections": "2", "hold_s": "5"},  # typed by the service, which knows
        "scope": {
            "tenants": ["acme", "globex"],
            "users": ["u-1"],
            "routes": ["/api/orders"],
            "versions": ["2.0.0"],
            "percent": 50.0,
            "seed": 3,
            "onset_s": 10.0,
            "ramp_s": 30.0,
        },
    }


def test_a_spec_file_or_stdin_with_flags_on_top(tmp_path, monkeypatch):
    spec = {"id": "slow", "kind": "latency", "params": {"ms": 5}, "scope": {"percent": 10}}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    args = parse("inject", "--spec", str(path), "--param", "jitter_ms=2", "--tenant", "acme")
    assert fault_cli.build_spec(args) == {
        "id": "slow",
        "kind": "latency",
        "params": {"ms": 5, "jitter_ms": "2"},
        "scope": {"percent": 10, "tenants": ["acme"]},
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(spec)))
    assert fault_cli.build_spec(parse("inject", "--spec", "-", "--fixed"))["fixed"] is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inject", "--param", "ms=5"], "give --kind"),
        (["inject", "--kind", "latency", "--param", "ms"], "--param 'ms': accepted: NAME=VALUE"),
        (["inject", "--spec", "/nonexistent/spec.json"], "cannot read the spec"),
    ],
)
def test_a_bad_command_line_exits_2_before_sending_anything(argv, message, capsys):
    # Port 9 on loopback: nothing listens, so anything sent would fail with exit 1.
    assert cli.main(["fault", *argv, "--url", "http://127.0.0.1:9", "--token", "t"]) == 2
    assert message in capsys.readouterr().err


def test_a_spec_that_is_not_json_exits_2(tmp_path, capsys):
    path = tmp_path / "spec.json"
    path.write_text("{not json")
    assert cli.main(["fault", "inject", "--spec", str(path), "--url", "http://127.0.0.1:9"]) == 2
    # The token is checked first; with one, the spec is.
    assert "--token" in capsys.readouterr().err
    argv = ["fault", "inject", "--spec", str(path), "--url", "http://127.0.0.1:9", "--token", "t"]
    assert cli.main(argv) == 2
    assert "is not JSON" in capsys.readouterr().err


def test_without_url_the_resolvers_are_asked_and_by_default_none_knows(monkeypatch, capsys):
    # Without the sample system's catalogue mode, which answers `list` itself.
    monkeypatch.setattr(fault_cli, "MODES", [])
    monkeypatch.setattr(fault_cli, "TARGET_RESOLVERS", [])
    assert cli.main(["fault", "list"]) == 2
    assert fault_cli.NO_TARGET in capsys.readouterr().err
    asked = []

    def sample_app(args):
        asked.append(args.fault_command)
        return "http://127.0.0.1:9", "t"

    monkeypatch.setattr(fault_cli, "TARGET_RESOLVERS", [lambda args: None, sample_app])
    assert cli.main(["fault", "status"]) == 1  # resolved, then nobody answered on port 9
    assert asked == ["status"]
    assert "cannot reach http://127.0.0.1:9/_o11ykit/faults" in capsys.readouterr().err


def test_the_token_may_come_from_the_environment(monkeypatch, capsys):
    monkeypatch.delenv(fault_cli.TOKEN_VARIABLE, raising=False)
    assert cli.main(["fault", "list", "--url", "http://127.0.0.1:9"]) == 2
    assert "O11YKIT_FAULTS_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv(fault_cli.TOKEN_VARIABLE, "t")
    assert cli.main(["fault", "list", "--url", "http://127.0.0.1:9"]) == 1  # past the token


def test_a_service_without_the_admin_api_is_a_failure_not_a_missing_fault(capsys):
    # Its own 404 page, not the admin API's JSON "no fault ... is injected": exit 1.
    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"Not Found")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert cli.main(["fault", "show", "ghost", "--url", url, "--token", "t"]) == 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert "does not exist: is fault injection enabled there" in capsys.readouterr().err


def test_one_line_per_fault():
    line = fault_cli.describe(
        {
            "id": "slow",
            "kind": "latency",
            "params": {"ms": 300},
            "scope": {"tenants": ["acme"], "users": [], "percent": 25.0, "seed": 0},
            "fixed": False,
            "injected_at": "2026-11-22T10:00:00.000Z",
        }
    )
    assert (
        line
        == "slow  latency  broken  ms=300  tenants=acme percent=25  since 2026-11-22T10:00:00.000Z"
    )


def test_the_generic_mode_can_be_mounted_elsewhere():
    import argparse

    parser = argparse.ArgumentParser(prog="drill")
    fault_cli.add_arguments(parser)
    args = parser.parse_args(["fix", "slow", "--undo", "--url", "http://x", "--token", "t"])
    assert (args.fault_command, args.fault_id, args.undo, args.run) == (
        "fix",
        "slow",
        True,
        fault_cli.run,
    )
