"""A client written from docs/PROTOCOL.md alone talks to the broker and the C consumers."""

import calendar
import json
import os
import re
import time
import uuid


from conftest import entry, wait_for
from zbclient import EVENT_KEYS, Client, pack

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIME_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

DETAIL = {
    "request_id": "r-1", "sales": 12.5, "qty": 3, "neg": -7, "big": 2 ** 64 - 1,
    "ok": True, "no": False, "none": None, "text": "Grüße, 東京 ✓",
    "tags": ["a", 1, 2.25, None, {"x": [1, {"y": "z"}]}], "empty": {}, "list": [],
    "float_int": 300.0,
}


def check_envelope(ev, account="000000000000", region="local"):
    env = ev.event
    assert list(env) == EVENT_KEYS, list(env)
    assert env["version"] == "0"
    assert isinstance(env["id"], str) and UUID4.match(env["id"])
    assert uuid.UUID(env["id"]).version == 4
    assert env["detail-type"] == ev.topic
    assert isinstance(env["source"], str)
    assert env["account"] == account
    assert env["region"] == region
    assert isinstance(env["time"], str) and TIME_Z.match(env["time"]), env["time"]
    assert isinstance(env["resources"], list) and all(isinstance(r, str) for r in env["resources"])
    assert isinstance(env["detail"], dict)


def start_with_sub(zb, *args, topics=("interop",)):
    b = zb.broker(*args)
    sub = b.subscriber()
    for t in topics:
        sub.subscribe(t)
    b.wait_subscribers({t: 1 for t in topics})
    return b, sub


def test_put_and_receive_envelope(zb):
    b, sub = start_with_sub(zb, "--account", "123456789012", "--region", "eu-test-1")
    before = int(time.time())
    with Client(b.ingest) as c:
        r = c.put([
            entry("interop", source="store-7", detail=DETAIL, resources=["arn:a", "arn:b"]),
            entry("interop", detail={"n": 2}, time="2026-11-26T18:15:01.250+01:00"),
            entry("interop", detail={"n": 3}, time="2026-11-26T17:15:01Z"),
            entry("interop", detail={"n": 4}, time="1999-12-31T23:59:59.5-08:30"),
        ])
    after = int(time.time())
    assert r["failed"] == 0
    assert set(r) == {"failed", "results"}
    got = sub.recv_all(4, timeout=5)
    for ev, res in zip(got, r["results"]):
        check_envelope(ev, "123456789012", "eu-test-1")
        assert ev.event["id"] == res["id"]
        assert ev.seq == res["seq"]
        assert UUID4.match(res["id"])
    assert len({e.event["id"] for e in got}) == 4

    e1 = got[0].event
    assert e1["source"] == "store-7"
    assert e1["resources"] == ["arn:a", "arn:b"]
    assert e1["detail"] == DETAIL
    assert list(e1["detail"]) == list(DETAIL), "detail key order is kept"
    assert isinstance(e1["detail"]["sales"], float)
    assert isinstance(e1["detail"]["float_int"], float)
    assert isinstance(e1["detail"]["qty"], int)
    # no time in the entry: the broker's clock at arrival, to the second
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z$", e1["time"])
    assert m, "arrival time is to the second: %r" % e1["time"]
    stamp = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    assert before - 1 <= stamp <= after + 1
    assert got[0].event["resources"] == ["arn:a", "arn:b"]
    assert got[1].event["resources"] == []

    # times normalized to UTC
    assert got[1].event["time"] == "2026-11-26T17:15:01.250Z"
    assert got[2].event["time"] in ("2026-11-26T17:15:01Z", "2026-11-26T17:15:01.000Z")
    # fractions: PROTOCOL.md shows milliseconds (.250); ".5" may be kept as ".5"
    assert got[3].event["time"] in ("2000-01-01T08:29:59.500Z", "2000-01-01T08:29:59.5Z")


def test_config_file_account_region(zb):
    cfg = os.path.join(zb.tmpdir, "broker.cfg")
    with open(cfg, "w") as f:
        f.write('broker\n    account = "999988887777"\n    region = "ap-test-2"\n')
    b, sub = start_with_sub(zb, "--config", cfg)
    with Client(b.ingest) as c:
        assert c.put([entry("interop", detail={"c": 1})])["failed"] == 0
    ev = sub.recv(5)
    check_envelope(ev, "999988887777", "ap-test-2")


def test_pipelined_puts(broker):
    b = broker
    sub = b.subscriber(rcvhwm=100000)
    sub.subscribe("pipe")
    b.wait_subscribers({"pipe": 1})
    batches = [[entry("pipe", detail={"b": i, "e": j}) for j in range(20)] for i in range(50)]
    with Client(b.ingest) as c:
        replies = c.put_pipelined(batches, window=8)
    assert all(r["failed"] == 0 for r in replies)
    seqs = [res["seq"] for r in replies for res in r["results"]]
    assert seqs == list(range(1, 1001))
    got = sub.recv_all(1000, timeout=5)
    assert [e.seq for e in got] == seqs
    assert [e.topic_seq for e in got] == seqs
    assert [(e.event["detail"]["b"], e.event["detail"]["e"]) for e in got] == \
        [(i, j) for i in range(50) for j in range(20)]


