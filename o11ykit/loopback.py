"""urllib openers for the kit's own HTTP clients: loopback never goes through a proxy.

A laptop behind a corporate proxy has `http_proxy` set, and urllib would send even
`http://127.0.0.1:16686` to it: the local store, the sample system's admin API and a test's
fake backend would all look unreachable.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1); a name is not looked up."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def opener_for(url: str) -> urllib.request.OpenerDirector:
    """An opener for `url`: the machine's proxy settings apply unless its host is loopback."""
    handlers = (
        [urllib.request.ProxyHandler({})] if is_loopback(urlsplit(url).hostname or "") else []
    )
    return urllib.request.build_opener(*handlers)
