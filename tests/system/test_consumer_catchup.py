"""The consumers' catch-up logic against a fake broker that does exactly what a test
needs: drop chosen events from the live stream (a gap, a lost tail), leave a REPLAY
unanswered, serve a journal whose beginning was pruned. The real broker cannot be made
to lose a given event, so these cases are only reachable this way; the fake follows
docs/PROTOCOL.md ("Reliability") for everything it does answer.

Also here: the consumers' command-line contract for --from, --state-dir, --name and
--credit, and a corrupt checkpoint (a clear error, exit 1, never a silent start-over)."""

import json
import os
import re
import struct
import threading
import time

import pytest
import zmq

from conftest import free_port, wait_for
from zbclient import pack, unpack


class FakeBroker:
    """XPUB (events, heartbeats) + control ROUTER (PING, JOURNAL, REPLAY, CREDIT,
    CANCEL) over an in-memory journal. The control socket is served by a thread;
    the test thread publishes."""

    def __init__(self):
        self.ctx = zmq.Context.instance()
        self.pub = self.ctx.socket(zmq.XPUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.publish = "tcp://127.0.0.1:%d" % free_port()
        self.pub.bind(self.publish)
        self.control = "tcp://127.0.0.1:%d" % free_port()
        self.journal = []               # [(topic, seq, topic_seq, body bytes)]
        self.heads = {}
        self.oldest = 1
        self.lock = threading.Lock()
        self.ignore_replays = 0         # REPLAY requests to leave unanswered
        self.replays = []               # bodies of the REPLAY requests seen
        self.subscriptions = []
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    # --- events -------------------------------------------------------------

    def put(self, topic, live=True, detail=None):
        """Journal one event and publish it unless live is False (lost on the way)."""
        with self.lock:
            seq = len(self.journal) + 1
            ts = self.heads.get(topic, 0) + 1
            self.heads[topic] = ts
            env = {"version": "0", "id": "00000000-0000-4000-8000-%012d" % seq,
                   "detail-type": topic, "source": "fake", "account": "000000000000",
                   "time": "2026-11-26T17:15:01Z", "region": "local", "resources": [],
                   "detail": detail if detail is not None else {"seq": seq}}
            body = pack(env)
            self.journal.append((topic, seq, ts, body))
        if live:
            self.pub.send_multipart([topic.encode() + b"\x00", struct.pack(">QQ", seq, ts), body])
        return seq

    def heartbeat(self):
        with self.lock:
            head = len(self.journal)
            body = pack({"seq": head, "oldest": self.oldest if head else 0,
                         "time": "2026-11-26T17:15:01Z", "topics": dict(self.heads)})
        self.pub.send_multipart([b"$heartbeat\x00", struct.pack(">QQ", head, 0), body])

    def wait_subscription(self, data, timeout=5.0):
        deadline = time.monotonic() + timeout
        while data not in self.subscriptions:
            left = deadline - time.monotonic()
            assert left > 0, "no subscription %r (got %r)" % (data, self.subscriptions)
            if self.pub.poll(int(left * 1000), zmq.POLLIN):
                msg = self.pub.recv()
                if msg[:1] == b"\x01":
                    self.subscriptions.append(msg[1:])

    # --- control socket (thread) ---------------------------------------------

    def _serve(self):
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.control)
        self.ready.set()
        sessions = {}           # (identity, corr) -> [next index, credit, to, topics, prefixes]
        while not self.stop.is_set():
            if sock.poll(20, zmq.POLLIN):
                frames = sock.recv_multipart()
                ident, cmd, corr, body = frames[0], frames[1], frames[2], frames[3]
                if cmd == b"PING":
                    sock.send_multipart([ident, b"OK", corr, pack(
                        {"status": "ok", "version": "fake", "seq": len(self.journal),
                         "uptime_ms": 1})])
                elif cmd == b"JOURNAL":
                    with self.lock:
                        reply = {"backend": "memory", "path": "", "sync": "none",
                                 "head": len(self.journal),
                                 "oldest": self.oldest if self.journal else 0,
                                 "events": len(self.journal), "bytes": 0, "retain_hours": 0,
                                 "retain_mb": 0, "topics": dict(self.heads)}
                    sock.send_multipart([ident, b"OK", corr, pack(reply)])
                elif cmd == b"REPLAY":
                    req = unpack(body)
                    self.replays.append(req)
                    if self.ignore_replays > 0:
                        self.ignore_replays -= 1
                        continue
                    with self.lock:
                        to = req.get("to", len(self.journal))
                    start = max(req.get("from", 1), self.oldest)
                    sessions[(ident, corr)] = [start, req["credit"], to, req.get("topics"),
                                               req.get("prefixes"), 0]
                elif cmd == b"CREDIT":
                    if (ident, corr) in sessions:
                        sessions[(ident, corr)][1] += unpack(body)["credit"]
                elif cmd == b"CANCEL":
                    sessions.pop((ident, corr), None)
            for key in list(sessions):
                s = sessions[key]
                ident, corr = key
                while s[1] > 0 and s[0] <= s[2]:
                    topic, seq, ts, body = self.journal[s[0] - 1]
                    s[0] += 1
                    mine = (not s[3] and not s[4]) or topic in (s[3] or []) or \
                        any(topic.startswith(p) for p in (s[4] or []))
                    if mine:
                        sock.send_multipart([ident, b"EVENT", corr, topic.encode() + b"\x00",
                                             struct.pack(">QQ", seq, ts), body])
                        s[1] -= 1
                        s[5] += 1
                if s[0] > s[2]:
                    sock.send_multipart([ident, b"END", corr, pack(
                        {"last": s[2], "head": len(self.journal), "oldest": self.oldest,
                         "count": s[5]})])
                    del sessions[key]
        sock.close(0)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.pub.close(0)


