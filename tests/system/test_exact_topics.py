"""Topics are exact (detail-type + NUL); prefix subscription is an explicit choice.
Sequence numbering (seq, topic_seq) as docs/PROTOCOL.md describes it."""

import json
import os
import time

import pytest

from conftest import drain_until, entry, wait_for


def send_file(zb, b, lines, name):
    path = os.path.join(zb.tmpdir, name)
    with open(path, "w") as f:
        f.write("\n".join(json.dumps(l) for l in lines) + "\n")
    p, rep = zb.producer(b, "--file", path, "--quiet")
    assert p.returncode == 0, p.stderr()
    assert rep["acked"] == len(lines) and rep["failed"] == 0, rep
    return rep


def v2_line(n):
    return {"Source": "zbridge.test", "DetailType": "sales-events-v2",
            "Detail": json.dumps({"n": n})}


@pytest.mark.timeout(60)
def test_exact_consumer_never_gets_a_longer_topic(zb):
    b = zb.broker()
    exact = zb.consumer("zb-consumer", b, "--topic", "sales-events")
    pref = zb.consumer("zb-consumer", b, "--prefix", "sales-")
    b.wait_subscribers({"sales-events": 1})

    # The prefix subscription is not counted by STATS: send sales-events-v2 events
    # until the prefix consumer shows one (bounded), so it is surely subscribed.
    n = 0
    deadline = time.monotonic() + 10
    while not pref.stdout_lines():
        assert time.monotonic() < deadline, "prefix consumer got no event in 10 s\n" + pref.stderr()
        n += 1
        send_file(zb, b, [v2_line(n)], "v2-%d.jsonl" % n)
        try:
            wait_for(lambda: pref.stdout_lines(), 0.5)
        except AssertionError:
            pass

    # a marker on the exact topic, published after every v2 event
    send_file(zb, b, [{"Source": "zbridge.test", "DetailType": "sales-events",
                       "Detail": {"marker": True}}], "marker.jsonl")
    wait_for(lambda: len(exact.stdout_lines()) >= 1, 5, what="the marker at the exact consumer")
    wait_for(lambda: any(json.loads(l)["detail-type"] == "sales-events"
                         for l in pref.stdout_lines()), 5,
             what="the marker at the prefix consumer")

    got_exact = exact.json_lines()
    assert [e["detail-type"] for e in got_exact] == ["sales-events"]
    assert got_exact[0]["detail"] == {"marker": True}

    got_pref = pref.json_lines()
    types = [e["detail-type"] for e in got_pref]
    assert types[-1] == "sales-events"
    assert set(types[:-1]) == {"sales-events-v2"}
    # the prefix consumer saw each v2 event at most once, in order
    ns = [e["detail"]["n"] for e in got_pref[:-1]]
    assert ns == sorted(set(ns)) and ns[-1] == n

    assert exact.stop() == 0
    assert pref.stop() == 0


@pytest.mark.timeout(60)
def test_sequence_numbers_per_protocol(broker):
    b = broker
    sub_a = b.subscriber()
    sub_a.subscribe("t-a")                  # exact: never t-ab
    sub_all = b.subscriber()
    sub_all.subscribe("t-a")
    sub_all.subscribe("t-b")
    sub_all.subscribe("t-ab")
    sub_pre = b.subscriber()
    sub_pre.subscribe("t-a", prefix=True)   # t-a and t-ab
    sub_pre.subscribe("t-b")                # keeps STATS aware of this socket
    b.wait_subscribers({"t-a": 2, "t-b": 2, "t-ab": 1})

    assert b.ping()["seq"] == 0
    c = b.client()
    # the prefix subscriber was subscribed in the same burst as its exact one; it
    # must see this event (otherwise the drain below fails loudly)
    order = ["t-a", "t-b", "t-a", "t-ab", "t-a", "t-b"]
    reply = c.put([entry(t, detail={"i": i}) for i, t in enumerate(order)])
    assert reply["failed"] == 0
    # within one request (one ingest pass) the broker numbers topic by topic, in
    # the order of each topic's first entry (PROTOCOL.md "Publish socket")
    seqs = [r["seq"] for r in reply["results"]]
    assert seqs == [1, 4, 2, 6, 3, 5]

    got = sub_all.recv_all(6, timeout=5)
    assert [e.seq for e in got] == [1, 2, 3, 4, 5, 6]
    assert [e.topic for e in got] == ["t-a", "t-a", "t-a", "t-b", "t-b", "t-ab"]
    assert [(e.topic, e.topic_seq) for e in got] == [
        ("t-a", 1), ("t-a", 2), ("t-a", 3), ("t-b", 1), ("t-b", 2), ("t-ab", 1)]
    by_seq = sorted(reply["results"], key=lambda r: r["seq"])
    assert [e.event["id"] for e in got] == [r["id"] for r in by_seq]
    assert [e.event["detail"]["i"] for e in got] == [0, 2, 4, 1, 5, 3]
    assert all(len(e.frames[1]) >= 16 for e in got)
    assert all(e.frames[0] == e.topic.encode() + b"\x00" for e in got)

    only_a = sub_a.recv_all(3, timeout=5)
    assert [(e.seq, e.topic_seq) for e in only_a] == [(1, 1), (2, 2), (3, 3)]
    assert sub_a.drain(0.3) == []

    pre = drain_until(sub_pre, lambda e: e.seq == 6, timeout=5)
    assert [(e.topic, e.seq) for e in pre] == [
        ("t-a", 1), ("t-a", 2), ("t-a", 3), ("t-b", 4), ("t-b", 5), ("t-ab", 6)]

    # numbering goes on across requests, failed entries take no number
    reply = c.put([entry("t-b"), {"detail-type": "t-a", "detail": {}}, entry("t-a")])
    assert reply["failed"] == 1
    assert reply["results"][0]["seq"] == 7
    assert "seq" not in reply["results"][1]
    assert reply["results"][2]["seq"] == 8
    got = sub_all.recv_all(2, timeout=5)
    assert [(e.topic, e.seq, e.topic_seq) for e in got] == [("t-b", 7, 3), ("t-a", 8, 4)]

    assert b.ping()["seq"] == 8
    st = b.stats()
    assert st["seq"] == 8
    # a topic's seq in STATS is its last topic_seq
    assert st["topics"]["t-a"]["seq"] == 4
    assert st["topics"]["t-b"]["seq"] == 3
    assert st["topics"]["t-ab"]["seq"] == 1
