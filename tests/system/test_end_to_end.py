"""End to end: zb-producer -> zb-broker -> zb-dispatch + zb-warehouse."""

import re

import pytest

from conftest import wait_for

CATEGORIES = {"Books", "Mobiles", "Groceries", "Shoes", "Laptops", "Tablets", "Notebooks",
              "Camera", "Printers", "Monitors", "Speakers", "Projectors", "Furniture"}
STORES = {"store_%d" % i for i in range(1, 6)}
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
UNDELIVERABLE = re.compile(r"^zb-dispatch: undeliverable order (\S+): no store_id$")


def run_pair(zb, count, seed, quiet=False, dispatch_count=None, warehouse_count=None):
    """Broker + dispatch + warehouse, producer run to completion; returns
    (broker, dispatch, warehouse, producer report)."""
    b = zb.broker()
    dargs, wargs = [], []
    if quiet:
        dargs.append("--quiet")
        wargs.append("--quiet")
    if dispatch_count is not None:
        dargs += ["--count", dispatch_count]
    if warehouse_count is not None:
        wargs += ["--count", warehouse_count]
    d = zb.consumer("zb-dispatch", b, *dargs)
    w = zb.consumer("zb-warehouse", b, *wargs)
    b.wait_subscribers({"sales-events": 2, "inventory-events": 1})
    p, rep = zb.producer(b, "--count", count, "--seed", seed, "--quiet")
    assert p.returncode == 0, p.stderr()
    assert rep is not None, "producer printed no report\n" + p.stderr()
    return b, d, w, rep


def check_report(rep, count):
    assert rep["status"] is True
    assert rep["tot_msgs"] == count
    assert rep["sale_evnts"] + rep["inventory_evnts"] == count
    assert rep["acked"] == count
    assert rep["failed"] == 0
    assert 0 < rep["sale_evnts"] < count, "a random mix of both detail-types is expected"
    # --bad-ratio defaults to 0.1: of 2,000 events, some but not most are bad
    assert 0 < rep["bad_msgs"] < count // 2


def wait_lines(proc, n, timeout=30.0):
    wait_for(lambda: len(proc.stdout_lines()) >= n, timeout,
             what="%s to print %d events (has %d)" % (proc.name, n, len(proc.stdout_lines())))


@pytest.mark.timeout(150)
def test_dispatch_and_warehouse_receive_every_event_once(zb):
    count = 2000
    b, d, w, rep = run_pair(zb, count, seed=7)
    check_report(rep, count)

    wait_lines(d, rep["sale_evnts"])
    wait_lines(w, rep["tot_msgs"])
    assert d.stop() == 0, d.stderr()
    assert w.stop() == 0, w.stderr()

    sales = d.json_lines()
    every = w.json_lines()
    assert len(sales) == rep["sale_evnts"]
    assert len(every) == rep["tot_msgs"]

    # each event once
    w_ids = [e["id"] for e in every]
    d_ids = [e["id"] for e in sales]
    assert len(set(w_ids)) == len(w_ids)
    assert len(set(d_ids)) == len(d_ids)
    assert all(UUID4.match(i) for i in w_ids)

    # dispatch got exactly the sales events, warehouse both kinds
    assert {e["detail-type"] for e in sales} == {"sales-events"}
    assert set(d_ids) == {e["id"] for e in every if e["detail-type"] == "sales-events"}
    types = [e["detail-type"] for e in every]
    assert types.count("sales-events") == rep["sale_evnts"]
    assert types.count("inventory-events") == rep["inventory_evnts"]
    # in publish order, the same sales stream at both consumers
    assert d_ids == [e["id"] for e in every if e["detail-type"] == "sales-events"]

    # the generated events are what the contract says
    bad = 0
    for e in every:
        assert list(e) == ["version", "id", "detail-type", "source", "account", "time",
                           "region", "resources", "detail"]
        assert e["source"] == "zbridge.store-producer"
        det = e["detail"]
        assert UUID4.match(det["request_id"]), det
        assert isinstance(det["name"], str) and det["name"]
        assert det["category"] in CATEGORIES
        assert isinstance(det["sales"], float) and 0.0 <= det["sales"] <= 100.0
        assert round(det["sales"], 2) == det["sales"]
        assert (det.get("new_order") is True) != (det.get("is_return") is True), det
        if det.get("bad_msg") is True:
            bad += 1
            assert "store_id" not in det
        else:
            assert det["store_id"] in STORES
    assert bad == rep["bad_msgs"]

    # dispatch logs every bad sales event as undeliverable, once, by request_id
    bad_sales = [e["detail"]["request_id"] for e in sales if "store_id" not in e["detail"]]
    assert bad_sales, "with 10% bad events some sales events have no store_id"
    logged = [m.group(1) for m in map(UNDELIVERABLE.match, d.stderr_lines()) if m]
    assert sorted(logged) == sorted(bad_sales)
    # the warehouse does not judge store_id
    assert not any("undeliverable" in l for l in w.stderr_lines())
    gap = re.compile(r": missed \d+ events on ")
    assert not [l for l in d.stderr_lines() + w.stderr_lines() if gap.search(l)]


