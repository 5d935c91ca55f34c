"""libzbridge's API against a live broker, through tests/system/zb-libclient.c:
per-entry results of a pipelined put_batch (good, rejected, duplicate), and
the receive call with a broker rule, a pattern, --from and a checkpoint that
resumes exactly after the last event handed out."""

import json
import os
import subprocess

from conftest import BUILD, entry

LIBCLIENT = os.path.join(BUILD, "tests", "zb-libclient")


def libclient(*args, input=None, timeout=60):
    p = subprocess.run([LIBCLIENT] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout,
                       input=input.encode() if input is not None else None)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def put(broker, entries, timeout_ms=10000):
    text = "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in entries)
    rc, out, err = libclient("put", broker.ingest, timeout_ms, input=text)
    assert rc == 0, err
    lines = [json.loads(line) for line in out.strip().split("\n")]
    return lines[:-1], lines[-1]["status"]


def recv(broker, count, *kv):
    rc, out, err = libclient("recv", broker.publish, broker.control, count, *kv)
    events = []
    for line in out.strip().split("\n") if out.strip() else []:
        seq, topic_seq, topic, text = line.split(" ", 3)
        events.append((int(seq), int(topic_seq), topic, json.loads(text)))
    return rc, events, err


def put_entry(n, detail_type="sales-events", **detail):
    return {"Source": "lib.test", "DetailType": detail_type,
            "Detail": dict({"n": n}, **detail)}


def test_put_batch_results(broker):
    entries = [put_entry(i) for i in range(7)]
    entries[2] = {"Source": "lib.test", "DetailType": "", "Detail": {}}     # rejected
    entries[5] = {"Source": "lib.test", "DetailType": "$reserved", "Detail": {}}
    results, status = put(broker, entries)
    assert status == 7                                  # ZBRIDGE_EREJECTED
    assert [r["tag"] for r in results] == list(range(7))
    for i, r in enumerate(results):
        if i in (2, 5):
            assert r["status"] == 7 and r["code"] and not r["id"], r    # ZBRIDGE_EREJECTED
        else:
            assert r["status"] == 0 and len(r["id"]) == 36 and not r["duplicate"], r
    # the accepted ones are in the journal, in order
    rc, events, err = recv(broker, 5, "from=earliest", "topic=sales-events")
    assert rc == 0, err
    assert [e[3]["detail"]["n"] for e in events] == [0, 1, 3, 4, 6]
    assert [e[3]["id"] for e in events] == [results[i]["id"] for i in (0, 1, 3, 4, 6)]


def test_put_duplicate_keys(broker):
    keyed = [dict(put_entry(i), IdempotencyKey="lib-key-%d" % i) for i in range(4)]
    first, status = put(broker, keyed)
    assert status == 0
    again, status = put(broker, keyed[1:3] + [put_entry(9)])
    assert status == 0
    assert [r["duplicate"] for r in again] == [True, True, False]
    assert [r["id"] for r in again[:2]] == [first[1]["id"], first[2]["id"]]


def test_put_unreachable(zb):
    from conftest import free_port

    class Nowhere:
        ingest = "tcp://127.0.0.1:%d" % free_port()
    results, status = put(Nowhere, [put_entry(1), put_entry(2)], timeout_ms=400)
    assert status == 5                                  # ZBRIDGE_ETIMEOUT
    assert [r["status"] for r in results] == [5, 5]


def test_recv_rule_pattern_checkpoint(zb, broker, tmp_path):
    pattern = {"detail-type": ["sales-events"], "detail": {"n": [{"numeric": [">=", 10]}]}}
    p = zb.zbctl(broker, "rule", "put", "tens", "--pattern", json.dumps(pattern))
    assert p.returncode == 0, p.stderr()
    results, status = put(broker, [put_entry(i) for i in range(20)]
                          + [put_entry(50, "inventory-events")])
    assert status == 0
    state = str(tmp_path / "state")
    # the rule's deliveries, 4 now, then the rest after a restart from the checkpoint
    rc, first, err = recv(broker, 4, "rule=tens", "from=earliest", "state=" + state, "name=t")
    assert rc == 0, err
    assert all(e[2] == "$rule/tens" for e in first)
    rc, rest, err = recv(broker, 6, "rule=tens", "state=" + state, "name=t")
    assert rc == 0, err
    ns = [e[3]["detail"]["n"] for e in first + rest]
    assert ns == list(range(10, 20))
    assert [e[1] for e in first + rest] == list(range(1, 11))      # the rule topic's own seq
    # nothing more: the receive call times out
    rc, none, err = recv(broker, 1, "rule=tens", "state=" + state, "name=t", "timeout=300")
    assert rc == 3 and none == []
    assert "no event within 300 ms" in err
    # a pattern over everything, from seq:N
    rc, events, err = recv(broker, 2, "pattern=" + json.dumps({"detail": {"n": [18, 50]}}),
                           "from=seq:2")
    assert rc == 0, err
    assert [(e[2], e[3]["detail"]["n"]) for e in events] == [("sales-events", 18),
                                                             ("inventory-events", 50)]


def test_recv_bad_options(broker):
    rc, _, err = recv(broker, 1, "pattern={\"detail\":")
    assert rc == 1 and "not a valid event pattern" in err
    rc, _, err = recv(broker, 1, "rule=no/slash")
    assert rc == 1 and "no/slash" in err
    rc, _, err = recv(broker, 1, "topic=x", "from=yesterday")
    assert rc == 1 and "yesterday" in err
