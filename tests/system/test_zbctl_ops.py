"""zbctl tail, replay and stats (--watch, rates, connections) against a live broker,
and against none."""

import json
import signal

import pytest

from conftest import entry, free_port, wait_for
from zbclient import Client


def ctl(zb, b, *args):
    """zbctl with all three endpoints of broker b."""
    return zb.start("zbctl", "--control", b.control, "--ingest", b.ingest,
                    "--publish", b.publish, *args)


def run_ctl(zb, b, *args, timeout=30.0):
    p = ctl(zb, b, *args)
    p.wait(timeout)
    p._close_files()
    return p


def pretty_events(text):
    """The events of zbctl tail's indented output: JSON values one after another."""
    dec, out, i = json.JSONDecoder(), [], 0
    text = text.strip()
    while i < len(text):
        value, end = dec.raw_decode(text, i)
        out.append(value)
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
    return out


# --- tail -------------------------------------------------------------------------


def test_tail_topic_pretty_then_live(zb):
    b = zb.broker()
    with Client(b.ingest) as c:
        c.put([entry("sales-events", detail={"n": i}) for i in range(3)]
              + [entry("inventory-events")])
    p = run_ctl(zb, b, "tail", "sales-events", "--from", "earliest", "-n", "3")
    assert p.returncode == 0, p.stderr()
    events = pretty_events(p.stdout())
    assert [e["detail"]["n"] for e in events] == [0, 1, 2]
    assert all(e["detail-type"] == "sales-events" for e in events)
    assert len(p.stdout_lines()) > 3 * 5, "not indented: %r" % p.stdout()
    assert '"resources": []' in p.stdout()

    # live: started at latest, then events arrive
    t = ctl(zb, b, "tail", "sales-events", "inventory-events", "--json", "-n", "2")
    b.wait_subscribers({"sales-events": 1, "inventory-events": 1})
    with Client(b.ingest) as c:
        c.put([entry("inventory-events", detail={"live": 1}), entry("sales-events",
                                                                   detail={"live": 2})])
    assert t.wait(20) == 0, t.stderr()
    lines = t.json_lines()
    assert [e["detail"]["live"] for e in lines] == [1, 2]


def test_tail_rule_and_pattern(zb):
    b = zb.broker()
    with Client(b.control) as c:
        c.rule_put("big", '{"detail": {"sales": [{"numeric": [">", 50]}]}}')
    with Client(b.ingest) as c:
        c.put([entry("sales-events", detail={"sales": s, "store_id": st})
               for s, st in ((10, "a"), (60, "b"), (70, "a"), (5, "b"))])
    p = run_ctl(zb, b, "tail", "--rule", "big", "--from", "earliest", "--json", "-n", "2")
    assert p.returncode == 0, p.stderr()
    assert [e["detail"]["sales"] for e in p.json_lines()] == [60, 70]
    p = run_ctl(zb, b, "tail", "--pattern", '{"detail": {"store_id": ["b"]}}',
                "--from", "earliest", "--json", "-n", "2")
    assert p.returncode == 0, p.stderr()
    assert [e["detail"]["sales"] for e in p.json_lines()] == [60, 5]


def test_tail_stops_on_sigint(zb):
    b = zb.broker()
    t = ctl(zb, b, "tail", "sales-events")
    b.wait_subscribers({"sales-events": 1})
    t.send_signal(signal.SIGINT)
    assert t.wait(10) == 0, t.stderr()


def test_tail_bad_arguments(zb):
    b = zb.broker()
    for args in (["tail"], ["tail", "--from", "yesterday", "t"], ["tail", "--rule", "bad name"],
                 ["tail", "--pattern", "{not json"], ["tail", "--frob", "t"],
                 ["tail", "-n", "x", "t"], ["tail", "--timeout", "0", "t"]):
        p = run_ctl(zb, b, *args)
        assert p.returncode == 2, (args, p.returncode, p.stderr())
        assert p.stderr().startswith("zbctl"), p.stderr()
    p = run_ctl(zb, b, "tail", "--help")
    assert p.returncode == 0 and "Examples:" in p.stdout() and "Exit status" in p.stdout()


# --- replay -----------------------------------------------------------------------


