"""Scrubbing and pseudonymising: secrets never leave, and the marker never holds any of them."""

from __future__ import annotations

import pytest

from o11ykit.privacy import REDACTED, Scrubber, pseudonymize, without_sql_literals

scrubber = Scrubber()


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db.password",
        "user_passwd",
        "api_key",
        "x-api-key",
        "apiKey",
        "auth.token",
        "http.request.header.authorization",
        "http.request.header.cookie",
        "session_id",
        "jwt",
        "aws.credential",
        "client_secret",
    ],
)
def test_secret_keys_are_redacted(key: str) -> None:
    assert scrubber.scrub({key: "hunter2", "keep": "me"}) == {key: REDACTED, "keep": "me"}


@pytest.mark.parametrize("key", ["http.route", "tenant.id", "author", "db.system.name", "url.path"])
def test_ordinary_keys_are_kept(key: str) -> None:
    assert scrubber.scrub({key: "value"}) is None


def test_url_query_secrets_are_redacted_and_the_rest_kept() -> None:
    cleaned = scrubber.scrub(
        {
            "url.full": "https://shop.example/cart?item=3&token=s3cr3t&session_id=abc",
            "url.query": "q=shoes&api_key=k3y",
            "http.url": "https://bob:pa55@internal/x",
        }
    )
    assert cleaned is not None
    text = str(cleaned)
    for secret in ("s3cr3t", "abc", "k3y", "pa55"):
        assert secret not in text
    assert "item=3" in cleaned["url.full"] and "q=shoes" in cleaned["url.query"]


def test_bearer_tokens_and_jwts_in_any_value_are_redacted() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"
    cleaned = scrubber.scrub({"message": f"calling with Bearer abcdefghijkl and {jwt}"})
    assert cleaned is not None
    assert "abcdefghijkl" not in cleaned["message"] and jwt not in cleaned["message"]


@pytest.mark.parametrize("sequence", [tuple, list])
def test_each_string_of_an_array_attribute_is_scrubbed(sequence) -> None:
    # The SDK keeps an array attribute as a tuple; a header attribute is an array of strings.
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"
    header = sequence(["Bearer abcdefghijkl", "plain"])
    cleaned = scrubber.scrub(
        {"http.request.header.x-upstream": header, "app.forwarded": sequence([jwt, 3])}
    )
    assert cleaned == {
        "http.request.header.x-upstream": sequence([REDACTED, "plain"]),
        "app.forwarded": sequence([REDACTED, 3]),
    }
    assert scrubber.scrub({"app.tags": sequence(["a", "b"]), "app.sizes": (1, 2)}) is None


def test_sql_string_literals_are_removed() -> None:
    cleaned = scrubber.scrub(
        {"db.query.text": "SELECT * FROM users WHERE pw = 'hunter2' AND id = ?"}
    )
    assert cleaned == {"db.query.text": "SELECT * FROM users WHERE pw = ? AND id = ?"}


def test_marker_is_constant_and_keeps_no_part_of_the_secret() -> None:
    # No partial masking ("hu****2"): the marker is the same whatever the secret was.
    for secret in ("hunter2", "h", "a-much-longer-secret-value-0123456789"):
        cleaned = scrubber.scrub({"token": secret, "url.query": f"token={secret}&q=1"})
        assert cleaned is not None
        assert cleaned["token"] == REDACTED
        assert cleaned["url.query"] == f"token={REDACTED}&q=1"


def test_extra_keys_and_allowlist() -> None:
    custom = Scrubber(extra_words=["ssn"], allow=["session_count"])
    assert custom.scrub({"customer.ssn": "123"}) == {"customer.ssn": REDACTED}
    assert custom.scrub({"session_count": 3}) is None


def test_pseudonyms_are_stable_keyed_and_opaque() -> None:
    first = pseudonymize("k1", "user-42")
    assert first == pseudonymize("k1", "user-42")
    assert first != pseudonymize("k2", "user-42")
    assert first != pseudonymize("k1", "user-43")
    assert "user-42" not in first and len(first) == 32


@pytest.mark.parametrize(
    ("dialect", "statement", "expected"),
    [
        # An apostrophe in a comment opens no literal; the comment stays readable.
        (
            None,
            "SELECT /* it's */ pw FROM u WHERE pw = 'hunter2'",
            "SELECT /* it's */ pw FROM u WHERE pw = ?",
        ),
        (
            None,
            "SELECT pw -- don't\nFROM u WHERE pw = 'hunter2'",
            "SELECT pw -- don't\nFROM u WHERE pw = ?",
        ),
        (
            "mysql",
            r"SELECT * FROM u WHERE pw = 'it\'s hunter2' AND a = 1",
            "SELECT * FROM u WHERE pw = ? AND a = 1",
        ),
        ("mysql", 'SELECT * FROM u WHERE pw = "hunter2"', "SELECT * FROM u WHERE pw = ?"),
        ("postgresql", "SELECT $$hunter2$$, $tag$more hunter2$tag$, $1", "SELECT ?, ?, $1"),
        (
            "postgresql",
            r"SELECT E'it\'s hunter2', " '"user".id FROM "user"',
            'SELECT ?, "user".id FROM "user"',
        ),
        ("sqlite", "SELECT 'a''b', 'hunter2'", "SELECT ?, ?"),
        # Cut open (or mis-read): the rest of the statement goes with it.
        (
            None,
            "SELECT * FROM u WHERE password_hash = 'hunter2",
            "SELECT * FROM u WHERE password_hash = ?",
        ),
        ("postgresql", "SELECT $x$hunter2", "SELECT ?"),
        # Dialect unknown: a backslash may or may not escape the quote, so nothing after it stays.
        (None, r"SELECT 'C:\', 'hunter2'", "SELECT ?"),
        (None, r"SELECT 'it\'s hunter2'", "SELECT ?"),
    ],
)
def test_sql_literals_go_whatever_quotes_comments_and_escapes_they_hold(
    dialect, statement: str, expected: str
) -> None:
    assert without_sql_literals(statement, dialect) == expected


