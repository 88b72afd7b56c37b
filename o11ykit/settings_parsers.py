"""Strict parsers for setting values, from the environment (strings) or from code.

Each parser takes a string or an already-typed value and returns the typed value, or
raises ValueError with the accepted values spelled out; config.py adds the setting's name.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

Parser = Callable[[Any], Any]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SINGLE_LABEL = "<single-label>"

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("accepted values: true, false (also 1/0, yes/no, on/off)")


def choice(*options: str) -> Parser:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in options:
            raise ValueError(f"accepted values: {', '.join(options)}")
        return text

    return parse


def number(minimum: float, maximum: float) -> Parser:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError(f"accepted values: a number from {minimum:g} to {maximum:g}")
        try:
            result = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"accepted values: a number from {minimum:g} to {maximum:g}") from None
        if not minimum <= result <= maximum:
            raise ValueError(f"accepted values: a number from {minimum:g} to {maximum:g}")
        return result

    return parse


def whole_number(minimum: int, maximum: int) -> Parser:
    as_number = number(minimum, maximum)
    accepted_values = f"accepted values: a whole number from {minimum} to {maximum}"

    def parse(value: Any) -> int:
        # One message for every refusal: number's would say "a number from 1 to 1e+06".
        try:
            result = as_number(value)
        except ValueError:
            raise ValueError(accepted_values) from None
        if result != int(result):
            raise ValueError(accepted_values)
        return int(result)

    return parse


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("accepted values: a non-empty string")
    return value.strip()


def pem_file(holding: str) -> Parser:
    """The path of a readable PEM file with a `-----BEGIN ...{holding}-----` block in it
    (CERTIFICATE, PRIVATE KEY); the contents are checked by TLS when exports start."""
    accepted_values = (
        f"accepted values: the path of a readable PEM file holding a {holding.lower()}"
    )

    def parse(value: Any) -> str:
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            raise ValueError(accepted_values)
        path = os.fspath(value).strip() if isinstance(value, str) else os.fspath(value)
        try:
            with open(path, "rb") as file:
                head = file.read(1 << 20)
        except OSError as exc:
            raise ValueError(f"cannot read it ({exc.strerror}); {accepted_values}") from None
        if f"{holding}-----".encode() not in head or b"-----BEGIN " not in head:
            raise ValueError(f"no PEM {holding.lower()} in it; {accepted_values}")
        return str(path)

    return parse


def text_list(value: Any) -> tuple[str, ...]:
    """A comma-separated string, or any iterable of strings."""
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    try:
        result = tuple(str(item).strip() for item in items if str(item).strip())
    except TypeError:
        raise ValueError("accepted values: a comma-separated list or a list of strings") from None
    return result


def _entries(value: Any, accepted_values: str) -> tuple[str, ...]:
    """`text_list`, refusing with the list setting's own accepted values."""
    try:
        return text_list(value)
    except ValueError:
        raise ValueError(accepted_values) from None


def choice_list(*options: str) -> Parser:
    """Any of `options`, comma-separated or as a list; an unknown entry is an error rather
    than silently left out (a typo must not turn an integration off)."""
    accepted_values = f"accepted values: a comma-separated list of {', '.join(options)}"

    def parse(value: Any) -> tuple[str, ...]:
        items = tuple(item.lower() for item in _entries(value, accepted_values))
        unknown = [item for item in items if item not in options]
        if unknown:
            raise ValueError(f"unknown: {', '.join(unknown)}; {accepted_values}")
        return items

    return parse


def path_list(value: Any) -> tuple[str, ...]:
    """Request paths; the middleware compares them with the path as sent, which always
    starts with "/", so an entry without one could never match."""
    accepted_values = "accepted values: a comma-separated list of paths, each starting with /"
    paths = _entries(value, accepted_values)
    relative = [path for path in paths if not path.startswith("/")]
    if relative:
        raise ValueError(f"not starting with /: {', '.join(relative)}; {accepted_values}")
    return paths


# RFC 9110 section 5.6.2: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def header_name(value: Any) -> str:
    # No "|" in the sentence: it is shown in the Markdown table of docs/settings.md.
    accepted_values = (
        "accepted values: an HTTP header name, an RFC 9110 token such as X-Tenant-ID "
        "(no spaces, colons or non-ASCII letters)"
    )
    if not isinstance(value, str) or not _TOKEN.fullmatch(value.strip()):
        raise ValueError(accepted_values)
    return value.strip()


def ip_literal(host: str) -> IPAddress | None:
    """The address `host` denotes if it is written as one, in any form the resolver reads:
    inet_aton takes `134744072`, `0x08080808` and `8.8.2056` as 8.8.8.8, so a host that
    looks like one label can still be a public address."""
    try:
        address: IPAddress = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    # ::ffff:8.8.8.8 reaches 8.8.8.8: judge it as the IPv4 address it carries.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def _is_host_name(name: str) -> bool:
    labels = name.removesuffix(".").split(".")
    return len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def _is_host_pattern(pattern: str) -> bool:
    if pattern.lower() == SINGLE_LABEL:
        return True
    if pattern.startswith("*."):
        return _is_host_name(pattern[2:])
    if "/" in pattern:
        try:
            ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
        return True
    return ip_literal(pattern) is not None or _is_host_name(pattern)


