"""zb-producer: its report, pipelining options, bad ratio, timeouts, rejection logging."""

import json
import os
import re
import time

import pytest

from conftest import free_port, wait_for


@pytest.mark.parametrize("batch,window", [(1, 1), (7, 3), (100, 64)])
def test_batch_and_window(zb, batch, window):
    b = zb.broker()
    w = zb.consumer("zb-warehouse", b, "--quiet", "--count", 503)
    b.wait_subscribers({"sales-events": 1, "inventory-events": 1})
    p, rep = zb.producer(b, "--count", 503, "--batch", batch, "--window", window, "--seed", 9,
                         "--quiet")
    assert p.returncode == 0, p.stderr()
    assert rep["acked"] == 503 and rep["failed"] == 0 and rep["status"] is True
    st = b.stats()
    assert st["entries_in"] == 503
    assert st["requests"] == -(-503 // batch)        # ceil: one request per batch
    assert w.wait(10) == 0, w.stderr()
    assert w.last_json()["received"] == 503


@pytest.mark.parametrize("ratio", ["0", "1"])
def test_bad_ratio_extremes(zb, ratio):
    b = zb.broker()
    w = zb.consumer("zb-warehouse", b)
    b.wait_subscribers({"sales-events": 1, "inventory-events": 1})
    p, rep = zb.producer(b, "--count", 200, "--bad-ratio", ratio, "--seed", 4, "--quiet")
    assert p.returncode == 0, p.stderr()
    assert rep["bad_msgs"] == (0 if ratio == "0" else 200)
    wait_for(lambda: len(w.stdout_lines()) == 200, 10, what="200 events")
    for e in w.json_lines():
        if ratio == "0":
            assert e["detail"]["store_id"].startswith("store_")
            assert "bad_msg" not in e["detail"]
        else:
            assert "store_id" not in e["detail"]
            assert e["detail"]["bad_msg"] is True


def test_no_broker_times_out(zb):
    ep = "tcp://127.0.0.1:%d" % free_port()
    t0 = time.monotonic()
    p = zb.run("zb-producer", "--connect", ep, "--count", 5, "--timeout", 1, "--quiet",
               timeout=20)
    took = time.monotonic() - t0
    assert p.returncode == 1, p.stderr()
    rep = p.last_json()
    assert rep["status"] is False
    assert rep["error_message"] == "no reply from %s within 1 s" % ep
    assert rep["acked"] == 0
    assert 0.9 <= took < 5


def test_rejections_logged_ten_then_counted(zb):
    b = zb.broker()
    path = os.path.join(zb.tmpdir, "rej.jsonl")
    with open(path, "w") as f:
        for i in range(15):
            f.write(json.dumps({"Source": "s", "DetailType": "$reserved-%d" % i,
                                "Detail": {}}) + "\n")
        f.write(json.dumps({"Source": "s", "DetailType": "fine", "Detail": {}}) + "\n")
    p, rep = zb.producer(b, "--file", path, "--quiet")
    assert rep["acked"] == 1 and rep["failed"] == 15
    rejected = [l for l in p.stderr_lines() if l.startswith("zb-producer: entry rejected: ")]
    assert len(rejected) == 10, p.stderr()
    assert all(l.startswith("zb-producer: entry rejected: InvalidArgument: ") for l in rejected)
    # then a count of the rest (or of all), naming the number
    assert any(re.search(r"\b(5 more|15)\b", l) and re.search(r"reject|error", l)
               for l in p.stderr_lines() if l not in rejected), p.stderr()


def test_seed_is_logged(zb):
    b = zb.broker()
    p, rep = zb.producer(b, "--count", 3, "--quiet")
    assert p.returncode == 0
    assert any("seed" in l for l in p.stderr_lines()), p.stderr()
