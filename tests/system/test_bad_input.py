"""Bad input from sockets and users: documented errors, and the broker keeps serving."""

import json
import os
import random
import re

import msgpack
import pytest

from conftest import PROGRAMS, ROOT, entry
from zbclient import Client, ZbTimeout, pack, unpack

GOOD = pack([entry("sales-events", detail={"ok": 1})])


def version():
    text = open(os.path.join(ROOT, "meson.build")).read()
    return re.search(r"version\s*:\s*'([^']+)'", text).group(1)


def raw_reply(c, frames, timeout=5.0):
    """Send frames as they are on a DEALER, return (status, corr, body)."""
    c.send_frames(frames)
    got = c.recv_frames(timeout)
    if len(got) == 4 and got[0] == b"":
        got = got[1:]
    assert len(got) == 3, "reply has %d frames: %r" % (len(got), got)
    return got[0].decode(), got[1], unpack(got[2])


def expect_error(c, frames, code, corr=None):
    status, rcorr, body = raw_reply(c, frames)
    assert status == "ERROR", (frames[:2], body)
    assert set(body) == {"code", "message"}, body
    if isinstance(code, tuple):
        assert body["code"] in code, body
    else:
        assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    if corr is not None:
        assert rcorr == corr
    return body


def assert_still_serving(b):
    """A good PUT succeeds and is delivered; PING and STATS answer."""
    sub = b.subscriber()
    sub.subscribe("after-garbage")
    b.wait_subscribers({"after-garbage": 1})
    with Client(b.ingest) as c:
        r = c.put([entry("after-garbage", detail={"fine": True})])
    assert r["failed"] == 0
    ev = sub.recv(5)
    assert ev.event["id"] == r["results"][0]["id"]
    assert ev.event["detail"] == {"fine": True}
    assert b.ping()["status"] == "ok"
    assert b.proc.alive()


# --- request level ---------------------------------------------------------------


@pytest.mark.parametrize("which", ["ingest", "control"])
def test_wrong_frame_counts(broker, which):
    c = broker.client() if which == "ingest" else broker.control_client()
    cmd = b"PUT" if which == "ingest" else b"STATS"
    body = GOOD if which == "ingest" else b""
    expect_error(c, [cmd], "MalformedRequest", corr=b"")
    expect_error(c, [cmd, b"c2"], "MalformedRequest")
    expect_error(c, [cmd, b"c4", body, b"extra"], "MalformedRequest")
    expect_error(c, [cmd, b"c5", body, b"extra", b"more"], "MalformedRequest")
    # and then a proper request on the same socket works
    status, corr, reply = raw_reply(c, [b"PING", b"ok", b""])
    assert (status, corr, reply["status"]) == ("OK", b"ok", "ok")
    assert_still_serving(broker)


def test_empty_and_unknown_commands(broker):
    c = broker.client()
    ctl = broker.control_client()
    # An empty first frame is the REQ delimiter position: a DEALER that sends
    # ["", corr, body] gets an ERROR either way (see PROTOCOL.md, frame 0).
    expect_error(c, [b"", b"e1", GOOD], ("MalformedRequest", "UnknownCommand"))
    expect_error(c, [b"", b"", b"e2", GOOD], "UnknownCommand")
    expect_error(c, [b"FROB", b"u1", GOOD], "UnknownCommand", corr=b"u1")
    expect_error(c, [b"put", b"u2", GOOD], "UnknownCommand", corr=b"u2")   # case-sensitive
    expect_error(c, [b"PUT ", b"u3", GOOD], "UnknownCommand", corr=b"u3")
    expect_error(c, [b"STATS", b"u4", b""], "UnknownCommand", corr=b"u4")  # not on ingest
    expect_error(ctl, [b"PUT", b"u5", GOOD], "UnknownCommand", corr=b"u5")  # not on control
    expect_error(ctl, [b"\xff\x00\x01", b"u6", b""], "UnknownCommand", corr=b"u6")
    assert_still_serving(broker)


def test_correlation_ids(broker):
    c = broker.client()
    expect_error(c, [b"PUT", b"x" * 256, GOOD], "MalformedRequest", corr=b"")
    expect_error(c, [b"PING", b"y" * 256, b""], "MalformedRequest", corr=b"")
    corr = bytes(range(255))
    status, rcorr, body = raw_reply(c, [b"PING", corr, b""])
    assert (status, rcorr) == ("OK", corr)
    status, rcorr, body = raw_reply(c, [b"PUT", b"", GOOD])
    assert (status, rcorr, body["failed"]) == ("OK", b"", 0)


