"""Scrubbing and pseudonymising: secrets never leave, and the marker never holds any of them."""

from __future__ import annotations

import pytest

from o11ykit.privacy import REDACTED, Scrubber, pseudonymize

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