def test_replay_to_stdout(zb):
    b = zb.broker()
    with Client(b.ingest) as c:
        results = c.put([entry("sales-events", detail={"i": i}) if i % 2 == 0
                         else entry("inventory-events", detail={"i": i})
                         for i in range(10)])["results"]
    # the journal's order is seq order (one request's entries are numbered topic by
    # topic: docs/PROTOCOL.md)
    by_seq = sorted((r["seq"], r["id"], i) for i, r in enumerate(results))
    assert [s for s, _, _ in by_seq] == list(range(1, 11))
    p = run_ctl(zb, b, "replay", "--from", "earliest")
    assert p.returncode == 0, p.stderr()
    assert [e["id"] for e in p.json_lines()] == [i for _, i, _ in by_seq]
    assert "zbctl: replay: 10 events" in p.stderr()

    p = run_ctl(zb, b, "replay", "--from", "3", "--to", "8", "--topic", "sales-events")
    assert p.returncode == 0, p.stderr()
    assert [e["detail"]["i"] for e in p.json_lines()] == \
        [i for s, _, i in by_seq if 3 <= s <= 8 and i % 2 == 0]

    p = run_ctl(zb, b, "replay", "--from", "seq:9")
    assert [e["detail"]["i"] for e in p.json_lines()] == [i for s, _, i in by_seq if s >= 9]

    # from a time: every event was received at or after a time before the puts
    p = run_ctl(zb, b, "replay", "--from", "time:2000-01-01T00:00:00Z", "--prefix", "inv")
    assert p.returncode == 0, p.stderr()
    assert [e["detail"]["i"] for e in p.json_lines()] == [1, 3, 5, 7, 9]

    # past the head: nothing, and that is fine
    p = run_ctl(zb, b, "replay", "--from", "100")
    assert p.returncode == 0 and p.stdout() == "", p.stderr()


def test_replay_into_topic_is_idempotent(zb):
    b = zb.broker()
    sub = b.subscriber()
    sub.subscribe("sales-copy")
    b.wait_subscribers({"sales-copy": 1})
    with Client(b.ingest) as c:
        originals = c.put([entry("sales-events", source="store-%d" % i, detail={"i": i},
                                 resources=["r%d" % i], time="2026-11-26T17:15:0%dZ" % i)
                           for i in range(5)] + [entry("other")])["results"]
    p = run_ctl(zb, b, "replay", "--from", "1", "--topic", "sales-events", "--into", "sales-copy")
    assert p.returncode == 0, p.stderr()
    assert "into sales-copy: 5 put, 0 duplicates, 0 refused" in p.stderr(), p.stderr()
    copies = sub.recv_all(5, timeout=5)
    for i, ev in enumerate(copies):
        e = ev.event
        assert e["detail-type"] == "sales-copy"
        assert e["source"] == "store-%d" % i and e["detail"] == {"i": i}
        assert e["resources"] == ["r%d" % i] and e["time"] == "2026-11-26T17:15:0%dZ" % i
        assert e["id"] not in {r["id"] for r in originals}
    # again: the idempotency keys make every entry a duplicate
    p = run_ctl(zb, b, "replay", "--from", "1", "--topic", "sales-events", "--into", "sales-copy")
    assert p.returncode == 0, p.stderr()
    assert "5 put" not in p.stderr() and "0 put, 5 duplicates" in p.stderr(), p.stderr()
    assert b.stats()["topics"]["sales-copy"]["in"] == 5


def test_replay_bad_arguments(zb):
    b = zb.broker()
    for args in (["replay"], ["replay", "--from", "0"], ["replay", "--from", "x"],
                 ["replay", "--from", "time:yesterday"], ["replay", "--from", "5", "--to", "2"],
                 ["replay", "--from", "1", "--into", "$rule/x"], ["replay", "--from", "1", "--into", ""],
                 ["replay", "--from", "1", "extra"], ["replay", "--from", "1", "--frob"],
                 ["replay", "--from", "1", "--topic", ""]):
        p = run_ctl(zb, b, *args)
        assert p.returncode == 2, (args, p.returncode, p.stderr())
        assert p.stderr().startswith("zbctl"), p.stderr()
    # more prefixes than the broker takes: ERROR InvalidArgument, exit 1
    many = [a for i in range(65) for a in ("--prefix", "p%d" % i)]
    p = run_ctl(zb, b, "replay", "--from", "1", *many)
    assert p.returncode == 1, p.stderr()
    assert "replay refused by %s" % b.control in p.stderr(), p.stderr()
    p = run_ctl(zb, b, "replay", "--help")
    assert p.returncode == 0 and "Examples:" in p.stdout() and "Exit status" in p.stdout()


