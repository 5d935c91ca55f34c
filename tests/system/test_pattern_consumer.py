"""zb-consumer --pattern (local EventBridge pattern filter) and zbctl test-pattern.

The expected events are computed in Python from what a plain --prefix '' consumer
printed, with a predicate equivalent to the pattern; the --pattern consumer must
print exactly those, in the same order. A marker event that matches, put after the
seeded producer run, ends each consumer (--count expected + 1), so an event that
should have been filtered cannot hide after the last expected one."""

import json
import re

import pytest

from conftest import wait_for

SALES_STORE_2 = {"detail-type": ["sales-events"],
                 "detail": {"sales": [{"numeric": [">", 50]}], "store_id": ["store_2"]}}

# detail-type with an operator, $or at the top: the consumer must subscribe to everything
MIXED = {"detail-type": [{"prefix": "sales-"}, "inventory-events"],
         "detail": {"store_id": ["store_2", "store_3"],
                    "category": [{"anything-but": "Groceries"}]},
         "$or": [{"detail": {"sales": [{"numeric": [">", 50]}]}},
                 {"detail": {"is_return": [True]}}]}


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def matches_sales_store_2(e):
    d = e.get("detail", {})
    return (e["detail-type"] == "sales-events" and is_number(d.get("sales"))
            and d["sales"] > 50 and d.get("store_id") == "store_2")


def matches_mixed(e):
    d = e.get("detail", {})
    return ((e["detail-type"].startswith("sales-") or e["detail-type"] == "inventory-events")
            and d.get("store_id") in ("store_2", "store_3")
            and "category" in d and d["category"] != "Groceries"
            and ((is_number(d.get("sales")) and d["sales"] > 50) or d.get("is_return") is True))


def put_marker(zb, b, detail):
    p = zb.zbctl(b, "put", "--source", "zbridge.test", "--detail-type", "sales-events",
                 "--detail", json.dumps(detail))
    assert p.returncode == 0, p.stderr()
    return json.loads(p.stdout_lines()[-1])["results"][0]["seq"]


def everything(zb, b, total):
    """All `total` events of the journal, as a plain consumer prints them."""
    plain = zb.consumer("zb-consumer", b, "--prefix", "", "--from", "earliest",
                        "--count", total)
    assert plain.wait(30) == 0, plain.stderr()
    events = plain.json_lines()
    assert len(events) == total
    return events


def summary_line(p):
    lines = [l for l in p.stderr_lines() if "stopping (" in l]
    assert lines, p.stderr()
    return dict(kv.split("=", 1) for kv in re.findall(r"\b\w+=\S+", lines[-1]))


@pytest.mark.timeout(90)
def test_pattern_consumer_gets_exactly_the_matching_events(zb):
    b = zb.broker()
    # Started first, from earliest: it subscribes to everything (prefix "")
    pat = zb.consumer("zb-consumer", b, "--from", "earliest", "--pattern", json.dumps(MIXED),
                      "--count", 1000000)
    wait_for(lambda: b.stats().get("prefix_subscriptions", 0) >= 1, 5,
             what="the --pattern consumer's prefix subscription")
    assert b.subscribers("sales-events") == 0 and b.subscribers("inventory-events") == 0

    _, rep = zb.producer(b, "-n", 400, "--seed", 11, "--quiet")
    assert rep["acked"] == 400, rep
    marker = {"store_id": "store_3", "category": "Marker", "sales": 99.5}
    marker_seq = put_marker(zb, b, marker)
    assert marker_seq == 401

    events = everything(zb, b, 401)
    expected = [e["id"] for e in events if matches_mixed(e)]
    assert events[-1]["id"] == expected[-1]         # the marker matches
    assert 10 < len(expected) < 300, len(expected)  # the pattern really filters

    wait_for(lambda: len(pat.stdout_lines()) >= len(expected), 20,
             what="%d matching events at the --pattern consumer" % len(expected))
    pat.stop()
    got = pat.json_lines()
    assert [e["id"] for e in got] == expected
    s = summary_line(pat)
    assert int(s["received"]) == len(expected)
    assert int(s["filtered"]) == 401 - len(expected)
    assert int(s["position"]) == 401


