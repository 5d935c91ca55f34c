"""CURVE, the allow directory, safe defaults and authorization (docs/SECURITY.md)."""

import os
import re
import shutil
import stat
import subprocess

import pytest
import zmq

from conftest import entry, free_port, program, wait_for
from zbclient import Client, Subscriber, ZbError, ZbTimeout, pack


# --- keys -------------------------------------------------------------------------


def keygen(cwd, *args):
    return subprocess.run([program("zbctl"), "keygen"] + list(args), cwd=cwd,
                          capture_output=True, text=True, timeout=20)


def read_cert(path):
    """(public, secret or None) Z85 keys of a zcert file."""
    text = open(path).read()
    pub = re.search(r'public-key = "([^"]{40})"', text).group(1)
    sec = re.search(r'secret-key = "([^"]{40})"', text)
    return pub, sec.group(1) if sec else None


class Keys:
    """Certificates made by `zbctl keygen` in one directory, and an allow directory."""

    def __init__(self, zb, names=("broker", "alice", "bob", "carol")):
        self.zb = zb
        self.dir = zb.fresh_dir("keys")
        self.allow = zb.fresh_dir("allow")
        for name in names:
            self.keygen(name)

    def keygen(self, name):
        # zbctl keygen writes into its current directory: run it there
        r = keygen(self.dir, name)
        assert r.returncode == 0, r.stderr
        pub, _ = read_cert(self.path(name))
        assert r.stdout.strip() == pub
        return pub

    def path(self, name):
        return os.path.join(self.dir, name)

    def secret_path(self, name):
        return os.path.join(self.dir, name + "_secret")

    def public(self, name):
        return read_cert(self.path(name))[0]

    def curve(self, name, server="broker"):
        """Client keys for zbclient: (server public, client public, client secret)."""
        pub, sec = read_cert(self.secret_path(name))
        return (self.public(server), pub, sec)

    def flags(self, name, server="broker"):
        return ["--curve-server", self.path(server), "--curve-cert", self.secret_path(name)]

    def allow_key(self, name):
        shutil.copy(self.path(name), os.path.join(self.allow, name))

    def remove_key(self, name):
        os.remove(os.path.join(self.allow, name))


def ports():
    """Free loopback endpoints for a broker that may start by mistake."""
    return ["--ingest", "tcp://127.0.0.1:%d" % free_port(),
            "--publish", "tcp://127.0.0.1:%d" % free_port(),
            "--control", "tcp://127.0.0.1:%d" % free_port()]


def curve_broker(zb, keys, *args):
    return zb.broker("--curve-cert", keys.secret_path("broker"), "--curve-allow", keys.allow,
                     *args)


def security(b, keys, name="alice"):
    with Client(b.control, curve=keys.curve(name)) as c:
        return c.stats()["security"]


def no_reply(client, command=b"PING", timeout=0.5, body=b""):
    """True when a request gets no reply at all (or cannot even be sent: a
    DEALER whose handshake failed has no peer to queue it for)."""
    client.sock.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
    try:
        client.request(command, body, timeout=timeout)
    except (ZbTimeout, zmq.Again):
        return True
    return False


# --- keygen -----------------------------------------------------------------------


def test_keygen_writes_a_certificate_pair_and_never_overwrites(zb):
    keys = Keys(zb, names=("store-7",))
    pub, sec = read_cert(keys.secret_path("store-7"))
    assert pub == keys.public("store-7") and sec and sec != "0" * 40
    assert read_cert(keys.path("store-7"))[1] is None           # the public file has no secret
    assert stat.S_IMODE(os.stat(keys.secret_path("store-7")).st_mode) == 0o600
    r = keygen(keys.dir, "store-7")
    assert r.returncode == 1 and "not overwriting" in r.stderr
    for bad in ("", "../x", ".hidden", "a b", "x" * 201):
        r = keygen(keys.dir, bad)
        assert r.returncode == 2, (bad, r.stderr)
    r = keygen(keys.dir)
    assert r.returncode == 2 and "NAME" in r.stderr
    r = keygen(keys.dir, "a", "b")
    assert r.returncode == 2


