"""A client of the fault admin API (stdlib only), for the CLI, drills and tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from o11ykit.loopback import opener_for

ADMIN_PATH = "/_o11ykit/faults"  # the same as o11ykit.faults.middleware, without Starlette


class FaultAdminError(Exception):
    """The admin API refused or could not be reached; the message is the server's."""

    def __init__(self, message: str, status: int | None = None, *, answered: bool = False) -> None:
        super().__init__(message)
        self.status = status
        # The admin API itself refused (its JSON error): a 404 is then a fault id nobody
        # holds, not a service without the admin API.
        self.answered = answered

    @property
    def refused_input(self) -> bool:
        """The command named something wrong (a bad spec, an id no fault has): nothing changed."""
        return self.status == 400 or (self.status == 404 and self.answered)


class FaultClient:
    def __init__(
        self, base_url: str, token: str, timeout: float = 5.0, *, actor: str | None = None
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base.removesuffix(ADMIN_PATH)
        self.token = token
        self.timeout = timeout
        self.actor = actor
        self._opener = opener_for(self.base_url)

    def list(self) -> list[dict[str, Any]]:
        return self._call("GET", "")["faults"]

    def kinds(self) -> dict[str, Any]:
        return self._call("GET", "")["kinds"]

    def overview(self) -> dict[str, Any]:
        """Faults and kinds in one request."""
        return self._call("GET", "")

    def get(self, fault_id: str) -> dict[str, Any]:
        return self._call("GET", f"/{quote(fault_id, safe='')}")

    def inject(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "", spec)

    def fix(self, fault_id: str, fixed: bool = True) -> dict[str, Any]:
        return self._call("POST", f"/{quote(fault_id, safe='')}/fix", {"fixed": fixed})

    def clear(self, fault_id: str | None = None) -> list[str]:
        path = "" if fault_id is None else f"/{quote(fault_id, safe='')}"
        return self._call("DELETE", path)["cleared"]

    def audit(self) -> list[dict[str, Any]]:
        return self._call("GET", "/audit")["entries"]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.base_url}{ADMIN_PATH}{path}"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if self.actor:
            headers["X-O11ykit-Actor"] = self.actor
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            error = _error(exc.read())
            message = error or _message(exc.code, url)
            raise FaultAdminError(message, exc.code, answered=bool(error)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FaultAdminError(f"cannot reach {url}: {reason}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise FaultAdminError(f"{url} answered something that is not JSON") from None


def _error(raw: bytes) -> str | None:
    """The admin API's own message in an answer, if it is one."""
    try:
        error = json.loads(raw).get("error")
    except (ValueError, AttributeError):
        return None
    return str(error) if error else None


def _message(status: int, url: str) -> str:
    if status == 404:
        return f"{url} does not exist: is fault injection enabled there, with a token?"
    return f"{url} answered {status}"