def test_exported_sql_loses_literals_behind_comments_and_dollar_quotes() -> None:
    cleaned = scrubber.scrub({"db.query.text": "SELECT /* o'k */ $$hunter2$$, 'hunter3"})
    assert cleaned == {"db.query.text": "SELECT /* o'k */ ?, ?"}


SQLALCHEMY_MESSAGE = """(sqlite3.IntegrityError) UNIQUE constraint failed: users.name
[SQL: INSERT INTO users (name, pw, note) VALUES (?, ?, 'hunter3')]
[parameters: ('alice', 'hunter2', [1, 2]
, 'x]')]
(Background on this error at: https://sqlalche.me/e/20/gkpj)"""


def test_exception_text_loses_sql_parameters_literals_and_url_secrets() -> None:
    http_error = (
        "Client error '401 Unauthorized' for url "
        "'https://bob:pa55@api.example.com/v1/items?api_key=k3y&page=2'\n"
        "For more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/401"
    )
    cleaned = scrubber.scrub(
        {
            "exception.message": SQLALCHEMY_MESSAGE,
            "exception.stacktrace": f"Traceback ...\nhttpx.HTTPStatusError: {http_error}",
        }
    )
    assert cleaned is not None
    text = str(cleaned)
    for secret in ("alice", "hunter2", "hunter3", "x]", "pa55", "k3y"):
        assert secret not in text
    assert cleaned["exception.message"] == (
        "(sqlite3.IntegrityError) UNIQUE constraint failed: users.name\n"
        "[SQL: INSERT INTO users (name, pw, note) VALUES (?, ?, ?)]\n"
        f"[parameters: {REDACTED}]\n"
        "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
    )
    assert "page=2" in cleaned["exception.stacktrace"]


def test_parameters_whose_end_cannot_be_told_take_the_rest_of_the_text() -> None:
    message = "boom\n[parameters: ('alice', 'hunter2')] and then\nmore"
    assert scrubber.scrub_text(message) == f"boom\n[parameters: {REDACTED}]"


@pytest.mark.parametrize(
    ("detail", "kept"),
    [
        (
            "DETAIL:  Key (email)=(alice@example.com) already exists.",
            f"DETAIL:  Key (email)=({REDACTED}) already exists.",
        ),
        (
            'DETAIL:  Key (a, b)=(1, (2)) is not present in table "t".',
            f'DETAIL:  Key (a, b)=({REDACTED}) is not present in table "t".',
        ),
        (
            "DETAIL:  Failing row contains (1, ann, s3cret, null).",
            f"DETAIL:  Failing row contains ({REDACTED}).",
        ),
    ],
)
def test_the_row_a_database_quotes_in_a_constraint_error_is_redacted(detail, kept) -> None:
    # PostgreSQL's own detail line quotes the offending row, beside SQLAlchemy's parameters.
    message = f"(psycopg.errors.UniqueViolation) duplicate key\n{detail}\n[SQL: INSERT ...]"
    assert scrubber.scrub_text(message) == (
        f"(psycopg.errors.UniqueViolation) duplicate key\n{kept}\n[SQL: INSERT ...]"
    )


def test_status_descriptions_are_scrubbed_for_in_process_readers() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
    from opentelemetry.trace import Status, StatusCode

    from o11ykit.privacy import scrubbed

    ended: list = []

    class Keep(SpanExporter):
        def export(self, spans):
            ended.extend(spans)

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.set_status(Status(StatusCode.ERROR, SQLALCHEMY_MESSAGE))
    [clean] = scrubbed(ended, scrubber)
    assert "hunter2" not in clean.status.description
    assert clean.status.status_code is StatusCode.ERROR


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/x?a=1;token=S", f"https://h/x?a=1;token={REDACTED}"),
        ("https://h/cb#access_token=S&state=1", f"https://h/cb#access_token={REDACTED}&state=1"),
        ("https://ghp_S@github.com/o/r.git", f"https://{REDACTED}@github.com/o/r.git"),
        ("https://bob:S@h/x", f"https://bob:{REDACTED}@h/x"),
        ("https://maps.example/js?key=S&v=3", f"https://maps.example/js?key={REDACTED}&v=3"),
        ("https://blob/c?sv=2024&sig=S", f"https://blob/c?sv=2024&sig={REDACTED}"),
        ("https://app/cb?code=S&state=1", f"https://app/cb?code={REDACTED}&state=1"),
        (
            "https://s3/o?AWSAccessKeyId=S&Expires=1",
            f"https://s3/o?AWSAccessKeyId={REDACTED}&Expires=1",
        ),
        ("/cart?key=S&item=3", f"/cart?key={REDACTED}&item=3"),
        ("https://h/x?q=a%20b&page=2", "https://h/x?q=a%20b&page=2"),  # untouched, encoding too
    ],
)
def test_url_secrets_in_every_part_of_a_url(url: str, expected: str) -> None:
    assert scrubber.scrub_value("url.full", url) == expected


def test_short_parameter_names_are_not_secret_attribute_keys() -> None:
    assert scrubber.scrub({"cache.key": "products:7", "http.response.status_code": 200}) is None


def test_bearer_credentials_are_found_in_any_case() -> None:
    cleaned = scrubber.scrub({"message": "sent BEARER abcdefghijkl upstream"})
    assert cleaned == {"message": f"sent {REDACTED} upstream"}
