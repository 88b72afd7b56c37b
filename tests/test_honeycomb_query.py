"""The Query Data API client against a fake Honeycomb process: what it sends, how it polls,
and how it says why it cannot (so labs fall back to the link)."""

from __future__ import annotations

import time

import pytest

from o11ykit.backends.honeycomb_links import honeycomb_query_json
from o11ykit.backends.honeycomb_query import (
    HoneycombQueryError,
    QueryDataClient,
    QueryDataUnavailable,
    QueryTimeout,
)
from o11ykit.backends.query_spec import QuerySpec
from o11ykit.config import load_settings
from tests.conftest import free_port
from tests.support.honeycomb_fake import DEFAULT_ROWS, HoneycombFake

# serial: a query against a silent server must give up within a fixed time.
pytestmark = [pytest.mark.integration, pytest.mark.serial]

KEY = "FAKEconfigKEY0123456789"  # a configuration key's token has no type prefix
SPEC = QuerySpec(
    service="orders",
    group_by=["tenant.id"],
    errors_only=True,
    order_by=[("COUNT", "descending")],
)
QUERY = honeycomb_query_json(SPEC)


@pytest.fixture(scope="module")
def fake():
    with HoneycombFake() as fake:
        yield fake


def client(fake: HoneycombFake, **options) -> QueryDataClient:
    return QueryDataClient(KEY, base_url=fake.base_url, **options)


def test_three_steps_and_polling_until_complete(fake):
    fake.scenario("ok", polls_before_complete=2)
    result = client(fake).run("orders", QUERY, poll_interval_s=0.01)

    assert result.rows == [row["data"] for row in DEFAULT_ROWS]
    assert (result.query_id, result.result_id) == ("q1", "r1")
    assert result.query_url.endswith("/datasets/orders/result/r1")
    assert result.graph_image_url.endswith("/result/r1/snapshot")

    create_query, create_result, *polls = fake.requests()
    assert (create_query["method"], create_query["path"]) == ("POST", "/1/queries/orders")
    assert create_query["body"] == QUERY
    assert (create_result["method"], create_result["path"]) == ("POST", "/1/query_results/orders")
    assert create_result["body"] == {"query_id": "q1", "disable_series": True}
    assert [(p["method"], p["path"]) for p in polls] == [("GET", "/1/query_results/orders/r1")] * 3
    for sent in (create_query, create_result, *polls):
        assert sent["headers"]["x-honeycomb-team"] == KEY
        assert sent["headers"]["user-agent"].startswith("o11ykit/")
    assert create_query["headers"]["content-type"] == "application/json"


def test_run_spec_sends_the_links_own_query(fake):
    fake.scenario("ok", polls_before_complete=0, rows=[{"data": {"COUNT": 5}}])
    assert client(fake).run_spec(SPEC, "__all__").rows == [{"COUNT": 5}]
    assert fake.requests()[0]["path"] == "/1/queries/__all__"
    assert fake.requests()[0]["body"] == QUERY


def test_a_plan_without_query_data_is_unavailable_in_plain_words(fake):
    fake.scenario("no_query_data", forbidden_message="Query Data API requires the Enterprise plan")
    with pytest.raises(QueryDataUnavailable) as caught:
        client(fake).run("orders", QUERY)
    assert (caught.value.kind, caught.value.status) == ("not_allowed", 403)
    assert "plan does not include the Query Data API" in caught.value.reason
    assert KEY not in str(caught.value)


def test_a_key_without_the_permission_says_so(fake):
    fake.scenario("no_query_data", forbidden_message="API key missing permission: run queries")
    with pytest.raises(QueryDataUnavailable, match="Run Queries permission") as caught:
        client(fake).run("orders", QUERY)
    assert caught.value.kind == "not_allowed"


def test_a_bad_key_is_told_apart_from_a_missing_feature(fake):
    fake.scenario("bad_key")
    with pytest.raises(QueryDataUnavailable) as caught:
        client(fake).run("orders", QUERY)
    assert (caught.value.kind, caught.value.status) == ("bad_key", 401)
    assert "did not accept the API key" in caught.value.reason
    assert KEY not in str(caught.value)
    assert len(fake.requests()) == 1  # nothing more is tried with a refused key


def test_an_unknown_dataset(fake):
    fake.scenario("missing_dataset")
    with pytest.raises(QueryDataUnavailable, match="dataset not found") as caught:
        client(fake).run("nope", QUERY)
    assert caught.value.kind == "not_found"


def test_ingest_keys_are_refused_before_any_request(fake):
    fake.scenario("ok")
    ingest = QueryDataClient("hcxik_" + "0" * 58, base_url=fake.base_url)
    with pytest.raises(QueryDataUnavailable) as caught:
        ingest.run("orders", QUERY)
    assert caught.value.kind == "not_a_query_key"
    assert fake.requests() == []


def test_polling_is_bounded(fake):
    fake.scenario("never_complete")
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"not complete after 0\.6 s"):
        client(fake).run("orders", QUERY, deadline_s=0.6, poll_interval_s=0.05)
    assert time.monotonic() - started < 1.5
    assert len(fake.requests()) >= 4  # it did poll, more than once


def test_a_stalled_answer_is_bounded_by_the_request_timeout(fake):
    fake.scenario("stall", stall_s=3)
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"did not answer POST /1/queries/orders within 0\.3 s"):
        client(fake, timeout=0.3).run("orders", QUERY)
    assert time.monotonic() - started < 1.5


def test_nothing_listening():
    offline = QueryDataClient(KEY, base_url=f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(HoneycombQueryError, match="cannot reach Honeycomb") as caught:
        offline.run("orders", QUERY)
    assert not isinstance(caught.value, QueryDataUnavailable)


def test_region_hosts_settings_and_a_hidden_key():
    assert QueryDataClient(KEY).base_url == "https://api.honeycomb.io"
    assert QueryDataClient(KEY, region="eu").base_url == "https://api.eu1.honeycomb.io"
    assert KEY not in repr(QueryDataClient(KEY))
    with pytest.raises(ValueError, match="region"):
        QueryDataClient(KEY, region="ap")
    with pytest.raises(ValueError, match="header") as refused:
        QueryDataClient(KEY + "\r\nX-Evil: 1")
    assert KEY not in str(refused.value)
    eu = load_settings({"honeycomb_api_key": KEY, "honeycomb_region": "eu"}, environ={})
    assert QueryDataClient.from_settings(eu).base_url == "https://api.eu1.honeycomb.io"
    with pytest.raises(QueryDataUnavailable) as caught:
        QueryDataClient.from_settings(load_settings(environ={}))
    assert caught.value.kind == "no_key"