@pytest.mark.timeout(150)
def test_quiet_summaries_count_everything_without_gaps(zb):
    count, seed = 2000, 11
    # first run: learn what this seed generates (the warehouse's output gives the
    # bad sales events, the orders and the returns)
    b1, d1, w1, rep1 = run_pair(zb, count, seed)
    check_report(rep1, count)
    wait_lines(w1, rep1["tot_msgs"])
    events = w1.json_lines()
    sales = [e for e in events if e["detail-type"] == "sales-events"]
    bad_sales = sum(1 for e in sales if "store_id" not in e["detail"])
    orders = sum(1 for e in events if e["detail"].get("new_order") is True)
    returns = sum(1 for e in events if e["detail"].get("is_return") is True)

    # second run, same seed, quiet consumers that stop after their count
    b2, d2, w2, rep2 = run_pair(zb, count, seed, quiet=True,
                                dispatch_count=rep1["sale_evnts"],
                                warehouse_count=rep1["tot_msgs"])
    assert rep2 == rep1
    assert d2.wait(30) == 0, d2.stderr()
    assert w2.wait(30) == 0, w2.stderr()

    ds = d2.last_json()
    ws = w2.last_json()
    assert len(d2.stdout_lines()) == 1, "--quiet prints only the summary"
    assert len(w2.stdout_lines()) == 1, "--quiet prints only the summary"

    assert ds["received"] == rep1["sale_evnts"]
    assert ds["missed"] == 0
    assert ds["malformed"] == 0
    assert ds["topics"] == {"sales-events": rep1["sale_evnts"]}
    assert ds["undeliverable"] == bad_sales
    logged = [l for l in d2.stderr_lines() if UNDELIVERABLE.match(l)]
    assert len(logged) == ds["undeliverable"]

    assert ws["received"] == rep1["tot_msgs"]
    assert ws["missed"] == 0
    assert ws["malformed"] == 0
    assert ws["topics"] == {"sales-events": rep1["sale_evnts"],
                            "inventory-events": rep1["inventory_evnts"]}
    assert ws["orders"] == orders
    assert ws["returns"] == returns
    assert orders + returns == count

    for s in (ds, ws):
        assert isinstance(s["first_ns"], int) and isinstance(s["last_ns"], int)
        assert 0 < s["first_ns"] <= s["last_ns"]


@pytest.mark.timeout(120)
def test_same_seed_gives_the_same_events(zb):
    def run(seed):
        b = zb.broker()
        w = zb.consumer("zb-warehouse", b)
        b.wait_subscribers({"sales-events": 1, "inventory-events": 1})
        p, rep = zb.producer(b, "--count", 500, "--seed", seed, "--quiet")
        assert p.returncode == 0, p.stderr()
        wait_lines(w, rep["tot_msgs"])
        assert w.stop() == 0
        evs = w.json_lines()
        assert len(evs) == 500
        return rep, evs

    rep_a, a = run(42)
    rep_b, b = run(42)
    rep_c, c = run(43)
    assert rep_a == rep_b
    content = lambda evs: [(e["detail-type"], e["source"], e["resources"], e["detail"]) for e in evs]
    # identical details, request_id included (it comes from the seeded PRNG too)
    assert content(a) == content(b)
    # ids are the broker's, new for every event
    assert not ({e["id"] for e in a} & {e["id"] for e in b})
    # and a different seed is a different run
    assert content(a) != content(c)
