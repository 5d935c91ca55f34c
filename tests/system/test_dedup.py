"""Idempotency keys (PROTOCOL.md, "Idempotency keys"): an entry sent again with a key the
broker accepted within the dedup window publishes nothing and is answered with the
original event's id and seq plus "duplicate": true. The memory of keys survives a broker
restart (SIGKILL or SIGTERM) on the same data directory; after the window a key is new
again. zb-producer sets a key on every entry, so a rerun of the same --file is
deduplicated while two generated runs with the same --seed do not collide."""

import json
import os
import signal

import pytest

from conftest import entry, replay_all, wait_for
from zbclient import EVENT_KEYS, pack

REPORT_KEYS = ["status", "tot_msgs", "bad_msgs", "sale_evnts", "inventory_evnts", "acked",
               "failed"]


def keyed(key, n=0, detail_type="sales-events"):
    return entry(detail_type, detail={"n": n}, **{"idempotency-key": key})


def check_duplicates_of(first, again):
    """`again` (results of a resent request) names the same events as `first`."""
    assert len(again) == len(first)
    for a, b in zip(first, again):
        assert "code" not in b, b
        assert b["id"] == a["id"] and b["seq"] == a["seq"], (a, b)
        assert b.get("duplicate") is True, b


@pytest.mark.timeout(60)
def test_same_request_twice_is_one_event(zb):
    b = zb.broker()
    sub = b.subscriber(rcvhwm=100000)
    sub.subscribe("sales-events")
    sub.subscribe("inventory-events")
    b.wait_subscribers({"sales-events": 1, "inventory-events": 1})
    ing = b.client()

    batch = [keyed("dedup-%d" % i, i, "sales-events" if i % 3 else "inventory-events")
             for i in range(20)]
    first = ing.put(batch)
    assert first["failed"] == 0, first
    res1 = first["results"]
    # a first acceptance is not a duplicate
    assert all(r.get("duplicate", False) is False for r in res1), res1
    # numbered topic by topic within the request (PROTOCOL.md "Publish socket")
    assert sorted(r["seq"] for r in res1) == list(range(1, 21))

    # the very same request again (same body bytes, new correlation id, as a retrying
    # producer sends it), then once more with the same correlation id as well
    raw = pack(batch)
    check_duplicates_of(res1, ing.call("PUT", raw)["results"])
    corr = ing.next_corr()
    for _ in range(2):
        reply = ing.request("PUT", raw, corr=corr)
        assert reply.status == "OK", reply
        assert reply.body["failed"] == 0
        check_duplicates_of(res1, reply.body["results"])

    assert b.ping()["seq"] == 20, "a duplicate used up a sequence number"

    # published once each, in order, without the key
    events = sub.drain(quiet=0.5)
    assert [e.seq for e in events] == list(range(1, 21))
    assert [e.event["id"] for e in events] == [r["id"] for r in sorted(res1, key=lambda r: r["seq"])]
    assert all(list(e.event) == EVENT_KEYS for e in events), events[0].event
    assert sub.missed == 0

    # in the journal once each
    journal, end = replay_all(b)
    assert [e.event["id"] for e in journal] == [r["id"] for r in sorted(res1, key=lambda r: r["seq"])]
    assert end.head == 20 and end.count == 20


@pytest.mark.timeout(60)
def test_keys_in_mixed_batches(zb):
    b = zb.broker()
    ing = b.client()
    r0 = ing.put([keyed("old-1", 1), keyed("old-2", 2, "inventory-events")])["results"]
    assert [r["seq"] for r in r0] == [1, 2]

    reply = ing.put([
        keyed("old-2", 99, "inventory-events"),   # duplicate (content is not compared)
        keyed("new-1", 3),                        # new
        entry(detail={"no": "key"}),              # no key: always new
        keyed("old-1", 4),                        # duplicate
        keyed("twin", 5),                         # new ...
        keyed("twin", 6),                         # ... and its duplicate in the same request
        keyed("k" * 128, 7),                      # 128 bytes: the longest key
    ])
    res = reply["results"]
    assert reply["failed"] == 0, res
    check_duplicates_of([r0[1]], [res[0]])
    check_duplicates_of([r0[0]], [res[3]])
    new = [res[1], res[2], res[4], res[6]]
    assert [r["seq"] for r in new] == [3, 4, 5, 6], res
    assert all(r.get("duplicate", False) is False for r in new), res
    assert res[5].get("duplicate") is True and res[5]["id"] == res[4]["id"] \
        and res[5]["seq"] == res[4]["seq"], \
        "the same key twice in one request must yield one event: %r" % res[4:6]
    assert b.ping()["seq"] == 6

    journal, _ = replay_all(b)
    assert [e.seq for e in journal] == [1, 2, 3, 4, 5, 6]
    assert journal[4].event["detail"] == {"n": 5}, "the first of the twins is the event"


