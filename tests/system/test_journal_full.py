"""A journal that cannot write (PROTOCOL.md, "Acknowledgement means stored"): the broker's
--data-dir is on a 4 MiB tmpfs that the test fills with 2 KB events. Entries it cannot
store get InternalFailure ("journal write failed: ...; retry"), whole requests at a time;
nothing is acknowledged, published or numbered that is not stored (REPLAY shows exactly
the acknowledged events, seq and topic_seq without holes, the subscriber got exactly
them); the broker keeps answering. Then the tmpfs is grown to 64 MiB (mount -o remount):
the broker recovers without a restart, the failed entries resent with their idempotency
keys are stored as new events (a failed key is not remembered), and new PUTs succeed.

Needs root for mount(8); the tmpfs is always unmounted (lazily if still busy) at the end.
Without root (or when mount is refused) the test falls back to a tiny LMDB map instead of a
small filesystem: --journal-max-mb 1 (the smallest the broker accepts, if it refuses 1),
and recovery is a restart with a larger --journal-max-mb on the same --data-dir.
ZB_TEST_NO_MOUNT=1 forces that fallback (to test it as root)."""

import os
import subprocess
import time

import pytest

from conftest import replay_all, wait_for
from zbclient import ZbTimeout

TOPIC = "full-events"
PAD = "x" * 2000
BATCH = 10


def mount_tmpfs(path, size):
    if os.geteuid() != 0 or os.environ.get("ZB_TEST_NO_MOUNT"):
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "zbtest", path],
                       capture_output=True, text=True, timeout=20)
    return r.returncode == 0


