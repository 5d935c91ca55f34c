"""Fixtures for the zbridge system tests: the real programs on free 127.0.0.1 ports.

- Programs come from build/ (or $ZB_BUILD): build/broker/zb-broker, ...
- Every process is started with stdout/stderr in files (no pipe can fill up), is
  stopped by PID at teardown (SIGTERM, then SIGKILL after a timeout), and its stderr
  is printed when the test fails.
- Sanitized builds (ZB_BUILD=build-asan): a program whose stderr holds an
  AddressSanitizer, LeakSanitizer or UBSan report fails the test when it is
  waited for or stopped, whatever its exit code and whether the test checks it.
- Every wait is bounded; each test has a time limit (SIGALRM; default 90 s, change it
  with @pytest.mark.timeout(SECONDS)).
- Slow joiners: wait_subscribers() polls the broker's STATS until the consumers'
  exact subscriptions are held, so no test sleeps to "give SUB time to connect".
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zbclient import Client, Subscriber, ZbTimeout  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("ZB_BUILD", os.path.join(ROOT, "build")))


def _sanitized(build):
    """The sanitizers BUILD's programs are built with (meson's b_sanitize), or ""."""
    try:
        with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
            options = json.load(f)
    except (OSError, ValueError):
        return ""
    for option in options:
        if option.get("name") == "b_sanitize" and option.get("value") not in (None, "", "none"):
            return option["value"]
    return ""


# e.g. "address,undefined" for build-asan: memory and speed are not the real
# programs' there (ASan keeps freed memory in quarantine, redzones, shadow
# memory), so tests that bound memory or time check those bounds only when
# SANITIZED is empty.
SANITIZED = _sanitized(BUILD)

PROGRAMS = {
    "zb-broker": "broker/zb-broker",
    "zb-producer": "producer/zb-producer",
    "zb-dispatch": "consumers/zb-dispatch",
    "zb-warehouse": "consumers/zb-warehouse",
    "zb-consumer": "consumers/zb-consumer",
    "zbctl": "tools/zbctl",
}

DEFAULT_TEST_TIMEOUT = 90
STOP_TIMEOUT = 5.0

# What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer write on
# stderr when they find something (see scripts/test for their options).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "LeakSanitizer",
                     "runtime error:", "ERROR: UndefinedBehaviorSanitizer")


def program(name):
    path = os.path.join(BUILD, PROGRAMS[name])
    if not os.access(path, os.X_OK):
        pytest.fail("%s not built: %s is missing (run ninja -C build)" % (name, path))
    return path


_ports_given = set()


def free_port():
    """A loopback port that is free now and was not handed out before in this run
    (the kernel may offer the same ephemeral port twice in a row once it is closed,
    which gave one broker the same port for two of its sockets)."""
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no fresh free port after 100 tries")


def wait_for(predicate, timeout=5.0, interval=0.02, what="condition"):
    """Poll predicate() until it returns a true value (returned), at most timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


# --- processes ------------------------------------------------------------------


