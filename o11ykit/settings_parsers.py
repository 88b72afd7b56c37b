"""Strict parsers for setting values, from the environment (strings) or from code.

Each parser takes a string or an already-typed value and returns the typed value, or
raises ValueError with the accepted values spelled out; config.py adds the setting's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

Parser = Callable[[Any], Any]

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

    def parse(value: Any) -> int:
        result = as_number(value)
        if result != int(result):
            raise ValueError(f"accepted values: a whole number from {minimum} to {maximum}")
        return int(result)

    return parse


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("accepted values: a non-empty string")
    return value.strip()


def text_list(value: Any) -> tuple[str, ...]:
    """A comma-separated string, or any iterable of strings."""
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    try:
        result = tuple(str(item).strip() for item in items if str(item).strip())
    except TypeError:
        raise ValueError("accepted values: a comma-separated list or a list of strings") from None
    return result


def key_values(value: Any) -> dict[str, str]:
    """OpenTelemetry's `key1=value1,key2=value2` with URL-encoded values, or a mapping."""
    if isinstance(value, dict):
        return {str(k).strip(): str(v).strip() for k, v in value.items()}
    pairs: dict[str, str] = {}
    for item in str(value).split(","):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError("accepted values: comma-separated key=value pairs")
        pairs[unquote(key.strip())] = unquote(raw.strip())
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
    """`text` with the user part and the query values of a URL in it hidden, for messages
    and reports that repeat a value: `http://bob:pw@host/?api_key=k` is shown as
    `http://***@host/?api_key=***`."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if not parts.netloc:
        return text
    if "@" in parts.netloc:
        # The host is what follows the last "@", as urlsplit reads it: a password may hold "@".
        parts = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2])
    if parts.query:
        hidden = [pair.partition("=")[0] + "=***" for pair in parts.query.split("&")]
        parts = parts._replace(query="&".join(hidden))
    return urlunsplit(parts)


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