@pytest.mark.timeout(90)
def test_pattern_pinning_detail_type_subscribes_exactly(zb, tmp_path):
    b = zb.broker()
    state = str(tmp_path / "state")
    pat = zb.consumer("zb-consumer", b, "--pattern", json.dumps(SALES_STORE_2),
                      "--state-dir", state, "--name", "big-sales")
    b.wait_subscribers({"sales-events": 1})
    stats = b.stats()
    assert stats.get("prefix_subscriptions", 0) == 0, stats
    assert b.subscribers("inventory-events") == 0

    _, rep = zb.producer(b, "-n", 400, "--seed", 5, "--quiet")
    assert rep["acked"] == 400, rep
    put_marker(zb, b, {"store_id": "store_2", "sales": 51})
    events = everything(zb, b, 401)
    expected = [e["id"] for e in events if matches_sales_store_2(e)]
    assert events[-1]["id"] == expected[-1]
    assert 5 < len(expected) < 200, len(expected)

    wait_for(lambda: len(pat.stdout_lines()) >= len(expected), 20,
             what="%d matching events at the --pattern consumer" % len(expected))
    assert pat.stop() == 0
    assert [e["id"] for e in pat.json_lines()] == expected
    s = summary_line(pat)
    assert int(s["received"]) == len(expected)
    sales = sum(1 for e in events if e["detail-type"] == "sales-events")
    assert int(s["filtered"]) == sales - len(expected)
    # filtered events moved the checkpoint too: a restart resumes after the marker
    with open(str(tmp_path / "state" / "big-sales.checkpoint")) as f:
        assert "position 401" in f.read().split("\n")


@pytest.mark.timeout(60)
def test_pattern_with_topic_subscribes_to_the_union(zb):
    b = zb.broker()
    p = zb.consumer("zb-consumer", b, "--topic", "inventory-events",
                    "--pattern", json.dumps(SALES_STORE_2), "--count", 1)
    b.wait_subscribers({"sales-events": 1, "inventory-events": 1})
    assert b.stats().get("prefix_subscriptions", 0) == 0
    # the pattern filters the --topic events too
    put_marker(zb, b, {"store_id": "store_2", "sales": 10})          # filtered
    p2 = zb.zbctl(b, "put", "--source", "zbridge.test", "--detail-type", "inventory-events",
                  "--detail", json.dumps({"store_id": "store_2", "sales": 80}))
    assert p2.returncode == 0, p2.stderr()
    seq = put_marker(zb, b, {"store_id": "store_2", "sales": 60})    # matches
    assert p.wait(20) == 0, p.stderr()
    got = p.json_lines()
    assert [e["detail"] for e in got] == [{"store_id": "store_2", "sales": 60}]
    s = summary_line(p)
    assert s["received"] == "1" and s["filtered"] == "2" and int(s["position"]) == seq


@pytest.mark.parametrize("pattern, where", [
    ('{"detail":{"sales":[{"numeric":[">"]}]}}', "detail.sales"),
    ('{"detail-type":"sales-events"}', "detail-type"),
    ('{"detail":{"sales":[{"numric":[">",1]}]}}', "numric"),
    ('{"detail": ', "line 1"),
    ('[]', ""),
])
def test_invalid_pattern_is_a_usage_error(zb, pattern, where):
    p = zb.run("zb-consumer", "--connect", "tcp://127.0.0.1:1", "--pattern", pattern,
               timeout=10)
    assert p.returncode == 2
    err = p.stderr()
    assert "zb-consumer: --pattern is not a valid event pattern: " in err
    assert where in err
    assert p.stdout() == ""


def test_pattern_given_twice_is_a_usage_error(zb):
    p = zb.run("zb-consumer", "--pattern", '{"a":[1]}', "--pattern", '{"b":[1]}', timeout=10)
    assert p.returncode == 2
    assert "only once" in p.stderr()


def test_pattern_only_in_zb_consumer(zb):
    p = zb.run("zb-dispatch", "--pattern", '{"a":[1]}', timeout=10)
    assert p.returncode == 2