def test_bad_bodies(broker):
    c = broker.client()
    cases = {
        "not msgpack": b"\xc1",
        "empty body": b"",
        "truncated": GOOD[:-3],
        "trailing bytes": GOOD + b"\x00",
        "two values": GOOD + GOOD,
        "a map": pack({"source": "s", "detail-type": "t", "detail": {}}),
        "a string": pack("PUT"),
        "an integer": pack(7),
        "nil": pack(None),
    }
    for i, (what, body) in enumerate(cases.items()):
        corr = b"b%d" % i
        got = expect_error(c, [b"PUT", corr, body], "MalformedRequest", corr=corr)
        assert got, what
    expect_error(c, [b"PUT", b"empty", pack([])], "InvalidArgument", corr=b"empty")
    # PING and STATS ignore their body, whatever it is (if it is one msgpack value)
    status, _, body = raw_reply(c, [b"PING", b"p", pack({"any": [1, 2]})])
    assert status == "OK" and body["status"] == "ok"
    assert_still_serving(broker)


def test_max_entries(zb):
    b = zb.broker()
    c = b.client()
    r = c.put([entry("m", detail={"i": i}) for i in range(100)])
    assert r["failed"] == 0 and len(r["results"]) == 100
    expect_error(c, [b"PUT", b"many", pack([entry("m")] * 101)], "TooManyEntries", corr=b"many")
    b2 = zb.broker("--max-entries", 5)
    c2 = b2.client()
    assert c2.put([entry("m")] * 5)["failed"] == 0
    expect_error(c2, [b"PUT", b"six", pack([entry("m")] * 6)], "TooManyEntries", corr=b"six")
    assert_still_serving(b2)


def test_req_socket_with_delimiter(broker):
    with Client(broker.ingest, req=True) as c:
        r = c.put([entry("via-req", detail={"r": 1})])
        assert r["failed"] == 0 and r["results"][0]["seq"] == 1
        assert c.ping()["status"] == "ok"
        reply = c.request("FROB", b"")        # REQ strict alternation: an ERROR reply too
        assert reply.status == "ERROR" and reply.body["code"] == "UnknownCommand"
        assert c.put([entry("via-req")])["results"][0]["seq"] == 2
    with Client(broker.control, req=True) as c:
        assert c.stats()["seq"] == 2
        assert c.ping()["seq"] == 2


# --- per entry --------------------------------------------------------------------


def raw_str(b):
    """A msgpack str header + bytes (may be invalid UTF-8)."""
    assert len(b) < 32
    return bytes([0xa0 | len(b)]) + b


def raw_entry(detail_raw):
    """An entry whose detail is given as raw msgpack bytes."""
    return (b"\x83" + pack("source") + pack("s") + pack("detail-type") + pack("raw-t")
            + pack("detail") + detail_raw)


def nested(depth):
    d = {}
    for _ in range(depth):
        d = {"k": d}
    return d


ENTRY_CASES = [
    # (name, entry, code, word the message must name)
    ("missing source", {"detail-type": "bad-t", "detail": {}}, "InvalidArgument", "source"),
    ("empty source", entry("bad-t", source=""), "InvalidArgument", "source"),
    ("257-byte source", entry("bad-t", source="s" * 257), "InvalidArgument", "source"),
    ("source not a str", {"source": 5, "detail-type": "bad-t", "detail": {}},
     "InvalidArgument", "source"),
    ("control char in source", entry("bad-t", source="a\nb"), "InvalidArgument", "source"),
    ("missing detail-type", {"source": "s", "detail": {}}, "InvalidArgument", "detail-type"),
    ("129-byte detail-type", entry("d" * 129), "InvalidArgument", "detail-type"),
    ("$ detail-type", entry("$sys"), "InvalidArgument", "detail-type"),
    ("NUL in detail-type", entry("bad\x00t"), "InvalidArgument", "detail-type"),
    ("detail missing", {"source": "s", "detail-type": "bad-t"}, "MalformedDetail", "detail"),
    ("detail a list", entry("bad-t", detail=[1, 2]), "MalformedDetail", "detail"),
    ("detail a JSON string", entry("bad-t", detail='{"a": 1}'), "MalformedDetail", "detail"),
    ("bin in detail", entry("bad-t", detail={"b": b"\x00\x01"}), "MalformedDetail", "detail"),
    ("NaN in detail", entry("bad-t", detail={"x": float("nan")}), "MalformedDetail", "detail"),
    ("Infinity in detail", entry("bad-t", detail={"x": float("inf")}), "MalformedDetail",
     "detail"),
    ("ext in detail", entry("bad-t", detail={"e": msgpack.ExtType(5, b"xx")}),
     "MalformedDetail", "detail"),
    ("non-str key in detail", entry("bad-t", detail={1: "one"}), "MalformedDetail", "detail"),
    ("bad time", entry("bad-t", time="yesterday"), "InvalidArgument", "time"),
    ("bad time month", entry("bad-t", time="2026-13-01T00:00:00Z"), "InvalidArgument", "time"),
    ("time without zone", entry("bad-t", time="2026-11-26T17:15:01"), "InvalidArgument",
     "time"),
    ("time not a str", entry("bad-t", time=1764177301), "InvalidArgument", "time"),
    ("resources not an array", entry("bad-t", resources="arn:x"), "InvalidArgument",
     "resources"),
    ("resources with an int", entry("bad-t", resources=["a", 2]), "InvalidArgument",
     "resources"),
    ("unknown key", entry("bad-t", colour="blue"), "InvalidArgument", "colour"),
    ("id set by the client", entry("bad-t", id="5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21"),
     "InvalidArgument", "id"),
    ("version set", entry("bad-t", version="0"), "InvalidArgument", "version"),
    ("account set", entry("bad-t", account="123456789012"), "InvalidArgument", "account"),
    ("region set", entry("bad-t", region="eu"), "InvalidArgument", "region"),
    ("entry a string", "just text", "InvalidArgument", None),
    ("entry nil", None, "InvalidArgument", None),
]


