"""bench/zb-busbench, the benchmark suite's load client: it rejects bad command
lines, and every message it sends arrives where it says (counts, not speed:
scripts/bench measures speed)."""

import json
import os
import subprocess

import pytest

from conftest import BUILD

BUSBENCH = os.path.join(BUILD, "bench", "zb-busbench")


def busbench(*args, timeout=60):
    if not os.access(BUSBENCH, os.X_OK):
        pytest.fail("zb-busbench not built: %s is missing (run ninja -C build)" % BUSBENCH)
    return subprocess.run([BUSBENCH] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)


def result(p):
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    assert lines, p.stderr
    return json.loads(lines[-1])


@pytest.mark.parametrize("args, message", [
    ((), "one TRANSPORT expected"),
    (("smoke-signals",), "unknown transport: smoke-signals"),
    (("zmq-push", "--count", "abc"), "--count: not 1..1000000000: abc"),
    (("zmq-push", "--count", "0"), "--count: not 1..1000000000: 0"),
    (("zmq-push", "--count", "1000000001"), "--count: not 1..1000000000: 1000000001"),
    (("zmq-push", "--size", "7"), "--size: not 8..16777216: 7"),
    (("zmq-push", "--consumers", "2"), "use --consumers 1"),
    (("zmq-pub", "--producers", "65"), "--producers: not 1..64: 65"),
    (("zmq-pub", "--rate", "-1"), "--rate: not 0..10000000: -1"),
    (("mqtt", "--qos", "2", "--port", "1883"), "--qos: not 0 or 1: 2"),
    (("nats",), "nats needs --port"),
    (("zbridge", "--ingest", "tcp://127.0.0.1:1"), "zbridge needs --ingest and --publish"),
    (("zmq-pub", "--frobnicate"), "unknown option '--frobnicate'"),
    (("zmq-pub", "--count"), "option '--count' needs a value"),
    (("zmq-pub", "--count", "3", "--producers", "4"), "--count must be at least --producers"),
])
def test_bad_command_lines(args, message):
    p = busbench(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert message in p.stderr
    assert p.stdout == ""


def test_help_and_version():
    p = busbench("--help")
    assert p.returncode == 0 and "TRANSPORT" in p.stdout
    p = busbench("--version")
    assert p.returncode == 0 and p.stdout.startswith("zb-busbench ")


def test_raw_push_pull_counts():
    r = result(busbench("zmq-push", "--count", 2000, "--size", 100))
    assert r["ok"] and r["delivered"] == r["expected"] == 2000 and r["lost"] == 0
    assert r["bytes_avg"] == 100.0


def test_raw_pub_sub_fan_out_counts():
    # consumers 0 and 2 take both topics (2000 each), consumer 1 sales only (1000)
    r = result(busbench("zmq-pub", "--count", 2000, "--consumers", 3))
    assert r["ok"] and r["expected"] == 5000 and r["delivered"] == 5000


def test_zbridge_counts_and_event_size(zb):
    b = zb.broker("--memory")
    r = result(busbench("zbridge", "--ingest", b.ingest, "--publish", b.publish,
                        "--control", b.control, "--count", 3001, "--producers", 2,
                        "--consumers", 2, "--size", 400))
    # producer 0 sends 1501 (751 sales), producer 1 1500 (750 sales)
    assert r["ok"], r
    assert r["acked"] == 3001 and r["failed"] == 0
    assert r["expected"] == 3001 + 1501 and r["delivered"] == r["expected"]
    # the published event is the size asked for, within the id/time variations
    assert abs(r["bytes_avg"] - 400) < 8, r["bytes_avg"]
    assert zb.brokers[0].stats()["entries_in"] == 3001


def test_zbridge_paced_latency_fields(zb):
    b = zb.broker("--memory")
    r = result(busbench("zbridge", "--ingest", b.ingest, "--publish", b.publish,
                        "--control", b.control, "--count", 200, "--rate", 2000,
                        "--consumers", 1))
    assert r["ok"] and r["delivered"] == 200 and r["batch"] == 1
    assert 0 < r["p50_us"] <= r["p99_us"] <= r["p999_us"] <= r["max_us"]


def test_zbridge_paced_batches_keep_the_rate(zb):
    # the soak's way: --batch with --rate sends batches, each when its last
    # event is due, so the rate holds (2,000 events at 10,000/s: about 0.2 s)
    b = zb.broker("--memory")
    r = result(busbench("zbridge", "--ingest", b.ingest, "--publish", b.publish,
                        "--control", b.control, "--count", 2000, "--rate", 10000,
                        "--batch", 100, "--consumers", 1))
    assert r["ok"] and r["batch"] == 100
    assert r["acked"] == 2000 and r["delivered"] == 2000
    # never ahead of the schedule: the last batch is due at 0.2 s
    assert r["seconds"] >= 0.19, r["seconds"]
    assert zb.brokers[0].stats()["entries_in"] == 2000


def test_zbridge_counts_refused_entries_as_failed(zb):
    # entries the broker refuses (350-byte events, a 256-byte limit) are counted
    # from the reply's "failed": none acked, none delivered, the run not ok
    b = zb.broker("--memory", "--max-event-size", 256)
    r = result(busbench("zbridge", "--ingest", b.ingest, "--publish", b.publish,
                        "--control", b.control, "--count", 250, "--consumers", 1,
                        "--size", 350))
    assert not r["ok"], r
    assert (r["sent"], r["acked"], r["failed"], r["delivered"]) == (250, 0, 250, 0), r
    assert zb.brokers[0].stats()["entries_rejected"] == 250
