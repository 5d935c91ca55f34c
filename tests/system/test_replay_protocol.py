"""REPLAY, CREDIT, CANCEL, JOURNAL and heartbeats on the wire (PROTOCOL.md,
"Reliability"), checked with the Python client alone: the broker never sends more events
than the credit granted, END carries last/head/oldest/count, a cancelled session sends
nothing more, bad REPLAY bodies get ERROR and the control socket keeps answering whatever
it is sent; heartbeats carry the heads; sequence numbers continue across a restart with a
journal and restart at 1 with --memory, whose bounded ring still serves replays."""

import json
import os
import re
import signal
import time

import pytest

from conftest import replay_all, wait_for
from zbclient import HEARTBEAT_TOPIC, Client, ZbTimeout, pack

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def fill(b, count, start=0):
    """PUT count events, two of every three sales-events, the rest inventory-events;
    detail {"n": start + i}. Returns the results in order."""
    entries = [{"source": "zbridge.test",
                "detail-type": "inventory-events" if (start + i) % 3 == 2 else "sales-events",
                "detail": {"n": start + i}} for i in range(count)]
    batches = [entries[i:i + 100] for i in range(0, count, 100)]
    with Client(b.ingest, timeout=10) as c:
        replies = c.put_pipelined(batches, window=8)
    results = [r for rep in replies for r in rep["results"]]
    assert all("seq" in r for r in results), [r for r in results if "seq" not in r][:3]
    return results


def recv_events(c, corr, n, timeout=5.0):
    """Exactly n EVENTs of session corr (each within timeout)."""
    out = []
    for _ in range(n):
        status, got_corr, value = c.recv_replay(timeout)
        assert got_corr == corr, (status, got_corr, corr)
        assert status == "EVENT", (status, value, "after %d events" % len(out))
        out.append(value)
    return out


def assert_quiet(c, seconds=0.5):
    try:
        frames = c.recv_frames(seconds)
    except ZbTimeout:
        return
    raise AssertionError("unexpected message: %r" % (frames[:2],))


def recv_end(c, corr, timeout=5.0):
    status, got_corr, value = c.recv_replay(timeout)
    assert (status, got_corr) == ("END", corr), (status, value)
    return value


@pytest.mark.timeout(60)
def test_credit_is_never_exceeded(zb):
    b = zb.broker()
    fill(b, 100)
    c = b.control_client(timeout=5)
    corr = c.send_replay({"from": 1, "credit": 10})
    got = recv_events(c, corr, 10)
    assert_quiet(c)
    c.send_credit(corr, 25)
    got += recv_events(c, corr, 25)
    assert_quiet(c)
    c.send_credit(corr, 1)
    got += recv_events(c, corr, 1)
    assert_quiet(c)
    c.send_credit(corr, 1000)
    got += recv_events(c, corr, 64)
    end = recv_end(c, corr)
    assert [e.seq for e in got] == list(range(1, 101))
    assert (end.last, end.head, end.oldest, end.count) == (100, 100, 1, 100), end.body
    # after END the session is closed: more credit brings nothing
    c.send_credit(corr, 10)
    assert_quiet(c, 0.3)
    assert c.ping()["seq"] == 100


@pytest.mark.timeout(60)
def test_end_needs_no_credit_and_empty_ranges_end_at_once(zb):
    b = zb.broker()
    fill(b, 50)
    c = b.control_client(timeout=5)
    # exactly as much credit as events: END follows without more credit
    corr = c.send_replay({"from": 11, "to": 30, "credit": 20})
    got = recv_events(c, corr, 20)
    end = recv_end(c, corr)
    assert [e.seq for e in got] == list(range(11, 31))
    assert (end.last, end.head, end.oldest, end.count) == (30, 50, 1, 20), end.body
    # nothing after the head: END at once, count 0, last = head
    corr = c.send_replay({"from": 51, "credit": 1})
    end = recv_end(c, corr)
    assert (end.count, end.last, end.head) == (0, 50, 50), end.body