@pytest.mark.timeout(60)
def test_bad_entries_fail_alone(broker):
    b = broker
    sub = b.subscriber()
    sub.subscribe("good-t")
    b.wait_subscribers({"good-t": 1})

    entries = []
    expected = []           # None: success
    for i, (name, e, code, word) in enumerate(ENTRY_CASES):
        entries.append(entry("good-t", detail={"i": i}))
        expected.append(None)
        entries.append(e)
        expected.append((name, code, word))
    entries.append(entry("good-t", detail={"i": "last"}))
    expected.append(None)
    # the body has more than 50 entries, keep it under max-entries (100)
    assert len(entries) <= 100

    with Client(b.ingest) as c:
        r = c.put(entries)
    assert len(r["results"]) == len(entries)
    assert r["failed"] == len(ENTRY_CASES)
    good_ids = []
    for res, exp in zip(r["results"], expected):
        if exp is None:
            assert set(res) == {"id", "seq"}, res
            good_ids.append(res["id"])
        else:
            name, code, word = exp
            assert set(res) == {"code", "message"}, (name, res)
            assert res["code"] == code, (name, res)
            if word is not None:
                assert word in res["message"], (name, res)
    # every good entry was published, in order, and nothing else
    got = sub.recv_all(len(good_ids), timeout=5)
    assert [e.event["id"] for e in got] == good_ids
    assert sub.drain(0.3) == []
    assert_still_serving(b)


def test_raw_msgpack_detail_errors(broker):
    """Detail values only hand-made msgpack can carry."""
    cases = [
        ("invalid UTF-8 value", b"\x81" + pack("k") + raw_str(b"\xff\xfe")),
        ("invalid UTF-8 key", b"\x81" + raw_str(b"\xc3\x28") + pack(1)),
        ("duplicate keys", b"\x82" + pack("k") + pack(1) + pack("k") + pack(2)),
        ("overlong UTF-8", b"\x81" + pack("k") + raw_str(b"\xc0\xaf")),
        ("surrogate", b"\x81" + pack("k") + raw_str(b"\xed\xa0\x80")),
    ]
    body = bytes([0x90 | (len(cases) + 1)]) + b"".join(raw_entry(d) for _, d in cases) \
        + pack(entry("raw-ok"))
    with Client(broker.ingest) as c:
        status, corr, r = raw_reply(c, [b"PUT", b"raw", body])
    assert status == "OK", r
    assert r["failed"] == len(cases)
    for (name, _), res in zip(cases, r["results"]):
        assert res.get("code") == "MalformedDetail", (name, res)
    assert "id" in r["results"][-1]
    # invalid UTF-8 in source is InvalidArgument
    e = (b"\x83" + pack("source") + raw_str(b"\xff") + pack("detail-type") + pack("t")
         + pack("detail") + pack({}))
    with Client(broker.ingest) as c:
        status, corr, r = raw_reply(c, [b"PUT", b"raw2", b"\x91" + e])
    assert r["results"][0]["code"] == "InvalidArgument"
    assert "source" in r["results"][0]["message"]
    assert_still_serving(broker)