@pytest.fixture
def fake():
    f = FakeBroker()
    yield f
    f.close()


def start(zb, fake, *args, prog="zb-consumer"):
    return zb.start(prog, "--connect", fake.publish, "--control", fake.control, *args)


def seqs_of(proc):
    return [e["detail"]["seq"] for e in proc.json_lines()]


def wait_started(proc):
    wait_for(lambda: any("starting after" in l or "catching up" in l
                         for l in proc.stderr_lines()), 5, what="the consumer's start line")


@pytest.mark.timeout(30)
def test_gap_in_the_live_stream_is_filled_in_order(zb, fake):
    c = start(zb, fake, "-t", "a", "-t", "b")
    fake.wait_subscription(b"b\x00")
    wait_started(c)
    fake.put("a")                   # 1
    fake.put("b")                   # 2
    fake.put("a", live=False)       # 3: lost on the way
    fake.put("b", live=False)       # 4
    fake.put("c")                   # 5: not mine
    fake.put("a")                   # 6: a's topic_seq jumps from 1 to 3
    fake.put("b")                   # 7
    wait_for(lambda: len(c.stdout_lines()) >= 6, 5, what="6 events")
    assert seqs_of(c) == [1, 2, 3, 4, 6, 7]
    err = c.stderr_lines()
    assert "zb-consumer: gap on a (topic_seq 2..2): replaying seq 3..5" in err, err
    assert fake.replays[-1]["from"] == 3 and fake.replays[-1]["to"] == 5
    assert fake.replays[-1]["topics"] == ["a", "b"]
    assert not [l for l in err if " missed " in l], err
    assert c.stop() == 0


@pytest.mark.timeout(30)
def test_heartbeat_reveals_a_lost_tail(zb, fake):
    c = start(zb, fake, "-t", "a", "--quiet", "--count", 3)
    fake.wait_subscription(b"$heartbeat\x00")
    wait_started(c)
    fake.put("a")
    fake.put("a", live=False)
    fake.put("a", live=False)
    fake.heartbeat()                # says a is at 3
    assert c.wait(10) == 0, c.stderr()
    s = c.last_json()
    assert (s["received"], s["replayed"], s["missed"], s["position"]) == (3, 2, 0, 3), s
    assert "zb-consumer: heartbeat: a is at topic_seq 3, I have 1: replaying seq 2..3" \
        in c.stderr_lines()


