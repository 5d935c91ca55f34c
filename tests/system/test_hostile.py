"""Hostile input on every broker socket, then a normal load (docs/SECURITY.md).

At least 100,000 random and mutated frames go to each socket: the ingest and
control ROUTERs (random bytes, mutated PUT/PING/REPLAY/CREDIT/CANCEL/STATS
messages, wrong frame counts), the publish XPUB (random and mutated
subscription messages from XSUB sockets, which may send anything), and raw TCP
connections that send garbage instead of a ZMTP greeting. Then a producer and
a consumer run as usual: the broker is alive, its memory is bounded, and every
acknowledged event of the normal load is delivered."""

import os
import random
import socket
import time

import pytest
import zmq

from conftest import SANITIZED, entry
from zbclient import Client, pack

FRAMES_PER_SOCKET = 100000
SEED = int(os.environ.get("ZB_HOSTILE_SEED", "20261126"))
# Resident memory the broker may use after all of it (not under sanitizers,
# whose quarantine and shadow memory are not the program's)
RSS_LIMIT_MB = 400


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS for pid %d" % pid)


def mutate(rng, data):
    """A few random edits: flip, insert, delete, truncate, duplicate."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            i = rng.randint(0, len(b))
            b[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and b:
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 8)]
        elif op == 3 and b:
            del b[rng.randrange(len(b)):]
        elif op == 4 and b:
            i = rng.randrange(len(b))
            b[i:i] = b[i:i + rng.randint(1, 16)]
    return bytes(b)


def hostile_entry(rng):
    e = entry("hostile-events", source="hostile", detail={"k": rng.randrange(1000),
                                                         "s": "x" * rng.randrange(40),
                                                         "l": [1, {"a": None}]})
    if rng.random() < 0.3:
        e["time"] = "2026-11-26T17:15:01Z"
    if rng.random() < 0.3:
        e["idempotency-key"] = "k%d" % rng.randrange(100)
    return e


def request_templates(rng, control):
    corr = rng.randbytes(rng.choice((0, 1, 8, 255, 256)))
    if control:
        bodies = [
            (b"REPLAY", pack({"from": rng.randrange(5), "credit": rng.randint(1, 50)})),
            (b"REPLAY", pack({"topics": ["hostile-events"], "credit": 3, "to": 2})),
            (b"CREDIT", pack({"credit": rng.randint(0, 200000)})),
            (b"CANCEL", b""),
            (b"STATS", b""),
            (b"JOURNAL", b""),
            (b"PING", b""),
        ]
    else:
        bodies = [
            (b"PUT", pack([hostile_entry(rng) for _ in range(rng.randint(1, 5))])),
            (b"PUT", pack([])),
            (b"PING", b""),
            (b"PUT", b"\xdd\xff\xff\xff\xff"),            # an array claiming 4 billion entries
            (b"PUT", b"\x91" * 40 + b"\x80"),               # nested deeper than allowed
        ]
    command, body = rng.choice(bodies)
    return [command, corr, body]


def hostile_message(rng, control):
    """One message of 1 to 6 frames: random, mutated or valid with a twist."""
    kind = rng.random()
    if kind < 0.25:
        return [rng.randbytes(rng.choice((0, 1, 3, 8, 40, 300))) for _ in range(rng.randint(1, 6))]
    frames = request_templates(rng, control)
    if kind < 0.7:
        i = rng.randrange(len(frames))
        frames[i] = mutate(rng, frames[i])
    elif kind < 0.85:
        # wrong frame count: drop or add frames, or a REQ-style empty delimiter
        choice = rng.randrange(3)
        if choice == 0:
            frames = frames[:rng.randint(1, 2)]
        elif choice == 1:
            frames = frames + [rng.randbytes(rng.randint(0, 10)) for _ in range(rng.randint(1, 3))]
        else:
            frames = [b""] + frames
    return frames


def keep_pace(control, timeout=60.0):
    """Wait until the broker answers a PING on its control socket: the flood
    never runs further ahead of the broker than one pace (a sanitized broker is
    many times slower than a Python sender, and the test bounds the backlog it
    builds, not the broker's speed)."""
    with Client(control, timeout=timeout) as c:
        c.ping()


def flood_router(endpoint, rng, frames_wanted, sockets=4, pace=None):
    """Send hostile messages from several DEALERs until frames_wanted frames
    went out; replies are read and dropped as they come. endpoint is (address,
    is the control socket). Returns the frames sent."""
    ctx = zmq.Context.instance()
    socks = []
    for _ in range(sockets):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDTIMEO, 10000)
        s.setsockopt(zmq.SNDHWM, 2000)
        s.connect(endpoint[0])
        socks.append(s)
    control = endpoint[1]
    sent = 0
    n = 0
    try:
        while sent < frames_wanted:
            s = socks[n % len(socks)]
            n += 1
            frames = hostile_message(rng, control)
            s.send_multipart(frames)
            sent += len(frames)
            if n % 64 == 0:
                for r in socks:
                    while r.poll(0):
                        r.recv_multipart()
            if pace and n % 2000 == 0:
                keep_pace(pace)
            if n % 5000 == 0:
                # now and then a connection goes away with requests in flight
                i = rng.randrange(len(socks))
                socks[i].close(0)
                socks[i] = ctx.socket(zmq.DEALER)
                socks[i].setsockopt(zmq.LINGER, 0)
                socks[i].setsockopt(zmq.SNDTIMEO, 10000)
                socks[i].setsockopt(zmq.SNDHWM, 2000)
                socks[i].connect(endpoint[0])
    finally:
        for s in socks:
            s.close(0)
    return sent


