"""The per-client rate limit: ThrottlingException entries, nothing acknowledged lost."""

import pytest

from conftest import entry, replay_all
from zbclient import Client


def test_entries_beyond_the_burst_are_throttled_not_stored(zb):
    # 1 entry/s refills nothing noticeable during the test: the burst is all
    b = zb.broker("--memory", "--rate-limit", "1", "--rate-burst", "5")
    with Client(b.ingest) as c:
        r = c.put([entry("sales-events", detail={"n": i}) for i in range(8)])
    codes = [x.get("code") for x in r["results"]]
    assert codes == [None] * 5 + ["ThrottlingException"] * 3, r
    assert r["failed"] == 3
    assert "rate limit of 1 entries/s" in r["results"][5]["message"]
    # a second connection is another client (no CURVE: one bucket per connection)
    with Client(b.ingest) as c:
        assert c.put([entry("sales-events")])["failed"] == 0
    with Client(b.control) as c:
        stats = c.stats()
    assert stats["security"]["throttled"] == 3 and stats["security"]["rate_limit"] == 1
    assert stats["entries_in"] == 6
    events, _ = replay_all(b)
    assert [e.event["detail"].get("n") for e in events] == [0, 1, 2, 3, 4, None]


def test_producer_above_the_limit_is_throttled_and_loses_nothing(zb):
    b = zb.broker("--rate-limit", "400", "--rate-burst", "100")
    p, report = zb.producer(b, "-n", "1500", "-b", "50", "-w", "8", "--bad-ratio", "0",
                            "--seed", "11", "--retries", "100", "-q", timeout=90)
    assert report is not None, p.stderr()
    assert report["acked"] + report["failed"] == 1500, report
    assert report["acked"] == 1500, (report, p.stderr()[-2000:])
    with Client(b.control) as c:
        throttled = c.stats()["security"]["throttled"]
    assert throttled > 0
    # every acknowledged event is in the journal, exactly once
    events, end = replay_all(b)
    assert len(events) == report["acked"] and end.head == report["acked"]
    assert len({e.event["id"] for e in events}) == len(events)


def test_rate_limit_from_the_config_file(zb):
    cfg = zb.fresh_dir("cfg") + "/broker.cfg"
    with open(cfg, "w") as f:
        f.write("broker\n    rate-limit = 2\n    rate-burst = 2\n")
    b = zb.broker("--memory", "--config", cfg)
    with Client(b.ingest) as c:
        r = c.put([entry("sales-events")] * 3)
    assert [x.get("code") for x in r["results"]] == [None, None, "ThrottlingException"]


@pytest.mark.parametrize("value", ["-1", "x", "100000001", ""])
def test_bad_rate_limit_values(zb, value):
    p = zb.run("zb-broker", "--memory", "--rate-limit", value)
    assert p.returncode == 2 and "rate-limit" in p.stderr()
