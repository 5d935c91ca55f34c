"""zbctl against a live broker, and against none."""

import json
import re
import time

from conftest import entry, free_port
from zbclient import Client


def version():
    import os
    from conftest import ROOT
    text = open(os.path.join(ROOT, "meson.build")).read()
    return re.search(r"version\s*:\s*'([^']+)'", text).group(1)


def test_ping(zb):
    b = zb.broker()
    p = zb.zbctl(b, "ping")
    assert p.returncode == 0, p.stderr()
    out = p.stdout().strip()
    m = re.match(r"^ok seq=(\d+) version=(\S+) uptime=(\d+(\.\d+)?)s$", out)
    assert m, out
    assert m.group(1) == "0" and m.group(2) == version()
    with Client(b.ingest) as c:
        c.put([entry("ctl")] * 3)
    p = zb.zbctl(b, "ping")
    assert re.match(r"^ok seq=3 ", p.stdout().strip()), p.stdout()


def test_put(zb):
    b = zb.broker()
    sub = b.subscriber()
    sub.subscribe("ctl-put")
    b.wait_subscribers({"ctl-put": 1})
    p = zb.zbctl(b, "put", "--source", "zbctl.test", "--detail-type", "ctl-put",
                 "--detail", '{"a": 1, "b": [true, null, 2.5], "c": {"d": "é"}}',
                 "--resources", "arn:r1,arn:r2", "--time", "2026-11-26T18:15:01+01:00")
    assert p.returncode == 0, p.stderr()
    res = json.loads(p.stdout())
    assert res["failed"] == 0
    ev = sub.recv(5)
    assert res["results"][0]["id"] == ev.event["id"]
    assert res["results"][0]["seq"] == ev.seq == 1
    e = ev.event
    assert e["source"] == "zbctl.test"
    assert e["detail"] == {"a": 1, "b": [True, None, 2.5], "c": {"d": "é"}}
    assert e["resources"] == ["arn:r1", "arn:r2"]
    assert e["time"] in ("2026-11-26T17:15:01Z", "2026-11-26T17:15:01.000Z")

    # no --detail: an empty detail
    p = zb.zbctl(b, "put", "--source", "s", "--detail-type", "ctl-put")
    assert p.returncode == 0, p.stderr()
    assert sub.recv(5).event["detail"] == {}


def test_put_rejected_entry_and_bad_detail(zb):
    b = zb.broker()
    p = zb.zbctl(b, "put", "--source", "s", "--detail-type", "$reserved")
    # the result is printed; a failed entry makes the exit status 1
    assert p.returncode == 1, p.stderr()
    res = json.loads(p.stdout())
    assert res["failed"] == 1
    assert res["results"][0]["code"] == "InvalidArgument"
    assert "detail-type" in res["results"][0]["message"]
    assert "zbctl: entry rejected: InvalidArgument" in p.stderr()
    # --detail that is not a JSON object: a usage error, nothing sent
    p = zb.zbctl(b, "put", "--source", "s", "--detail-type", "t", "--detail", "{oops")
    assert p.returncode == 2
    assert "zbctl: " in p.stderr() and "--detail" in p.stderr()
    p = zb.zbctl(b, "put", "--source", "s", "--detail-type", "t", "--detail", "[1]")
    assert p.returncode == 2
    assert b.stats()["seq"] == 0


def test_stats_table_and_json(zb):
    b = zb.broker()
    sub = b.subscriber()
    sub.subscribe("sales-events")
    b.wait_subscribers({"sales-events": 1})
    with Client(b.ingest) as c:
        c.put([entry("sales-events")] * 4 + [entry("inventory-events")] * 2)
    p = zb.zbctl(b, "stats", "--json")
    assert p.returncode == 0, p.stderr()
    st = json.loads(p.stdout())
    assert st["seq"] == 6 and st["entries_in"] == 6
    assert st["topics"]["sales-events"] == {"in": 4, "out": 4, "rejected": 0,
                                            "subscribers": 1, "seq": 4}
    assert st["topics"]["inventory-events"]["in"] == 2

    p = zb.zbctl(b, "stats")
    assert p.returncode == 0, p.stderr()
    text = p.stdout()
    for word in ("in", "out", "rejected", "subscribers", "seq"):
        assert re.search(r"\b%s\b" % word, text), text
    rows = {l.split()[0]: l.split()[1:] for l in text.splitlines() if l.strip()}
    assert "sales-events" in rows and "inventory-events" in rows, text
    assert rows["sales-events"][:5] == ["4", "4", "0", "1", "4"], text
    assert rows["inventory-events"][:5] == ["2", "2", "0", "0", "2"], text


def test_unreachable_broker(zb):
    ep = "tcp://127.0.0.1:%d" % free_port()
    for cmd in (["ping"], ["stats"], ["stats", "--json"]):
        t0 = time.monotonic()
        p = zb.run("zbctl", "--control", ep, "--timeout", "300", *cmd, timeout=10)
        took = time.monotonic() - t0
        assert p.returncode == 1, (cmd, p.returncode, p.stderr())
        assert p.stderr().strip() == "zbctl: no reply from %s within 300 ms" % ep, p.stderr()
        assert took < 3.0
    p = zb.run("zbctl", "--ingest", ep, "--timeout", "300", "put", "--source", "s",
               "--detail-type", "t", timeout=10)
    assert p.returncode == 1
    assert "zbctl: no reply from %s within 300 ms" % ep in p.stderr()


def test_unknown_command(zb):
    b = zb.broker()
    p = zb.zbctl(b, "frobnicate")
    assert p.returncode == 2
    assert "zbctl: " in p.stderr()
