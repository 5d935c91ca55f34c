"""A consumer with --state-dir killed with SIGKILL in the middle of the stream and
restarted on the same state dir ends with the complete set: the union of both runs'
output is every published event of its topics, each run in seq order without
duplicates, and the second run resumes from the checkpoint (not from --from), so it
repeats at most the few events processed after the last checkpoint (at-least-once
across a crash). Also: the checkpoint file is DIR/<name>.checkpoint and zb-consumer
needs --name with --state-dir."""

import os
import signal
import time

import pytest

from conftest import check_in_order, replay_all, seq_of_ids, wait_for

RATE = 5000
TOTAL = 25000


def ids_of(proc):
    return [e["id"] for e in proc.json_lines()]


@pytest.mark.timeout(150)
@pytest.mark.parametrize("prog,name,topics", [
    ("zb-warehouse", None, ("sales-events", "inventory-events")),
    ("zb-dispatch", None, ("sales-events",)),
    ("zb-consumer", "shop", ("sales-events",)),
])
def test_killed_consumer_resumes_from_its_checkpoint(zb, prog, name, topics):
    b = zb.broker()
    state = zb.fresh_dir("state")
    args = []
    if prog == "zb-consumer":
        for t in topics:
            args += ["-t", t]
    # --from earliest on both runs: the second must prefer its checkpoint
    c1 = zb.durable_consumer(prog, b, *args, state_dir=state, name=name, start="earliest")
    b.wait_subscribers({t: 1 for t in topics})
    producer = zb.start("zb-producer", "--connect", b.ingest, "--count", TOTAL, "--rate", RATE,
                        "--batch", 10, "--seed", 77, "--quiet")

    # kill it once it has printed a good part of the stream
    wait_for(lambda: len(c1.stdout_lines()) >= 4000, 30, 0.05, "%s to print 4000 events" % prog)
    c1.send_signal(signal.SIGKILL)
    c1.wait(5)
    seq_at_kill = b.ping()["seq"]
    assert seq_at_kill < TOTAL - 3 * RATE, "the producer was nearly done: the kill proves little"
    ckpt = os.path.join(state, (name or prog) + ".checkpoint")
    assert os.path.isfile(ckpt), "no checkpoint %s (state dir has %s)" % (ckpt, os.listdir(state))
    leftovers = [f for f in os.listdir(state) if f != os.path.basename(ckpt)]
    time.sleep(1.0)         # events flow on while it is down

    c2 = zb.durable_consumer(prog, b, *args, state_dir=state, name=name, start="earliest")
    assert producer.wait(60) == 0, producer.stderr()
    rep = producer.last_json()
    assert rep["acked"] == TOTAL and rep["failed"] == 0, rep

    journal, _ = replay_all(b)
    seq_of = seq_of_ids(journal)
    want = [e.event["id"] for e in journal if e.topic in topics]
    wait_for(lambda: set(ids_of(c1)) | set(ids_of(c2)) >= set(want), 60, 0.2,
             "the union of both runs to hold all %d events" % len(want))
    time.sleep(0.3)
    assert c2.stop() == 0, c2.stderr()

    run1, run2 = ids_of(c1), ids_of(c2)
    seqs1 = check_in_order(run1, seq_of, "%s run 1" % prog)
    seqs2 = check_in_order(run2, seq_of, "%s run 2" % prog)
    assert set(run1) | set(run2) == set(want)
    assert run1 == want[:len(run1)], "run 1 is not a prefix of the stream"
    assert run2 == want[want.index(run2[0]):], "run 2 is not a contiguous tail of the stream"
    # resumed from the checkpoint: not from the beginning (--from earliest) and with
    # at most a short overlap (checkpoints are written at least every 100 ms)
    overlap = len(set(run1) & set(run2))
    assert seqs2[0] > 1, "run 2 started at seq 1: the checkpoint was ignored"
    # no event of the stream between the two runs: run 2 starts at or before the
    # event that follows run 1's last one (compared by place in the stream, not by
    # seq: heartbeats legitimately move a single-topic consumer's checkpoint past
    # its last event, to a seq that belongs to another topic)
    if run1:
        assert want.index(run2[0]) <= want.index(run1[-1]) + 1, \
            "events lost between the runs: run 1 ended at seq %d, run 2 began at %d" % (
                seqs1[-1], seqs2[0])
    assert overlap < 2500, "run 2 repeated %d events of run 1" % overlap
    # the checkpoint is rewritten, not accumulated next to temp files
    final = [f for f in os.listdir(state) if f != os.path.basename(ckpt)]
    # (the kill may have left a temporary file that run 2 then replaced: a subset)
    assert set(final) <= set(leftovers), \
        "stray files in the state dir: %s (after the kill: %s)" % (final, leftovers)