# --- safe defaults ----------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "*", "192.0.2.1", "[::]", "localhost", "eth0"])
def test_plain_text_beyond_loopback_refuses_to_start(zb, host):
    ep = "tcp://%s:%d" % (host, free_port())
    p = zb.run("zb-broker", "--memory", "--ingest", ep,
               "--publish", "tcp://127.0.0.1:%d" % free_port(),
               "--control", "tcp://127.0.0.1:%d" % free_port())
    assert p.returncode == 2, p.stderr()
    err = p.stderr()
    assert "refusing to bind ingest to %s in plain text" % ep in err
    assert "--curve-cert" in err and "--curve-allow" in err and "--insecure" in err
    assert "ready" not in err


def test_insecure_skips_the_check(zb):
    # 192.0.2.1 (TEST-NET-1) is no address of this host: with --insecure the
    # broker gets past the check and fails at the bind itself, binding nothing
    ep = "tcp://192.0.2.1:%d" % free_port()
    p = zb.run("zb-broker", "--memory", "--insecure", "--ingest", ep,
               "--publish", "tcp://127.0.0.1:%d" % free_port(),
               "--control", "tcp://127.0.0.1:%d" % free_port())
    assert p.returncode == 1, p.stderr()
    assert "refusing" not in p.stderr() and "cannot bind ingest to %s" % ep in p.stderr()


def test_loopback_and_ipc_need_no_curve(zb):
    d = zb.fresh_dir("ipc")
    b = zb.broker("--memory", "--ingest", "ipc://%s/in" % d, "--publish",
                  "tcp://127.0.0.1:%d" % free_port(), "--control",
                  "tcp://127.0.0.2:%d" % free_port(), ports=False)
    assert b.ping()["status"] == "ok"


def test_security_flags_are_checked(zb):
    keys = Keys(zb, names=("broker",))
    cases = [
        (["--curve-cert", keys.secret_path("broker")], "needs curve-allow"),
        (["--curve-allow", keys.allow], "needs curve-cert"),
        (["--rate-limit", "x"], "rate-limit"),
        (["--rate-burst", "5"], "needs rate-limit"),
        (["--max-subscription", "10"], "max-subscription"),
    ]
    for args, what in cases:
        p = zb.run("zb-broker", "--memory", *(args + ports()))
        assert p.returncode == 2, (args, p.stderr())
        assert what in p.stderr(), (args, p.stderr())
    # a public certificate alone (no NAME_secret beside it) is not a secret one
    alone = os.path.join(zb.fresh_dir("public"), "broker")
    shutil.copy(keys.path("broker"), alone)
    p = zb.run("zb-broker", "--memory", "--curve-cert", alone, "--curve-allow", keys.allow,
               *ports())
    assert p.returncode == 1 and "no secret key" in p.stderr(), p.stderr()
    # clients: one of the two flags alone is a usage error, a missing file a failure
    for prog in ("zbctl", "zb-producer", "zb-consumer"):
        extra = ["ping"] if prog == "zbctl" else (["-t", "x"] if prog == "zb-consumer" else [])
        extra += ["--connect" if prog != "zbctl" else "--control",
                  "tcp://127.0.0.1:%d" % free_port()]
        p = zb.run(prog, "--curve-server", keys.path("broker"), *extra)
        assert p.returncode == 2 and "--curve-cert" in p.stderr(), (prog, p.stderr())
        p = zb.run(prog, "--curve-server", keys.path("nothing"), "--curve-cert",
                   keys.secret_path("broker"), *extra)
        assert p.returncode == 1 and "cannot read certificate" in p.stderr(), (prog, p.stderr())
        p = zb.run(prog, "--max-msg-size", "12", *extra)
        assert p.returncode == 2 and "--max-msg-size" in p.stderr(), (prog, p.stderr())


