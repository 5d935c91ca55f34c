"""Where a new consumer starts (--from, PROTOCOL.md "Reliability", consumer catch-up):
--from earliest receives the whole journal in order and then the live events, merged
without duplicates or reordering even while events keep arriving during the catch-up;
--from seq:N starts at sequence number N; --from time:T at the first event the broker
received at or after T. Consumer output has no seq, so ids are mapped to seqs through a
REPLAY of the journal."""

import calendar
import time

import pytest

from conftest import check_in_order, replay_all, seq_of_ids, wait_for

BOTH = ("-t", "sales-events", "-t", "inventory-events")


def wait_lines(proc, n, timeout=60.0):
    wait_for(lambda: len(proc.stdout_lines()) >= n, timeout, 0.1,
             "%s to print %d events" % (proc.name, n))


def output_ids(proc):
    return [e["id"] for e in proc.json_lines()]


def run_producer(zb, b, count, seed, *extra):
    p, rep = zb.producer(b, "--count", count, "--seed", seed, "--batch", 100, "--quiet",
                         *extra)
    assert p.returncode == 0, p.stderr()
    assert rep["acked"] == count and rep["failed"] == 0, rep
    return rep


@pytest.mark.timeout(120)
def test_from_earliest_gets_everything_in_order_then_live_events(zb):
    b = zb.broker()
    run_producer(zb, b, 10000, 41)
    assert b.ping()["seq"] == 10000

    # live events keep coming while the consumers catch up
    live = zb.start("zb-producer", "--connect", b.ingest, "--count", 3000, "--rate", 3000,
                    "--batch", 10, "--seed", 42, "--quiet")
    w = zb.durable_consumer("zb-warehouse", b, start="earliest")
    d = zb.durable_consumer("zb-dispatch", b, start="earliest")
    assert live.wait(30) == 0, live.stderr()
    assert live.last_json()["acked"] == 3000

    # and more after the catch-up
    wait_lines(w, 13000)
    run_producer(zb, b, 2000, 43)
    total = 15000
    assert b.ping()["seq"] == total
    journal, _ = replay_all(b)
    assert [e.seq for e in journal] == list(range(1, total + 1))
    seq_of = seq_of_ids(journal)
    sales = [e.event["id"] for e in journal if e.topic == "sales-events"]

    wait_lines(w, total)
    wait_lines(d, len(sales))
    time.sleep(0.3)         # anything extra (a duplicate) would show up now
    assert w.stop() == 0, w.stderr()
    assert d.stop() == 0, d.stderr()
    wids, dids = output_ids(w), output_ids(d)
    check_in_order(wids, seq_of, "zb-warehouse")
    check_in_order(dids, seq_of, "zb-dispatch")
    assert wids == [e.event["id"] for e in journal], "warehouse: not exactly the journal"
    assert dids == sales, "dispatch: not exactly the journal's sales events"
    assert not [l for l in w.stderr_lines() + d.stderr_lines() if " missed " in l]


@pytest.mark.timeout(120)
def test_from_seq_n(zb):
    b = zb.broker()
    run_producer(zb, b, 3000, 51)
    journal, _ = replay_all(b)
    n = 1234
    c = zb.durable_consumer("zb-consumer", b, *BOTH, start="seq:%d" % n)
    s = zb.durable_consumer("zb-consumer", b, "-t", "sales-events", start="seq:%d" % n)
    want = [e.event["id"] for e in journal if e.seq >= n]
    want_sales = [e.event["id"] for e in journal if e.seq >= n and e.topic == "sales-events"]
    wait_lines(c, len(want))
    wait_lines(s, len(want_sales))
    # then live
    run_producer(zb, b, 500, 52)
    journal, _ = replay_all(b)
    want = [e.event["id"] for e in journal if e.seq >= n]
    want_sales = [e.event["id"] for e in journal if e.seq >= n and e.topic == "sales-events"]
    wait_lines(c, len(want))
    wait_lines(s, len(want_sales))
    time.sleep(0.3)
    assert c.stop() == 0 and s.stop() == 0
    assert output_ids(c) == want, "--from seq:%d: first seq %s" % (
        n, seq_of_ids(journal).get(output_ids(c)[0]))
    assert output_ids(s) == want_sales


def utc_stamp(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@pytest.mark.timeout(120)
def test_from_time(zb):
    b = zb.broker()
    run_producer(zb, b, 2000, 61)
    head_before = b.ping()["seq"]
    # T: the next whole second after the first batch, then wait until it is past
    t = calendar.timegm(time.gmtime(time.time() + 1.0))
    wait_for(lambda: time.time() >= t + 0.05, 3, 0.01, "the clock to pass T")
    run_producer(zb, b, 1500, 62)
    journal, _ = replay_all(b)
    after = [e.event["id"] for e in journal if e.seq > head_before]
    assert len(after) == 1500

    c = zb.durable_consumer("zb-consumer", b, *BOTH, start="time:" + utc_stamp(t))
    wait_lines(c, len(after))
    time.sleep(0.3)
    assert c.stop() == 0, c.stderr()
    assert output_ids(c) == after, "--from time:%s" % utc_stamp(t)


@pytest.mark.parametrize("bad", ["yesterday", "seq:", "seq:x", "seq:-3", "time:noon",
                                 "time:2026-13-01T00:00:00Z"])
def test_bad_from_is_a_usage_error(zb, bad):
    b = zb.broker()
    p = zb.run("zb-consumer", "--connect", b.publish, "--control", b.control, "-t", "x",
               "--from", bad, timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr())
    assert "--from" in p.stderr() or bad in p.stderr(), p.stderr()


@pytest.mark.timeout(120)
def test_from_earliest_after_retention_pruned_the_start(zb):
    """--retain-mb 1: the broker prunes the oldest events in the background; REPLAY
    from 1 starts at the oldest retained, and a consumer --from earliest gets exactly
    the retained events, with a warning counting what it cannot get."""
    b = zb.broker("--retain-mb", 1)
    run_producer(zb, b, 20000, 71)
    control = b.control_client()

    #  Pruning goes on in the background, a bounded number of events per
    #  second, until the journal fits: wait until it has settled (the same
    #  oldest for 2.5 s, more than two prune ticks), or the replay and the
    #  consumer below would race it.
    seen = {"oldest": 0, "since": time.monotonic()}

    def settled():
        oldest = control.journal()["oldest"]
        if oldest != seen["oldest"]:
            seen["oldest"], seen["since"] = oldest, time.monotonic()
            return None
        return oldest if oldest > 1 and time.monotonic() - seen["since"] >= 2.5 else None
    oldest = wait_for(settled, 30, 0.1, "retention to prune the oldest events and settle")
    journal, end = replay_all(b, frm=1)
    assert journal[0].seq == end.oldest >= oldest
    assert [e.seq for e in journal] == list(range(end.oldest, 20001))
    c = zb.durable_consumer("zb-consumer", b, *BOTH, start="earliest")
    wait_lines(c, len(journal))
    time.sleep(0.3)
    assert c.stop() == 0, c.stderr()
    assert output_ids(c) == [e.event["id"] for e in journal]
    warned = [l for l in c.stderr_lines() if " missed " in l]
    assert warned, "no warning about the pruned events:\n" + c.stderr()