@pytest.mark.timeout(60)
def test_replay_ranges_and_filters(zb):
    b = zb.broker()
    res = fill(b, 300)
    sales = [r["seq"] for i, r in enumerate(res) if i % 3 != 2]
    inventory = [r["seq"] for i, r in enumerate(res) if i % 3 == 2]
    c = Client(b.control, timeout=5)
    try:
        # defaults: from the oldest to the head at the request
        events, end = c.replay(credit=64)
        assert [e.seq for e in events] == list(range(1, 301))
        by_seq = sorted(res, key=lambda r: r["seq"])    # topic by topic within a request
        assert [e.event["id"] for e in events] == [r["id"] for r in by_seq]
        assert (end.last, end.head, end.oldest, end.count) == (300, 300, 1, 300)
        n_of = {r["id"]: n for n, r in enumerate(res)}
        for e in events:            # frames as published: 9 keys, topic = detail-type
            assert e.topic == e.event["detail-type"]
            assert e.event["detail"]["n"] == n_of[e.event["id"]]

        events, end = c.replay(frm=120, to=200, credit=7)
        assert [e.seq for e in events] == list(range(120, 201))
        assert end.last == 200 and end.count == 81 and end.head == 300

        events, end = c.replay(topics=["sales-events"], credit=50)
        assert [e.seq for e in events] == sales
        assert [e.topic_seq for e in events] == list(range(1, len(sales) + 1))
        assert end.count == len(sales) and end.last == 300

        events, end = c.replay(prefixes=["inv"], frm=100, credit=1000)
        assert [e.seq for e in events] == [s for s in inventory if s >= 100]

        events, _ = c.replay(topics=["inventory-events"], prefixes=["sales-"], credit=1000)
        assert [e.seq for e in events] == list(range(1, 301))

        events, end = c.replay(topics=["no-such-topic"], credit=10)
        assert events == [] and end.count == 0 and end.last == 300

        # two sessions interleaved on one connection, told apart by correlation id
        a = c.send_replay({"from": 1, "to": 40, "credit": 100}, corr=b"session-a")
        z = c.send_replay({"from": 201, "to": 240, "credit": 100}, corr=b"session-z")
        seen = {a: [], z: []}
        ends = {}
        deadline = time.monotonic() + 10
        while len(ends) < 2 and time.monotonic() < deadline:
            status, corr, value = c.recv_replay(5)
            if status == "EVENT":
                seen[corr].append(value.seq)
            else:
                assert status == "END", (status, value)
                ends[corr] = value
        assert seen[a] == list(range(1, 41)) and seen[z] == list(range(201, 241))
        assert ends[a].count == 40 and ends[z].count == 40
    finally:
        c.close()


@pytest.mark.timeout(60)
def test_replay_from_time(zb):
    b = zb.broker()
    fill(b, 30)
    time.sleep(0.2)
    t = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)
    time.sleep(0.2)
    fill(b, 20, start=30)
    c = b.control_client(timeout=5)
    events, end = c.replay(from_time=stamp, credit=100)
    assert [e.seq for e in events] == list(range(31, 51)), stamp
    events, end = c.replay(from_time="2000-01-01T00:00:00Z", credit=100)
    assert len(events) == 50
    events, end = c.replay(from_time="2999-01-01T00:00:00Z", credit=100)
    assert events == [] and end.count == 0


@pytest.mark.timeout(60)
def test_cancel_stops_a_session(zb):
    b = zb.broker()
    fill(b, 500)
    c = b.control_client(timeout=5)
    corr = c.send_replay({"credit": 10})
    recv_events(c, corr, 10)
    c.send_cancel(corr)
    c.send_credit(corr, 1000)       # to a cancelled session: nothing, no reply
    assert_quiet(c, 0.5)
    # the connection still serves: a ping and a new session with the same correlation
    assert c.ping()["seq"] == 500
    corr2 = c.send_replay({"from": 495, "credit": 10}, corr=corr)
    got = recv_events(c, corr2, 6)
    assert [e.seq for e in got] == list(range(495, 501))
    assert recv_end(c, corr2).count == 6


BAD_BODIES = {
    "from-string": {"from": "1", "credit": 10},
    "from-negative": {"from": -1, "credit": 10},
    "from-float": {"from": 1.5, "credit": 10},
    "to-string": {"to": "5", "credit": 10},
    "credit-zero": {"credit": 0},
    "credit-too-big": {"credit": 100001},
    "credit-string": {"credit": "10"},
    "topics-string": {"topics": "sales-events", "credit": 10},
    "topics-of-ints": {"topics": [1, 2], "credit": 10},
    "prefixes-map": {"prefixes": {"a": 1}, "credit": 10},
    "from-time-bad": {"from-time": "yesterday", "credit": 10},
    "from-time-int": {"from-time": 12345, "credit": 10},
}