class Proc:
    """A started program with stdout and stderr going to files."""

    def __init__(self, name, args, tmpdir, stdin=None, env=None):
        self.name = name
        self.args = [program(name)] + [str(a) for a in args]
        fd, self.out_path = tempfile.mkstemp(prefix=name + "-", suffix=".out", dir=tmpdir)
        os.close(fd)
        fd, self.err_path = tempfile.mkstemp(prefix=name + "-", suffix=".err", dir=tmpdir)
        os.close(fd)
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.popen = subprocess.Popen(
            self.args, stdout=self._out, stderr=self._err,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            env=env, close_fds=True, cwd=tmpdir)   # a default ./zbridge-data lands in tmpdir
        self.pid = self.popen.pid
        self.returncode = None
        self._sanitizer_checked = False

    def poll(self):
        rc = self.popen.poll()
        if rc is not None:
            self.returncode = rc
        return rc

    def alive(self):
        return self.poll() is None

    def wait(self, timeout=10.0):
        """Wait for the exit code; kill and fail when it does not come in time."""
        try:
            self.returncode = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not exit within %.1f s\nstderr:\n%s"
                                 % (self.name, timeout, self.stderr()))
        self.check_sanitizers()
        return self.returncode

    def sanitizer_report(self):
        """The sanitizer report in its stderr (from the first marker line), or None."""
        text = self.stderr()
        at = min((i for i in (text.find(m) for m in SANITIZER_MARKERS) if i >= 0), default=-1)
        if at < 0:
            return None
        start = text.rfind("\n", 0, at) + 1
        report = text[start:]
        if len(report) > 8000:
            report = report[:8000] + "\n[...]"
        return report

    def check_sanitizers(self):
        """Fail (once) when the exited program's stderr holds a sanitizer report."""
        if self._sanitizer_checked or self.popen.poll() is None:
            return
        self._sanitizer_checked = True
        report = self.sanitizer_report()
        if report is not None:
            raise AssertionError("%s (pid %d, exit %s) reported a sanitizer error:\n%s"
                                 % (self.name, self.pid, self.popen.returncode, report))

    def send_signal(self, sig):
        if self.popen.poll() is None:
            os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signal it, wait at most timeout, then SIGKILL. Returns the exit code
        (negative for a signal, as subprocess reports it)."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                self.killed = True
        self.returncode = self.popen.returncode
        self._close_files()
        self.check_sanitizers()
        return self.returncode

    def kill(self):
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(5)
        self.returncode = self.popen.returncode

    def _close_files(self):
        for f in (self._out, self._err):
            if not f.closed:
                f.close()

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout_lines(self):
        """Complete lines written so far (a partial last line is left out)."""
        text = self.stdout()
        lines = text.split("\n")
        return [l for l in lines[:-1] if l.strip()]

    def json_lines(self):
        return [json.loads(l) for l in self.stdout_lines()]

    def last_json(self):
        lines = self.stdout_lines()
        assert lines, "%s printed nothing on stdout\nstderr:\n%s" % (self.name, self.stderr())
        return json.loads(lines[-1])

    def stderr_lines(self):
        return [l for l in self.stderr().split("\n") if l]


class Broker:
    """A running zb-broker and its three endpoints (from its ready line)."""

    def __init__(self, proc, ingest, publish, control, extra=None):
        self.proc = proc
        self.ingest = ingest
        self.publish = publish
        self.control = control
        self._clients = []

    def client(self, **kw):
        c = Client(self.ingest, **kw)
        self._clients.append(c)
        return c

    def control_client(self, **kw):
        c = Client(self.control, **kw)
        self._clients.append(c)
        return c

    def subscriber(self, **kw):
        s = Subscriber(self.publish, **kw)
        self._clients.append(s)
        return s

    def stats(self):
        with Client(self.control, timeout=5.0) as c:
            return c.stats()

    def ping(self):
        with Client(self.control, timeout=5.0) as c:
            return c.ping()

    def subscribers(self, topic):
        return self.stats().get("topics", {}).get(topic, {}).get("subscribers", 0)

    def wait_subscribers(self, want, timeout=5.0):
        """Wait until STATS shows at least want[topic] exact subscribers per topic."""
        last = {}

        def ok():
            topics = self.stats().get("topics", {})
            last.clear()
            last.update({t: topics.get(t, {}).get("subscribers", 0) for t in want})
            return all(last[t] >= n for t, n in want.items())
        try:
            wait_for(ok, timeout, 0.02, "subscribers %r" % (want,))
        except AssertionError:
            raise AssertionError("subscribers not there after %.1f s: want %r, STATS says %r"
                                 % (timeout, want, last))

    def close_clients(self):
        for c in self._clients:
            c.close()
        self._clients = []


