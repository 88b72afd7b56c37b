"""A fake of Honeycomb's Query Data API, run as its own process, that records every request.

    python -m tests.support.honeycomb_fake --ready-file ready.json [--exit-with-parent]

It answers the three endpoints the way the API reference's examples show them
(https://docs.honeycomb.io/api/query-data/create-a-query-result, .../get-query-result and
https://docs.honeycomb.io/api/queries/create-a-query): a created query echoes its spec with
an `id` (200); a created query result is `{"query", "complete": false, "id", "links"}` (201,
with a Location header); polling returns `complete: false` a set number of times, then
`complete: true` with `data: {"series": [], "results": [{"data": {...}}]}`. Errors are
`{"error": "..."}`, Honeycomb's legacy error body. The wording of the 401 and 403 messages
is ours: the point is their status and shape, not their text.

Two control endpoints, outside Honeycomb's paths: `POST /_fake/scenario` chooses how it
behaves from now on (and forgets the requests recorded so far), `GET /_fake/requests` lists
them. Tests use :class:`HoneycombFake`, which starts the process and always stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from o11ykit.store.process import watch_parent, write_ready_file
from tests.support.processes import stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("ok", "no_query_data", "bad_key", "missing_dataset", "never_complete", "stall")
DEFAULT_ROWS = [
    {"data": {"tenant.id": "acme", "COUNT": 77}},
    {"data": {"tenant.id": "beta", "COUNT": 3}},
]
UI = "https://ui.honeycomb.io/fake-team/environments/fake-env/datasets"


class FakeState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.options: dict[str, Any] = {"name": "ok"}
        self.queries: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}

    def choose(self, options: dict[str, Any]) -> None:
        if options.get("name") not in SCENARIOS:
            raise ValueError(f"scenario must be one of {SCENARIOS}")
        with self.lock:
            self.options = options
            self.requests.clear()
            self.queries.clear()
            self.polls.clear()


class Handler(BaseHTTPRequestHandler):
    server_version = "honeycomb-fake"
    state: FakeState  # set on the class by serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test reads the record, not a log

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.startswith("/_fake/"):
            self._control(raw)
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = {"unparsed": raw.decode("utf-8", "replace")}
        with self.state.lock:
            self.state.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    # Lower-cased names: HTTP header names are case-insensitive.
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
            )
            options = dict(self.state.options)
        status, answer, extra = self._answer(options, body)
        self._send(status, answer, extra)

    def _answer(
        self, options: dict[str, Any], body: Any
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        scenario = options["name"]
        if scenario == "stall":
            time.sleep(float(options.get("stall_s", 5.0)))
        if not self.headers.get("X-Honeycomb-Team") or scenario == "bad_key":
            return 401, {"error": "unknown API key - check your credentials"}, {}
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["1", "queries"] and self.command == "POST":
            if scenario == "missing_dataset":
                return 404, {"error": "dataset not found"}, {}
            return 200, self._create_query(body), {}
        if len(parts) == 3 and parts[:2] == ["1", "query_results"] and self.command == "POST":
            if scenario == "no_query_data":
                message = options.get("forbidden_message", "your plan does not include this")
                return 403, {"error": message}, {}
            return self._create_result(parts[2], body)
        if len(parts) == 4 and parts[:2] == ["1", "query_results"] and self.command == "GET":
            return self._poll(parts[2], parts[3], options)
        return 404, {"error": f"no route {self.command} {self.path}"}, {}

    def _create_query(self, body: Any) -> dict[str, Any]:
        with self.state.lock:
            query_id = f"q{len(self.state.queries) + 1}"
            self.state.queries[query_id] = body if isinstance(body, dict) else {}
        return {"id": query_id, **self.state.queries[query_id]}

    def _create_result(self, dataset: str, body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        query_id = body.get("query_id") if isinstance(body, dict) else None
        with self.state.lock:
            query = self.state.queries.get(query_id)
            if query is None:
                return 400, {"error": "invalid Query data"}, {}
            result_id = f"r{len(self.state.polls) + 1}"
            self.state.polls[result_id] = 0
        answer = {
            "query": query,
            "complete": False,
            "id": result_id,
            "links": _links(dataset, result_id),
        }
        location = f"http://{self.headers.get('Host')}/1/query_results/{dataset}/{result_id}"
        return 201, answer, {"Location": location}

    def _poll(
        self, dataset: str, result_id: str, options: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.state.lock:
            if result_id not in self.state.polls:
                return 404, {"error": "query result not found"}, {}
            self.state.polls[result_id] += 1
            polls = self.state.polls[result_id]
        waiting = int(options.get("polls_before_complete", 1))
        answer: dict[str, Any] = {"id": result_id, "links": _links(dataset, result_id)}
        if options["name"] == "never_complete" or polls <= waiting:
            return 200, {**answer, "complete": False}, {}
        rows = options.get("rows", DEFAULT_ROWS)
        return 200, {**answer, "complete": True, "data": {"series": [], "results": rows}}, {}

    def _control(self, raw: bytes) -> None:
        if self.command == "GET" and self.path == "/_fake/requests":
            with self.state.lock:
                self._send(200, {"requests": list(self.state.requests)}, {})
            return
        if self.command == "POST" and self.path == "/_fake/scenario":
            try:
                self.state.choose(json.loads(raw))
            except ValueError as exc:
                self._send(400, {"error": str(exc)}, {})
                return
            self._send(200, {"ok": True}, {})
            return
        self._send(404, {"error": "no such control endpoint"}, {})

    def _send(self, status: int, body: dict[str, Any], extra: dict[str, str]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        # The client may have given up (a timeout test): there is nothing to tell it.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(payload)


def _links(dataset: str, result_id: str) -> dict[str, str]:
    base = f"{UI}/{dataset}/result/{result_id}"
    return {"query_url": base, "graph_image_url": f"{base}/snapshot"}


def serve(ready_file: Path, exit_with_parent: bool) -> None:
    Handler.state = FakeState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True  # a stalled answer must not hold up the exit
    stop = threading.Event()
    if exit_with_parent:
        threading.Thread(target=watch_parent, args=(stop,), daemon=True).start()
        threading.Thread(target=lambda: (stop.wait(), server.shutdown()), daemon=True).start()
    write_ready_file(ready_file, {"port": server.server_address[1]})
    server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--exit-with-parent", action="store_true")
    args = parser.parse_args()
    serve(Path(args.ready_file), args.exit_with_parent)
    return 0


# --------------------------------------------------------------------------------------------
# The test side
# --------------------------------------------------------------------------------------------


class HoneycombFake:
    """The fake as a child process for the length of a ``with`` block."""

    def __init__(self, startup_timeout: float = 10.0) -> None:
        self.startup_timeout = startup_timeout
        self.directory = Path(tempfile.mkdtemp(prefix="honeycomb-fake-"))
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        # The control calls go to loopback: never through a proxy set on the machine.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HoneycombFake:
        ready = self.directory / "ready.json"
        command = [
            sys.executable, "-m", "tests.support.honeycomb_fake",
            "--ready-file", str(ready), "--exit-with-parent",
        ]  # fmt: skip
        with (self.directory / "stderr.log").open("wb") as log:
            self._process = subprocess.Popen(
                command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + self.startup_timeout
        while not ready.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                log_text = (self.directory / "stderr.log").read_text(errors="replace")
                self.__exit__()
                raise RuntimeError(f"the Honeycomb fake did not start:\n{log_text}")
            time.sleep(0.01)
        self.port = int(json.loads(ready.read_text())["port"])
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            stop_process(self._process)
        shutil.rmtree(self.directory, ignore_errors=True)

    def scenario(self, name: str, **options: Any) -> None:
        """Behave as `name` from now on ("ok", "no_query_data", ...); the record starts empty."""
        self._control("POST", "/_fake/scenario", {"name": name, **options})

    def requests(self) -> list[dict[str, Any]]:
        return self._control("GET", "/_fake/requests")["requests"]

    def _control(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method)
        with self._opener.open(request, timeout=5) as answer:
            return json.loads(answer.read())


if __name__ == "__main__":
    sys.exit(main())