# --- authentication ---------------------------------------------------------------


def test_allowed_key_works_for_every_program(zb):
    keys = Keys(zb)
    keys.allow_key("alice")
    b = curve_broker(zb, keys)
    # zbctl, a consumer and the producer, all with alice's key
    r = zb.zbctl(b, *keys.flags("alice"), "ping")
    assert r.returncode == 0 and r.stdout().startswith("ok "), r.stderr()
    consumer = zb.consumer("zb-consumer", b, "-t", "sales-events", "-t", "inventory-events",
                           "-q", "-n", "20", *keys.flags("alice"))
    wait_for(lambda: security(b, keys)["keys"] == 1 and
             Client(b.control, curve=keys.curve("alice")).stats()["topics"]
             .get("sales-events", {}).get("subscribers", 0) >= 1, 10, what="consumer subscribed")
    p, report = zb.producer(b, "-n", "20", "--bad-ratio", "0", "--seed", "3", "-q",
                            *keys.flags("alice"))
    assert p.returncode == 0 and report["acked"] == 20, p.stderr()
    consumer.wait(20)
    assert consumer.returncode == 0, consumer.stderr()
    assert consumer.last_json()["received"] == 20
    # the replay client of a consumer started late, from the journal
    late = zb.run("zb-consumer", "--connect", b.publish, "--control", b.control,
                  "-t", "sales-events", "-t", "inventory-events", "--from", "earliest",
                  "-n", "20", "-q", *keys.flags("alice"), timeout=30)
    assert late.returncode == 0 and late.last_json()["received"] == 20, late.stderr()
    # zbctl's commands with their own sockets: replay (REPLAY), tail (the consumer), rule
    r = zb.zbctl(b, "--publish", b.publish, "replay", "--from", "earliest", *keys.flags("alice"))
    assert r.returncode == 0 and len(r.stdout_lines()) == 20, r.stderr()
    r = zb.zbctl(b, "--publish", b.publish, "tail", "sales-events", "inventory-events",
                 "--from", "earliest", "-n", "20", "--json", *keys.flags("alice"))
    assert r.returncode == 0 and len(r.stdout_lines()) == 20, r.stderr()
    r = zb.zbctl(b, "rule", "list", *keys.flags("alice"))
    assert r.returncode == 0, r.stderr()
    # without the keys the same commands get no answer (exit 1, the endpoint named)
    r = zb.zbctl(b, "--timeout", "500", "replay", "--from", "earliest")
    assert r.returncode == 1 and b.control in r.stderr(), r.stderr()


def test_no_key_or_wrong_key_gets_nothing_and_publishes_nothing(zb):
    keys = Keys(zb)
    keys.allow_key("alice")
    b = curve_broker(zb, keys)
    plain = Client(b.ingest, timeout=0.5)
    bob = Client(b.ingest, timeout=0.5, curve=keys.curve("bob"))           # not allowed
    wrong_server = Client(b.ingest, timeout=0.5, curve=keys.curve("alice", server="carol"))
    for c in (plain, bob, wrong_server):
        assert no_reply(c, b"PUT", 0.7, pack([entry("sales-events")]))
        c.close()
    for curve in (None, keys.curve("bob"), keys.curve("alice", server="carol")):
        with Client(b.control, timeout=0.5, curve=curve) as c:
            assert no_reply(c, b"STATS")
    # subscribers without the key hear nothing, alice's does
    subs = [Subscriber(b.publish), Subscriber(b.publish, curve=keys.curve("bob"))]
    good = Subscriber(b.publish, curve=keys.curve("alice"))
    for s in subs + [good]:
        s.subscribe("sales-events")
    with Client(b.control, curve=keys.curve("alice")) as c:
        wait_for(lambda: c.stats()["topics"].get("sales-events", {}).get("subscribers", 0) >= 1,
                 5, what="alice's subscription")
        assert c.stats()["seq"] == 0                      # nothing got in
    with Client(b.ingest, curve=keys.curve("alice")) as c:
        assert c.put([entry("sales-events")])["failed"] == 0
    assert good.recv(5.0).event["detail-type"] == "sales-events"
    for s in subs:
        with pytest.raises(ZbTimeout):
            s.recv(0.5)
        s.close()
    good.close()
    # zbctl with a key the broker does not know: no reply, exit 1
    r = zb.zbctl(b, *keys.flags("bob"), "--timeout", "500", "ping")
    assert r.returncode == 1 and "no reply" in r.stderr()