# --- stats ------------------------------------------------------------------------


def test_stats_connections_lag_and_rates(zb):
    b = zb.broker()
    sub = b.subscriber()
    sub.subscribe("sales-events")
    b.wait_subscribers({"sales-events": 1})
    ingest = b.client()
    ingest.put([entry("sales-events")] * 30)
    # a replay session that stops for lack of credit: a consumer catching up
    control = b.control_client()
    corr = control.send_replay(Client.replay_body(frm=1, credit=10))
    wait_for(lambda: b.stats()["replay_sessions"] == 1, what="a replay session")
    # connections are counted from libzmq's socket monitor, whose events the broker
    # reads in its loop beside the requests: wait for them to arrive
    def connected():
        c = b.stats()["connections"]
        return c["publish"] >= 1 and c["ingest"] >= 1 and c["control"] >= 2
    wait_for(connected, 10, what="the connections counted (our clients, stats())")
    st = b.stats()
    assert st["producers_active"] == 1
    assert st["subscriptions"] == 1
    assert st["replay_requests"] == 1
    wait_for(lambda: b.stats()["replay_events"] == 10, what="10 events replayed")
    [session] = b.stats()["replay_clients"]
    assert session["sent"] == 10 and session["next"] == 11 and session["to"] == 30
    assert session["lag"] == 20
    control.send_cancel(corr)
    wait_for(lambda: b.stats()["replay_sessions"] == 0, what="the session closed")

    p = run_ctl(zb, b, "stats")
    assert p.returncode == 0, p.stderr()
    out = p.stdout()
    assert "connections: ingest 1 (1 producers active" in out, out
    assert "catch-up: 1 replay requests, 10 events replayed" in out, out
    row = [l.split() for l in out.splitlines() if l.startswith("sales-events ")][0]
    assert row[1:6] == ["30", "30", "0", "1", "30"]
    assert float(row[6]) > 0                    # average since the start
    assert "rates: average since the broker started" in out


def test_stats_watch_refreshes_until_sigint(zb):
    b = zb.broker()
    w = ctl(zb, b, "stats", "--watch", "1", "--json")
    wait_for(lambda: len(w.stdout_lines()) >= 1, timeout=10, what="the first refresh")
    with Client(b.ingest) as c:
        c.put([entry("watched")] * 7)
    wait_for(lambda: any(s.get("topics", {}).get("watched", {}).get("in") == 7
                         for s in w.json_lines()), timeout=10, what="a refresh with the events")
    w.send_signal(signal.SIGINT)
    assert w.wait(10) == 0, w.stderr()
    samples = w.json_lines()
    assert len(samples) >= 2
    for s in samples[1:]:
        assert "rates" in s and s["interval_s"] > 0
    moved = [s for s in samples[1:] if s["rates"].get("watched", {}).get("in", 0) > 0]
    first = [s for s in samples if "watched" in s["topics"]][0]
    # the refresh where the events first show has their rate over its interval
    if first is not samples[0]:
        assert moved and moved[0]["rates"]["watched"]["in"] == pytest.approx(
            7 / moved[0]["interval_s"], rel=0.01)

    # the table form too
    w = ctl(zb, b, "stats", "--watch", "1")
    wait_for(lambda: w.stdout().count("zbctl stats --watch 1") >= 2, timeout=10,
             what="two refreshes")
    w.send_signal(signal.SIGINT)
    assert w.wait(10) == 0, w.stderr()
    assert "rates: over the last" in w.stdout()


def test_stats_bad_watch(zb):
    b = zb.broker()
    for args in (["stats", "--watch=0"], ["stats", "--watch", "x"], ["stats", "--watch=abc"]):
        p = run_ctl(zb, b, *args)
        assert p.returncode == 2, (args, p.stderr())


# --- no broker --------------------------------------------------------------------


def test_unreachable_broker(zb):
    ep = "tcp://127.0.0.1:%d" % free_port()
    for cmd in (["tail", "sales-events"], ["replay", "--from", "1"],
                ["replay", "--from", "1", "--into", "x"], ["stats", "--watch", "1"],
                ["stats", "--json", "--watch"]):
        p = zb.run("zbctl", "--control", ep, "--ingest", ep, "--publish", ep,
                   "--timeout", "300", *cmd, timeout=10)
        assert p.returncode == 1, (cmd, p.returncode, p.stderr())
        assert "zbctl: no reply from %s within 300 ms" % ep in p.stderr(), (cmd, p.stderr())
