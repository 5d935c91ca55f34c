"""zbclient - a Python client for the zbridge wire protocol, version 2.

Written from docs/PROTOCOL.md alone (no look at the C sources), so that the system
tests check the document as much as the broker. Needs python3-zmq and python3-msgpack.

    from zbclient import Client, Subscriber
    with Client("tcp://127.0.0.1:5555") as ingest:
        reply = ingest.put([{"source": "s", "detail-type": "sales-events", "detail": {}}])
        print(reply["results"][0]["id"])
    with Subscriber("tcp://127.0.0.1:5556") as sub:
        sub.subscribe("sales-events")            # exact: b"sales-events\\0"
        sub.subscribe("sales-", prefix=True)     # every topic starting with "sales-"
        ev = sub.recv(timeout=2.0)               # Event(topic, seq, topic_seq, event, raw)
                                                 # (one at a time from a message of several)

Reliability (see "Reliability" in PROTOCOL.md):

    with Client("tcp://127.0.0.1:5557") as control:
        events, end = control.replay(frm=1, topics=["sales-events"], credit=1000)
        print(len(events), end.last, end.head)   # events in seq order, the END fields
        print(control.journal()["head"])
    with Subscriber("tcp://127.0.0.1:5556") as sub:
        sub.subscribe_heartbeat()                # b"$heartbeat\0"
        hb = sub.recv_heartbeat(timeout=3.0)     # Heartbeat(seq, oldest, time, topics, ...)
"""

import json
import struct
import time
from collections import namedtuple

import msgpack
import zmq

__all__ = ["Client", "Subscriber", "Reply", "Event", "ZbError", "ZbTimeout",
           "pack", "unpack", "HEADER_SIZE", "EVENT_KEYS", "ReplayEnd", "Heartbeat",
           "HEARTBEAT_TOPIC", "parse_event", "parse_message", "decode_heartbeat",
           "BATCH_HEADER_SIZE"]

HEADER_SIZE = 16
BATCH_HEADER_SIZE = 20      # a published message of several events: + count (uint32)
EVENT_KEYS = ["version", "id", "detail-type", "source", "account", "time", "region",
              "resources", "detail"]

Reply = namedtuple("Reply", "status corr body raw")
# raw: this event's msgpack bytes; frames: the message it came in, as received
Event = namedtuple("Event", "topic seq topic_seq event raw frames")
# END of a replay session: its four fields and the whole body
ReplayEnd = namedtuple("ReplayEnd", "last head oldest count body")
# a decoded $heartbeat: header_seq is frame 2's seq (must equal seq)
Heartbeat = namedtuple("Heartbeat", "seq oldest time topics header_seq header_topic_seq body")

HEARTBEAT_TOPIC = "$heartbeat"
RULE_TOPIC_PREFIX = "$rule/"
HEARTBEAT_KEYS = {"seq", "oldest", "time", "topics"}
END_KEYS = ("last", "head", "oldest", "count")