def test_keys_added_and_removed_take_effect_without_restart(zb):
    keys = Keys(zb)
    keys.allow_key("alice")
    keys.allow_key("carol")
    b = curve_broker(zb, keys)
    # bob is added while the broker runs
    keys.allow_key("bob")
    wait_for(lambda: not no_reply(Client(b.control, curve=keys.curve("bob")), timeout=0.3),
             10, what="bob allowed")
    # alice is connected everywhere: ingest, publish, control (a replay session
    # waiting for credit)
    ingest = Client(b.ingest, curve=keys.curve("alice"))
    assert ingest.put([entry("sales-events")] * 3)["failed"] == 0
    sub = Subscriber(b.publish, curve=keys.curve("alice"))
    sub.subscribe("sales-events")
    control = Client(b.control, curve=keys.curve("alice"))
    corr = control.send_replay(Client.replay_body(frm=1, credit=1))
    status, c, _ = control.recv_replay(5.0)
    assert status == "EVENT" and c == corr
    with Client(b.control, curve=keys.curve("carol")) as cc:
        wait_for(lambda: cc.stats()["topics"].get("sales-events", {})
                 .get("subscribers", 0) >= 1, 5, what="alice subscribed")
    assert ingest.put([entry("sales-events")])["failed"] == 0
    assert sub.recv(5.0).event["detail-type"] == "sales-events"

    keys.remove_key("alice")
    # its open connections: requests get AccessDenied, the replay session ends
    def denied():
        reply = ingest.request("PUT", [entry("sales-events")], timeout=2.0)
        return reply.status == "ERROR" and reply.body["code"] == "AccessDenied"
    wait_for(denied, 10, interval=0.1, what="alice's PUT refused")
    status, c, body = control.recv_replay(5.0)
    assert status == "ERROR" and body["code"] == "AccessDenied", (status, body)
    reply = control.request("PING", b"", timeout=2.0)
    assert reply.status == "ERROR" and reply.body["code"] == "AccessDenied"
    # carol publishes; alice's subscriber (cut, refused at its reconnect) gets nothing
    with Client(b.control, curve=keys.curve("carol")) as cc:
        wait_for(lambda: cc.stats()["security"]["publish_rebuilds"] >= 1, 5,
                 what="publish connections cut")
        head = cc.stats()["seq"]
    carol_sub = Subscriber(b.publish, curve=keys.curve("carol"))
    carol_sub.subscribe("sales-events")
    with Client(b.control, curve=keys.curve("carol")) as cc:
        wait_for(lambda: cc.stats()["topics"].get("sales-events", {})
                 .get("subscribers", 0) >= 1, 5, what="carol subscribed")
    with Client(b.ingest, curve=keys.curve("carol")) as c:
        assert c.put([entry("sales-events", detail={"after": "removal"})])["failed"] == 0
    assert carol_sub.recv(5.0).event["detail"] == {"after": "removal"}
    got = []
    try:
        while True:
            got.append(sub.recv(1.0))
    except ZbTimeout:
        pass
    assert all(e.seq <= head for e in got), "alice received after removal: %r" % got
    # nothing alice sent after the removal was stored
    assert security(b, keys, "carol")["denied"] >= 2
    with Client(b.control, curve=keys.curve("carol")) as cc:
        events, end = cc.replay(frm=1, credit=100)
    assert [e.event["detail"] for e in events][-1] == {"after": "removal"}
    assert len(events) == head + 1
    # a new connection with alice's key is refused at the handshake
    with Client(b.ingest, timeout=0.5, curve=keys.curve("alice")) as c:
        assert no_reply(c)
    for s in (ingest, control, sub, carol_sub):
        s.close()


