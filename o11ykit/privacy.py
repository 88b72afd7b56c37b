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
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status

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
# Query parameter names that carry a credential but are too short or common to be
# SECRET_WORDS, which match anywhere in an attribute key ("key" would hit "cache.key").
URL_SECRET_PARAMETERS = frozenset({"key", "sig", "code", "awsaccesskeyid"})
_URL_KEYS = frozenset({"url.full", "url.query", "http.url", "http.target", "url.original"})
_SQL_KEYS = frozenset({"db.query.text", "db.statement"})
# Free text that quotes URLs and SQL: SQLAlchemy and HTTP client error messages.
_TEXT_KEYS = frozenset({"exception.message", "exception.stacktrace"})
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")
# Bearer/Basic credentials and JWTs, wherever they appear in a value.
_VALUE_SECRET = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}|\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
)
_QUERY_PAIR = re.compile(r"(^|[&;])([^=&;#]*)=([^&;#]*)")
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# SQLAlchemy's error message: "[SQL: statement]", "[parameters: repr]", then
# "(Background on this error at: ...)"; the statement and the parameters may span lines,
# and a parameter value may hold "]", so each block ends where the next part begins.
_SQL_BLOCK = re.compile(
    r"\[SQL: ([\s\S]*?)\](?=\n\[parameters: |\n\(Background on this error|\s*\Z)"
)
_PARAMETERS_BLOCK = re.compile(r"\[parameters: [\s\S]*?\](?=\n\(Background on this error|\s*\Z)")
_PARAMETERS_REDACTED = f"[parameters: {REDACTED}]"
_PARAMETERS_TO_END = re.compile(rf"\[parameters: (?!{re.escape(REDACTED)}\])[\s\S]*")
# The values a database quotes from the row in a constraint error, up to the end of its line.
_ROW_VALUES = re.compile(r"(Key \([^\n]*?\)=\(|Failing row contains \()[^\n]*(\)[^\n]*?)$", re.M)

# SQL tokens that can hold an apostrophe, in one pass: comments and quoted identifiers are
# kept as they are, string literals become "?". A literal left open (cut, or mis-read)
# runs to the end of the text, so a bad guess redacts too much rather than too little.
# Each branch starts with a fixed character and any lookbehind comes after it: measured
# twice as fast as lookbehinds first, which re must try at every position.
_SQL_COMMENT = r"--[^\n]*|/\*[\s\S]*?(?:\*/|\Z)"
_SQL_DOLLAR_QUOTED = r"\$(?<![\w$]\$)(?P<tag>(?:[A-Za-z_]\w*)?)\$(?:[\s\S]*?\$(?P=tag)\$|[\s\S]*)"
_SQL_OPEN_LITERAL = r"'[\s\S]*"
_SQL_LITERALS = {
    # Standard SQL (Postgres, SQLite, Oracle, SQL Server): '' escapes a quote; backslashes
    # escape only in Postgres E'...' strings; "..." is an identifier.
    "standard": re.compile(
        rf"(?P<keep>{_SQL_COMMENT}|\"(?:[^\"]|\"\")*\"|`[^`]*`)"
        rf"|[Ee](?<![\w$][Ee])'(?:[^'\\]|\\[\s\S]|'')*'"
        rf"|'(?:[^']|'')*'|{_SQL_DOLLAR_QUOTED}|{_SQL_OPEN_LITERAL}"
    ),
    # MySQL and MariaDB: backslash escapes, "..." is a string, "#" and "-- " start comments.
    "mysql": re.compile(
        r"(?P<keep>--(?=\s|\Z)[^\n]*|#[^\n]*|/\*[\s\S]*?(?:\*/|\Z)|`[^`]*`)"
        r"|'(?:[^'\\]|\\[\s\S]|'')*'|\"(?:[^\"\\]|\\[\s\S]|\"\")*\"|['\"][\s\S]*"
    ),
    # Dialect unknown (statements scrubbed at export): a backslash in a literal may or may
    # not escape the quote after it, so such a literal is taken to run to the end.
    "unknown": re.compile(
        rf"(?P<keep>{_SQL_COMMENT}|\"(?:[^\"]|\"\")*\"|`[^`]*`)"
        rf"|'(?:[^'\\]|'')*'|{_SQL_DOLLAR_QUOTED}|{_SQL_OPEN_LITERAL}"
    ),
}
_SQL_PLAIN_LITERALS = re.compile(r"'(?:[^']|'')*'|'[\s\S]*")
_BACKSLASH_ESCAPING_DIALECTS = frozenset({"mysql", "mariadb"})
_KEY_CACHE_LIMIT = 4096


def _literal_to_placeholder(match: re.Match[str]) -> str:
    return match.group() if match.group("keep") is not None else "?"


def _only_plain_literals(statement: str) -> bool:
    # Without comments, double quotes, backticks, dollars or backslashes, every dialect
    # reads the quotes the same way and one simple pattern (several times faster) will do.
    return not (
        "--" in statement
        or "/*" in statement
        or "#" in statement
        or '"' in statement
        or "`" in statement
        or "$" in statement
        or "\\" in statement
    )


