"""Broker rules (docs/PROTOCOL.md "Rules"): RULE-PUT/GET/LIST/DELETE on the control
socket, deliveries on "$rule/NAME" with their own topic_seq and catch-up, input
transformers, persistence across restarts, rules from the config file, zbctl rule and
zb-consumer --rule, and garbage sent to every rule command.

Expected deliveries are computed in Python from all events (as a plain consumer
prints them) with a predicate equivalent to the rule's pattern."""

import json
import os
import signal

import pytest

from conftest import wait_for
from zbclient import Client, ZbError, pack

BIG_SALES = {"detail-type": ["sales-events"], "detail": {"sales": [{"numeric": [">", 50]}]}}
STORE_2 = {"detail": {"store_id": ["store_2"]}}
RETURNS = {"detail": {"is_return": [True]}}


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def big_sales(e):
    s = e.get("detail", {}).get("sales")
    return e["detail-type"] == "sales-events" and is_number(s) and s > 50


def store_2(e):
    return e.get("detail", {}).get("store_id") == "store_2"


def everything(zb, b, total):
    plain = zb.consumer("zb-consumer", b, "--prefix", "", "--from", "earliest", "--count", total)
    assert plain.wait(30) == 0, plain.stderr()
    events = plain.json_lines()
    assert len(events) == total
    return events


def put_one(c, detail, detail_type="sales-events"):
    rep = c.put([{"source": "store-7", "detail-type": detail_type, "detail": detail}])
    assert rep["failed"] == 0, rep
    return rep["results"][0]