def test_plain_client_cannot_talk_to_a_curve_socket_and_curve_to_a_plain_one(zb):
    keys = Keys(zb)
    keys.allow_key("alice")
    b = curve_broker(zb, keys)
    with Client(b.ingest, timeout=0.5) as c:
        assert no_reply(c)
    plain = zb.broker("--memory")
    with Client(plain.ingest, timeout=0.5, curve=keys.curve("alice")) as c:
        assert no_reply(c)


# --- authorization ----------------------------------------------------------------


def auth_config(zb, keys, body):
    path = os.path.join(zb.fresh_dir("cfg"), "broker.cfg")
    with open(path, "w") as f:
        if not body.startswith("broker"):
            f.write("broker\n")
        f.write(body)
    return path


def test_authorization_per_entry(zb):
    keys = Keys(zb)
    for k in ("alice", "bob", "carol"):
        keys.allow_key(k)
    cfg = auth_config(zb, keys, """\
authorization
    store-7
        key = "%s"
        source = store-7
        source = store-7.*
        detail-type = sales-events
        detail-type = inventory-*
        topic = sales-events
    bob
        cert = bob
        source = *
        detail-type = *
        topic = *
""" % keys.public("alice"))
    b = curve_broker(zb, keys, "--config", cfg)
    with Client(b.ingest, curve=keys.curve("alice")) as c:
        r = c.put([entry("sales-events", source="store-7"),
                   entry("sales-events", source="store-8"),
                   entry("returns-events", source="store-7"),
                   entry("inventory-events", source="store-7.till-2"),
                   entry("sales-events", source="store-7x"),
                   entry("sales-events", source="store-7", detail={"x": 1}, time="bad")])
    codes = [x.get("code") for x in r["results"]]
    assert codes == [None, "NotAuthorizedForSource", "NotAuthorizedForDetailType", None,
                     "NotAuthorizedForSource", "InvalidArgument"], r
    assert r["failed"] == 4
    assert "store-8" in r["results"][1]["message"] and "store-7" in r["results"][1]["message"]
    # bob may publish anything; carol (no entry, no "default") nothing
    with Client(b.ingest, curve=keys.curve("bob")) as c:
        assert c.put([entry("returns-events", source="anyone")])["failed"] == 0
    with Client(b.ingest, curve=keys.curve("carol")) as c:
        r = c.put([entry("sales-events")])
        assert r["results"][0]["code"] == "NotAuthorizedForSource"
    # the accepted ones are the journal's, nothing else
    with Client(b.control, curve=keys.curve("bob")) as c:
        events, _ = c.replay(frm=1, credit=100)
    assert [(e.event["source"], e.event["detail-type"]) for e in events] == [
        ("store-7", "sales-events"), ("store-7.till-2", "inventory-events"),
        ("anyone", "returns-events")]
    # REPLAY: only the topics alice may read
    with Client(b.control, curve=keys.curve("alice")) as c:
        events, _ = c.replay(frm=1, topics=["sales-events"], credit=100)
        assert len(events) == 1
        for kw in ({"topics": ["inventory-events"]}, {"prefixes": ["sales"]}, {},
                   {"topics": ["sales-events", "returns-events"]}):
            with pytest.raises(ZbError) as e:
                c.replay(frm=1, credit=100, **kw)
            assert e.value.code == "NotAuthorizedForTopic", kw