@pytest.mark.timeout(40)
def test_drop_noticed_behind_the_position_is_delivered_late(zb, fake, tmp_path):
    """u@3 is dropped while t@4 (contiguous for t) is delivered, moving the position
    past it; u@5 shows u's gap behind the position: a REPLAY of u alone over (1, 4]
    brings u@3, delivered late but before u@5, nothing missed, nothing twice. While
    that REPLAY goes unanswered the checkpoint stays at u's last delivered event."""
    state = str(tmp_path / "state")
    ckpt = os.path.join(state, "late.checkpoint")

    def checkpoint():
        try:
            with open(ckpt) as f:
                return f.read()
        except OSError:
            return None

    c = start(zb, fake, "-t", "t", "-t", "u", "--state-dir", state, "--name", "late")
    fake.wait_subscription(b"u\x00")
    wait_started(c)
    fake.put("u")                   # 1
    fake.put("t")                   # 2
    fake.put("u", live=False)       # 3: dropped on the way
    fake.put("t")                   # 4: t's topic_seq is contiguous: delivered
    wait_for(lambda: checkpoint() == "zbridge-checkpoint 1\nposition 4\n", 5,
             what="checkpoint at 4")
    fake.ignore_replays = 1         # the first late REPLAY goes unanswered
    fake.put("u")                   # 5: u's topic_seq jumps from 1 to 3
    wait_for(lambda: len(fake.replays) >= 1, 5, what="the late REPLAY")
    assert fake.replays[0]["from"] == 2 and fake.replays[0]["to"] == 4, fake.replays
    assert fake.replays[0]["topics"] == ["u"] and "prefixes" not in fake.replays[0]
    wait_for(lambda: checkpoint() == "zbridge-checkpoint 1\nposition 1\n", 5,
             what="checkpoint back at u's last delivered event")
    wait_for(lambda: len(c.stdout_lines()) >= 5, 15, what="5 events after the retry")
    assert seqs_of(c) == [1, 2, 4, 3, 5]
    assert len(fake.replays) == 2 and fake.replays[1]["from"] == 2, fake.replays
    err = c.stderr_lines()
    assert "zb-consumer: 1 events of u delivered late after a drop (seq 3..3, behind my " \
        "position 4)" in err, err
    assert not [l for l in err if " missed " in l], err
    wait_for(lambda: checkpoint() == "zbridge-checkpoint 1\nposition 5\n", 5,
             what="checkpoint at 5")
    assert c.stop() == 0
    assert seqs_of(c) == [1, 2, 4, 3, 5]


@pytest.mark.timeout(40)
def test_unanswered_replay_is_sent_again_and_live_events_wait(zb, fake):
    for i in range(5):
        fake.put("a", live=False)
    fake.ignore_replays = 1
    c = start(zb, fake, "-t", "a", "--from", "earliest")
    fake.wait_subscription(b"a\x00")
    wait_for(lambda: len(fake.replays) == 1, 5, what="the first REPLAY")
    fake.put("a")                   # 6, live, while the catch-up has no answer
    fake.put("a")                   # 7
    wait_for(lambda: len(c.stdout_lines()) >= 7, 15, what="7 events after the retry")
    assert seqs_of(c) == [1, 2, 3, 4, 5, 6, 7]
    assert len(fake.replays) == 2 and fake.replays[1]["from"] == 1, fake.replays
    err = c.stderr_lines()
    assert any(re.match(r"zb-consumer: no answer to REPLAY from \S+ within \d+ ms; sending it "
                        r"again \(attempt 2\)$", l) for l in err), err
    assert any(l.startswith("zb-consumer: caught up at seq 5") for l in err), err
    assert c.stop() == 0