def unmount(path):
    r = subprocess.run(["umount", path], capture_output=True, timeout=20)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", path], capture_output=True, timeout=20)


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs (or None when it cannot be mounted). Request it BEFORE zb so that
    the programs are stopped before it is unmounted."""
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    if not mount_tmpfs(str(mnt), "4m"):
        yield None
        return
    try:
        yield str(mnt)
    finally:
        unmount(str(mnt))


def keyed(i):
    return {"source": "zbridge.test", "detail-type": TOPIC, "detail": {"i": i, "pad": PAD},
            "idempotency-key": "full-%d" % i}


def put_batches(ing, entries, acked, failed, errors):
    """PUT entries BATCH at a time; record acked[key] = result, failed keys, errors."""
    for at in range(0, len(entries), BATCH):
        batch = entries[at:at + BATCH]
        reply = ing.put(batch, timeout=20)
        oks = [r for r in reply["results"] if "seq" in r]
        assert len(oks) in (0, len(batch)), \
            "a request was partly stored: %r" % [r.get("code", r.get("seq")) for r in reply["results"]]
        for e, r in zip(batch, reply["results"]):
            if "seq" in r:
                assert not r.get("duplicate", False), r
                acked[e["idempotency-key"]] = r
            else:
                assert r["code"] == "InternalFailure", r
                assert r["message"].startswith("journal write failed: "), r
                assert r["message"].endswith("retry"), r
                failed.append(e)
                errors.append(r)
        assert reply["failed"] == len(batch) - len(oks)


@pytest.mark.timeout(150)
def test_full_journal_fails_entries_and_recovers(small_fs, zb):
    if small_fs is not None:
        data = os.path.join(small_fs, "data")
        b = zb.broker(data_dir=data)
        capacity = 4 << 20
    else:
        data = zb.fresh_dir("data")
        b = None
        for mb in (1, 2, 4, 8, 16, 32, 64):
            try:
                b = zb.broker("--journal-max-mb", mb, "--retain-mb", 0, data_dir=data)
                capacity = mb << 20
                break
            except AssertionError:
                continue
        assert b is not None, "the broker accepts no small --journal-max-mb"
    try:
        sub = b.subscriber(rcvhwm=1000000)
        sub.subscribe(TOPIC)
        b.wait_subscribers({TOPIC: 1})
        ing = b.client(timeout=20)

        # fill it: at most twice the capacity in 2 KB events, until 5 requests failed
        acked, failed, errors = {}, [], []
        max_events = 2 * capacity // len(PAD)
        i = 0
        while i < max_events and len(errors) < 5 * BATCH:
            put_batches(ing, [keyed(i + k) for k in range(BATCH)], acked, failed, errors)
            i += BATCH
        assert errors, "%d events of 2 KB fit in a journal of %d bytes" % (i, capacity)
        assert acked, "nothing could be stored at all"
        assert b.proc.alive()
        assert any("journal" in l for l in b.proc.stderr_lines() if "ready" not in l), \
            "the broker logged nothing about the failing journal"

        print("journal full after %d stored events; %d entries failed: %s"
              % (len(acked), len(failed), errors[0]["message"]))
        # still serving; nothing numbered that is not stored
        head = len(acked)
        assert b.ping()["seq"] == head
        assert b.control_client().journal()["head"] == head
        journal, end = replay_all(b)
        acked_in_order = sorted(acked.values(), key=lambda r: r["seq"])
        assert [e.seq for e in journal] == list(range(1, head + 1))
        assert [e.event["id"] for e in journal] == [r["id"] for r in acked_in_order]
        assert [e.topic_seq for e in journal] == list(range(1, head + 1))
        published = []
        while True:
            try:
                published.append(sub.recv(0.5))
            except ZbTimeout:
                break
        assert [e.event["id"] for e in published] == [r["id"] for r in acked_in_order], \
            "published events differ from the stored ones"

        # give space back
        if small_fs is not None:
            r = subprocess.run(["mount", "-o", "remount,size=64m", small_fs],
                               capture_output=True, text=True, timeout=20)
            assert r.returncode == 0, r.stderr
        else:
            b = zb.restart_broker(b, "--journal-max-mb", 512, "--retain-mb", 0)
            sub = b.subscriber(rcvhwm=1000000)
            sub.subscribe(TOPIC)
            b.wait_subscribers({TOPIC: 1})
            ing = b.client(timeout=20)

        # the failed entries again, same keys: stored now, as new events
        retried, again, errors2 = {}, [], []

        def resend():
            todo = [e for e in failed if e["idempotency-key"] not in retried]
            put_batches(ing, todo[:BATCH], retried, again, errors2)
            return len(retried) == len(failed)
        wait_for(resend, 20, 0.2, "the broker to store again after space came back")
        assert sorted(r["seq"] for r in retried.values()) == \
            list(range(head + 1, head + 1 + len(failed))), "sequence numbers were used up"
        fresh = {}
        put_batches(ing, [keyed(max_events + k) for k in range(BATCH)], fresh, [], [])
        assert len(fresh) == BATCH

        total = head + len(failed) + BATCH
        journal, end = replay_all(b)
        assert [e.seq for e in journal] == list(range(1, total + 1))
        assert [e.topic_seq for e in journal] == list(range(1, total + 1))
        stored = {e.event["detail"]["i"] for e in journal}
        assert len(stored) == total, "an event is stored twice"
        want_ids = {r["id"] for d in (acked, retried, fresh) for r in d.values()}
        assert {e.event["id"] for e in journal} == want_ids
        # the subscriber: the retried and new events, live, in order
        late = []
        deadline = time.monotonic() + 10
        while len(late) < total - head and time.monotonic() < deadline:
            try:
                late.append(sub.recv(1.0))
            except ZbTimeout:
                break
        if small_fs is not None:
            assert [e.seq for e in late] == list(range(head + 1, total + 1))
    finally:
        for p in zb.procs:
            p.stop()


@pytest.mark.timeout(120)
def test_producer_rides_out_a_full_journal(small_fs, zb):
    """zb-producer (--retries) resends entries answered InternalFailure, with their
    keys, until space comes back: every generated event ends up stored exactly once."""
    if small_fs is None:
        pytest.skip("needs a mountable tmpfs (root)")
    b = zb.broker(data_dir=os.path.join(small_fs, "data"))
    p = zb.start("zb-producer", "--connect", b.ingest, "--count", 20000, "--rate", 5000,
                 "--seed", 3, "--retries", 1000, "--retry-ms", 500, "--timeout", 60, "--quiet")
    wait_for(lambda: "journal write failed" in b.proc.stderr(), 30, 0.05,
             "the journal to fill up")
    # Full: the head stands still while the producer keeps retrying. Right after
    # the first failure a smaller group commit can still fit in the pages a failed
    # one left behind, so wait (bounded) for a 1.5 s window without progress.
    head = b.ping()["seq"]
    deadline = time.monotonic() + 20
    while True:
        time.sleep(1.5)
        now = b.ping()["seq"]
        if now == head:
            break
        assert time.monotonic() < deadline, \
            "the journal kept storing on a full filesystem (head %d -> %d)" % (head, now)
        head = now
    assert p.alive(), "the producer gave up while the journal was full"
    r = subprocess.run(["mount", "-o", "remount,size=64m", small_fs], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert p.wait(60) == 0, p.stderr()
    rep = p.last_json()
    assert rep["acked"] == 20000 and rep["failed"] == 0, rep
    assert rep["retried"] > 0, rep
    journal, end = replay_all(b, timeout=20)
    assert [e.seq for e in journal] == list(range(1, 20001))
    assert len({e.event["detail"]["request_id"] for e in journal}) == 20000
    b.proc.stop()