class Harness:
    """Starts programs for one test and stops them all at its end."""

    def __init__(self, tmpdir):
        self.tmpdir = str(tmpdir)
        self.procs = []
        self.brokers = []

    # generic
    def start(self, name, *args, stdin=None, env=None):
        p = Proc(name, args, self.tmpdir, stdin=stdin, env=env)
        self.procs.append(p)
        return p

    def run(self, name, *args, timeout=60.0, input=None):
        """Run a program to completion; returns the Proc (returncode set)."""
        stdin = None
        if input is not None:
            path = os.path.join(self.tmpdir, "stdin-%d" % len(self.procs))
            with open(path, "wb") as f:
                f.write(input.encode() if isinstance(input, str) else input)
            stdin = open(path, "rb")
        try:
            p = self.start(name, *args, stdin=stdin)
            p.wait(timeout)
        finally:
            if stdin is not None:
                stdin.close()
        p._close_files()
        return p

    # broker
    def broker(self, *args, ports=True, timeout=10.0, data_dir=None):
        """Start zb-broker (on three free ports unless ports=False) and wait for its
        ready line. Each broker gets a fresh --data-dir (b.data_dir) unless the test
        passes --data-dir or --memory, or data_dir (a path, or False for none)."""
        argv = list(args)
        given = {str(a) for a in argv}
        if data_dir is None and not {"--data-dir", "--memory"} & given:
            data_dir = self.fresh_dir("data")
        if data_dir:
            argv = ["--data-dir", data_dir] + argv
        elif "--data-dir" in given:
            data_dir = str(argv[argv.index("--data-dir") + 1])
        if ports:
            argv = ["--ingest", "tcp://127.0.0.1:%d" % free_port(),
                    "--publish", "tcp://127.0.0.1:%d" % free_port(),
                    "--control", "tcp://127.0.0.1:%d" % free_port()] + argv
        p = self.start("zb-broker", *argv)
        eps = self.wait_ready(p, timeout)
        b = Broker(p, eps["ingest"], eps["publish"], eps["control"])
        b.data_dir = data_dir or None
        b.args = list(args)
        self.brokers.append(b)
        return b

    def fresh_dir(self, prefix):
        return tempfile.mkdtemp(prefix=prefix + "-", dir=self.tmpdir)

    def restart_broker(self, b, *args, sig=signal.SIGKILL, timeout=10.0):
        """Stop broker b (SIGKILL unless sig says otherwise) and start a new one on
        the same three endpoints and data directory, with args (default: b's own
        args). Returns the new Broker."""
        b.close_clients()
        b.proc.stop(sig)
        argv = ["--ingest", b.ingest, "--publish", b.publish, "--control", b.control]
        if b.data_dir:
            argv += ["--data-dir", b.data_dir]
        nb = self.broker(*(argv + [a for a in (args or b.args)]), ports=False,
                         data_dir=False, timeout=timeout)
        nb.data_dir, nb.args = b.data_dir, list(args or b.args)
        return nb

    @staticmethod
    def wait_ready(p, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in p.stderr_lines():
                if line.startswith("zb-broker: ready "):
                    eps = dict(kv.split("=", 1) for kv in line[len("zb-broker: ready "):].split())
                    if {"ingest", "publish", "control"} <= set(eps):
                        return eps
            if not p.alive():
                raise AssertionError("zb-broker exited with %s before its ready line\nstderr:\n%s"
                                     % (p.returncode, p.stderr()))
            time.sleep(0.02)
        raise AssertionError("zb-broker: no ready line within %.1f s\nstderr:\n%s"
                             % (timeout, p.stderr()))

    # clients of a broker
    def consumer(self, prog, broker, *args):
        return self.start(prog, "--connect", broker.publish, "--control", broker.control, *args)

    def durable_consumer(self, prog, broker, *args, state_dir=None, name=None, start=None):
        """A consumer with --state-dir/--name/--from when given (start: "earliest",
        "seq:N", ...)."""
        extra = []
        if state_dir is not None:
            extra += ["--state-dir", state_dir]
        if name is not None:
            extra += ["--name", name]
        if start is not None:
            extra += ["--from", start]
        return self.consumer(prog, broker, *(extra + list(args)))

    def producer(self, broker, *args, timeout=120.0, input=None):
        """Run zb-producer against broker to completion; returns (proc, report dict)."""
        p = self.run("zb-producer", "--connect", broker.ingest, *args, timeout=timeout,
                     input=input)
        lines = p.stdout_lines()
        report = json.loads(lines[-1]) if lines else None
        return p, report

    def zbctl(self, broker, *args, timeout=20.0):
        return self.run("zbctl", "--control", broker.control, "--ingest", broker.ingest,
                        *args, timeout=timeout)

    def stop_all(self):
        for b in self.brokers:
            b.close_clients()
        # clients first, the broker last; every one is stopped before a
        # sanitizer report fails the test
        reports = []
        for p in reversed(self.procs):
            try:
                p.stop()
            except AssertionError as e:
                reports.append(str(e))
        if reports:
            raise AssertionError("\n\n".join(reports))

    def report(self):
        out = []
        for p in self.procs:
            err = p.stderr()
            if len(err) > 6000:
                err = err[:2000] + "\n[...]\n" + err[-4000:]
            out.append("---- %s (pid %d, exit %s): %s\n%s"
                       % (p.name, p.pid, p.returncode, " ".join(p.args), err))
        return "\n".join(out)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def zb(request, tmp_path):
    """The harness: zb.broker(), zb.consumer(), zb.producer(), zb.zbctl(), zb.run()."""
    h = Harness(tmp_path)
    yield h
    h.stop_all()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        sys.stderr.write("\n==== programs' stderr ====\n" + h.report() + "\n")


@pytest.fixture
def broker(zb):
    """A broker with default options on free ports."""
    return zb.broker()


# --- per-test time limit (no pytest-timeout plugin on Debian's list) -------------


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): time limit of one test")


class ZbTestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise ZbTestTimeout("test exceeded its time limit")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    marker = item.get_closest_marker("timeout")
    limit = int(marker.args[0]) if marker else DEFAULT_TEST_TIMEOUT
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --- helpers shared by tests -----------------------------------------------------


def entry(detail_type="sales-events", source="zbridge.test", detail=None, **extra):
    e = {"source": source, "detail-type": detail_type,
         "detail": detail if detail is not None else {}}
    e.update(extra)
    return e


def drain_until(sub, predicate, timeout=5.0, limit=100000):
    """Receive events until predicate(event) is true; returns the list (last one
    included). Bounded in time and count."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            ev = sub.recv(left)
        except ZbTimeout:
            break
        out.append(ev)
        if predicate(ev):
            return out
    raise AssertionError("the awaited event did not arrive within %.1f s (%d events seen)"
                         % (timeout, len(out)))


def replay_all(broker, timeout=10.0, **kw):
    """Every event of the broker's journal (REPLAY from 1 to the head), in seq order,
    and the END; keyword arguments go to Client.replay (topics=, frm=, to=, ...)."""
    kw.setdefault("credit", 5000)
    with Client(broker.control, timeout=timeout) as c:
        return c.replay(**kw)


def seq_of_ids(events):
    """{event id: seq} of replayed (or received) zbclient Events."""
    return {e.event["id"]: e.seq for e in events}


def check_in_order(ids, seq_of, what):
    """ids (a consumer's output) are known events, each once, in strictly
    increasing seq; returns their seqs."""
    unknown = [i for i in ids if i not in seq_of]
    assert not unknown, "%s: %d ids not in the journal, e.g. %s" % (what, len(unknown), unknown[:3])
    seqs = [seq_of[i] for i in ids]
    dups = len(seqs) - len(set(seqs))
    assert dups == 0, "%s: %d duplicates" % (what, dups)
    bad = [(a, b) for a, b in zip(seqs, seqs[1:]) if b <= a]
    assert not bad, "%s: out of seq order at %s" % (what, bad[:5])
    return seqs
