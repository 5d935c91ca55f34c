"""zb-broker configuration, signals and counters."""

import os
import re
import signal
import socket

import pytest

from conftest import entry, free_port, wait_for
from zbclient import Client, Subscriber, ZbTimeout


def ep():
    return "tcp://127.0.0.1:%d" % free_port()


def write(zb, name, text):
    path = os.path.join(zb.tmpdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_config_file_sets_endpoints_account_region(zb):
    ing, pub, ctl = ep(), ep(), ep()
    cfg = write(zb, "b.cfg",
                '#   zbridge broker\n'
                'broker\n'
                '    ingest = "%s"\n'
                '    publish = "%s"\n'
                '    control = "%s"\n'
                '    account = "210987654321"\n'
                '    region = "cfg-region"\n'
                '    max-entries = 7\n' % (ing, pub, ctl))
    b = zb.broker("--config", cfg, ports=False)
    assert (b.ingest, b.publish, b.control) == (ing, pub, ctl)
    sub = b.subscriber()
    sub.subscribe("cfg")
    b.wait_subscribers({"cfg": 1})
    with Client(ing) as c:
        assert c.put([entry("cfg")] * 7)["failed"] == 0
        reply = c.request("PUT", [entry("cfg")] * 8)
        assert reply.status == "ERROR" and reply.body["code"] == "TooManyEntries"
    ev = sub.recv(5).event
    assert (ev["account"], ev["region"]) == ("210987654321", "cfg-region")


def test_flags_override_the_config_file(zb):
    cfg_ing, flag_ing, pub, ctl = ep(), ep(), ep(), ep()
    cfg = write(zb, "b.cfg",
                'broker\n'
                '    ingest = "%s"\n'
                '    publish = "%s"\n'
                '    control = "%s"\n'
                '    account = "111111111111"\n'
                '    region = "from-file"\n' % (cfg_ing, pub, ctl))
    b = zb.broker("--config", cfg, "--ingest", flag_ing, "--account", "222222222222",
                  ports=False)
    assert b.ingest == flag_ing
    assert (b.publish, b.control) == (pub, ctl)
    sub = b.subscriber()
    sub.subscribe("ovr")
    b.wait_subscribers({"ovr": 1})
    with Client(flag_ing) as c:
        assert c.put([entry("ovr")])["failed"] == 0
    ev = sub.recv(5).event
    assert ev["account"] == "222222222222"      # the flag
    assert ev["region"] == "from-file"          # the file, no flag given
    # and nothing listens on the file's ingest endpoint
    with Client(cfg_ing, timeout=0.5) as c:
        with pytest.raises(ZbTimeout):
            c.ping()


BAD_CONFIGS = {
    "missing file": None,
    "bad number": 'broker\n    max-entries = "lots"\n',
    "zero max-entries": 'broker\n    max-entries = 0\n',
    "negative max-event-size": 'broker\n    max-event-size = -5\n',
    "unknown key": 'broker\n    max-entries = 5\n    colour = "blue"\n',
    "no broker section": 'brokr\n    max-entries = 5\n',
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_refused(zb, case):
    text = BAD_CONFIGS[case]
    if text is None:
        path = os.path.join(zb.tmpdir, "does-not-exist.cfg")
    else:
        path = write(zb, "bad.cfg", text)
    p = zb.run("zb-broker", "--config", path, "--ingest", ep(), "--publish", ep(),
               "--control", ep(), timeout=10)
    # a bad configuration is a usage error: exit 2 with a message naming the fault
    assert p.returncode == 2, (p.returncode, p.stderr())
    err = p.stderr()
    assert err.startswith("zb-broker: ")
    assert "ready" not in err
    if text is None:
        assert "does-not-exist.cfg" in err
    elif case == "unknown key":
        assert "colour" in err, err
    elif case == "no broker section":
        assert "broker" in err and "bad.cfg" in err, err
    else:
        assert re.search(r"max-entries|max-event-size", err), err


@pytest.mark.parametrize("args", [["--max-entries", "abc"], ["--max-event-size", "0"],
                                  ["--max-topics", "-1"]])
def test_bad_flag_values_are_refused(zb, args):
    p = zb.run("zb-broker", "--ingest", ep(), "--publish", ep(), "--control", ep(), *args,
               timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr())
    assert args[0] in p.stderr()


def test_bind_failure_exits_1(zb):
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        p = zb.run("zb-broker", "--ingest", "tcp://127.0.0.1:%d" % port, "--publish", ep(),
                   "--control", ep(), timeout=10)
    finally:
        busy.close()
    assert p.returncode == 1, (p.returncode, p.stderr())
    assert str(port) in p.stderr()
    p = zb.run("zb-broker", "--ingest", "nonsense://x", "--publish", ep(), "--control", ep(),
               timeout=10)
    assert p.returncode == 1, (p.returncode, p.stderr())
    assert "nonsense://x" in p.stderr()


def test_wildcard_ports_are_reported(zb):
    b = zb.broker("--ingest", "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*",
                  "--control", "tcp://127.0.0.1:*", ports=False)
    for e in (b.ingest, b.publish, b.control):
        assert re.match(r"^tcp://127\.0\.0\.1:\d+$", e), e
    assert len({b.ingest, b.publish, b.control}) == 3
    with Client(b.ingest) as c:
        assert c.ping()["status"] == "ok"
    assert b.stats()["seq"] == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_cleanly(zb, sig):
    b = zb.broker()
    sub = b.subscriber()
    sub.subscribe("sig")
    b.wait_subscribers({"sig": 1})
    with Client(b.ingest) as c:
        assert c.put([entry("sig")] * 10)["failed"] == 0
    rc = b.proc.stop(sig, timeout=5)
    assert rc == 0, (rc, b.proc.stderr())
    stopping = [l for l in b.proc.stderr_lines() if l.startswith("zb-broker: stopping")]
    assert len(stopping) == 1, b.proc.stderr()
    assert "10" in stopping[0], "the counters: " + stopping[0]


def test_stats_counters_after_a_known_load(zb):
    b = zb.broker()
    sub = b.subscriber()
    sub.subscribe("sales-events")
    b.wait_subscribers({"sales-events": 1})
    with Client(b.ingest) as c:
        for i in range(3):
            r = c.put([entry("sales-events", detail={"i": i}) for _ in range(10)]
                      + [entry("sales-events", detail=[1])])            # rejected, tracked topic
            assert r["failed"] == 1
        r = c.put([entry("inventory-events", detail={"n": n}) for n in range(20)])
        assert r["failed"] == 0
        r = c.put([entry("never-seen", detail="not a map")])           # rejected, untracked
        assert r["failed"] == 1
        assert c.request("PUT", b"\xc1").status == "ERROR"              # a failed request
        assert c.request("NOPE", b"").status == "ERROR"
    with Client(b.control) as c:
        assert c.request("PUT", b"").status == "ERROR"
    st = b.stats()
    assert st["seq"] == 50
    assert st["requests"] == 5
    assert st["requests_failed"] == 3
    assert st["entries_in"] == 50
    assert st["entries_rejected"] == 4
    assert st["topics"]["sales-events"] == {"in": 30, "out": 30, "rejected": 3,
                                            "subscribers": 1, "seq": 30}
    assert st["topics"]["inventory-events"] == {"in": 20, "out": 20, "rejected": 0,
                                                "subscribers": 0, "seq": 20}
    assert "never-seen" not in st["topics"]
    assert st["uptime_ms"] >= 0 and isinstance(st["version"], str)
    # the subscriber goes away: its subscription is dropped from the count
    sub.close()
    wait_for(lambda: b.subscribers("sales-events") == 0, 5,
             what="the subscription count to drop to 0")


def _threads_cpus(pid):
    """{thread name: its Cpus_allowed_list} of a process."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s/" % (pid, tid)
        with open(base + "comm") as f:
            name = f.read().strip()
        with open(base + "status") as f:
            cpus = [l.split(":", 1)[1].strip() for l in f if l.startswith("Cpus_allowed_list")]
        out[name] = cpus[0]
    return out


def test_cpus_pins_every_thread(zb):
    """--cpus: the broker's thread and ZeroMQ's threads (created after it) run on
    the CPUs given, and the broker serves as usual; the config key does the same."""
    last = max(os.sched_getaffinity(0))
    b = zb.broker("--memory", "--cpus", str(last))
    threads = _threads_cpus(b.proc.pid)
    assert any(n.startswith("ZMQbg/IO") for n in threads), threads
    assert set(threads.values()) == {str(last)}, threads
    with Client(b.ingest) as c:
        assert c.put([entry("pinned")])["failed"] == 0
    cfg = write(zb, "cpus.cfg", 'broker\n    cpus = "0-%d"\n' % last)
    b2 = zb.broker("--memory", "--config", cfg)
    want = "0-%d" % last if last else "0"
    assert set(_threads_cpus(b2.proc.pid).values()) == {want}


def _refused(zb, *args):
    """zb-broker --memory with args on free ports: a usage error (exit 2) that
    never got as far as ready; its stderr."""
    p = zb.run("zb-broker", "--memory", "--ingest", ep(), "--publish", ep(), "--control", ep(),
               *args, timeout=10)
    err = p.stderr()
    assert p.returncode == 2, (p.returncode, err)
    assert "ready" not in err, err
    return err


@pytest.mark.parametrize("value", ["", "x", "1-", "-1", "3-1", "0,,1", "0,", " 0", "0x1",
                                   "1024", "99999999999999999999999", "0-1025"])
def test_cpus_garbage_is_refused(zb, value):
    err = _refused(zb, "--cpus", value)
    assert "--cpus" in err and "is not a CPU list" in err, err


def test_cpus_not_available_is_refused(zb):
    """A well-formed list of CPUs the broker may not use: exit 2, naming the ones
    it may use."""
    allowed = os.sched_getaffinity(0)
    outside = next(c for c in range(1024) if c not in allowed)
    err = _refused(zb, "--cpus", str(outside))
    assert "may not run on" in err and str(min(allowed)) in err, err


def _flood_a_stalled_subscriber(zb, *args):
    """A subscriber that reads nothing (receive HWM 1) while 5,000 events of 4 KiB
    (20 MB, more than loopback TCP buffers hold) are stored; then it reads what
    came. Returns (events received, gaps seen by topic_seq, the last topic_seq)."""
    b = zb.broker("--memory", *args)
    with Subscriber(b.publish, rcvhwm=1) as sub:
        sub.subscribe("sales-events")
        b.wait_subscribers({"sales-events": 1})
        pad = "x" * 4000
        batches = [[entry(detail={"k": i * 50 + j, "pad": pad}) for j in range(50)]
                   for i in range(100)]
        with Client(b.ingest) as c:
            results = c.put_pipelined(batches, window=8, timeout=30)
        assert sum(r["failed"] for r in results) == 0
        got = sub.drain(quiet=1.0, limit=10000)
        return len(got), sub.missed, got[-1].topic_seq if got else 0


def test_publish_hwm_bounds_a_stalled_subscribers_queue(zb):
    """--publish-hwm is the publish socket's queue per subscriber: with 1 message a
    stalled subscriber misses events (the gap shows in topic_seq; the journal
    keeps them), with room for all of them it misses nothing."""
    n, missed, last = _flood_a_stalled_subscriber(zb, "--publish-hwm", "1")
    assert n < 5000 and missed > 0 and n + missed <= 5000, (n, missed)
    n, missed, last = _flood_a_stalled_subscriber(zb, "--publish-hwm", "100000")
    assert (n, missed, last) == (5000, 0, 5000)


@pytest.mark.parametrize("value", ["", "0", "-1", "x", "1e3", "1000001", "99999999999999999999"])
def test_publish_hwm_garbage_is_refused(zb, value):
    err = _refused(zb, "--publish-hwm", value)
    assert "--publish-hwm" in err and "not an integer from 1 to 1000000" in err, err
    cfg = write(zb, "hwm.cfg", 'broker\n    publish-hwm = "%s"\n' % value)
    err = _refused(zb, "--config", cfg)
    assert "broker/publish-hwm" in err and "not an integer from 1 to 1000000" in err, err