@pytest.mark.timeout(60)
def test_bad_replay_bodies_get_invalid_argument(zb):
    b = zb.broker()
    fill(b, 10)
    c = b.control_client(timeout=5)
    for name, body in sorted(BAD_BODIES.items()):
        corr = c.send_replay(body, corr=name.encode())
        status, got_corr, value = c.recv_replay(5)
        assert (status, got_corr) == ("ERROR", corr), (name, status, value)
        assert value.get("code") == "InvalidArgument", (name, value)
        assert isinstance(value.get("message"), str) and value["message"], (name, value)
    # a body that is not msgpack, or not a map: MalformedRequest (request-level table)
    for name, raw in (("not-msgpack", b"\xc1"), ("two-values", pack(1) + pack(2)),
                      ("array", pack([1, 2])), ("string", pack("from 1"))):
        corr = c.send_replay(raw, corr=name.encode())
        status, got_corr, value = c.recv_replay(5)
        assert (status, got_corr, value.get("code")) == ("ERROR", corr, "MalformedRequest"), \
            (name, status, value)
    # and the socket still serves
    events, end = c.replay(credit=100)
    assert len(events) == 10 and end.count == 10


@pytest.mark.timeout(60)
def test_garbage_on_the_control_socket_is_answered(zb):
    b = zb.broker()
    fill(b, 5)
    c = b.control_client(timeout=5)
    garbage = [
        [b"REPLAY"],
        [b"REPLAY", b"x"],
        [b"REPLAY", b"x", pack({"credit": 1}), b"extra"],
        [b"REPLAY", b"y" * 256, pack({"credit": 1})],
        [b"\xff\xfe\x00", b"c", b""],
        [b"EVENT", b"c", b""],
        [b"END", b"c", pack({})],
        [b"replay", b"c", pack({"credit": 1})],
        [b"PUT", b"c", pack([{"source": "s", "detail-type": "t", "detail": {}}])],
    ]
    for frames in garbage:
        c.send_frames(frames)
        reply = c.recv_reply(5)
        assert reply.status == "ERROR", (frames, reply)
        assert reply.body.get("code") in ("MalformedRequest", "UnknownCommand",
                                          "InvalidArgument"), (frames, reply)
    # CREDIT and CANCEL for sessions that do not exist, and malformed ones: no reply
    # is promised; whatever comes must be an ERROR, and the socket keeps serving
    for frames in ([b"CREDIT", b"nosuch", pack({"credit": 5})], [b"CANCEL", b"nosuch", b""],
                   [b"CREDIT", b"nosuch", b"\xc1"], [b"CREDIT"], [b"CANCEL", b"", b"", b""]):
        c.send_frames(frames)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            frames = c.recv_frames(0.2)
        except ZbTimeout:
            continue
        assert frames[0] == b"ERROR", frames
    assert c.ping()["seq"] == 5
    events, end = c.replay(credit=3)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert b.proc.alive()


@pytest.mark.timeout(60)
def test_heartbeats_carry_the_heads(zb):
    b = zb.broker("--heartbeat-ms", 100)
    sub = b.subscriber()
    sub.subscribe_heartbeat()
    hb = sub.recv_heartbeat(5)
    assert (hb.seq, hb.oldest, hb.topics) == (0, 0, {}), hb
    assert hb.header_seq == hb.seq and hb.header_topic_seq == 0, hb
    assert RFC3339_Z.match(hb.time), hb.time
    res = fill(b, 30)
    n_sales = sum(1 for i in range(30) if i % 3 != 2)

    seen = []

    def caught_up():
        h = sub.recv_heartbeat(3)
        seen.append(h)
        return h.seq == 30
    wait_for(caught_up, 5, 0, "a heartbeat with seq 30")
    hb = seen[-1]
    assert hb.header_seq == 30 and hb.oldest == 1
    assert hb.topics == {"sales-events": n_sales, "inventory-events": 30 - n_sales}, hb
    assert res[-1]["seq"] == 30
    # about every 100 ms: at least 5 in the next 1.5 s (a loose functional check)
    t0 = time.monotonic()
    count = 0
    while time.monotonic() - t0 < 1.5:
        try:
            sub.recv_heartbeat(max(0.05, 1.5 - (time.monotonic() - t0)))
            count += 1
        except ZbTimeout:
            break
    assert count >= 5, "%d heartbeats in 1.5 s at --heartbeat-ms 100" % count
    # a subscriber to topics only never sees them; one to everything skips "$" topics
    quiet = b.subscriber()
    quiet.subscribe("", prefix=True)
    time.sleep(0.5)
    with pytest.raises(ZbTimeout):
        quiet.recv(0.5)