def test_only_keys_with_rules_true_change_rules(zb):
    keys = Keys(zb)
    for k in ("alice", "bob", "carol"):
        keys.allow_key(k)
    cfg = auth_config(zb, keys, """\
authorization
    alice
        cert = alice
        source = *
        detail-type = *
        topic = sales-events
    bob
        cert = bob
        topic = $rule/*
        rules = true
""")
    b = curve_broker(zb, keys, "--config", cfg)
    with Client(b.control, curve=keys.curve("alice")) as c:
        for command, body in (("RULE-PUT", {"name": "x", "pattern": '{"source": ["a"]}'}),
                              ("RULE-DELETE", {"name": "x"})):
            r = c.request(command, pack(body))
            assert r.status == "ERROR" and r.body["code"] == "AccessDenied", r
            assert "rules" in r.body["message"]
        assert c.rule_list() == []                   # reading is open
    with Client(b.control, curve=keys.curve("bob")) as c:
        assert c.rule_put("all", {"source": [{"prefix": ""}]})["created"] is True
    with Client(b.control, curve=keys.curve("alice")) as c:
        assert [r["name"] for r in c.rule_list()] == ["all"]
        with pytest.raises(ZbError) as e:           # alice may not read the rule's topic
            c.replay(frm=1, topics=["$rule/all"], credit=10)
        assert e.value.code == "NotAuthorizedForTopic"
    with Client(b.ingest, curve=keys.curve("alice")) as c:
        assert c.put([entry("sales-events", source="s")])["failed"] == 0
    with Client(b.control, curve=keys.curve("bob")) as c:
        events, _ = c.replay(frm=1, topics=["$rule/all"], credit=10)
        assert [e.event["source"] for e in events] == ["s"]
        assert c.rule_delete("all")["deleted"] is True
    # a bad value of "rules" stops the broker at start
    bad = auth_config(zb, keys, "authorization\n    bob\n        cert = bob\n        rules = yes\n")
    p = zb.run("zb-broker", "--curve-cert", keys.secret_path("broker"), "--curve-allow", keys.allow,
               "--config", bad, "--memory", timeout=20)
    assert p.returncode != 0 and "is not true or false" in p.stderr(), p.stderr()


def test_forbidden_subscription_cuts_the_subscriber(zb):
    keys = Keys(zb)
    for k in ("alice", "bob"):
        keys.allow_key(k)
    cfg = auth_config(zb, keys, """\
authorization
    alice
        cert = alice
        source = *
        detail-type = *
        topic = sales-*
    default
        source = *
        detail-type = *
        topic = *
""")
    b = curve_broker(zb, keys, "--config", cfg)
    # allowed: exact within the prefix, a longer prefix, the heartbeat
    ok = Subscriber(b.publish, curve=keys.curve("alice"))
    ok.subscribe("sales-events")
    ok.subscribe("sales-ev", prefix=True)
    ok.subscribe_heartbeat()
    bob = Subscriber(b.publish, curve=keys.curve("bob"))
    bob.subscribe("inventory-events")
    with Client(b.control, curve=keys.curve("bob")) as c:
        wait_for(lambda: c.stats()["topics"].get("sales-events", {}).get("subscribers", 0) >= 1
                 and c.stats()["topics"].get("inventory-events", {}).get("subscribers", 0) >= 1,
                 5, what="subscriptions")
        assert c.stats()["security"]["forbidden_subscriptions"] == 0
    # forbidden: another topic, a shorter prefix, everything
    for topic, prefix in (("inventory-events", False), ("sales", True), ("", True)):
        with Client(b.control, curve=keys.curve("bob")) as c:
            before = c.stats()["security"]["publish_rebuilds"]
            bad = Subscriber(b.publish, curve=keys.curve("alice"))
            bad.subscribe(topic, prefix=prefix)
            wait_for(lambda: c.stats()["security"]["publish_rebuilds"] > before, 5,
                     what="subscriber cut after subscribing to %r" % topic)
        bad.close()
    assert security(b, keys, "bob")["forbidden_subscriptions"] >= 3
    ok.close()
    bob.close()