@pytest.mark.parametrize("key", ["", "k" * 129, 5, None, ["a"], b"\x01bin"],
                         ids=["empty", "129-bytes", "int", "nil", "array", "binary"])
def test_bad_keys_are_invalid_argument(zb, key):
    b = zb.broker()
    reply = b.client().put([entry(**{"idempotency-key": key}), entry(detail={"ok": 1})])
    assert reply["failed"] == 1, reply
    bad, good = reply["results"]
    assert bad["code"] == "InvalidArgument", bad
    assert "idempotency-key" in bad["message"], bad
    assert good["seq"] == 1, "the bad entry must not sink the good one, nor use a seq"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_dedup_survives_a_broker_restart(zb, sig):
    b = zb.broker()
    batch = [keyed("restart-%d" % i, i) for i in range(10)]
    first = b.client().put(batch)["results"]
    assert [r["seq"] for r in first] == list(range(1, 11))

    b2 = zb.restart_broker(b, sig=sig)
    if sig == signal.SIGTERM:
        assert b.proc.returncode == 0, b.proc.stderr()
    ing = b2.client()
    check_duplicates_of(first, ing.put(batch)["results"])
    assert b2.ping()["seq"] == 10
    after = ing.put([keyed("restart-new", 10)])["results"][0]
    assert after["seq"] == 11 and not after.get("duplicate", False)
    journal, _ = replay_all(b2)
    assert [e.event["id"] for e in journal] == [r["id"] for r in first] + [after["id"]]


@pytest.mark.timeout(60)
def test_a_key_is_new_again_after_the_window(zb):
    b = zb.broker("--dedup-window", 1)
    ing = b.client()
    first = ing.put([keyed("window", 1)])["results"][0]
    again = ing.put([keyed("window", 1)])["results"][0]
    assert again.get("duplicate") is True and again["id"] == first["id"]
    # the window is measured from the first acceptance: 1 s, and pruning is lazy,
    # so wait until the broker forgets the key (bounded)
    late = []

    def forgotten():
        r = ing.put([keyed("window", 1)])["results"][0]
        late.append(r)
        return not r.get("duplicate", False)
    wait_for(forgotten, 10, 0.25, "the key to leave the 1 s dedup window")
    new = late[-1]
    assert new["id"] != first["id"] and new["seq"] == first["seq"] + 1, late
    # a repeat within the window of the new acceptance is a duplicate of the new event
    assert ing.put([keyed("window", 1)])["results"][0]["id"] == new["id"]


def write_lines(zb, name, lines):
    path = os.path.join(zb.tmpdir, name)
    with open(path, "w") as f:
        f.write("\n".join(json.dumps(l) for l in lines) + "\n")
    return path


@pytest.mark.timeout(90)
def test_producer_rerun_of_a_file_is_deduplicated(zb):
    b = zb.broker()
    lines = []
    for i in range(60):
        if i % 3 == 0:
            lines.append({"Source": "s", "DetailType": "sales-events",
                          "Detail": json.dumps({"i": i}), "IdempotencyKey": "file-%d" % i})
        elif i % 3 == 1:
            lines.append({"source": "s", "detail-type": "inventory-events",
                          "detail": {"i": i}, "idempotency-key": "file-%d" % i})
        else:           # no key: the producer generates one per run
            lines.append({"source": "s", "detail-type": "sales-events", "detail": {"i": i}})
    path = write_lines(zb, "keyed.jsonl", lines)

    p1, rep1 = zb.producer(b, "--file", path, "--quiet")
    assert p1.returncode == 0, p1.stderr()
    assert list(rep1)[:7] == REPORT_KEYS, rep1
    assert rep1["acked"] == 60 and rep1["failed"] == 0
    assert rep1["duplicates"] == 0 and rep1["retried"] == 0, rep1
    assert b.ping()["seq"] == 60

    p2, rep2 = zb.producer(b, "--file", path, "--quiet")
    assert p2.returncode == 0, p2.stderr()
    # 40 lines carry their key: duplicates, acked once; the 20 without get new keys
    assert rep2["acked"] == 60 and rep2["failed"] == 0, rep2
    assert rep2["duplicates"] == 40, rep2
    assert b.ping()["seq"] == 80

    journal, _ = replay_all(b)
    details = [e.event["detail"]["i"] for e in journal]
    assert sorted(details[:60]) == list(range(60))
    assert sorted(details[60:]) == [i for i in range(60) if i % 3 == 2]


@pytest.mark.timeout(90)
def test_generated_reruns_with_the_same_seed_do_not_collide(zb):
    b = zb.broker()
    for run in (1, 2):
        p, rep = zb.producer(b, "--count", 300, "--seed", 11, "--quiet")
        assert p.returncode == 0, p.stderr()
        assert rep["acked"] == 300 and rep["duplicates"] == 0, (run, rep)
    assert b.ping()["seq"] == 600