def test_replies_match_correlation_ids_out_of_band(broker):
    """Correlation ids of any bytes, several requests in flight on one DEALER."""
    with Client(broker.ingest) as c:
        corrs = [b"", b"\x00", b"a" * 255, b"\xff\xfe", b"id-4"]
        for i, corr in enumerate(corrs[1:], 1):
            c.send_request("PUT", [entry("corr", detail={"i": i})], corr=corr)
        c.send_request("PING", b"", corr=b"ping")
        seen = {}
        for _ in range(len(corrs)):
            rep = c.recv_reply(5)
            assert rep.status == "OK"
            seen[rep.corr] = rep.body
        assert set(seen) == set(corrs[1:]) | {b"ping"}
        assert seen[b"ping"]["status"] == "ok"
        assert seen[b"ping"]["seq"] == 4
        assert [seen[c_]["results"][0]["seq"] for c_ in corrs[1:]] == [1, 2, 3, 4]


def test_ping_and_stats_shapes(broker):
    with Client(broker.control) as c:
        p = c.ping()
        s = c.stats()
    assert p["status"] == "ok" and isinstance(p["version"], str)
    assert p["seq"] == 0 and isinstance(p["uptime_ms"], int) and p["uptime_ms"] >= 0
    for k in ("version", "uptime_ms", "seq", "requests", "requests_failed", "entries_in",
              "entries_rejected", "topics"):
        assert k in s, k
    assert s["seq"] == 0 and s["requests"] == 0 and s["entries_in"] == 0
    with Client(broker.ingest) as c:
        assert c.ping()["status"] == "ok"


def test_consumer_json_matches_the_wire_and_feeds_back(zb):
    """zb-consumer's JSON line is the envelope, key order and values as on the wire;
    that line can be fed back to zb-producer --file."""
    b = zb.broker("--account", "111122223333")
    sub = b.subscriber()
    sub.subscribe("interop")
    cons = zb.consumer("zb-consumer", b, "--topic", "interop")
    b.wait_subscribers({"interop": 2})
    with Client(b.ingest) as c:
        r = c.put([entry("interop", detail=DETAIL, resources=["r"]),
                   entry("interop", detail={"x": 1.0e-7, "y": -0.0, "z": 1e300})])
    assert r["failed"] == 0
    wire = [e.event for e in sub.recv_all(2, timeout=5)]
    wait_for(lambda: len(cons.stdout_lines()) >= 2, 5, what="2 events at zb-consumer")
    lines = cons.stdout_lines()
    assert len(lines) == 2
    for line, env in zip(lines, wire):
        assert '": ' not in line and '", "' not in line, "compact JSON: " + line
        parsed = json.loads(line, object_pairs_hook=lambda kv: dict(kv))
        assert list(parsed) == EVENT_KEYS
        assert parsed == env
        assert list(parsed["detail"]) == list(env["detail"])
    parsed = json.loads(lines[0])
    assert isinstance(parsed["detail"]["float_int"], float), "300.0 must stay a float"

    # feed the consumer's output back: the broker-set keys are not resent
    path = os.path.join(zb.tmpdir, "back.jsonl")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p, rep = zb.producer(b, "--file", path, "--quiet")
    assert p.returncode == 0, p.stderr()
    assert rep["acked"] == 2 and rep["failed"] == 0
    again = [e.event for e in sub.recv_all(2, timeout=5)]
    for a, w in zip(again, wire):
        assert a["id"] != w["id"]
        for k in ("detail-type", "source", "time", "resources", "detail", "account"):
            assert a[k] == w[k], k


def test_raw_frames_of_an_event(broker):
    """The publish frames byte for byte: topic + NUL, 16-byte header, msgpack map."""
    sub = broker.subscriber()
    sub.subscribe("raw-frames")
    broker.wait_subscribers({"raw-frames": 1})
    with Client(broker.ingest) as c:
        r = c.put([entry("raw-frames", detail={"k": "v"}, time="2026-11-26T17:15:01.250Z")])
    ev = sub.recv(5)
    topic, header, body = ev.frames
    assert topic == b"raw-frames\x00"
    assert header[:16] == (1).to_bytes(8, "big") + (1).to_bytes(8, "big")
    assert body[0] == 0x89, "a fixmap of 9 keys"
    expected = pack({"version": "0", "id": r["results"][0]["id"], "detail-type": "raw-frames",
                     "source": "zbridge.test", "account": "000000000000",
                     "time": "2026-11-26T17:15:01.250Z", "region": "local",
                     "resources": [], "detail": {"k": "v"}})
    assert body == expected
