"""A consumer that joins while events flow gets exactly what was published after it
subscribed: a contiguous tail of the stream, nothing before, nothing missing."""

import pytest

from conftest import wait_for
from zbclient import ZbTimeout


@pytest.mark.timeout(90)
def test_late_consumer_gets_the_tail(zb):
    b = zb.broker()
    total = 1500
    producer = zb.start("zb-producer", "--connect", b.ingest, "--count", total,
                        "--rate", 500, "--batch", 5, "--seed", 3, "--quiet")

    # a witness (Python client) joins after some events...
    wait_for(lambda: b.ping()["seq"] >= 100, 10, what="100 events published")
    witness = b.subscriber(rcvhwm=100000)
    witness.subscribe("sales-events")
    witness.subscribe("inventory-events")
    b.wait_subscribers({"sales-events": 1, "inventory-events": 1})
    seq_witness_ready = b.ping()["seq"]

    # ...and zb-warehouse later still
    wait_for(lambda: b.ping()["seq"] >= seq_witness_ready + 200, 10,
             what="200 more events")
    seq_before_start = b.ping()["seq"]
    w = zb.consumer("zb-warehouse", b)
    b.wait_subscribers({"sales-events": 2, "inventory-events": 2})
    seq_ready = b.ping()["seq"]
    assert seq_ready < total - 100, "the producer finished before the consumer joined: " \
                                    "the test proves nothing (seq %d)" % seq_ready

    assert producer.wait(30) == 0, producer.stderr()
    rep = producer.last_json()
    assert rep["acked"] == total and rep["failed"] == 0
    assert b.ping()["seq"] == total

    # the witness: a contiguous tail from its first event to the last one
    events = []
    while True:
        try:
            ev = witness.recv(5.0)
        except ZbTimeout:
            break
        events.append(ev)
        if ev.seq == total:
            break
    seqs = [e.seq for e in events]
    assert seqs, "the witness received nothing"
    assert 1 < seqs[0] <= seq_witness_ready + 1
    assert seqs == list(range(seqs[0], total + 1))
    last = {}
    for e in events:
        if e.topic in last:
            assert e.topic_seq == last[e.topic] + 1, (e.topic, last[e.topic], e.topic_seq)
        else:
            assert e.topic_seq > 1
        last[e.topic] = e.topic_seq
    seq_of = {e.event["id"]: e.seq for e in events}

    # the warehouse: every event from its first on, each once, in order
    tail_len = total - seq_ready
    wait_for(lambda: len(w.stdout_lines()) >= tail_len, 20,
             what="the warehouse to print at least %d events" % tail_len)
    # once everything is published, nothing more can come; wait for the count to settle
    wait_for(lambda: seq_of.get(w.json_lines()[-1]["id"]) == total, 10,
             what="the warehouse to print the last event")
    assert w.stop() == 0, w.stderr()
    got = w.json_lines()
    wseqs = [seq_of[e["id"]] for e in got]
    first = wseqs[0]
    assert seq_before_start < first <= seq_ready + 1
    assert wseqs == list(range(first, total + 1))
    # a late start is not a gap: no "missed" warning
    assert not [l for l in w.stderr_lines() if ": missed " in l]

