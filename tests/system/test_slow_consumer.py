"""A consumer stopped with SIGSTOP for several seconds under load, then continued with
SIGCONT, catches up: it ends with every event, in order, none twice. Meanwhile the broker
never waits for it and its memory stays bounded.

High-water marks: the consumers have no flag for their SUB high-water mark (libzmq's
default, 1,000 messages), and the broker queues up to 2,000 messages per subscriber on
its XPUB (ZB_PUBLISH_HWM in broker/broker.c), each of at most 64 events of one request's
topic (protocol version 2). So the load is made larger than everything that can sit in
front of a stopped consumer: about 180,000 events of ~350 bytes (~63 MB) are published
while it is stopped (6 s at 30,000 events/s), against at most 128,000 events queued
plus the loopback TCP buffers (a few MB). A second stopped consumer
(zb-consumer --quiet) proves the live stream really dropped events: its summary's
"replayed" (events it had to fetch from the journal) is > 0.

Memory bound, sampled every 50 ms from /proc/PID/status from before the load to the end:
- the broker's anonymous memory (RssAnon: heap and queues) grows by less than 96 MiB.
  The stopped subscribers' queues share the messages (libzmq counts references), at
  most 2,000 messages of up to 32 KiB; a broker whose queues grew with the load would need more
  than 2 x 63 MB for the events published during the stop;
- its VmRSS stays under 320 MiB. VmRSS also counts the journal's pages mapped from
  the LMDB file (~650 bytes per event, ~130 MiB for these 200,000), which the kernel can
  drop at will: that part is bounded by the journal's size, not by the consumers.
Under sanitizers (conftest.SANITIZED) the memory bounds are not checked."""

import signal
import threading
import time

import pytest

from conftest import SANITIZED, check_in_order, replay_all, seq_of_ids, wait_for

TOTAL = 200000
RATE = 30000
STOP_S = 6.0
VMRSS_BOUND_KB = 320 * 1024
ANON_GROWTH_BOUND_KB = 96 * 1024


def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


class RssSampler(threading.Thread):
    def __init__(self, pid, interval=0.05):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            s = proc_status(self.pid)
            if s:
                self.samples.append(s)
            self.done.wait(self.interval)

    def peak(self, key):
        return max((s.get(key, 0) for s in self.samples), default=0)


@pytest.mark.timeout(180)
def test_stopped_consumer_catches_up_and_broker_memory_stays_bounded(zb):
    b = zb.broker()
    w = zb.consumer("zb-warehouse", b)
    q = zb.consumer("zb-consumer", b, "-t", "sales-events", "-t", "inventory-events",
                    "--quiet", "--count", TOTAL)
    b.wait_subscribers({"sales-events": 2, "inventory-events": 2})
    time.sleep(0.3)
    base = proc_status(b.proc.pid)
    sampler = RssSampler(b.proc.pid)
    sampler.start()
    try:
        producer = zb.start("zb-producer", "--connect", b.ingest, "--count", TOTAL,
                            "--rate", RATE, "--batch", 50, "--window", 16, "--seed", 99,
                            "--quiet")
        wait_for(lambda: len(w.stdout_lines()) >= 2000, 30, 0.02, "2000 events delivered")
        w.send_signal(signal.SIGSTOP)
        q.send_signal(signal.SIGSTOP)
        seq_stop = b.ping()["seq"]
        # the broker goes on at full speed while they are stopped
        t0 = time.monotonic()
        while time.monotonic() - t0 < STOP_S:
            assert b.ping()["seq"] >= seq_stop
            time.sleep(0.2)
        seq_cont = b.ping()["seq"]
        w.send_signal(signal.SIGCONT)
        q.send_signal(signal.SIGCONT)
        during_stop = seq_cont - seq_stop

        assert producer.wait(60) == 0, producer.stderr()
        rep = producer.last_json()
        assert rep["acked"] == TOTAL and rep["failed"] == 0, rep
        wait_for(lambda: len(w.stdout_lines()) >= TOTAL, 90, 0.2,
                 "zb-warehouse to catch up to %d events" % TOTAL)
        time.sleep(0.5)
    finally:
        sampler.done.set()
        sampler.join(2)

    peak_rss, peak_anon = sampler.peak("VmRSS"), sampler.peak("RssAnon")
    memory = "broker VmRSS peak %d KiB, RssAnon %d KiB -> peak %d KiB (%d samples)" % (
        peak_rss, base.get("RssAnon", 0), peak_anon, len(sampler.samples))
    print(memory)
    assert sampler.samples, "no memory samples"
    if not SANITIZED:   # under ASan, quarantine and redzones are not the broker's memory
        assert peak_rss < VMRSS_BOUND_KB, memory
        assert peak_anon - base.get("RssAnon", 0) < ANON_GROWTH_BOUND_KB, memory

    assert q.wait(60) == 0, q.stderr()     # it exits at --count
    summary = q.last_json()
    assert summary["received"] == TOTAL, summary
    assert summary["replayed"] > 0, \
        "the stopped consumer lost nothing live: the load (%d events during the stop) did " \
        "not exceed what queues in front of it (%r)" % (during_stop, summary)
    assert w.stop() == 0, w.stderr()

    journal, _ = replay_all(b, timeout=20)
    seq_of = seq_of_ids(journal)
    wids = [e["id"] for e in w.json_lines()]
    check_in_order(wids, seq_of, "zb-warehouse")
    assert wids == [e.event["id"] for e in journal], "zb-warehouse: not exactly the journal"