@pytest.mark.timeout(90)
def test_rule_added_at_runtime_delivers_only_matching_events(zb):
    b = zb.broker()
    with b.control_client() as ctl:
        assert ctl.rule_list() == []
        r = ctl.rule_put("big-sales", BIG_SALES)
        assert r == {"name": "big-sales", "topic": "$rule/big-sales", "created": True}
    rule_consumer = zb.consumer("zb-consumer", b, "--rule", "big-sales", "--count", 1000000)
    b.wait_subscribers({"$rule/big-sales": 1})
    sub = b.subscriber()
    sub.subscribe_rule("big-sales")
    b.wait_subscribers({"$rule/big-sales": 2})

    _, rep = zb.producer(b, "-n", 300, "--seed", 3, "--quiet")
    assert rep["acked"] == 300, rep
    events = everything(zb, b, 300)
    expected = [e for e in events if big_sales(e)]
    assert 10 < len(expected) < 200, len(expected)

    got = sub.recv_all(len(expected), timeout=5)
    assert [g.event for g in got] == expected              # the whole event, unchanged
    assert [g.topic for g in got] == ["$rule/big-sales"] * len(expected)
    assert [g.topic_seq for g in got] == list(range(1, len(expected) + 1))
    assert sub.missed == 0
    # each delivery has its own seq, after the event it came from
    seqs = [g.seq for g in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    wait_for(lambda: len(rule_consumer.stdout_lines()) >= len(expected), 20,
             what="%d deliveries at zb-consumer --rule" % len(expected))
    assert rule_consumer.stop() == 0
    assert rule_consumer.json_lines() == expected

    with b.control_client() as ctl:
        info = ctl.rule_get("big-sales")
        assert info["matched"] == len(expected) and info["seq"] == len(expected)
        assert info["subscribers"] >= 1 and info["failed"] == 0
        assert json.loads(info["pattern"]) == BIG_SALES
    stats = b.stats()
    # entries_in counts entries only; the rule's topic counts its deliveries
    assert stats["entries_in"] == 300
    assert stats["topics"]["$rule/big-sales"]["in"] == len(expected)


@pytest.mark.timeout(60)
def test_replaced_rule_changes_deliveries_from_the_next_event(zb):
    b = zb.broker()
    ctl = b.control_client()
    c = b.client()
    ctl.rule_put("watch", STORE_2)
    sub = b.subscriber()
    sub.subscribe_rule("watch")
    b.wait_subscribers({"$rule/watch": 1})

    put_one(c, {"store_id": "store_2", "sales": 1})        # matches the first pattern
    put_one(c, {"store_id": "store_3", "sales": 99})       # matches neither
    r = ctl.rule_put("watch", BIG_SALES)
    assert r["created"] is False
    put_one(c, {"store_id": "store_2", "sales": 2})        # only the old pattern: not now
    put_one(c, {"store_id": "store_4", "sales": 77})       # the new pattern
    got = sub.recv_all(2, timeout=5)
    assert [g.event["detail"]["sales"] for g in got] == [1, 77]
    assert [g.topic_seq for g in got] == [1, 2]            # one topic, one numbering
    with pytest.raises(Exception):
        sub.recv(timeout=0.5)

    # deleted: no more deliveries, the name is free, the topic keeps its numbers
    assert ctl.rule_delete("watch") == {"name": "watch", "deleted": True}
    put_one(c, {"store_id": "store_4", "sales": 78})
    with pytest.raises(ZbError) as e:
        ctl.rule_get("watch")
    assert e.value.code == "ResourceNotFound"
    with pytest.raises(ZbError) as e:
        ctl.rule_delete("watch")
    assert e.value.code == "ResourceNotFound"
    assert ctl.rule_put("watch", BIG_SALES)["created"] is True
    put_one(c, {"store_id": "store_4", "sales": 79})
    ev = sub.recv(timeout=5)
    assert ev.event["detail"]["sales"] == 79 and ev.topic_seq == 3


@pytest.mark.timeout(90)
def test_rules_survive_a_restart_and_their_topic_catches_up(zb):
    b = zb.broker()
    with b.control_client() as ctl:
        ctl.rule_put("big-sales", BIG_SALES)
        ctl.rule_put("lines", STORE_2, transform={
            "InputPathsMap": {"s": "$.detail.sales", "st": "$.detail.store_id"},
            "InputTemplate": "<st> sold <s>"})
    _, rep = zb.producer(b, "-n", 200, "--seed", 8, "--quiet")
    assert rep["acked"] == 200
    assert os.path.exists(os.path.join(b.data_dir, "rules.json"))

    b = zb.restart_broker(b)                                # SIGKILL, same data dir
    with b.control_client() as ctl:
        names = [r["name"] for r in ctl.rule_list()]
        assert names == ["big-sales", "lines"]
        assert "transform" in ctl.rule_get("lines")
    _, rep = zb.producer(b, "-n", 200, "--seed", 9, "--quiet")
    assert rep["acked"] == 200

    # a consumer that starts after all of it gets every delivery from the journal,
    # in order, once: both before and after the restart
    events = everything(zb, b, 400)
    expected_big = [e for e in events if big_sales(e)]
    expected_lines = ["%s sold %s" % (e["detail"]["store_id"], json.dumps(e["detail"]["sales"]))
                      if "sales" in e["detail"] else "%s sold " % e["detail"]["store_id"]
                      for e in events if store_2(e)]
    assert len(expected_big) > 10 and len(expected_lines) > 10
    p = zb.consumer("zb-consumer", b, "--rule", "big-sales", "--from", "earliest",
                    "--count", len(expected_big))
    assert p.wait(30) == 0, p.stderr()
    assert p.json_lines() == expected_big
    q = zb.consumer("zb-consumer", b, "--rule", "lines", "--from", "earliest",
                    "--count", len(expected_lines))
    assert q.wait(30) == 0, q.stderr()
    assert q.json_lines() == expected_lines

    # topic_seq continued across the restart: the journal's head of the rule topic
    with b.control_client() as ctl:
        heads = ctl.journal()["topics"]
    assert heads["$rule/big-sales"] == len(expected_big)
    assert heads["$rule/lines"] == len(expected_lines)


@pytest.mark.timeout(60)
def test_transformers_json_and_string(zb):
    b = zb.broker()
    ctl = b.control_client()
    ctl.rule_put("json-out", STORE_2, transform={
        "InputPathsMap": {"store": "$.detail.store_id", "total": "$.detail.sales",
                          "first": "$.detail.items.0", "none": "$.detail.nothing"},
        "InputTemplate": '{"store": <store>, "total": <total>, "first": <first>, '
                         '"missing": <none>, "rule": <aws.events.rule-name>, '
                         '"text": "<store> sold <total>"}'})
    ctl.rule_put("text-out", STORE_2, transform={
        "InputPathsMap": {"store": "$.detail.store_id"},
        "InputTemplate": "alert: <store> (<aws.events.rule-arn>)"})
    sub = b.subscriber()
    sub.subscribe_rule("json-out")
    sub.subscribe_rule("text-out")
    b.wait_subscribers({"$rule/json-out": 1, "$rule/text-out": 1})
    put_one(b.client(), {"store_id": "store_2", "sales": 12.5, "items": [{"sku": "A-1"}]})
    got = {g.topic: g.event for g in sub.recv_all(2, timeout=5)}
    assert got["$rule/json-out"] == {"store": "store_2", "total": 12.5, "first": {"sku": "A-1"},
                                     "missing": None, "rule": "json-out",
                                     "text": "store_2 sold 12.5"}
    assert got["$rule/text-out"] == \
        "alert: store_2 (arn:zbridge:events:local:000000000000:rule/text-out)"


@pytest.mark.timeout(60)
def test_replay_of_everything_leaves_rule_topics_out(zb):
    b = zb.broker()
    ctl = b.control_client()
    ctl.rule_put("all-sales", {"detail-type": ["sales-events"]})
    c = b.client()
    for i in range(3):
        put_one(c, {"n": i})
    # 3 events and 3 deliveries in the journal
    assert ctl.journal()["head"] == 6
    events, _ = ctl.replay(credit=100)
    assert [e.topic for e in events] == ["sales-events"] * 3
    events, _ = ctl.replay(prefixes=[""], credit=100)
    assert [e.topic for e in events] == ["sales-events"] * 3
    named, _ = ctl.replay(topics=["$rule/all-sales"], credit=100)
    assert [e.topic for e in named] == ["$rule/all-sales"] * 3
    by_prefix, _ = ctl.replay(prefixes=["$rule/"], credit=100)
    assert [e.seq for e in by_prefix] == [e.seq for e in named]
    assert [e.topic_seq for e in named] == [1, 2, 3]
    assert [e.event["detail"]["n"] for e in named] == [0, 1, 2]


@pytest.mark.timeout(60)
def test_rule_commands_refuse_garbage_and_the_broker_keeps_serving(zb):
    b = zb.broker("--max-rules", 2, "--max-pattern-size", 200)
    ctl = b.control_client()
    bad = [
        ("RULE-PUT", b"", "MalformedRequest"),
        ("RULE-PUT", b"\xc1", "MalformedRequest"),
        ("RULE-PUT", pack([1, 2]), "InvalidArgument"),
        ("RULE-PUT", pack({"pattern": "{}"}), "InvalidArgument"),
        ("RULE-PUT", pack({"name": "a"}), "InvalidArgument"),
        ("RULE-PUT", pack({"name": "a", "pattern": "{}", "x": 1}), "InvalidArgument"),
        ("RULE-PUT", pack({"name": "a", "pattern": {"detail": 1}}), "InvalidArgument"),
        ("RULE-PUT", pack({"name": "a b", "pattern": '{"source": ["x"]}'}), "InvalidArgument"),
        ("RULE-PUT", pack({"name": "x" * 65, "pattern": '{"source": ["x"]}'}), "InvalidArgument"),
        ("RULE-PUT", pack({"name": "", "pattern": '{"source": ["x"]}'}), "InvalidArgument"),
        ("RULE-PUT", pack({"name": "a", "pattern": "{"}), "InvalidEventPattern"),
        ("RULE-PUT", pack({"name": "a", "pattern": "[]"}), "InvalidEventPattern"),
        ("RULE-PUT", pack({"name": "a", "pattern": '{"detail": {"x": [{"nope": 1}]}}'}),
         "InvalidEventPattern"),
        ("RULE-PUT", pack({"name": "a", "pattern": json.dumps({"source": ["x" * 300]})}),
         "InvalidEventPattern"),
        ("RULE-PUT", pack({"name": "a", "pattern": '{"source": ["x"]}', "transform": "{}"}),
         "InvalidArgument"),
        ("RULE-PUT", pack({"name": "a", "pattern": '{"source": ["x"]}',
                           "transform": '{"InputTemplate": "<nope>"}'}), "InvalidArgument"),
        ("RULE-PUT", pack({"name": "a", "pattern": b'{"source": ["\xff"]}'}), "InvalidArgument"),
        ("RULE-GET", pack({}), "InvalidArgument"),
        ("RULE-GET", pack({"name": 5}), "InvalidArgument"),
        ("RULE-GET", pack({"name": "nope"}), "ResourceNotFound"),
        ("RULE-DELETE", pack("nope"), "InvalidArgument"),
        ("RULE-DELETE", pack({"name": "nope"}), "ResourceNotFound"),
        ("RULE-LIST", pack({"prefix": 1}), "InvalidArgument"),
        ("RULE-LIST", pack({"other": "x"}), "InvalidArgument"),
        ("RULE-NOPE", b"", "UnknownCommand"),
    ]
    for command, body, code in bad:
        reply = ctl.request(command, body)
        assert reply.status == "ERROR", (command, body, reply)
        assert reply.body["code"] == code, (command, body, reply.body)
        assert reply.body["message"], reply.body
    # the limit on the number of rules
    ctl.rule_put("one", {"source": ["a"]})
    ctl.rule_put("two", {"source": ["b"]})
    with pytest.raises(ZbError) as e:
        ctl.rule_put("three", {"source": ["c"]})
    assert e.value.code == "LimitExceeded"
    ctl.rule_put("two", {"source": ["c"]})                  # replacing is not adding
    assert [r["name"] for r in ctl.rule_list()] == ["one", "two"]
    assert [r["name"] for r in ctl.rule_list(prefix="tw")] == ["two"]
    # still serving: a matching event is delivered
    sub = b.subscriber()
    sub.subscribe_rule("two")
    b.wait_subscribers({"$rule/two": 1})
    rep = b.client().put([{"source": "c", "detail-type": "t", "detail": {}}])
    assert rep["failed"] == 0
    assert sub.recv(timeout=5).event["source"] == "c"
    assert b.proc.alive()


@pytest.mark.timeout(60)
def test_rules_from_the_config_file(zb, tmp_path):
    cfg = tmp_path / "broker.cfg"
    cfg.write_text(
        "broker\n"
        "    max-rules = 5\n"
        "rules\n"
        "    big-sales\n"
        "        pattern = '%s'\n"
        "    lines\n"
        "        pattern = '%s'\n"
        "        transform = '%s'\n"
        % (json.dumps(BIG_SALES), json.dumps(STORE_2),
           json.dumps({"InputPathsMap": {"s": "$.source"}, "InputTemplate": "from <s>"})))
    b = zb.broker("--config", str(cfg))
    with b.control_client() as ctl:
        rules = {r["name"]: r for r in ctl.rule_list()}
    assert set(rules) == {"big-sales", "lines"}
    assert json.loads(rules["big-sales"]["pattern"]) == BIG_SALES
    assert "transform" in rules["lines"]

    # a bad rule in the file: the broker does not start, and says which rule
    bad = tmp_path / "bad.cfg"
    bad.write_text("broker\n    max-rules = 5\nrules\n    oops\n        pattern = '{\"detail\": 5}'\n")
    p = zb.run("zb-broker", "--memory", "--config", str(bad),
               "--ingest", "tcp://127.0.0.1:0", "--publish", "tcp://127.0.0.1:0",
               "--control", "tcp://127.0.0.1:0", timeout=20)
    assert p.returncode != 0
    assert "oops" in p.stderr() and "InvalidEventPattern" in p.stderr()
    for text, what in (("rules\n    x\n        nope = 1\n", "unknown key rules/x/nope"),
                       ("rules\n    x\n        transform = '{}'\n", "rules/x has no pattern")):
        f = tmp_path / "bad2.cfg"
        f.write_text("broker\n    max-rules = 5\n" + text)
        p = zb.run("zb-broker", "--memory", "--config", str(f), timeout=20)
        assert p.returncode == 2 and what in p.stderr(), p.stderr()


@pytest.mark.timeout(60)
def test_zbctl_rule_commands(zb):
    b = zb.broker()
    p = zb.zbctl(b, "rule", "put", "big-sales", "--pattern", json.dumps(BIG_SALES))
    assert p.returncode == 0, p.stderr()
    assert p.stdout_lines() == ["created rule big-sales (topic $rule/big-sales)"]
    p = zb.zbctl(b, "rule", "put", "big-sales", "--pattern", json.dumps(BIG_SALES),
                 "--transform", '{"InputTemplate": "big"}')
    assert p.stdout_lines() == ["replaced rule big-sales (topic $rule/big-sales)"]
    p = zb.zbctl(b, "rule", "get", "big-sales", "--json")
    info = json.loads(p.stdout_lines()[0])
    assert info["topic"] == "$rule/big-sales" and json.loads(info["transform"]) == {"InputTemplate": "big"}
    p = zb.zbctl(b, "rule", "get", "big-sales")
    assert any(l.startswith("topic:") and "$rule/big-sales" in l for l in p.stdout_lines())
    p = zb.zbctl(b, "rule", "list")
    assert p.returncode == 0 and p.stdout_lines()[0].split()[0] == "NAME"
    assert p.stdout_lines()[1].split()[0] == "big-sales"
    # errors: the broker's code and message, exit 1; usage errors exit 2
    p = zb.zbctl(b, "rule", "put", "bad", "--pattern", '{"detail": 5}')
    assert p.returncode == 1 and "InvalidEventPattern" in p.stderr()
    p = zb.zbctl(b, "rule", "get", "nope")
    assert p.returncode == 1 and "ResourceNotFound" in p.stderr()
    for args in (["rule"], ["rule", "frob"], ["rule", "put", "x"], ["rule", "get"],
                 ["rule", "put", "bad name", "--pattern", "{}"], ["rule", "list", "x"],
                 ["rule", "get", "x", "--pattern", "{}"]):
        p = zb.zbctl(b, *args)
        assert p.returncode == 2, (args, p.stderr())
    p = zb.zbctl(b, "rule", "delete", "big-sales")
    assert p.returncode == 0 and p.stdout_lines() == ["deleted rule big-sales"]
    p = zb.zbctl(b, "rule", "list", "--json")
    assert json.loads(p.stdout_lines()[0])["rules"] == []


@pytest.mark.timeout(60)
def test_consumer_rule_flag_errors(zb):
    b = zb.broker()
    for args in (["--rule", "bad name"], ["--rule", ""], ["--rule", "x" * 65]):
        p = zb.run("zb-consumer", "--connect", b.publish, "--control", b.control, *args,
                   timeout=20)
        assert p.returncode == 2, (args, p.stderr())
        assert "--rule" in p.stderr()