def test_nesting_limit(broker):
    """At most 32 levels of nesting in the entry: the entry map is level 1, its
    detail level 2, so detail may hold 30 more nested maps."""
    with Client(broker.ingest) as c:
        r = c.put([entry("deep", detail={"i": 0}),
                   entry("deep", detail=nested(30)),
                   entry("deep", detail=nested(31)),
                   entry("deep", detail={"i": 3})])
    codes = [x.get("code") for x in r["results"]]
    assert codes == [None, None, "MalformedDetail", None], r
    assert_still_serving(broker)


def test_deep_garbage(broker):
    """Far deeper than any decoder stack: a clean error, not a crash."""
    deep = b"\x91" * 100000 + b"\xc0"
    body = (b"\x91\x83" + pack("source") + pack("s") + pack("detail-type") + pack("deep")
            + pack("detail") + b"\x81" + pack("k") + deep)
    with Client(broker.ingest) as c:
        status, corr, r = raw_reply(c, [b"PUT", b"deep", body])
        if status == "ERROR":
            assert r["code"] == "MalformedRequest"
        else:
            assert r["results"][0]["code"] == "MalformedDetail"
        status, corr, r = raw_reply(c, [b"PUT", b"deep2", b"\x91" * 200000])
        assert status == "ERROR" and r["code"] == "MalformedRequest"
    assert_still_serving(broker)


def test_entry_too_large(zb):
    b = zb.broker("--max-event-size", 1024)
    t = "2026-11-26T17:15:01Z"
    sub = b.subscriber()
    sub.subscribe("big")
    b.wait_subscribers({"big": 1})
    # the packed size of a probe event, as published; detail {"s": ""}
    with Client(b.ingest) as c:
        assert c.put([entry("big", detail={"s": ""}, time=t)])["failed"] == 0
    size0 = len(sub.recv(5).raw)
    # a string of n bytes (256 <= n < 65536) packs as 3 header bytes + n instead of 1 + 0
    n = 1024 - size0 - 2
    assert 256 <= n < 1000
    exact = entry("big", detail={"s": "a" * n}, time=t)
    over = entry("big", detail={"s": "a" * (n + 1)}, time=t)
    huge = entry("big", detail={"s": "z" * 5000}, time=t)
    with Client(b.ingest) as c:
        r = c.put([entry("big", detail={"small": 1}), huge, exact, over])
    codes = [x.get("code") for x in r["results"]]
    assert codes == [None, "EntryTooLarge", None, "EntryTooLarge"], r
    assert r["failed"] == 2
    got = sub.recv_all(2, timeout=5)
    assert len(got[1].raw) == 1024
    st = b.stats()
    assert st["topics"]["big"]["in"] == 3
    assert st["topics"]["big"]["rejected"] == 2
    assert_still_serving(b)


def test_max_topics(zb):
    b = zb.broker("--max-topics", 3)
    with Client(b.ingest) as c:
        r = c.put([entry("t1"), entry("t2"), entry("t3"), entry("t4"), entry("t1")])
    codes = [x.get("code") for x in r["results"]]
    assert codes == [None, None, None, "LimitExceeded", None], r
    assert set(b.stats()["topics"]) == {"t1", "t2", "t3"}


# --- garbage in bulk --------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("which", ["ingest", "control"])
def test_random_garbage(broker, which):
    """5,000 random messages, each answered by one reply, then good requests."""
    rnd = random.Random(1234)
    ep = broker.ingest if which == "ingest" else broker.control
    commands = [b"PUT", b"PING", b"STATS", b"", b"XYZ", b"put"]

    def garbage():
        n = rnd.randint(1, 6)
        frames = []
        for i in range(n):
            kind = rnd.random()
            if i == 0 and kind < 0.5:
                frames.append(rnd.choice(commands))
            elif kind < 0.2:
                frames.append(b"")
            elif kind < 0.5:
                frames.append(rnd.randbytes(rnd.randint(1, 300)))
            elif kind < 0.7:
                # msgpack-looking bytes: a fixarray/map header and random contents
                frames.append(bytes([rnd.choice([0x91, 0x92, 0x81, 0xdc, 0xdd, 0xc4, 0xd9])])
                              + rnd.randbytes(rnd.randint(0, 64)))
            else:
                frames.append(pack([{"source": rnd.randbytes(4).hex(),
                                     "detail-type": rnd.choice(["", "$x", "ok", "g"]),
                                     "detail": rnd.choice([{}, [], None, {"a": 1}, "s"])}]))
        return frames

    total, window = 5000, 200
    replies = sent = 0
    with Client(ep) as c:
        while replies < total:
            while sent < total and sent - replies < window:
                c.send_frames(garbage())
                sent += 1
            c.recv_frames(10)
            replies += 1
        with pytest.raises(ZbTimeout):
            c.recv_frames(0.3)          # one reply per message, no more
    assert broker.proc.alive()
    assert_still_serving(broker)
    st = broker.stats()
    assert st["requests_failed"] > 0