def test_consumer_help_documents_pattern(zb):
    p = zb.run("zb-consumer", "--help", timeout=10)
    assert p.returncode == 0
    out = p.stdout()
    assert "--pattern JSON" in out and '"filtered"' in out
    assert '"store_id":["store_2"]' in out


# --- zbctl test-pattern ------------------------------------------------------------

EVENT = {"version": "0", "id": "6f1c2b1e-0d5a-4c1e-9a0b-1f2e3d4c5b6a",
         "detail-type": "sales-events", "source": "zbridge.store-producer",
         "account": "000000000000", "time": "2026-11-26T17:15:01Z", "region": "local",
         "resources": [], "detail": {"store_id": "store_2", "category": "Tablets",
                                     "sales": 72.5, "is_return": True}}


def run_test_pattern(zb, pattern, event):
    return zb.run("zbctl", "test-pattern", "--pattern", pattern, "--event", event, timeout=10)


@pytest.mark.parametrize("pattern", [
    SALES_STORE_2,
    {"detail": {"sales": [{"numeric": [">=", 72.5, "<", 73]}]}},
    {"detail": {"category": [{"anything-but": ["Groceries", "Shoes"]}]}},
    {"source": [{"prefix": "zbridge."}], "detail": {"is_return": [True]}},
    {"detail": {"sales": [7.25e1]}},                       # numbers by value
    {"$or": [{"detail": {"store_id": ["store_9"]}}, {"region": ["local"]}]},
    {"detail": {"missing": [{"exists": False}]}},
])
def test_zbctl_test_pattern_true(zb, pattern):
    p = run_test_pattern(zb, json.dumps(pattern), json.dumps(EVENT))
    assert p.returncode == 0, p.stderr()
    assert p.stdout() == "true\n"


@pytest.mark.parametrize("pattern", [
    {"detail-type": ["inventory-events"]},
    {"detail": {"sales": [{"numeric": [">", 80]}]}},
    {"detail": {"sales": ["72.5"]}},                       # types are distinct
    {"detail": {"category": [{"anything-but": "Tablets"}]}},
    {"detail": {"missing": [""]}},                         # "" never matches missing
    {"detail": {"store_id": [{"exists": False}]}},
])
def test_zbctl_test_pattern_false(zb, pattern):
    p = run_test_pattern(zb, json.dumps(pattern), json.dumps(EVENT))
    assert p.returncode == 1, p.stderr()
    assert p.stdout() == "false\n"


@pytest.mark.parametrize("pattern, event, message", [
    ('{"detail":{"sales":[{"numeric":["<",1,">",2]}]}}', json.dumps(EVENT),
     "--pattern is not a valid event pattern: detail.sales"),
    ('{"detail":{"sales":[]}}', json.dumps(EVENT),
     "--pattern is not a valid event pattern: detail.sales"),
    ('{"a": [1], "a": [2]}', json.dumps(EVENT), "duplicate key"),
    (json.dumps(SALES_STORE_2), '{"detail": {', "--event is not valid JSON: line 1"),
    (json.dumps(SALES_STORE_2), '["sales-events"]', "--event must be a JSON object"),
])
def test_zbctl_test_pattern_invalid(zb, pattern, event, message):
    p = run_test_pattern(zb, pattern, event)
    assert p.returncode == 2
    assert message in p.stderr()
    assert p.stdout() == ""


def test_zbctl_test_pattern_needs_both(zb):
    p = zb.run("zbctl", "test-pattern", "--pattern", '{"a":[1]}', timeout=10)
    assert p.returncode == 2 and "needs --event" in p.stderr()
    p = zb.run("zbctl", "test-pattern", "--event", json.dumps(EVENT), timeout=10)
    assert p.returncode == 2 and "needs --pattern" in p.stderr()


def test_zbctl_help_documents_test_pattern(zb):
    p = zb.run("zbctl", "--help", timeout=10)
    assert p.returncode == 0 and "test-pattern --pattern JSON --event JSON" in p.stdout()