@pytest.mark.timeout(30)
def test_pruned_journal_reports_what_is_gone(zb, fake):
    for topic in "abab":
        fake.put(topic, live=False)
    fake.oldest = 3                 # events 1 and 2 were pruned
    c = start(zb, fake, "--prefix", "", "--from", "earliest", "--quiet", "--count", 2)
    assert c.wait(10) == 0, c.stderr()
    s = c.last_json()
    assert (s["received"], s["missed"], s["replayed"], s["position"]) == (2, 2, 2, 4), s
    assert fake.replays[0].get("topics") is None and fake.replays[0].get("prefixes") is None
    err = c.stderr_lines()
    assert "zb-consumer: missed 1 events on a (topic_seq 1..1): not in the journal any more" \
        in err, err


@pytest.mark.timeout(40)
def test_checkpoint_resume_and_from(zb, fake, tmp_path):
    for i in range(6):
        fake.put("a" if i % 2 else "b", live=False)
    state = str(tmp_path / "state")
    c = start(zb, fake, "-t", "a", "-t", "b", "--from", "seq:2", "--state-dir", state,
              "--name", "t1", "--count", 3)
    assert c.wait(10) == 0, c.stderr()
    assert seqs_of(c) == [2, 3, 4]
    with open(os.path.join(state, "t1.checkpoint")) as f:
        assert f.read() == "zbridge-checkpoint 1\nposition 4\n"
    # the checkpoint wins over --from
    c = start(zb, fake, "-t", "a", "-t", "b", "--from", "earliest", "--state-dir", state,
              "--name", "t1", "--count", 2, "--quiet")
    assert c.wait(10) == 0, c.stderr()
    assert c.last_json()["position"] == 6
    assert any("resuming after seq 4 (checkpoint %s/t1.checkpoint)" % state in l
               for l in c.stderr_lines()), c.stderr()
    # zb-dispatch names its checkpoint after itself; its position moves past events
    # that are not its own (none of these is a sales event)
    d = start(zb, fake, "--state-dir", state, "--from", "earliest", "--quiet",
              prog="zb-dispatch")
    wait_for(lambda: any("caught up at seq 6" in l for l in d.stderr_lines()), 5,
             what="zb-dispatch caught up")
    assert d.stop() == 0
    assert d.last_json()["position"] == 6 and d.last_json()["received"] == 0
    with open(os.path.join(state, "zb-dispatch.checkpoint")) as f:
        assert f.read() == "zbridge-checkpoint 1\nposition 6\n"


@pytest.mark.timeout(30)
def test_corrupt_checkpoint_is_an_error(zb, fake, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "zb-warehouse.checkpoint").write_text("zbridge-checkpoint 1\nposition 12x\n")
    p = zb.run("zb-warehouse", "--connect", fake.publish, "--control", fake.control,
               "--state-dir", str(state))
    assert p.returncode == 1
    assert any("is corrupt" in l and "zb-warehouse.checkpoint" in l for l in p.stderr_lines()), \
        p.stderr()
    assert p.stdout() == ""


@pytest.mark.parametrize("args, message", [
    (["-t", "a", "--from", "yesterday"], "--from wants latest, earliest"),
    (["-t", "a", "--from", "seq:0"], "--from wants"),
    (["-t", "a", "--from", "seq:-3"], "--from wants"),
    (["-t", "a", "--from", "time:2026-13-01T00:00:00Z"], "--from wants"),
    (["-t", "a", "--state-dir", "/tmp"], "--state-dir needs --name"),
    (["-t", "a", "--state-dir", "/tmp", "--name", "../x"], "--name wants"),
    (["-t", "a", "--credit", "0"], "--credit wants a number from 1 to 100000"),
    (["-t", "a", "--credit", "100001"], "--credit wants"),
])
def test_bad_reliability_flags_are_usage_errors(zb, args, message):
    p = zb.run("zb-consumer", *args)
    assert p.returncode == 2, p.stderr()
    assert message in p.stderr(), p.stderr()


def test_help_documents_the_reliability_flags(zb):
    for prog in ("zb-consumer", "zb-dispatch", "zb-warehouse"):
        p = zb.run(prog, "--help")
        assert p.returncode == 0
        for flag in ("--from", "--state-dir", "--name", "--credit", "earliest", "seq:N",
                     "time:RFC3339"):
            assert flag in p.stdout(), (prog, flag)