class ZbError(Exception):
    """The broker answered ERROR; .code and .message are from the reply body."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


class ZbTimeout(Exception):
    """No reply (or no event) within the timeout."""


def set_curve(sock, curve):
    """CURVE client keys on a socket before it connects: curve is (the broker's
    public key, this client's public key, its secret key), Z85 text or bytes;
    None leaves the socket plain (docs/SECURITY.md)."""
    if curve is None:
        return
    server, public, secret = (k.encode() if isinstance(k, str) else k for k in curve)
    sock.curve_serverkey = server
    sock.curve_publickey = public
    sock.curve_secretkey = secret


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


def unpack(data):
    """Exactly one msgpack value filling the whole buffer (raises otherwise)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def parse_event(topic_frame, header, body):
    """Frames 1-3 of a published (or replayed) event -> Event. Checks the layout
    strictly: NUL-terminated topic, header of at least 16 bytes, one msgpack map."""
    if not topic_frame.endswith(b"\x00"):
        raise AssertionError("topic frame %r has no NUL terminator" % topic_frame)
    if len(header) < HEADER_SIZE:
        raise AssertionError("header of %d bytes, expected >= 16" % len(header))
    seq, topic_seq = struct.unpack(">QQ", header[:HEADER_SIZE])
    topic = topic_frame[:-1].decode("utf-8")
    value = unpack(body)
    # a rule's topic may carry an input transformer's output: any value
    if not isinstance(value, dict) and not topic.startswith(RULE_TOPIC_PREFIX):
        raise AssertionError("event body is a %s, expected a map" % type(value).__name__)
    return Event(topic, seq, topic_seq, value, body, [topic_frame, header, body])


def parse_message(topic_frame, header, body):
    """Frames 1-3 of a published message (protocol version 2) -> [Event, ...]: the
    header's count of events (1 for a 16-byte header), each a msgpack map, back to
    back in frame 3, with consecutive seq and topic_seq from the header's. Checks
    the layout strictly (raises AssertionError)."""
    if not topic_frame.endswith(b"\x00"):
        raise AssertionError("topic frame %r has no NUL terminator" % topic_frame)
    if len(header) < HEADER_SIZE or HEADER_SIZE < len(header) < BATCH_HEADER_SIZE:
        raise AssertionError("header of %d bytes, expected 16 or >= 20" % len(header))
    seq, topic_seq = struct.unpack(">QQ", header[:HEADER_SIZE])
    count = 1
    if len(header) >= BATCH_HEADER_SIZE:
        count, = struct.unpack(">I", header[HEADER_SIZE:BATCH_HEADER_SIZE])
        if count == 0:
            raise AssertionError("header with a count of 0")
    topic = topic_frame[:-1].decode("utf-8")
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(body)
    events, start = [], 0
    for i in range(count):
        try:
            value = unpacker.unpack()
        except msgpack.OutOfData:
            raise AssertionError("event frame holds %d events, its header says %d" % (i, count))
        end = unpacker.tell()
        # a rule's topic may carry an input transformer's output: any value
        if not isinstance(value, dict) and not topic.startswith(RULE_TOPIC_PREFIX):
            raise AssertionError("event body is a %s, expected a map" % type(value).__name__)
        events.append(Event(topic, seq + i, topic_seq + i, value, body[start:end],
                            [topic_frame, header, body]))
        start = end
    if start != len(body):
        raise AssertionError("%d bytes after the %d events of the message"
                             % (len(body) - start, count))
    return events


def _is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def decode_heartbeat(ev):
    """An Event on $heartbeat -> Heartbeat, checking it against PROTOCOL.md:
    topic_seq 0, body {"seq", "oldest", "time", "topics"} with uint heads."""
    if ev.topic != HEARTBEAT_TOPIC:
        raise AssertionError("not a heartbeat: topic %r" % ev.topic)
    body = ev.event
    missing = HEARTBEAT_KEYS - set(body)
    if missing:
        raise AssertionError("heartbeat lacks %s: %r" % (sorted(missing), body))
    if not (_is_uint(body["seq"]) and _is_uint(body["oldest"])):
        raise AssertionError("heartbeat seq/oldest not uints: %r" % body)
    if not isinstance(body["time"], str) or not isinstance(body["topics"], dict):
        raise AssertionError("heartbeat time/topics of the wrong type: %r" % body)
    for t, head in body["topics"].items():
        if not isinstance(t, str) or not _is_uint(head):
            raise AssertionError("heartbeat topic head %r: %r" % (t, head))
    return Heartbeat(body["seq"], body["oldest"], body["time"], body["topics"], ev.seq,
                     ev.topic_seq, body)


def _deadline(timeout):
    return time.monotonic() + timeout


def _remaining_ms(deadline):
    return max(0, int((deadline - time.monotonic()) * 1000))


class Client:
    """Requests on an ingest or control ROUTER socket, from a DEALER (default) or a
    REQ socket (req=True: libzmq adds and strips the empty delimiter frame itself).

    Correlation ids are a uint64 request counter, 8 bytes big-endian, unless given."""

    def __init__(self, endpoint, timeout=5.0, req=False, ctx=None, curve=None):
        self.ctx = ctx or zmq.Context.instance()
        self.endpoint = endpoint
        self.timeout = timeout
        self.req = req
        self.sock = self.ctx.socket(zmq.REQ if req else zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        set_curve(self.sock, curve)
        self.sock.connect(endpoint)
        self.counter = 0
        self.pending = {}           # corr -> (command, user tag) of requests in flight

    def close(self):
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def next_corr(self):
        self.counter += 1
        return struct.pack(">Q", self.counter)

    # -- frames ------------------------------------------------------------------

    def send_frames(self, frames):
        """Send arbitrary frames as they are (DEALER: no delimiter added)."""
        self.sock.send_multipart([bytes(f) for f in frames])

    def recv_frames(self, timeout=None):
        """The next message's frames (the REQ socket strips its delimiter itself)."""
        timeout = self.timeout if timeout is None else timeout
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            raise ZbTimeout("no reply from %s within %.1f s" % (self.endpoint, timeout))
        return self.sock.recv_multipart()

    def send_request(self, command, body=b"", corr=None):
        """Send one request without waiting; returns its correlation id."""
        if corr is None:
            corr = self.next_corr()
        if isinstance(command, str):
            command = command.encode()
        if not isinstance(body, (bytes, bytearray)):
            body = pack(body)
        self.sock.send_multipart([command, corr, bytes(body)])
        self.pending[bytes(corr)] = command
        return corr

    def recv_reply(self, timeout=None):
        """The next reply, decoded: Reply(status, corr, body, raw frames)."""
        frames = self.recv_frames(timeout)
        if not self.req and len(frames) == 4 and frames[0] == b"":
            frames = frames[1:]         # a delimiter the broker echoed (none expected)
        if len(frames) != 3:
            raise AssertionError("reply has %d frames, expected 3: %r" % (len(frames), frames))
        status, corr, body = frames
        self.pending.pop(bytes(corr), None)
        return Reply(status.decode("ascii"), corr, unpack(body), frames)

    def request(self, command, body=b"", corr=None, timeout=None):
        """One request and its reply (Reply); checks the echoed correlation id."""
        corr = self.send_request(command, body, corr)
        deadline = _deadline(self.timeout if timeout is None else timeout)
        while True:
            reply = self.recv_reply(max(0.0, deadline - time.monotonic()))
            if reply.corr == corr:
                return reply
            # a late reply to an earlier request; skip it

    def call(self, command, body=b"", timeout=None):
        """request(), raising ZbError on an ERROR reply; returns the body."""
        reply = self.request(command, body, timeout=timeout)
        if reply.status != "OK":
            raise ZbError(reply.body.get("code"), reply.body.get("message"))
        return reply.body

    # -- commands ----------------------------------------------------------------

    def ping(self, timeout=None):
        return self.call("PING", b"", timeout)

    def stats(self, timeout=None):
        return self.call("STATS", b"", timeout)

    def put(self, entries, timeout=None):
        """One PUT of a list of entries; returns {"failed": n, "results": [...]}."""
        return self.call("PUT", entries, timeout)

    def journal(self, timeout=None):
        """JOURNAL (control socket): head, oldest, events, bytes, per-topic heads."""
        return self.call("JOURNAL", b"", timeout)

    # -- rules (control socket) --------------------------------------------------

    def rule_put(self, name, pattern, transform=None, timeout=None):
        """RULE-PUT; pattern and transform as JSON text or as Python values."""
        body = {"name": name,
                "pattern": pattern if isinstance(pattern, str) else json.dumps(pattern)}
        if transform is not None:
            body["transform"] = transform if isinstance(transform, str) else json.dumps(transform)
        return self.call("RULE-PUT", pack(body), timeout)

    def rule_get(self, name, timeout=None):
        return self.call("RULE-GET", pack({"name": name}), timeout)

    def rule_list(self, prefix=None, timeout=None):
        return self.call("RULE-LIST", pack({} if prefix is None else {"prefix": prefix}),
                         timeout)["rules"]

    def rule_delete(self, name, timeout=None):
        return self.call("RULE-DELETE", pack({"name": name}), timeout)

    # -- replay (control socket) -------------------------------------------------

    @staticmethod
    def replay_body(frm=None, to=None, topics=None, prefixes=None, from_time=None,
                    credit=None):
        """The REPLAY body map; keys left out when None."""
        body = {}
        for key, value in (("from", frm), ("to", to), ("topics", topics),
                           ("prefixes", prefixes), ("from-time", from_time),
                           ("credit", credit)):
            if value is not None:
                body[key] = value
        return body

    def send_replay(self, body, corr=None):
        """Open a replay session (no wait); body is a map (or raw bytes, sent as
        they are). Returns the correlation id that names the session."""
        if corr is None:
            corr = self.next_corr()
        raw = bytes(body) if isinstance(body, (bytes, bytearray)) else pack(body)
        self.sock.send_multipart([b"REPLAY", corr, raw])
        return corr

    def send_credit(self, corr, credit):
        self.sock.send_multipart([b"CREDIT", corr, pack({"credit": credit})])

    def send_cancel(self, corr):
        self.sock.send_multipart([b"CANCEL", corr, b""])

    def recv_replay(self, timeout=None):
        """The next message of a replay stream:
            ("EVENT", corr, Event) | ("END", corr, ReplayEnd) | (status, corr, body)
        where status is "ERROR" (or anything else the broker sent, body decoded)."""
        frames = self.recv_frames(timeout)
        status = frames[0].decode("ascii", "replace")
        if status == "EVENT":
            if len(frames) != 5:
                raise AssertionError("EVENT has %d frames, expected 5" % len(frames))
            return status, frames[1], parse_event(frames[2], frames[3], frames[4])
        if len(frames) != 3:
            raise AssertionError("%s has %d frames, expected 3: %r"
                                 % (status, len(frames), frames))
        body = unpack(frames[2])
        if status == "END":
            missing = [k for k in END_KEYS if k not in body]
            if missing or not all(_is_uint(body[k]) for k in END_KEYS):
                raise AssertionError("END body %r: want uints %s" % (body, END_KEYS))
            return status, frames[1], ReplayEnd(body["last"], body["head"], body["oldest"],
                                                body["count"], body)
        return status, frames[1], body

    def replay(self, frm=None, to=None, topics=None, prefixes=None, from_time=None,
               credit=1000, refill=None, timeout=None, limit=10000000, corr=None):
        """Read a range of the journal: REPLAY, then grant `refill` (default credit/2)
        more credit every `refill` events received, up to END. Returns
        (events, ReplayEnd). Checks on the way that the broker never sends more
        events than the credit granted and that seq strictly increases. Raises
        ZbError on an ERROR, ZbTimeout when the stream stalls for `timeout` s."""
        timeout = self.timeout if timeout is None else timeout
        refill = refill or max(1, credit // 2)
        corr = self.send_replay(self.replay_body(frm, to, topics, prefixes, from_time,
                                                 credit), corr)
        granted, since_refill = credit, 0
        events = []
        while True:
            status, c, value = self.recv_replay(timeout)
            if c != corr:
                continue        # another session's (or a late) message
            if status == "END":
                if value.count != len(events):
                    raise AssertionError("END count %d but %d events received"
                                         % (value.count, len(events)))
                return events, value
            if status != "EVENT":
                raise ZbError(value.get("code"), value.get("message"))
            events.append(value)
            if len(events) > granted:
                raise AssertionError("broker sent event %d with only %d credit granted"
                                     % (len(events), granted))
            if len(events) > 1 and value.seq <= events[-2].seq:
                raise AssertionError("replay out of order: seq %d after %d"
                                     % (value.seq, events[-2].seq))
            if len(events) > limit:
                self.send_cancel(corr)
                raise AssertionError("replay longer than %d events" % limit)
            since_refill += 1
            if since_refill >= refill:
                self.send_credit(corr, since_refill)
                granted += since_refill
                since_refill = 0

    def put_pipelined(self, batches, window=16, timeout=None):
        """PUT every batch with up to `window` requests in flight (DEALER only).
        Replies are matched by correlation id; returns the reply bodies in batch order.
        Raises ZbError for an ERROR reply and ZbTimeout when the broker goes quiet."""
        assert not self.req, "pipelining needs a DEALER"
        timeout = self.timeout if timeout is None else timeout
        index_of = {}
        results = [None] * len(batches)
        sent = done = 0
        while done < len(batches):
            while sent < len(batches) and sent - done < window:
                corr = self.send_request("PUT", batches[sent])
                index_of[bytes(corr)] = sent
                sent += 1
            reply = self.recv_reply(timeout)
            idx = index_of.pop(bytes(reply.corr), None)
            if idx is None:
                continue
            if reply.status != "OK":
                raise ZbError(reply.body.get("code"), reply.body.get("message"))
            results[idx] = reply.body
            done += 1
        return results


class Subscriber:
    """A SUB socket on the broker's publish endpoint."""

    def __init__(self, endpoint, ctx=None, rcvhwm=None, curve=None):
        self.ctx = ctx or zmq.Context.instance()
        self.endpoint = endpoint
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        if rcvhwm is not None:
            self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        set_curve(self.sock, curve)
        self.sock.connect(endpoint)
        self.last_topic_seq = {}    # topic -> last topic_seq seen
        self.missed = 0
        # "$" topics are the bus's own: ignored (as PROTOCOL.md asks of a client that
        # subscribes to everything) unless subscribe_heartbeat() asked for them, or
        # subscribe_rule() for that rule's topic
        self.reserved = False
        self.rule_topics = set()
        self.pending = []           # the rest of the last message's events, in order

    def close(self):
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def subscribe(self, topic, prefix=False):
        """Exact (detail-type + NUL) unless prefix=True (the bytes alone)."""
        data = topic.encode() if isinstance(topic, str) else bytes(topic)
        if not prefix:
            data += b"\x00"
        self.sock.setsockopt(zmq.SUBSCRIBE, data)

    def subscribe_rule(self, name):
        """Subscribe to what broker rule `name` delivers (topic "$rule/NAME")."""
        self.rule_topics.add(RULE_TOPIC_PREFIX + name)
        self.subscribe(RULE_TOPIC_PREFIX + name)

    def subscribe_heartbeat(self):
        """Subscribe to $heartbeat; from then on recv() returns heartbeats too (as
        Events on topic "$heartbeat"; decode them with decode_heartbeat())."""
        self.reserved = True
        self.sock.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_TOPIC.encode() + b"\x00")

    def recv_heartbeat(self, timeout=3.0):
        """The next heartbeat, decoded (Heartbeat); events before it are kept in
        self.skipped. Raises ZbTimeout when none comes within timeout."""
        deadline = _deadline(timeout)
        self.skipped = getattr(self, "skipped", [])
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ZbTimeout("no heartbeat from %s within %.1f s" % (self.endpoint, timeout))
            ev = self.recv(left)
            if ev.topic == HEARTBEAT_TOPIC:
                return decode_heartbeat(ev)
            self.skipped.append(ev)

    def unsubscribe(self, topic, prefix=False):
        data = topic.encode() if isinstance(topic, str) else bytes(topic)
        if not prefix:
            data += b"\x00"
        self.sock.setsockopt(zmq.UNSUBSCRIBE, data)

    def recv(self, timeout=2.0):
        """The next event, or raise ZbTimeout. Checks the frame layout strictly; the
        events of a message of several are returned one per call, in order.
        Reserved ("$") topics are skipped unless subscribe_heartbeat() was called."""
        deadline = _deadline(timeout)
        while not self.pending:
            if not self.sock.poll(_remaining_ms(deadline), zmq.POLLIN):
                raise ZbTimeout("no event from %s within %.1f s" % (self.endpoint, timeout))
            frames = self.sock.recv_multipart()
            if len(frames) != 3:
                raise AssertionError("event has %d frames, expected 3" % len(frames))
            if frames[0].startswith(b"$") and frames[0][:-1].decode() not in self.rule_topics:
                if not self.reserved:
                    continue
                return parse_event(*frames)
            self.pending = parse_message(*frames)
        ev = self.pending.pop(0)
        last = self.last_topic_seq.get(ev.topic)
        if last is not None and ev.topic_seq > last + 1:
            self.missed += ev.topic_seq - last - 1
        self.last_topic_seq[ev.topic] = ev.topic_seq
        return ev

    def recv_all(self, count, timeout=5.0):
        """Exactly `count` events, each within `timeout` of the previous one."""
        out = []
        for _ in range(count):
            out.append(self.recv(timeout))
        return out

    def drain(self, quiet=0.3, limit=100000):
        """Every event that arrives until none came for `quiet` seconds (bounded)."""
        out = []
        while len(out) < limit:
            try:
                out.append(self.recv(quiet))
            except ZbTimeout:
                break
        return out
