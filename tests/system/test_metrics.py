"""zb-broker --metrics: Prometheus text exposition over HTTP (libmicrohttpd).

The values must move exactly with a known load, the endpoint must survive
garbage, and a bad or busy address must stop the broker with a clear message."""

import errno
import os
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import entry, free_port
from zbclient import Client

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metrics_broker(zb, *args):
    port = free_port()
    b = zb.broker("--metrics", "127.0.0.1:%d" % port, *args)
    b.metrics_url = "http://127.0.0.1:%d/metrics" % port
    ready = [l for l in b.proc.stderr_lines() if l.startswith("zb-broker: ready ")][0]
    assert "metrics=" + b.metrics_url in ready, ready
    return b


def http(url, method="GET", timeout=10):
    """(status, headers, body text) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")


def unescape(value):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse(text):
    """{(name, ((label, value), ...)): float}, checking the format on the way:
    every sample belongs to a family announced by HELP and TYPE lines."""
    samples, types, helps = {}, {}, set()
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("# HELP "):
            helps.add(line.split(" ")[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            types[name] = kind
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels = m.group(1), m.group(3) or ""
        family = re.sub(r'_(bucket|sum|count)$', '', name) if name not in types else name
        assert family in types and family in helps, "no HELP/TYPE for %s" % name
        key = (name, tuple((k, unescape(v)) for k, v in LABEL.findall(labels)))
        assert key not in samples, "sample twice: %r" % (key,)
        samples[key] = float(m.group(4))
    return samples


def scrape(b):
    status, headers, body = http(b.metrics_url)
    assert status == 200, (status, body)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
    return parse(body)


def value(samples, name, **labels):
    return samples.get((name, tuple(labels.items())), 0.0)


def test_values_follow_a_known_load(zb):
    b = metrics_broker(zb)
    before = scrape(b)
    assert value(before, "zbridge_entries_in_total") == 0
    assert value(before, "zbridge_build_info", version=b.ping()["version"]) == 1

    sub = b.subscriber()
    sub.subscribe("sales-events")
    b.wait_subscribers({"sales-events": 1})
    with Client(b.control) as c:
        c.rule_put("big", '{"detail": {"sales": [{"numeric": [">", 50]}]}}')
    weird = 'we"ird\\type\u00e9'
    with Client(b.ingest) as c:
        r = c.put([entry("sales-events", detail={"sales": 10})] * 4
                  + [entry("sales-events", detail={"sales": 99})] * 3
                  + [entry("inventory-events")] * 2)
        assert r["failed"] == 0
        # a bad entry of a tracked topic: counted as rejected for that topic
        r = c.put([{"detail-type": "sales-events", "detail": {}}, entry(weird)])
        assert r["failed"] == 1
    events, end = Client(b.control).replay(frm=1, topics=["inventory-events"], credit=100)
    assert len(events) == 2

    m = scrape(b)
    assert value(m, "zbridge_entries_in_total") == 10
    assert value(m, "zbridge_entries_rejected_total") == 1
    assert value(m, "zbridge_requests_total") == 2
    assert value(m, "zbridge_seq") == 13          # 10 events + 3 deliveries of rule "big"
    assert value(m, "zbridge_journal_head") == 13
    assert value(m, "zbridge_journal_oldest") == 1
    assert value(m, "zbridge_journal_events") == 13
    assert value(m, "zbridge_topic_events_in_total", topic="sales-events") == 7
    assert value(m, "zbridge_topic_events_out_total", topic="sales-events") == 7
    assert value(m, "zbridge_topic_events_rejected_total", topic="sales-events") == 1
    assert value(m, "zbridge_topic_events_in_total", topic="inventory-events") == 2
    assert value(m, "zbridge_topic_events_in_total", topic=weird) == 1
    assert value(m, "zbridge_topic_subscribers", topic="sales-events") == 1
    assert value(m, "zbridge_topic_seq", topic="sales-events") == 7
    assert value(m, "zbridge_topic_bytes_in_total", topic="sales-events") > 0
    assert value(m, "zbridge_ingest_bytes_total") > value(m, "zbridge_topic_bytes_in_total",
                                                           topic="inventory-events")
    assert value(m, "zbridge_rule_events_in_total", rule="big") == 3
    assert value(m, "zbridge_rule_events_out_total", rule="big") == 3
    assert value(m, "zbridge_rule_failures_total", rule="big") == 0
    assert value(m, "zbridge_rules") == 1
    assert value(m, "zbridge_replay_requests_total") == 1
    assert value(m, "zbridge_replay_events_total") == 2
    # one ack observation per PUT answered, one commit per ingest pass
    assert value(m, "zbridge_ack_seconds_count") == 2
    assert value(m, "zbridge_ack_seconds_bucket", le="+Inf") == 2
    assert 1 <= value(m, "zbridge_journal_commit_seconds_count") <= 2
    buckets = sorted((float(l[0][1]) if l[0][1] != "+Inf" else float("inf"), v)
                     for (n, l), v in m.items() if n == "zbridge_ack_seconds_bucket")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets), "buckets not cumulative"
    assert value(m, "zbridge_producers_active") >= 1
    assert value(m, "zbridge_connections", socket="publish") >= 1

    # the escaped label as it stands in the text
    _, _, text = http(b.metrics_url)
    assert 'zbridge_topic_events_in_total{topic="we\\"ird\\\\type\u00e9"} 1' in text

    # a second load moves the counters by exactly that much
    with Client(b.ingest) as c:
        c.put([entry("sales-events", detail={"sales": 1})] * 5)
    m2 = scrape(b)
    assert value(m2, "zbridge_entries_in_total") == 15
    assert value(m2, "zbridge_topic_events_in_total", topic="sales-events") == 12
    assert value(m2, "zbridge_topic_events_out_total", topic="sales-events") == 12
    assert value(m2, "zbridge_ack_seconds_count") == 3


def test_scrape_with_curl(zb):
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl is not installed")
    b = metrics_broker(zb)
    with Client(b.ingest) as c:
        c.put([entry("curl-events")] * 3)
    out = subprocess.run([curl, "-sS", "--max-time", "10", b.metrics_url],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    m = parse(out.stdout)
    assert value(m, "zbridge_topic_events_in_total", topic="curl-events") == 3


def test_garbage_keeps_it_serving(zb):
    b = metrics_broker(zb)
    base = b.metrics_url[:-len("/metrics")]
    for path in ("/", "/nope", "/metrics/x", "/metrics?x=1", "/%00", "/" + "a" * 3000):
        status, _, _ = http(base + path)
        assert status in (200, 400, 404, 414, 431), (path, status)
    assert http(base + "/nope")[0] == 404
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "FROB"):
        status, headers, _ = http(b.metrics_url, method=method)
        assert status in (400, 405, 501), (method, status)
        if status == 405:
            assert "GET" in headers.get("Allow", ""), headers
    assert http(b.metrics_url, method="HEAD")[0] == 200
    port = int(b.metrics_url.rsplit(":", 1)[1].split("/")[0])
    junk = [b"\x00\xff" * 500, b"GET\r\n\r\n", b"GET /metrics HTTP/9.9\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"\r\n" * 100, b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"y" * 100000 + b"\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost"]        # cut short, then closed
    for data in junk:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):
                    pass
            except (ConnectionResetError, BrokenPipeError, socket.timeout):
                pass
            except OSError as e:
                # the server may close first (it refused the request), and
                # shutdown() then finds the connection gone
                if e.errno != errno.ENOTCONN:
                    raise
    # connections opened and dropped without a byte
    for _ in range(20):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    # it still serves HTTP, and the bus still works
    with Client(b.ingest) as c:
        assert c.put([entry("after-garbage")])["failed"] == 0
    m = scrape(b)
    assert value(m, "zbridge_topic_events_in_total", topic="after-garbage") == 1
    assert b.proc.alive()


def test_off_by_default(zb):
    b = zb.broker()
    ready = [l for l in b.proc.stderr_lines() if l.startswith("zb-broker: ready ")][0]
    assert "metrics=" not in ready


@pytest.mark.parametrize("bad", ["nonsense", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
                                 ":9100", "[::1", "[::1]9100", "127.0.0.1:-1", "127.0.0.1:9x",
                                 "no.such.host.invalid:9100", ""])
def test_bad_address_is_a_usage_error(zb, bad):
    p = zb.run("zb-broker", "--memory", "--metrics", bad, timeout=20)
    assert p.returncode == 2, (bad, p.returncode, p.stderr())
    assert p.stderr().startswith("zb-broker: --metrics: "), p.stderr()
    assert not any("ready" in l for l in p.stderr_lines())


def test_bad_address_in_config(zb):
    path = os.path.join(zb.tmpdir, "bad.cfg")
    with open(path, "w") as f:
        f.write("broker\n    metrics = 127.0.0.1:http\n")
    p = zb.run("zb-broker", "--memory", "--config", path, timeout=20)
    assert p.returncode == 2, p.stderr()
    assert "broker/metrics" in p.stderr() and "port" in p.stderr(), p.stderr()


def test_config_key(zb):
    port = free_port()
    path = os.path.join(zb.tmpdir, "m.cfg")
    with open(path, "w") as f:
        f.write("broker\n    metrics = 127.0.0.1:%d\n" % port)
    b = zb.broker("--config", path)
    status, _, body = http("http://127.0.0.1:%d/metrics" % port)
    assert status == 200 and "zbridge_uptime_seconds" in body


def test_busy_port_exits_1_naming_it(zb):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        p = zb.run("zb-broker", "--memory", "--ingest", "tcp://127.0.0.1:%d" % free_port(),
                   "--publish", "tcp://127.0.0.1:%d" % free_port(),
                   "--control", "tcp://127.0.0.1:%d" % free_port(),
                   "--metrics", "127.0.0.1:%d" % port, timeout=20)
    assert p.returncode == 1, p.stderr()
    assert ("zb-broker: cannot bind metrics to 127.0.0.1:%d: Address already in use" % port) \
        in p.stderr(), p.stderr()