# --- the programs' command lines ------------------------------------------------


def test_producer_file_with_bad_lines(zb):
    b = zb.broker()
    sub = b.subscriber()
    sub.subscribe("file-t")
    b.wait_subscribers({"file-t": 1})
    lines = [
        json.dumps({"Source": "f", "DetailType": "file-t", "Detail": json.dumps({"n": 1})}),
        "{not json",
        "",
        json.dumps([1, 2, 3]),
        json.dumps({"source": "f", "detail-type": "file-t", "detail": {"n": 2},
                    "resources": ["r1"], "time": "2026-11-26T18:15:01.250+01:00"}),
        "   ",
        json.dumps({"DetailType": "file-t", "Detail": {"n": 3}}),      # no source: broker rejects
        json.dumps({"Source": "f", "DetailType": "file-t", "Detail": {"n": 4}}),
    ]
    path = os.path.join(zb.tmpdir, "in.jsonl")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p, rep = zb.producer(b, "--file", path, "--quiet")
    err = p.stderr()
    assert re.search(r"line 2\b", err), err
    assert re.search(r"line 4\b", err), err
    assert "entry rejected: InvalidArgument" in err
    assert rep["acked"] == 3
    assert rep["failed"] == 3            # 2 invalid lines + 1 rejected entry
    assert rep["bad_msgs"] >= 2
    got = sub.recv_all(3, timeout=5)
    assert [e.event["detail"] for e in got] == [{"n": 1}, {"n": 2}, {"n": 4}]
    assert got[1].event["resources"] == ["r1"]
    assert got[1].event["time"] == "2026-11-26T17:15:01.250Z"
    assert sub.drain(0.3) == []

    # stdin works the same way
    p, rep = zb.producer(b, "--file", "-", "--quiet", input=lines[0] + "\n" + lines[1] + "\n")
    assert rep["acked"] == 1 and rep["failed"] == 1
    assert sub.recv(5).event["detail"] == {"n": 1}

    # a file that does not exist: an error naming it
    p, rep = zb.producer(b, "--file", os.path.join(zb.tmpdir, "nope.jsonl"), "--quiet")
    assert p.returncode != 0
    assert "nope.jsonl" in p.stderr()


BAD_FLAGS = [
    ("zb-broker", ["--bogus"]),
    ("zb-broker", ["extra-arg"]),
    ("zb-producer", ["--bogus"]),
    ("zb-producer", ["--count", "many"]),
    ("zb-producer", ["--bad-ratio", "2"]),
    ("zb-dispatch", ["--bogus"]),
    ("zb-dispatch", ["--count", "x"]),
    ("zb-warehouse", ["--count", "-3"]),
    ("zb-warehouse", ["--topic", "x"]),
    ("zb-consumer", []),
    ("zb-consumer", ["--count", "1"]),
    ("zb-consumer", ["--topic"]),
    ("zbctl", []),
    ("zbctl", ["frobnicate"]),
    ("zbctl", ["--timeout", "soon", "ping"]),
    ("zbctl", ["--bogus", "ping"]),
    ("zbctl", ["put", "--source", "s"]),
]


@pytest.mark.parametrize("prog,args", BAD_FLAGS, ids=["%s %s" % (p, " ".join(a)) for p, a in BAD_FLAGS])
def test_bad_flags_exit_2(zb, prog, args):
    p = zb.run(prog, *args, timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr())
    err = p.stderr()
    assert err.strip(), "no message on stderr"
    assert prog in err


ALL_PROGRAMS = sorted(PROGRAMS)


@pytest.mark.parametrize("prog", ALL_PROGRAMS)
def test_help_and_version(zb, prog):
    p = zb.run(prog, "--help", timeout=10)
    assert p.returncode == 0, p.stderr()
    text = p.stdout() + p.stderr()
    assert prog in text
    assert re.search(r"example", text, re.I), "--help has no examples:\n" + text
    assert "--help" in text and "--version" in text
    for flag in ("-h", "--help"):
        q = zb.run(prog, flag, timeout=10)
        assert q.returncode == 0
    for flag in ("-V", "--version"):
        v = zb.run(prog, flag, timeout=10)
        assert v.returncode == 0, v.stderr()
        assert v.stdout().strip() == "%s %s" % (prog, version())