JOURNAL_KEYS = {"backend", "path", "sync", "head", "oldest", "events", "bytes",
                "retain_hours", "retain_mb", "topics"}


@pytest.mark.timeout(60)
def test_journal_command_and_zbctl(zb):
    b = zb.broker("--sync", "os", "--retain-hours", 5, "--retain-mb", 100)
    fill(b, 30)
    with Client(b.control) as c:
        j = c.journal()
        stats = c.stats()
    assert JOURNAL_KEYS <= set(j), j
    assert j["backend"] == "lmdb" and j["sync"] == "os"
    assert os.path.realpath(j["path"]) == os.path.realpath(b.data_dir), (j["path"], b.data_dir)
    assert (j["head"], j["oldest"], j["events"]) == (30, 1, 30), j
    assert j["bytes"] > 30 * 50, j
    assert (j["retain_hours"], j["retain_mb"]) == (5, 100), j
    assert j["topics"] == {"sales-events": 20, "inventory-events": 10}, j
    assert stats["journal"]["head"] == 30 and stats["journal"]["backend"] == "lmdb"
    assert "journal=" in [l for l in b.proc.stderr_lines() if " ready " in l][0]

    p = zb.zbctl(b, "journal", "--json")
    assert p.returncode == 0, p.stderr()
    j2 = json.loads(p.stdout_lines()[-1])
    assert j2["head"] == 30 and j2["topics"] == j["topics"]
    p = zb.zbctl(b, "journal")
    assert p.returncode == 0, p.stderr()
    text = p.stdout()
    assert "30" in text and "sales-events" in text and "inventory-events" in text, text


@pytest.mark.timeout(60)
def test_sequence_continues_across_a_restart(zb):
    b = zb.broker()
    fill(b, 30)
    b2 = zb.restart_broker(b, sig=signal.SIGTERM)
    assert b.proc.returncode == 0
    sub = b2.subscriber()
    sub.subscribe("sales-events")
    sub.subscribe("inventory-events")
    sub.subscribe_heartbeat()
    b2.wait_subscribers({"sales-events": 1, "inventory-events": 1})
    hb = sub.recv_heartbeat(5)
    assert hb.seq == 30 and hb.topics == {"sales-events": 20, "inventory-events": 10}, hb
    assert b2.ping()["seq"] == 30
    res = fill(b2, 3, start=30)
    assert [r["seq"] for r in res] == [31, 32, 33]
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 3 and time.monotonic() < deadline:
        ev = sub.recv(5)
        if ev.topic != HEARTBEAT_TOPIC:
            got.append(ev)
    assert [(e.seq, e.topic, e.topic_seq) for e in got] == [
        (31, "sales-events", 21), (32, "sales-events", 22), (33, "inventory-events", 11)]
    events, end = replay_all(b2)
    assert [e.seq for e in events] == list(range(1, 34))


@pytest.mark.timeout(60)
def test_memory_ring_serves_replay_and_restarts_at_one(zb):
    b = zb.broker("--memory", "--memory-events", 100)
    fill(b, 250)
    with Client(b.control) as c:
        j = c.journal()
        assert (j["backend"], j["sync"]) == ("memory", "none"), j
        assert (j["head"], j["oldest"], j["events"]) == (250, 151, 100), j
        events, end = c.replay(frm=1, credit=30)
    assert [e.seq for e in events] == list(range(151, 251))
    assert (end.oldest, end.head, end.count) == (151, 250, 100)
    assert "journal=memory" in [l for l in b.proc.stderr_lines() if " ready " in l][0]

    b2 = zb.restart_broker(b)
    assert b2.ping()["seq"] == 0
    res = fill(b2, 2)
    assert [r["seq"] for r in res] == [1, 2]