def flood_publish(endpoint, rng, frames_wanted, sockets=4, pace=None):
    """XSUB sockets may send any message upstream: subscriptions with random and
    mutated topics, unsubscriptions, multipart and other bytes."""
    ctx = zmq.Context.instance()
    socks = []
    for _ in range(sockets):
        s = ctx.socket(zmq.XSUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDTIMEO, 10000)
        s.connect(endpoint)
        socks.append(s)
    topics = [b"sales-events\x00", b"$heartbeat\x00", b"sales-", b"", b"hostile-events\x00",
              "caf\u00e9\x00".encode(), b"x" * 200 + b"\x00", b"\xff\xfe\x00"]
    sent = n = 0
    try:
        while sent < frames_wanted:
            s = socks[n % len(socks)]
            n += 1
            kind = rng.random()
            if kind < 0.4:
                msg = [bytes([rng.randrange(2)]) + mutate(rng, rng.choice(topics))]
            elif kind < 0.6:
                msg = [bytes([1]) + rng.randbytes(rng.randint(0, 60))]
            elif kind < 0.8:
                msg = [rng.randbytes(rng.randint(0, 40))]
            else:
                msg = [rng.randbytes(rng.randint(0, 20)) for _ in range(rng.randint(2, 4))]
            s.send_multipart(msg)
            sent += len(msg)
            if n % 4000 == 0:
                # a subscriber holding many subscriptions goes away
                i = rng.randrange(len(socks))
                socks[i].close(0)
                socks[i] = ctx.socket(zmq.XSUB)
                socks[i].setsockopt(zmq.LINGER, 0)
                socks[i].setsockopt(zmq.SNDTIMEO, 10000)
                socks[i].connect(endpoint)
            if n % 256 == 0:
                for r in socks:
                    while r.poll(0):
                        r.recv_multipart()
            if pace and n % 5000 == 0:
                keep_pace(pace)
    finally:
        for s in socks:
            s.close(0)
    return sent


def tcp_garbage(endpoint, rng, connections=200):
    """Raw TCP connections that send garbage, a mutated ZMTP greeting or a
    truncated one, then close."""
    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    greeting = b"\xff" + b"\x00" * 8 + b"\x7f\x03\x00NULL" + b"\x00" * 16 + b"\x00" + b"\x00" * 31
    for _ in range(connections):
        s = socket.create_connection((host, int(port)), timeout=2.0)
        try:
            kind = rng.randrange(3)
            data = (rng.randbytes(rng.randint(1, 200)) if kind == 0 else
                    mutate(rng, greeting) if kind == 1 else greeting[:rng.randint(1, 63)])
            s.sendall(data)
        except OSError:
            pass
        finally:
            s.close()