def test_consumers_come_back_after_their_connection_is_cut(zb):
    """A key removed from the directory cuts every publish connection; the
    others' consumers send their subscriptions again (libzmq's SUB does not,
    after the broker closed its socket) and catch up from the journal."""
    keys = Keys(zb)
    for k in ("alice", "bob"):
        keys.allow_key(k)
    b = curve_broker(zb, keys)
    consumer = zb.consumer("zb-consumer", b, "-t", "sales-events", "-q", "-n", "30",
                           *keys.flags("alice"))
    with Client(b.control, curve=keys.curve("alice")) as c:
        wait_for(lambda: c.stats()["topics"].get("sales-events", {}).get("subscribers", 0) >= 1,
                 10, what="consumer subscribed")
    with Client(b.ingest, curve=keys.curve("alice")) as c:
        assert c.put([entry("sales-events", detail={"n": i}) for i in range(10)])["failed"] == 0
        keys.remove_key("bob")
        with Client(b.control, curve=keys.curve("alice")) as cc:
            wait_for(lambda: cc.stats()["security"]["publish_rebuilds"] >= 1, 5,
                     what="publish connections cut")
        # published while the consumer is cut off: the journal has them
        assert c.put([entry("sales-events", detail={"n": i}) for i in range(10, 20)])["failed"] == 0
        with Client(b.control, curve=keys.curve("alice")) as cc:
            wait_for(lambda: cc.stats()["topics"].get("sales-events", {})
                     .get("subscribers", 0) >= 1, 15, what="consumer subscribed again")
        assert c.put([entry("sales-events", detail={"n": i}) for i in range(20, 30)])["failed"] == 0
    consumer.wait(30)
    assert consumer.returncode == 0, consumer.stderr()
    summary = consumer.last_json()
    assert summary["received"] == 30, summary


def test_authorization_needs_curve_and_a_valid_table(zb):
    keys = Keys(zb, names=("broker", "alice"))
    keys.allow_key("alice")
    cases = [
        ("authorization\n    a\n        key = \"short\"\n", "not a Z85 public key", True),
        ("authorization\n    a\n        source = x\n", "needs exactly one of key", True),
        ("authorization\n    a\n        cert = alice\n        colour = red\n", "unknown key", True),
        ("authorization\n    a\n        cert = alice\n        source = a*b\n", "may only end", True),
        ("authorization\n    a\n        cert = alice\n    b\n        cert = alice\n",
         "given twice", True),
        ("authorization\n    a\n        cert = nothing\n", "cannot read certificate", True),
        ("authorization\n    default\n        topic = *\n", "needs CURVE", False),
    ]
    for body, what, curve in cases:
        cfg = auth_config(zb, keys, body)
        args = ["--memory", "--config", cfg] + ports()
        if curve:
            args += ["--curve-cert", keys.secret_path("broker"), "--curve-allow", keys.allow]
        p = zb.run("zb-broker", *args)
        assert p.returncode != 0 and what in p.stderr(), (body, p.stderr())


def test_curve_settings_from_the_config_file(zb):
    keys = Keys(zb, names=("broker", "alice"))
    keys.allow_key("alice")
    cfg = auth_config(zb, keys, """\
broker
    curve-cert = %s
    curve-allow = %s
    rate-limit = 1000
    rate-burst = 2000
    max-control-msg = 65536
    max-subscription = 1024
""" % (keys.secret_path("broker"), keys.allow))
    b = zb.broker("--memory", "--config", cfg)
    sec = security(b, keys)
    assert sec["curve"] is True and sec["keys"] == 1 and sec["rate_limit"] == 1000
    # a control frame above max-control-msg drops the connection: no reply
    with Client(b.control, timeout=1.0, curve=keys.curve("alice")) as c:
        assert no_reply(c, b"PING", 1.0, b"\xc4" + b"x" * 70000)
    assert security(b, keys)["keys"] == 1                # still serving
