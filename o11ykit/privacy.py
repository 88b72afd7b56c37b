"""Scrubbing secrets out of span attributes, and pseudonymising user ids.

Scrubbing runs where spans are exported, off the request's thread, and builds a new
attribute mapping only for the rare span that needs one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from opentelemetry.sdk.trace import Event, ReadableSpan

REDACTED = "[REDACTED]"

SECRET_WORDS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "cookie",
    "session",
    "jwt",
    "credential",
    "private_key",
    "signature",
    "x-amz-security-token",
    "x-amz-credential",
    "x-goog-signature",
)
_URL_KEYS = frozenset({"url.full", "url.query", "http.url", "http.target", "url.original"})
_SQL_KEYS = frozenset({"db.query.text", "db.statement"})
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")
# Bearer/Basic credentials and JWTs, wherever they appear in a value.
_VALUE_SECRET = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}|\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
)
_SQL_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_KEY_CACHE_LIMIT = 4096


def pseudonymize(key: str, user_id: str) -> str:
    """Same id and key give the same pseudonym in every service; the id cannot be read back."""
    digest = hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return digest[:32]


class Scrubber:
    def __init__(self, extra_words: Iterable[str] = (), allow: Iterable[str] = ()) -> None:
        words = [w.lower() for w in (*SECRET_WORDS, *extra_words) if w]
        normalized = {w.replace("-", "_") for w in words} | set(words)
        self._secret_key = re.compile("|".join(re.escape(w) for w in sorted(normalized)))
        self._allow = frozenset(allow)
        self._key_verdicts: dict[str, bool] = {}
        # Pairs already found clean; most attribute pairs repeat from span to span.
        self._clean_pairs: set[tuple[str, Any]] = set()

    def is_secret_key(self, key: str) -> bool:
        verdict = self._key_verdicts.get(key)
        if verdict is None:
            lowered = key.lower()
            verdict = key not in self._allow and bool(
                self._secret_key.search(lowered)
                or self._secret_key.search(lowered.replace("-", "_"))
            )
            if len(self._key_verdicts) < _KEY_CACHE_LIMIT:
                self._key_verdicts[key] = verdict
        return verdict

    def scrub_url(self, value: str) -> str:
        """Redact secret query parameters and URL passwords; keep the rest readable."""
        if "?" not in value and "=" not in value and "@" not in value:
            return value
        if "?" not in value and "://" not in value:
            return self._scrub_query(value)  # a bare query string (url.query)
        parts = urlsplit(value)
        netloc = parts.netloc
        if parts.password:
            netloc = netloc.replace(":" + parts.password + "@", ":" + REDACTED + "@")
        query = self._scrub_query(parts.query) if parts.query else parts.query
        if netloc == parts.netloc and query == parts.query:
            return value
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

    def _scrub_query(self, query: str) -> str:
        pairs = parse_qsl(query, keep_blank_values=True)
        if not any(self.is_secret_key(k) for k, _ in pairs):
            return query
        return "&".join(
            f"{quote(k, safe='')}={REDACTED if self.is_secret_key(k) else quote(v, safe='')}"
            for k, v in pairs
        )

    def scrub_value(self, key: str, value: Any) -> Any:
        if key in self._allow:
            return value
        if self.is_secret_key(key) or (
            key.startswith(_HEADER_PREFIXES) and self.is_secret_key(key.split(".", 3)[-1])
        ):
            return REDACTED
        if not isinstance(value, str):
            return value
        if key in _URL_KEYS:
            value = self.scrub_url(value)
        elif key in _SQL_KEYS and "'" in value:
            value = _SQL_STRING_LITERAL.sub("?", value)
        if "ey" in value or "earer" in value or "asic" in value:
            value = _VALUE_SECRET.sub(REDACTED, value)
        return value

    def scrub(self, attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A scrubbed copy, or None when nothing needed scrubbing (the common case)."""
        if not attributes:
            return None
        changed: dict[str, Any] | None = None
        known_clean = self._clean_pairs
        for key, value in attributes.items():
            try:
                if (key, value) in known_clean:
                    continue
                hashable = True
            except TypeError:  # a list: checked every time
                hashable = False
            clean = self.scrub_value(key, value)
            if hashable and clean is value and len(known_clean) < _KEY_CACHE_LIMIT:
                known_clean.add((key, value))
            if clean is not value and clean != value:
                if changed is None:
                    changed = dict(attributes)
                changed[key] = clean
        return changed


def scrubbed(spans: Sequence[ReadableSpan], scrubber: Scrubber) -> list[ReadableSpan]:
    """Copies of the spans that needed scrubbing, the others as they are (for in-process
    readers: the console and the test fixture; export scrubs while encoding)."""
    result: list[ReadableSpan] = []
    for span in spans:
        attributes = scrubber.scrub(span.attributes)
        events = span.events
        clean_events = [scrubber.scrub(event.attributes) for event in events]
        if attributes is None and not any(clean_events):
            result.append(span)
            continue
        if any(clean_events):
            events = tuple(
                Event(e.name, clean or e.attributes, e.timestamp)
                for e, clean in zip(events, clean_events, strict=True)
            )
        result.append(
            ReadableSpan(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=span.resource,
                attributes=attributes if attributes is not None else span.attributes,
                events=events,
                links=span.links,
                kind=span.kind,
                status=span.status,
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
        )
    return result
