"""Faults in a real service: tests/support/faults_app.py under uvicorn, on a free loopback port.

Faults are injected over the admin API (FaultClient and the `o11ykit fault` command), the
effects measured with real requests, and the service's spans read back from a real OTLP
receiver: they must show slow and failing requests and nothing that names a fault.
Timing bounds are wide on purpose: this machine is shared and slow.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from o11ykit import cli
from o11ykit.faults import FaultAdminError, FaultClient
from tests.conftest import free_port
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import (
    child_environment,
    start_uvicorn,
    stop_process,
    wait_until_http_ready,
)

# serial: requests must answer within fixed times while a fault holds others.
pytestmark = [pytest.mark.integration, pytest.mark.serial]

TOKEN = "drill-token-2718"
READY_TIMEOUT = 30.0
POOL_TIMEOUT_S = 1.0  # tests/support/faults_app.py
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Shop:
    url: str
    process: subprocess.Popen[bytes]
    output_file: Path
    audit_file: Path
    receiver: OtlpReceiver

    def output(self) -> str:
        return self.output_file.read_text(encoding="utf-8", errors="replace")[-3000:]


def request(
    url: str, tenant: str | None = None, headers: Mapping[str, str] | None = None
) -> tuple[int, float]:
    """(status, seconds) of one GET; 4xx and 5xx are answers here, not errors."""
    sent = {**({"X-Tenant-ID": tenant} if tenant else {}), **(headers or {})}
    started = time.monotonic()
    try:
        with _OPENER.open(urllib.request.Request(url, headers=sent), timeout=30) as answer:
            answer.read()
            status = answer.status
    except urllib.error.HTTPError as exc:
        exc.read()
        status = exc.code
    return status, time.monotonic() - started


def start_shop(directory: Path, receiver: OtlpReceiver) -> Shop:
    port = free_port()
    audit_file = directory / "audit.jsonl"
    output_file = directory / "shop.out"
    environment = child_environment(
        {
            "SHOP_DB": str(directory / "shop.db"),
            "O11YKIT_ENDPOINT": receiver.http_endpoint,
            "O11YKIT_SCHEDULE_DELAY": "0.1",
            "O11YKIT_ENVIRONMENT": "staging",
            "O11YKIT_FAULTS": "true",
            "O11YKIT_FAULTS_TOKEN": TOKEN,
            "O11YKIT_FAULTS_AUDIT_FILE": str(audit_file),
        },
        not_inherited=("O11YKIT_", "OTEL_", "SHOP_"),
    )
    process = start_uvicorn("tests.support.faults_app:app", port, environment, output_file)
    return Shop(f"http://127.0.0.1:{port}", process, output_file, audit_file, receiver)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    directory = tmp_path_factory.mktemp("shop")
    with contextlib.ExitStack() as stack:
        receiver = stack.enter_context(OtlpReceiver(directory))
        running = start_shop(directory, receiver)
        stack.callback(stop_process, running.process)
        health = f"{running.url}/health"
        wait_until_http_ready(health, running.process, READY_TIMEOUT, running.output)
        yield running


@pytest.fixture
def admin(shop: Shop) -> Iterator[FaultClient]:
    client = FaultClient(shop.url, TOKEN, timeout=10.0, actor="pytest")
    try:
        yield client
    finally:
        client.clear()


def fault_cli(shop: Shop, *arguments: str) -> int:
    return cli.main(["fault", *arguments, "--url", shop.url, "--token", TOKEN])


# -- the admin API ---------------------------------------------------------------------------


def test_the_admin_api_needs_the_token(shop, admin):
    with pytest.raises(FaultAdminError) as wrong:
        FaultClient(shop.url, "not-the-token").list()
    assert wrong.value.status == 401 and "Bearer" in str(wrong.value)
    assert request(f"{shop.url}/_o11ykit/faults")[0] == 401
    assert admin.list() == []


def test_a_bad_spec_is_refused_with_its_message_and_changes_nothing(shop, admin, capsys):
    admin.inject({"id": "slow-q1", "kind": "latency", "params": {"ms": 1}})
    before = admin.list()
    with pytest.raises(FaultAdminError) as refused:
        admin.inject({"id": "slow-q1", "kind": "latency", "params": {"ms": -3}})
    assert refused.value.status == 400
    assert "params.ms" in str(refused.value) and "0 to 600000" in str(refused.value)
    assert (
        fault_cli(shop, "inject", "--kind", "latency", "--id", "slow-q1", "--percent", "300") == 2
    )
    assert "scope.percent" in capsys.readouterr().err
    assert fault_cli(shop, "inject", "--kind", "nope") == 2
    assert "accepted: latency, error, exception, timeout, pool_hold" in capsys.readouterr().err
    assert admin.list() == before


# -- the generic kinds -----------------------------------------------------------------------


def test_latency_slows_only_that_tenant_on_that_route(shop, admin, capsys):
    injected = fault_cli(
        shop, "inject", "--kind", "latency", "--id", "slow-q2",
        "--tenant", "acme", "--route", "/api/orders", "--param", "ms=800",
    )  # fmt: skip
    assert injected == 0, capsys.readouterr().err
    assert "slow-q2" in capsys.readouterr().out
    status, slow = request(f"{shop.url}/api/orders", "acme")
    assert status == 200 and slow >= 0.8
    for path, tenant in (("/api/orders", "globex"), ("/api/products/SKU-1", "acme")):
        status, took = request(f"{shop.url}{path}", tenant)
        assert status == 200 and took < 0.8, (path, tenant, took)


def test_error_answers_5xx_for_the_scope_only(shop, admin):
    admin.inject(
        {
            "id": "down-q3",
            "kind": "error",
            "params": {"status": 502},
            "scope": {"tenants": ["acme"]},
        }
    )
    assert request(f"{shop.url}/api/orders", "acme")[0] == 502
    assert request(f"{shop.url}/api/products/SKU-1", "acme")[0] == 502
    assert request(f"{shop.url}/api/orders", "globex")[0] == 200
    assert request(f"{shop.url}/api/orders")[0] == 200


def test_timeout_hangs_then_answers_504(shop, admin):
    admin.inject(
        {
            "id": "hang-q4",
            "kind": "timeout",
            "params": {"after_s": 1},
            "scope": {"routes": ["/api/orders"]},
        }
    )
    status, took = request(f"{shop.url}/api/orders", "globex")
    assert status == 504 and took >= 1.0
    assert request(f"{shop.url}/api/products/SKU-1", "globex")[0] == 200


def test_exception_fails_the_request_like_a_bug(shop, admin):
    admin.inject({"id": "boom-q5", "kind": "exception", "scope": {"routes": ["/api/products/*"]}})
    assert request(f"{shop.url}/api/products/SKU-1", "acme")[0] == 500
    assert request(f"{shop.url}/api/orders", "acme")[0] == 200


def test_pool_hold_exhausts_the_pool_until_fixed_then_cleared(shop, admin, capsys):
    admin.inject(
        {
            "id": "leak-q6",
            "kind": "pool_hold",
            "params": {"connections": 2, "hold_s": 60},
            "scope": {"tenants": ["acme"], "routes": ["/api/orders"]},
        }
    )
    # acme's request keeps both connections, then waits for one itself and times out.
    status, took = request(f"{shop.url}/api/orders", "acme")
    assert status == 500 and took >= POOL_TIMEOUT_S * 0.9
    # Everyone else suffers the leak too: the pool stays exhausted.
    status, took = request(f"{shop.url}/api/products/SKU-1", "globex")
    assert status == 500 and took >= POOL_TIMEOUT_S * 0.9
    # The fix gives the connections back at once; acme's requests no longer leak.
    assert fault_cli(shop, "fix", "leak-q6") == 0, capsys.readouterr().err
    for tenant, path in (("globex", "/api/products/SKU-1"), ("acme", "/api/orders")):
        status, took = request(f"{shop.url}{path}", tenant)
        assert status == 200 and took < POOL_TIMEOUT_S, (tenant, path, took)
    assert admin.list()[0]["fixed"] is True
    # Unfixed it leaks again; cleared, everything held is given back.
    assert fault_cli(shop, "fix", "leak-q6", "--undo") == 0
    assert request(f"{shop.url}/api/orders", "acme")[0] == 500
    assert fault_cli(shop, "clear", "leak-q6") == 0
    status, took = request(f"{shop.url}/api/products/SKU-1", "globex")
    assert status == 200 and took < POOL_TIMEOUT_S


def test_every_change_is_in_the_audit_file(shop, admin):
    admin.inject({"id": "audit-q7", "kind": "latency", "params": {"ms": 1}})
    admin.fix("audit-q7")
    admin.fix("audit-q7", False)
    admin.clear("audit-q7")
    lines = [json.loads(line) for line in shop.audit_file.read_text().splitlines()]
    assert lines == admin.audit()  # fewer than the in-memory limit: both hold everything
    mine = [(e["action"], e["actor"]) for e in lines if e["fault"] == "audit-q7"]
    assert mine == [
        ("inject", "pytest"),
        ("fix", "pytest"),
        ("unfix", "pytest"),
        ("clear", "pytest"),
    ]
    assert all(line["time"].endswith("Z") for line in lines)


def test_the_cli_lists_shows_and_reports(shop, admin, capsys):
    assert fault_cli(shop, "list") == 0
    assert capsys.readouterr().out.strip() == "no faults injected"
    admin.inject({"id": "cli-q8", "kind": "error", "scope": {"tenants": ["globex"]}})
    assert fault_cli(shop, "list") == 0
    assert capsys.readouterr().out.startswith("cli-q8  error  broken  tenants=globex  since ")
    assert fault_cli(shop, "show", "cli-q8") == 0
    assert json.loads(capsys.readouterr().out)["scope"]["tenants"] == ["globex"]
    assert fault_cli(shop, "status") == 0
    status = capsys.readouterr().out
    assert "1 fault(s) injected, 0 of them fixed" in status and "pool_hold" in status
    # An id nobody holds is the command's mistake, as in the catalogue mode: 2, not 1.
    for command in (["show", "ghost"], ["fix", "ghost"], ["clear", "ghost"]):
        assert fault_cli(shop, *command) == 2
        assert "no fault 'ghost' is injected" in capsys.readouterr().err
    assert fault_cli(shop, "audit") == 0
    assert "inject  cli-q8  by pytest" in capsys.readouterr().out
    assert fault_cli(shop, "clear") == 0
    assert capsys.readouterr().out.strip() == "cleared cli-q8"


# -- what the telemetry shows (last: it reads what every test above produced) ------------------


def test_no_exported_span_names_a_fault_or_shows_the_admin_api(shop, admin):
    injected_ids = {e["fault"] for e in admin.audit() if e["action"] == "inject"}
    assert len(injected_ids) >= 6
    marker = "/api/products/END-OF-MODULE"
    assert request(f"{shop.url}{marker}", "acme")[0] == 200

    def arrived(spans: list[dict]) -> bool:
        return any(s["attributes"].get("url.path") == marker for s in spans)

    spans = shop.receiver.wait_for_spans(arrived, timeout=15.0)
    server_spans = [s for s in spans if s["kind"] == "SERVER"]
    statuses = {s["attributes"].get("http.response.status_code") for s in server_spans}
    assert {200, 502, 504} <= statuses, statuses  # the faulted requests are there, failing
    assert any(s["attributes"].get("error.type") == "RuntimeError" for s in server_spans)
    assert any(s["attributes"].get("error.type") == "TimeoutError" for s in server_spans)
    # Failures answered before the endpoint ran still name its route, as the endpoint would.
    assert all("http.route" in s["attributes"] for s in server_spans), server_spans
    for span in spans:
        shown = json.dumps(span).lower()
        assert "fault" not in shown, shown
        assert not [i for i in injected_ids if i in shown], shown
        assert "/_o11ykit" not in shown, shown
    raw = shop.receiver.record_file.read_text(encoding="utf-8")
    assert "fault" not in raw.lower() and not [i for i in injected_ids if i in raw]