def test_zb_consumer_needs_a_name_with_state_dir(zb):
    b = zb.broker()
    state = zb.fresh_dir("state")
    p = zb.run("zb-consumer", "--connect", b.publish, "--control", b.control,
               "-t", "sales-events", "--state-dir", state, timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr())
    assert "--name" in p.stderr(), p.stderr()


@pytest.mark.timeout(60)
def test_clean_stop_writes_the_checkpoint(zb):
    """SIGTERM: the checkpoint holds the last event, so a restart delivers only new ones."""
    b = zb.broker()
    state = zb.fresh_dir("state")
    c1 = zb.durable_consumer("zb-warehouse", b, state_dir=state)
    b.wait_subscribers({"sales-events": 1, "inventory-events": 1})
    p, rep = zb.producer(b, "--count", 500, "--seed", 5, "--quiet")
    assert rep["acked"] == 500
    wait_for(lambda: len(c1.stdout_lines()) >= 500, 20, 0.05, "500 events")
    assert c1.stop() == 0, c1.stderr()
    p, rep = zb.producer(b, "--count", 300, "--seed", 6, "--quiet")
    assert rep["acked"] == 300
    c2 = zb.durable_consumer("zb-warehouse", b, state_dir=state)
    wait_for(lambda: len(c2.stdout_lines()) >= 300, 20, 0.05, "300 events after the restart")
    time.sleep(0.3)
    assert c2.stop() == 0, c2.stderr()
    journal, _ = replay_all(b)
    ids = [e.event["id"] for e in journal]
    assert ids_of(c1) == ids[:500]
    assert ids_of(c2) == ids[500:], "after a clean stop nothing is repeated or missed"


@pytest.mark.timeout(120)
def test_killed_during_catch_up(zb):
    """Killed while it replays the journal (--from earliest on 50,000 events) once it
    has written a checkpoint, then restarted: it resumes after that checkpoint."""
    total = 50000
    b = zb.broker()
    p, rep = zb.producer(b, "--count", total, "--batch", 100, "--seed", 31, "--quiet")
    assert rep["acked"] == total
    state = zb.fresh_dir("state")
    c1 = zb.durable_consumer("zb-warehouse", b, "--credit", 200, state_dir=state,
                             start="earliest")
    ckpt = os.path.join(state, "zb-warehouse.checkpoint")
    pos = wait_for(lambda: checkpoint_position(ckpt), 30, 0.005, "a first checkpoint")
    c1.send_signal(signal.SIGKILL)
    c1.wait(5)
    n1 = len(c1.stdout_lines())
    assert n1 < total, "the catch-up was over before the kill"
    assert pos <= n1, "checkpoint %d ahead of the %d events printed" % (pos, n1)
    c2 = zb.durable_consumer("zb-warehouse", b, state_dir=state, start="earliest")
    journal, _ = replay_all(b)
    want = [e.event["id"] for e in journal]
    seq_of = seq_of_ids(journal)
    wait_for(lambda: set(ids_of(c1)) | set(ids_of(c2)) >= set(want), 60, 0.2,
             "the union of both runs to hold all %d events" % total)
    time.sleep(0.3)
    assert c2.stop() == 0, c2.stderr()
    run1, run2 = ids_of(c1), ids_of(c2)
    check_in_order(run1, seq_of, "run 1")
    seqs2 = check_in_order(run2, seq_of, "run 2")
    assert run1 == want[:len(run1)]
    assert run2 == want[want.index(run2[0]):]
    assert pos < seqs2[0] <= len(run1) + 1, \
        "run 2 starts at seq %d; checkpoint before the kill %d, run 1 printed %d" % (
            seqs2[0], pos, len(run1))


def checkpoint_position(path):
    """The position in a checkpoint file (common/checkpoint.h: a line "position N"),
    or None when there is none yet."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("position "):
                    return int(line.split()[1]) or None
    except (OSError, ValueError):
        return None
    return None
