"""urllib openers for the kit's own HTTP clients: loopback never goes through a proxy.

A laptop behind a corporate proxy has `http_proxy` set, and urllib would send even
`http://127.0.0.1:16686` to it: the local store, the sample system's admin API and a test's
fake backend would all look unreachable.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import urlsplit

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def opener_for(url: str) -> urllib.request.OpenerDirector:
    """An opener for `url`: the machine's proxy settings apply unless its host is loopback."""
    host = urlsplit(url).hostname or ""
    handlers = [urllib.request.ProxyHandler({})] if host in LOOPBACK_HOSTS else []
    return urllib.request.build_opener(*handlers)
