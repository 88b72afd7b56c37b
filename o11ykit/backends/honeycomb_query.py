"""Honeycomb's Query Data API (stdlib only): run a query, get its rows, or say plainly why not.

The three steps, as documented at https://docs.honeycomb.io/api/query-results/ and
https://docs.honeycomb.io/api/query-data/create-a-query-result :
1. `POST /1/queries/<dataset>` with the query specification -> `{"id": ...}` (200);
2. `POST /1/query_results/<dataset>` with `{"query_id": ..., "disable_series": true}` ->
   `{"id": ..., "complete": false, "links": {"query_url", "graph_image_url"}}` (201);
3. `GET /1/query_results/<dataset>/<id>` until `"complete": true`; the rows are
   `data.results[*].data` (a query result may run for up to 10 s; creating one is limited
   to 10 a minute).
The key goes in `X-Honeycomb-Team`; it must be a Configuration key with the "Manage Queries
and Columns" and "Run Queries" permissions (https://docs.honeycomb.io/api/permissions), and
the team needs the Enterprise plan. Without them, callers get QueryDataUnavailable and print
the query-template link instead (honeycomb_links). The key is never logged nor put in a message.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from o11ykit._version import __version__
from o11ykit.backends.honeycomb import ENDPOINTS
from o11ykit.backends.honeycomb_links import honeycomb_query_json
from o11ykit.backends.query_spec import QuerySpec
from o11ykit.config import Settings
from o11ykit.loopback import opener_for

# Key ids carry their type (https://docs.honeycomb.io/api/authentication): hc?ik_ ingest,
# hc?mk_ management; classic ingest keys are hc?ic_. None of these can run queries.
_NOT_A_QUERY_KEY = re.compile(r"^hc[a-z](ik|ic|mk)_")
USER_AGENT = f"o11ykit/{__version__}"
# Words in a 403 answer that tell which of the two requirements is missing.
_PLAN_WORDS = ("plan", "enterprise", "upgrade", "feature", "not available")
_PERMISSION_WORDS = ("permission", "scope", "not authorized", "denied access")


class HoneycombQueryError(Exception):
    """The query could not be run; `status` is Honeycomb's HTTP status when it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class QueryDataUnavailable(HoneycombQueryError):
    """This key or team cannot use the Query Data API; print the query-template link instead.

    `kind`: "no_key", "not_a_query_key" (an ingest or management key), "bad_key" (401),
    "not_allowed" (403: plan or key permissions), "not_found" (404: dataset or endpoint).
    """

    def __init__(self, reason: str, *, kind: str, status: int | None = None) -> None:
        super().__init__(reason, status)
        self.kind = kind
        self.reason = reason


class QueryTimeout(HoneycombQueryError):
    """The query result was not complete within the time allowed."""


@dataclass(frozen=True)
class QueryResult:
    rows: list[dict[str, Any]]
    query_id: str
    result_id: str
    query_url: str | None  # the result in Honeycomb's UI
    graph_image_url: str | None


