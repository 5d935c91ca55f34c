"""The consumers (zb-consumer, zb-dispatch, zb-warehouse) on their own: gap detection,
malformed messages, odd events, an unreachable control socket.

Gaps and malformed frames cannot be made with a well-behaved broker, so some tests
publish from a fake broker: a Python XPUB socket, which also shows exactly when the
consumer's subscription arrived (no sleeps)."""

import json
import re
import struct
import time

import pytest
import zmq

from conftest import entry, free_port, wait_for
from zbclient import Client, pack


class FakeBroker:
    def __init__(self):
        self.ctx = zmq.Context.instance()
        self.pub = self.ctx.socket(zmq.XPUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.setsockopt(zmq.XPUB_VERBOSE, 1)      # every subscription, duplicates too
        self.endpoint = "tcp://127.0.0.1:%d" % free_port()
        self.pub.bind(self.endpoint)
        self.subscriptions = []

    def wait_subscription(self, data, count=1, timeout=5.0):
        """Wait until `count` subscriptions to `data` arrived (one per consumer)."""
        deadline = time.monotonic() + timeout
        while self.subscriptions.count(data) < count:
            left = deadline - time.monotonic()
            assert left > 0, "no subscription %r within %.1f s (got %r)" % (
                data, timeout, self.subscriptions)
            if self.pub.poll(int(left * 1000), zmq.POLLIN):
                msg = self.pub.recv()
                if msg[:1] == b"\x01":
                    self.subscriptions.append(msg[1:])

    def event(self, topic, seq, topic_seq, detail=None, n=0):
        env = {"version": "0", "id": "00000000-0000-4000-8000-%012d" % seq,
               "detail-type": topic, "source": "fake", "account": "000000000000",
               "time": "2026-11-26T17:15:01Z", "region": "local", "resources": [],
               "detail": detail if detail is not None else {"n": n}}
        self.pub.send_multipart([topic.encode() + b"\x00", struct.pack(">QQ", seq, topic_seq),
                                 pack(env)])

    def send(self, frames):
        self.pub.send_multipart(frames)

    def close(self):
        self.pub.close(0)


@pytest.fixture
def fake():
    f = FakeBroker()
    yield f
    f.close()


def unused_control():
    return "tcp://127.0.0.1:%d" % free_port()


def test_gap_in_topic_seq_is_reported(zb, fake):
    loud = zb.start("zb-consumer", "--connect", fake.endpoint, "--control", unused_control(),
                    "--topic", "t", "--topic", "u")
    quiet = zb.start("zb-consumer", "--connect", fake.endpoint, "--control", unused_control(),
                     "--topic", "t", "--topic", "u", "--quiet", "--count", 6)
    fake.wait_subscription(b"t\x00", 2)
    fake.wait_subscription(b"u\x00", 2)
    fake.event("t", 1, 1)
    fake.event("u", 2, 1)
    fake.event("t", 5, 4)          # t: 2..3 missed
    fake.event("u", 6, 2)
    fake.event("t", 9, 10)         # t: 5..9 missed
    fake.event("t", 10, 11)

    wait_for(lambda: len(loud.stdout_lines()) == 6, 5, what="6 events at the loud consumer")
    gaps = [l for l in loud.stderr_lines() if " missed " in l]
    assert gaps == ["zb-consumer: missed 2 events on t (topic_seq 2..3)",
                    "zb-consumer: missed 5 events on t (topic_seq 5..9)"], loud.stderr()
    assert loud.stop() == 0

    assert quiet.wait(10) == 0, quiet.stderr()
    s = quiet.last_json()
    assert s["received"] == 6
    assert s["missed"] == 7
    assert s["topics"] == {"t": 4, "u": 2}


def test_malformed_messages_are_counted_and_skipped(zb, fake):
    c = zb.start("zb-consumer", "--connect", fake.endpoint, "--control", unused_control(),
                 "--topic", "m", "--quiet", "--count", 2)
    fake.wait_subscription(b"m\x00")
    good_header = struct.pack(">QQ", 1, 1)
    body = pack({"version": "0", "id": "00000000-0000-4000-8000-000000000001",
                 "detail-type": "m", "source": "fake", "account": "000000000000",
                 "time": "2026-11-26T17:15:01Z", "region": "local", "resources": [],
                 "detail": {}})
    bad = [
        [b"m\x00", good_header],                        # 2 frames
        [b"m\x00", good_header, body, b"x"],            # 4 frames
        [b"m\x00", b"\x00" * 8, body],                  # short header
        [b"m\x00", good_header, b"\xc1"],               # not msgpack
        [b"m\x00", good_header, body + b"\x00"],        # trailing bytes
    ]
    for frames in bad:
        fake.send(frames)
    fake.event("m", 1, 1)
    # a longer header is accepted (the bytes after the count are ignored)
    fake.send([b"m\x00", struct.pack(">QQIQ", 2, 2, 1, 99), body])
    assert c.wait(10) == 0, c.stderr()
    s = c.last_json()
    assert s["received"] == 2
    assert s["malformed"] == len(bad)
    assert s["missed"] == 0


def test_dispatch_survives_odd_events(zb):
    b = zb.broker()
    d = zb.consumer("zb-dispatch", b)
    dq = zb.consumer("zb-dispatch", b, "--quiet", "--count", 6)
    w = zb.consumer("zb-warehouse", b, "--quiet", "--count", 6)
    b.wait_subscribers({"sales-events": 3, "inventory-events": 1})
    details = [
        {},                                                 # nothing at all
        {"request_id": "r-9"},                              # no store_id
        {"request_id": 7, "sales": "lots", "new_order": "yes"},  # wrong types, no store_id
        {"store_id": "store_1", "new_order": True, "sales": 1.5},
        {"store_id": "store_2", "is_return": True, "category": ["x"]},
        {"store_id": "store_3", "new_order": False, "is_return": True, "nested": {"a": [1]}},
    ]
    with Client(b.ingest) as c:
        r = c.put([entry("sales-events", detail=d_) for d_ in details])
    assert r["failed"] == 0
    ids = [x["id"] for x in r["results"]]
    wait_for(lambda: len(d.stdout_lines()) == 6, 5, what="6 events at zb-dispatch")
    assert d.alive() and d.stop() == 0, d.stderr()
    und = [l for l in d.stderr_lines() if "undeliverable order" in l]
    assert und[0] == "zb-dispatch: undeliverable order %s: no store_id" % ids[0]
    assert und[1] == "zb-dispatch: undeliverable order r-9: no store_id"
    assert re.match(r"^zb-dispatch: undeliverable order \S+: no store_id$", und[2])
    assert len(und) == 3

    assert dq.wait(10) == 0, dq.stderr()
    assert dq.last_json()["undeliverable"] == 3
    assert w.wait(10) == 0, w.stderr()
    ws = w.last_json()
    assert (ws["orders"], ws["returns"]) == (1, 2)


def test_consumer_topics_and_startup_lines(zb):
    b = zb.broker()
    c = zb.consumer("zb-consumer", b, "--topic", "a-t", "--topic", "b-t")
    b.wait_subscribers({"a-t": 1, "b-t": 1})
    with Client(b.ingest) as cl:
        cl.put([entry("a-t", detail={"i": 1}), entry("c-t"), entry("b-t", detail={"i": 2}),
                entry("a-t-x"), entry("a-t", detail={"i": 3})])
    wait_for(lambda: len(c.stdout_lines()) >= 3, 5, what="3 events")
    with Client(b.ingest) as cl:        # a marker after everything: nothing else came
        cl.put([entry("b-t", detail={"i": "end"})])
    wait_for(lambda: len(c.stdout_lines()) >= 4, 5, what="the marker")
    got = [(e["detail-type"], e["detail"]["i"]) for e in c.json_lines()]
    # in seq order: the broker numbers a request's entries topic by topic
    assert got == [("a-t", 1), ("a-t", 3), ("b-t", 2), ("b-t", "end")]
    err = c.stderr_lines()
    assert any(re.match(r"^zb-consumer: subscribed to a-t, b-t at %s$" % re.escape(b.publish), l)
               for l in err), err
    assert "zb-consumer: broker up, seq 0" in err
    assert c.stop() == 0


def test_consumer_without_a_broker_keeps_running(zb):
    b = zb.broker()
    # control points nowhere: a warning, then it serves events anyway
    c = zb.start("zb-consumer", "--connect", b.publish, "--control", unused_control(),
                 "--topic", "lonely")
    b.wait_subscribers({"lonely": 1})
    wait_for(lambda: any("not answering" in l for l in c.stderr_lines()), 5,
             what="the 'not answering' warning")
    with Client(b.ingest) as cl:
        cl.put([entry("lonely", detail={"ok": True})])
    wait_for(lambda: len(c.stdout_lines()) == 1, 5, what="the event")
    assert json.loads(c.stdout_lines()[0])["detail"] == {"ok": True}
    assert c.stop() == 0


def test_consumer_count_exits_by_itself(zb):
    b = zb.broker()
    c = zb.consumer("zb-consumer", b, "--topic", "cnt", "--count", 3)
    b.wait_subscribers({"cnt": 1})
    with Client(b.ingest) as cl:
        cl.put([entry("cnt", detail={"i": i}) for i in range(5)])
    assert c.wait(10) == 0, c.stderr()
    assert [e["detail"]["i"] for e in c.json_lines()] == [0, 1, 2]