def host_patterns(value: Any) -> tuple[str, ...]:
    """Hosts that may receive baggage, in the forms baggage.HostTrust matches."""
    accepted_values = (
        "accepted values: a comma-separated list of host names, *.domain suffixes, "
        f"IP addresses, CIDR ranges and {SINGLE_LABEL}"
    )
    patterns = _entries(value, accepted_values)
    bad = [pattern for pattern in patterns if not _is_host_pattern(pattern)]
    if bad:
        raise ValueError(f"not understood: {', '.join(bad)}; {accepted_values}")
    return patterns


_KEY_VALUES = (
    "accepted values: comma-separated key=value pairs, a mapping, or a list of (key, value) pairs"
)


def key_values(value: Any) -> dict[str, str]:
    """OpenTelemetry's `key1=value1,key2=value2` with URL-encoded values, a mapping, or a
    list of (key, value) pairs. Anything else is refused rather than read as its repr."""
    if isinstance(value, str):
        items = []
        for item in value.split(","):
            if not item.strip():
                continue
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(_KEY_VALUES)
            # Stripped before decoding: an encoded space (%20) is part of the value.
            items.append((unquote(key.strip()), unquote(raw.strip())))
    elif isinstance(value, Mapping):
        items = [(str(key).strip(), str(raw).strip()) for key, raw in value.items()]
    elif isinstance(value, (list, tuple)) and all(
        isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in value
    ):
        items = [(str(key).strip(), str(raw).strip()) for key, raw in value]
    else:
        raise ValueError(_KEY_VALUES)
    if any(not key for key, _ in items):
        raise ValueError(f"a key is empty; {_KEY_VALUES}")
    return dict(items)


# C0 controls (CR, LF, NUL, tab...) and DEL: a CR or LF would start a new header line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def headers(value: Any) -> dict[str, str]:
    """HTTP headers as key_values reads them, each name a token and no value holding a
    control character. The messages never repeat a value: header values are secrets."""
    accepted_values = (
        "accepted values: comma-separated name=value pairs, a mapping, or a list of "
        "(name, value) pairs; names are HTTP header names (RFC 9110 tokens), values have "
        "no control characters"
    )
    try:
        pairs = key_values(value)
    except ValueError:
        raise ValueError(accepted_values) from None
    if not all(_TOKEN.fullmatch(name) for name in pairs):
        raise ValueError(f"a header name is not an RFC 9110 token; {accepted_values}")
    bad = [name for name, text in pairs.items() if _CONTROL.search(text)]
    if bad:
        raise ValueError(
            f"the value of {', '.join(bad)} holds a control character (CR, LF, NUL or "
            f"another below 0x20, or DEL); {accepted_values}"
        )
    return pairs


def http_url(value: Any) -> str:
    parts = urlsplit(str(value).strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("accepted values: an absolute http:// or https:// URL")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("accepted values: an absolute http:// or https:// URL") from None
    return str(value).strip().rstrip("/")


def base_url(value: Any) -> str:
    """An http(s) URL that API paths are appended to: a query, a fragment or a user in it
    would end up inside the requests' paths or host, never where they were meant."""
    accepted_values = (
        "accepted values: an absolute http:// or https:// URL without a query, a fragment or a user"
    )
    try:
        url = http_url(value)
    except ValueError:
        raise ValueError(accepted_values) from None
    # "?" and "#" rather than urlsplit's query and fragment, which are empty for "...:16686?".
    if "?" in url or "#" in url or "@" in urlsplit(url).netloc:
        raise ValueError(accepted_values)
    return url


def without_secrets(text: str) -> str:
    """`text` with the user part and the query and fragment values of a URL in it hidden,
    for messages and reports that repeat a value: `http://bob:pw@host/?api_key=k` is shown
    as `http://***@host/?api_key=***`. A value that is no URL with a host (a scheme
    forgotten: `bob:pw@host/?k=v`) has the same parts hidden, found by their marks."""
    scheme, slashes, rest = text.partition("://")
    if slashes and "@" in rest:
        # Up to the last "@", before a URL parser reads it: a password holding "/", "?" or
        # "#" would end its host part early and leave the rest of the password in the path.
        text = f"{scheme}://***@{rest.rpartition('@')[2]}"
    try:
        parts = urlsplit(text)
    except ValueError:  # an unclosed "[", say
        parts = None
    if parts is None or not parts.netloc:
        rest, hash_mark, fragment = text.partition("#")
        rest, question_mark, query = rest.partition("?")
        if "@" in rest:  # everything to the last "@": a password may hold "@" or "/"
            rest = "***@" + rest.rpartition("@")[2]
        return (
            rest
            + question_mark
            + (_hidden_values(query) if query else "")
            + hash_mark
            + (_hidden_values(fragment) if fragment else "")
        )
    if "@" in parts.netloc:
        # The host is what follows the last "@", as urlsplit reads it: a password may hold "@".
        parts = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2])
    if parts.query:
        parts = parts._replace(query=_hidden_values(parts.query))
    if parts.fragment:
        parts = parts._replace(fragment=_hidden_values(parts.fragment))
    return urlunsplit(parts)


def _hidden_values(pairs: str) -> str:
    """`a=1&b=2` as `a=***&b=***`; text without "=" is all value."""
    return "&".join(
        pair.partition("=")[0] + "=***" if "=" in pair else "***" for pair in pairs.split("&")
    )


def accepted(parser: Parser) -> str:
    """The accepted-values sentence a parser would raise, for docs and doctor."""
    probe: Any = object()
    try:
        parser(probe)
    except ValueError as exc:
        return str(exc).removeprefix("accepted values: ")
    except Exception:
        pass
    return "any value"