@pytest.mark.timeout(180)
def test_hostile_frames_then_normal_load(zb):
    rng = random.Random(SEED)
    b = zb.broker("--max-entries", "50")
    pid = b.proc.pid
    rss_start = rss_mb(pid)
    started = time.monotonic()

    sent = {
        "ingest": flood_router((b.ingest, False), rng, FRAMES_PER_SOCKET, pace=b.control),
        "control": flood_router((b.control, True), rng, FRAMES_PER_SOCKET, pace=b.control),
        "publish": flood_publish(b.publish, rng, FRAMES_PER_SOCKET, pace=b.control),
    }
    for ep in (b.ingest, b.publish, b.control):
        tcp_garbage(ep, rng)
    hostile_s = time.monotonic() - started
    assert all(n >= FRAMES_PER_SOCKET for n in sent.values()), sent
    assert b.proc.alive(), b.proc.stderr()[-3000:]

    # still serving, and its counters say it saw the garbage
    with Client(b.control, timeout=10.0) as c:
        stats = c.stats()
    assert stats["requests_failed"] > 1000, stats
    head_before = stats["seq"]
    rss_hostile = rss_mb(pid)

    # the normal load: a consumer of both topics from now on, a producer
    consumer = zb.consumer("zb-consumer", b, "-t", "sales-events", "-t", "inventory-events",
                           "-q", "-n", "5000")
    b.wait_subscribers({"sales-events": 1, "inventory-events": 1}, timeout=10)
    p, report = zb.producer(b, "-n", "5000", "-b", "20", "--bad-ratio", "0.1", "--seed", "5",
                            "-q", timeout=60)
    assert p.returncode == 0 and report["acked"] == 5000, (report, p.stderr()[-2000:])

    # every acknowledged event is in the journal and reaches the consumer
    with Client(b.control, timeout=10.0) as c:
        events, end = c.replay(frm=head_before + 1, topics=["sales-events", "inventory-events"],
                               credit=5000)
    assert len(events) == 5000
    ids = {e.event["id"] for e in events}

    consumer.wait(60)
    summary = consumer.last_json()
    assert consumer.returncode == 0 and summary["received"] == 5000, (summary, consumer.stderr())
    assert b.proc.alive()

    rss_end = rss_mb(pid)
    print("hostile: %s frames in %.1f s; broker RSS %.1f MB at start, %.1f MB after the "
          "hostile input, %.1f MB after the load" % (sent, hostile_s, rss_start, rss_hostile,
                                                     rss_end))
    if not SANITIZED:
        assert rss_end < RSS_LIMIT_MB, (rss_start, rss_hostile, rss_end)
    assert len(ids) == 5000


@pytest.mark.timeout(120)
def test_hostile_input_on_curve_sockets(zb):
    """The same with CURVE: raw TCP garbage at the handshake, and hostile
    messages from a client whose key is allowed (an insider)."""
    from test_security import Keys, curve_broker
    rng = random.Random(SEED + 1)
    keys = Keys(zb, names=("broker", "alice"))
    keys.allow_key("alice")
    b = curve_broker(zb, keys, "--rate-limit", "100000")
    for ep in (b.ingest, b.publish, b.control):
        tcp_garbage(ep, rng, connections=100)
    ctx = zmq.Context.instance()
    for ep, control in ((b.ingest, False), (b.control, True)):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDTIMEO, 10000)
        from zbclient import set_curve
        set_curve(s, keys.curve("alice"))
        s.connect(ep)
        for _ in range(10000):
            s.send_multipart(hostile_message(rng, control))
            while s.poll(0):
                s.recv_multipart()
        s.close(0)
    with Client(b.control, timeout=10.0, curve=keys.curve("alice")) as c:
        stats = c.stats()
    assert stats["requests_failed"] > 1000 and b.proc.alive()
    with Client(b.ingest, curve=keys.curve("alice")) as c:
        assert c.put([entry("sales-events")])["failed"] == 0