class QueryDataClient:
    """One environment's Query Data API. `base_url` is for tests; else the region's API host."""

    def __init__(
        self,
        api_key: str,
        *,
        region: str = "us",
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if region not in ENDPOINTS:
            raise ValueError(f"region must be one of {', '.join(ENDPOINTS)}, not {region!r}")
        api_key = api_key.strip()
        if not api_key or not api_key.isprintable():
            # Checked here, because http.client's own refusal would quote the key.
            raise ValueError("the Honeycomb API key is empty or holds characters a header cannot")
        self._api_key = api_key
        self.base_url = (base_url or ENDPOINTS[region]).rstrip("/")
        self.timeout = timeout
        self._opener = opener_for(self.base_url)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> QueryDataClient:
        """The client for settings.honeycomb_api_key and honeycomb_region."""
        if not settings.honeycomb_api_key:
            raise QueryDataUnavailable(
                "no Honeycomb API key is set (HONEYCOMB_API_KEY)", kind="no_key"
            )
        return cls(settings.honeycomb_api_key, region=settings.honeycomb_region, **options)

    def __repr__(self) -> str:
        return f"QueryDataClient(base_url={self.base_url!r}, api_key=<hidden>)"

    # -- the three steps -------------------------------------------------------------------------

    def create_query(
        self, dataset: str, query: Mapping[str, Any], *, timeout: float | None = None
    ) -> str:
        """Validates and stores the query specification; runs nothing. -> the query id."""
        body = self._request("POST", f"/1/queries/{_slug(dataset)}", dict(query), timeout)
        return _field(body, "id", "the created query")

    def create_result(
        self, dataset: str, query_id: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Starts running the query; summary rows only (no time series)."""
        body = {"query_id": query_id, "disable_series": True}
        return self._request("POST", f"/1/query_results/{_slug(dataset)}", body, timeout)

    def get_result(
        self, dataset: str, result_id: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        path = f"/1/query_results/{_slug(dataset)}/{quote(result_id, safe='')}"
        return self._request("GET", path, None, timeout)

    def run(
        self,
        dataset: str,
        query: Mapping[str, Any],
        *,
        deadline_s: float = 20.0,
        poll_interval_s: float = 0.25,
    ) -> QueryResult:
        """The three steps, polling until complete; nothing takes longer than deadline_s."""
        if _NOT_A_QUERY_KEY.match(self._api_key):
            raise QueryDataUnavailable(
                "the Honeycomb API key is an ingest or management key; the Query Data API "
                "needs a Configuration key with the Manage Queries and Columns and Run Queries "
                "permissions",
                kind="not_a_query_key",
            )
        deadline = time.monotonic() + deadline_s
        query_id = self.create_query(
            dataset, query, timeout=_remaining(deadline, self.timeout, deadline_s)
        )
        result = self.create_result(
            dataset, query_id, timeout=_remaining(deadline, self.timeout, deadline_s)
        )
        result_id = _field(result, "id", "the created query result")
        interval = poll_interval_s
        while not result.get("complete"):
            if time.monotonic() + interval >= deadline:
                raise _late(deadline_s)
            time.sleep(interval)
            interval = min(interval * 2, 1.0)  # Honeycomb runs a result for 10 s at most
            result = self.get_result(
                dataset, result_id, timeout=_remaining(deadline, self.timeout, deadline_s)
            )
        links = result.get("links") or {}
        return QueryResult(
            rows=[row.get("data", {}) for row in (result.get("data") or {}).get("results") or []],
            query_id=query_id,
            result_id=result_id,
            query_url=links.get("query_url"),
            graph_image_url=links.get("graph_image_url"),
        )

    def run_spec(self, spec: QuerySpec, dataset: str, **options: Any) -> QueryResult:
        """The spec's own Honeycomb query (the one its link runs), run through the API."""
        return self.run(dataset, honeycomb_query_json(spec), **options)

    # -- HTTP --------------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None, timeout: float | None
    ) -> dict[str, Any]:
        headers = {"X-Honeycomb-Team": self._api_key, "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            f"{self.base_url}{path}", data=data, headers=headers, method=method
        )
        try:
            with self._opener.open(request, timeout=timeout or self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            raise _refusal(exc.code, _message(exc.read()), method, path) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise QueryTimeout(
                    f"Honeycomb did not answer {method} {path} within {timeout or self.timeout:g} s"
                ) from None
            raise HoneycombQueryError(
                f"cannot reach Honeycomb at {self.base_url} ({method} {path}): {reason}"
            ) from None
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise HoneycombQueryError(f"{method} {path} did not answer with a JSON object")
        return parsed


def _slug(dataset: str) -> str:
    if not dataset:
        raise ValueError("a Honeycomb dataset slug is required (or __all__ for the environment)")
    return quote(dataset, safe="")


def _field(body: Mapping[str, Any], name: str, what: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise HoneycombQueryError(f"Honeycomb's answer for {what} has no {name}")
    return value


def _remaining(deadline: float, cap: float, deadline_s: float) -> float:
    """The next request's timeout: what is left of the deadline, at most `cap`."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _late(deadline_s)
    return min(left, cap)


def _late(deadline_s: float) -> QueryTimeout:
    return QueryTimeout(f"the Honeycomb query result was not complete after {deadline_s:g} s")


def _message(raw: bytes) -> str:
    """Honeycomb's words: `{"error"}` (legacy), problem+json `{"title","detail","error"}`, or
    JSON:API `{"errors": [{"title","detail"}]}`."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:200]
    if not isinstance(body, dict):
        return ""
    if isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0] if isinstance(body["errors"][0], dict) else {}
        return str(first.get("detail") or first.get("title") or "")
    return str(body.get("detail") or body.get("error") or body.get("title") or "")


def _refusal(status: int, message: str, method: str, path: str) -> HoneycombQueryError:
    said = f" ({message})" if message else ""
    if status == 401:
        return QueryDataUnavailable(
            f"Honeycomb did not accept the API key{said}: check HONEYCOMB_API_KEY; querying "
            "needs a Configuration key of this environment, not an ingest key",
            kind="bad_key",
            status=status,
        )
    if status == 403:
        lowered = message.lower()
        if any(word in lowered for word in _PLAN_WORDS):
            why = "the team's plan does not include the Query Data API (an Enterprise feature)"
        elif any(word in lowered for word in _PERMISSION_WORDS):
            why = "the key lacks the Manage Queries and Columns or Run Queries permission"
        else:
            why = (
                "the Query Data API needs the Enterprise plan and a key with the Manage "
                "Queries and Columns and Run Queries permissions"
            )
        return QueryDataUnavailable(
            f"Honeycomb refused {method} {path}{said}: {why}", kind="not_allowed", status=status
        )
    if status == 404:
        return QueryDataUnavailable(
            f"Honeycomb has no {path}{said}: check the dataset slug (or use __all__ for the "
            "whole environment) and the region",
            kind="not_found",
            status=status,
        )
    if status == 429:
        return HoneycombQueryError(
            f"Honeycomb's rate limit{said}: query results are limited to 10 a minute", status
        )
    return HoneycombQueryError(
        f"Honeycomb answered {method} {path} with HTTP {status}{said}", status
    )