def _may_hold_credentials(value: str) -> bool:
    # What _VALUE_SECRET needs, in the cases people write: Bearer, bearer, BEARER.
    return (
        "eyJ" in value or "earer" in value or "EARER" in value or "asic" in value or "ASIC" in value
    )


def without_sql_literals(statement: str, dialect: str | None = None) -> str:
    """The statement with every string literal replaced by `?`, comments and quoted
    identifiers kept; `dialect` is SQLAlchemy's dialect name, None when unknown."""
    mysql = dialect in _BACKSLASH_ESCAPING_DIALECTS
    if "'" not in statement and "$" not in statement and (not mysql or '"' not in statement):
        return statement  # bound parameters only, the common case
    if _only_plain_literals(statement):
        return _SQL_PLAIN_LITERALS.sub("?", statement)
    if mysql:
        scanner = _SQL_LITERALS["mysql"]
    elif dialect is None:
        scanner = _SQL_LITERALS["unknown"]
    else:
        scanner = _SQL_LITERALS["standard"]
    return scanner.sub(_literal_to_placeholder, statement)


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

    def is_secret_parameter(self, name: str) -> bool:
        """A URL query or fragment parameter whose value is a credential."""
        name = unquote_plus(name)
        return self.is_secret_key(name) or (
            name not in self._allow and name.lower() in URL_SECRET_PARAMETERS
        )

    def scrub_url(self, value: str) -> str:
        """Redact secret query and fragment parameters and the URL's user part; keep the
        rest readable."""
        if "=" not in value and "@" not in value:
            return value
        if "://" not in value and "?" not in value and "#" not in value:
            return self._scrub_query(value)  # a bare query string (url.query)
        try:
            parts = urlsplit(value)
        except ValueError:  # e.g. a malformed IPv6 host: nothing of it can be trusted
            return REDACTED
        netloc = parts.netloc
        if "@" in netloc:
            # A user alone is often a token (https://ghp_...@github.com); a user with a
            # password keeps the user, which says which account was used.
            userinfo, _, host = netloc.rpartition("@")
            user, has_password, _ = userinfo.partition(":")
            netloc = f"{user}:{REDACTED}@{host}" if has_password else f"{REDACTED}@{host}"
        query = self._scrub_query(parts.query)
        fragment = self._scrub_query(parts.fragment)  # OAuth implicit flow: #access_token=
        if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
            return value
        return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))

    def _scrub_query(self, query: str) -> str:
        """Secret values in `a=1&b=2` or `a=1;b=2`; everything else exactly as it was."""
        if "=" not in query:
            return query

        def pair(match: re.Match[str]) -> str:
            separator, name, _ = match.groups()
            return f"{separator}{name}={REDACTED}" if self.is_secret_parameter(name) else match[0]

        return _QUERY_PAIR.sub(pair, query)

    def scrub_text(self, text: str) -> str:
        """Free text such as an exception message or a span status description: SQLAlchemy's
        bound parameters go, its statement loses its literals, URLs in it are scrubbed."""
        if "[SQL: " in text:
            text = _SQL_BLOCK.sub(lambda m: f"[SQL: {without_sql_literals(m[1])}]", text)
        if "[parameters: " in text:
            text = _PARAMETERS_BLOCK.sub(_PARAMETERS_REDACTED, text)
            # A block whose end cannot be told takes the rest of the text with it.
            text = _PARAMETERS_TO_END.sub(_PARAMETERS_REDACTED, text, count=1)
        if "://" in text:
            text = _URL_IN_TEXT.sub(lambda m: self.scrub_url(m[0]), text)
        if "Key (" in text or "Failing row contains" in text:
            # The database's own detail quotes the row: PostgreSQL's "Key (email)=(ann@x.io)
            # already exists" and "Failing row contains (1, ann, s3cret)".
            text = _ROW_VALUES.sub(rf"\g<1>{REDACTED}\g<2>", text)
        return _VALUE_SECRET.sub(REDACTED, text)

    def scrub_value(self, key: str, value: Any) -> Any:
        if key in self._allow:
            return value
        if self.is_secret_key(key) or (
            key.startswith(_HEADER_PREFIXES) and self.is_secret_key(key.split(".", 3)[-1])
        ):
            return REDACTED
        if isinstance(value, str):
            return self._scrub_string(key, value)
        if isinstance(value, (tuple, list)):
            # An array attribute, such as OpenTelemetry's http.request.header.<name>: each
            # string in it as if it stood alone. The same object back when nothing changed,
            # so the caller sees no change.
            items = [self._scrub_string(key, v) if isinstance(v, str) else v for v in value]
            return value if items == list(value) else type(value)(items)
        return value

    def _scrub_string(self, key: str, value: str) -> str:
        if key in _URL_KEYS:
            value = self.scrub_url(value)
        elif key in _SQL_KEYS:
            value = without_sql_literals(value)
        elif key in _TEXT_KEYS:
            return self.scrub_text(value)
        # The pattern costs ten times this test, and nearly every value fails the test.
        if _may_hold_credentials(value):
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
        status = span.status
        if status.description:
            description = scrubber.scrub_text(status.description)
            if description != status.description:
                status = Status(status.status_code, description)
        if attributes is None and not any(clean_events) and status is span.status:
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
                status=status,
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
        )
    return result
