"""zb-producer's resends against a fake ingest socket that misbehaves on purpose: replies
that come after --retry-ms (late replies to superseded correlation ids must be ignored
and no entry counted twice), InternalFailure per entry and per request (resent with the
same idempotency keys), and a broker that never stores (the entries fail after
--retries). The fake stores each idempotency key once, as the broker does, and answers
a repeated key with "duplicate": true."""

import collections
import json
import re
import threading
import time

import pytest
import zmq

from conftest import free_port
from zbclient import pack, unpack


class FakeIngest:
    def __init__(self, mode, delay=0.0):
        self.ctx = zmq.Context.instance()
        self.endpoint = "tcp://127.0.0.1:%d" % free_port()
        self.mode = mode
        self.delay = delay
        self.stored = {}            # key -> seq
        self.requests = []          # (corr, [keys])
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    def _result(self, key, attempt):
        if self.mode == "internal" and attempt == 1 and int(key.rsplit("-", 1)[1]) % 3 == 0:
            return {"code": "InternalFailure", "message": "journal write failed: test; retry"}
        if self.mode == "never":
            return {"code": "InternalFailure", "message": "journal write failed: test; retry"}
        if key in self.stored:
            return {"id": "id-%s" % key, "seq": self.stored[key], "duplicate": True}
        self.stored[key] = len(self.stored) + 1
        return {"id": "id-%s" % key, "seq": self.stored[key]}

    def _serve(self):
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        self.ready.set()
        seen = {}                   # key -> times received
        held = []                   # (due, frames)
        while not self.stop.is_set():
            now = time.monotonic()
            for item in [h for h in held if h[0] <= now]:
                held.remove(item)
                sock.send_multipart(item[1])
            if not sock.poll(5, zmq.POLLIN):
                continue
            ident, cmd, corr, body = sock.recv_multipart()
            entries = unpack(body)
            keys = [e["idempotency-key"] for e in entries]
            self.requests.append((corr, keys))
            attempts = []
            for k in keys:
                seen[k] = seen.get(k, 0) + 1
                attempts.append(seen[k])
            if self.mode == "request-error" and attempts[0] == 1:
                sock.send_multipart([ident, b"ERROR", corr, pack(
                    {"code": "InternalFailure", "message": "out of memory"})])
                continue
            results = [self._result(k, a) for k, a in zip(keys, attempts)]
            reply = [ident, b"OK", corr, pack(
                {"failed": sum(1 for r in results if "code" in r), "results": results})]
            if self.mode == "slow" and attempts[0] == 1:
                held.append((now + self.delay, reply))      # answered, but late
            else:
                sock.send_multipart(reply)
        sock.close(0)

    def close(self):
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def ingest_factory():
    made = []

    def make(mode, delay=0.0):
        f = FakeIngest(mode, delay)
        made.append(f)
        return f
    yield make
    for f in made:
        f.close()


def run(zb, fake, *args):
    p = zb.run("zb-producer", "--connect", fake.endpoint, "--quiet", *args, timeout=60)
    lines = p.stdout_lines()
    return p, json.loads(lines[-1]) if lines else None



@pytest.mark.timeout(60)
def test_late_replies_are_ignored_and_nothing_is_counted_twice(zb, ingest_factory):
    fake = ingest_factory("slow", delay=0.6)
    p, rep = run(zb, fake, "--count", 200, "--batch", 10, "--window", 4, "--retry-ms", 200,
                 "--seed", 3)
    assert p.returncode == 0, p.stderr()
    assert rep["status"] is True
    assert (rep["tot_msgs"], rep["acked"], rep["failed"]) == (200, 200, 0), rep
    # every request was resent once (its first reply came after 600 ms > 200 ms)
    assert rep["retried"] == 200, rep
    # the resend's reply says duplicate for what the first attempt stored
    assert rep["duplicates"] == 200, rep
    assert len(fake.stored) == 200
    assert any("ignored (unknown, or resent since)" in l for l in p.stderr_lines()), p.stderr()
    # the same keys went again, under new correlation ids
    sent = collections.Counter(tuple(k) for c, k in fake.requests)
    assert len(sent) == 20 and set(sent.values()) == {2}, sent
    corrs = [c for c, k in fake.requests]
    assert len(set(corrs)) == len(corrs)
    keys = [k for c, ks in fake.requests for k in ks]
    run_ids = {k.rsplit("-", 1)[0] for k in keys}
    assert len(run_ids) == 1 and re.match(r"^[0-9a-f]{16}$", run_ids.pop())
    assert sorted({int(k.rsplit("-", 1)[1]) for k in keys}) == list(range(1, 201))


@pytest.mark.timeout(60)
def test_internal_failures_are_resent_with_their_keys(zb, ingest_factory):
    fake = ingest_factory("internal")
    p, rep = run(zb, fake, "--count", 90, "--batch", 9, "--seed", 4)
    assert p.returncode == 0, p.stderr()
    # every third entry failed once and was resent alone (a partial request)
    assert (rep["acked"], rep["failed"], rep["retried"], rep["duplicates"]) == (90, 0, 30, 0), rep
    assert len(fake.stored) == 90
    partial = [ks for c, ks in fake.requests if len(ks) == 3]
    assert len(partial) == 10
    assert all(int(k.rsplit("-", 1)[1]) % 3 == 0 for ks in partial for k in ks)


@pytest.mark.timeout(60)
def test_request_level_internal_failure_is_resent(zb, ingest_factory):
    fake = ingest_factory("request-error")
    p, rep = run(zb, fake, "--count", 30, "--batch", 10)
    assert p.returncode == 0, p.stderr()
    assert (rep["acked"], rep["failed"], rep["retried"]) == (30, 0, 30), rep


@pytest.mark.timeout(60)
def test_entries_fail_after_the_retries(zb, ingest_factory):
    fake = ingest_factory("never")
    p, rep = run(zb, fake, "--count", 20, "--batch", 10, "--retries", 3)
    assert p.returncode == 0, p.stderr()
    assert (rep["acked"], rep["failed"], rep["retried"]) == (0, 20, 60), rep
    # 1 + 3 sends of each of the two requests
    assert len(fake.requests) == 8
    assert any("giving up on 10 entries after 4 sends" in l for l in p.stderr_lines()), \
        p.stderr()


@pytest.mark.timeout(60)
def test_no_broker_at_all_times_out(zb):
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    p = zb.run("zb-producer", "--connect", endpoint, "--count", 5, "--timeout", 1,
               "--retry-ms", 100, "--quiet", timeout=30)
    assert p.returncode == 1
    rep = json.loads(p.stdout_lines()[-1])
    assert rep["status"] is False and rep["failed"] == 5 and rep["retried"] > 0, rep
    assert rep["error_message"] == "no reply from %s within 1 s" % endpoint


def test_report_keys_and_flags(zb, ingest_factory):
    fake = ingest_factory("ok")
    p, rep = run(zb, fake, "--count", 3)
    assert list(rep) == ["status", "tot_msgs", "bad_msgs", "sale_evnts", "inventory_evnts",
                         "acked", "failed", "retried", "duplicates"]
    for bad in (["--retry-ms", "0"], ["--retry-ms", "x"], ["--retries", "-1"]):
        p = zb.run("zb-producer", *bad)
        assert p.returncode == 2, (bad, p.stderr())
    p = zb.run("zb-producer", "--help")
    assert "--retry-ms" in p.stdout() and "--retries" in p.stdout()
