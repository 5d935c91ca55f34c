"""zbclient - a Python client for the zbridge wire protocol, version 1.

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
"""

import struct
import time
from collections import namedtuple

import msgpack
import zmq

__all__ = ["Client", "Subscriber", "Reply", "Event", "ZbError", "ZbTimeout",
           "pack", "unpack", "HEADER_SIZE", "EVENT_KEYS"]

HEADER_SIZE = 16
EVENT_KEYS = ["version", "id", "detail-type", "source", "account", "time", "region",
              "resources", "detail"]

Reply = namedtuple("Reply", "status corr body raw")
Event = namedtuple("Event", "topic seq topic_seq event raw frames")


class ZbError(Exception):
    """The broker answered ERROR; .code and .message are from the reply body."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


class ZbTimeout(Exception):
    """No reply (or no event) within the timeout."""


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


def unpack(data):
    """Exactly one msgpack value filling the whole buffer (raises otherwise)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def _deadline(timeout):
    return time.monotonic() + timeout


def _remaining_ms(deadline):
    return max(0, int((deadline - time.monotonic()) * 1000))


class Client:
    """Requests on an ingest or control ROUTER socket, from a DEALER (default) or a
    REQ socket (req=True: libzmq adds and strips the empty delimiter frame itself).

    Correlation ids are a uint64 request counter, 8 bytes big-endian, unless given."""

    def __init__(self, endpoint, timeout=5.0, req=False, ctx=None):
        self.ctx = ctx or zmq.Context.instance()
        self.endpoint = endpoint
        self.timeout = timeout
        self.req = req
        self.sock = self.ctx.socket(zmq.REQ if req else zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
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

    def __init__(self, endpoint, ctx=None, rcvhwm=None):
        self.ctx = ctx or zmq.Context.instance()
        self.endpoint = endpoint
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        if rcvhwm is not None:
            self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self.sock.connect(endpoint)
        self.last_topic_seq = {}    # topic -> last topic_seq seen
        self.missed = 0

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

    def unsubscribe(self, topic, prefix=False):
        data = topic.encode() if isinstance(topic, str) else bytes(topic)
        if not prefix:
            data += b"\x00"
        self.sock.setsockopt(zmq.UNSUBSCRIBE, data)

    def recv(self, timeout=2.0):
        """The next event, or raise ZbTimeout. Checks the frame layout strictly."""
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            raise ZbTimeout("no event from %s within %.1f s" % (self.endpoint, timeout))
        frames = self.sock.recv_multipart()
        if len(frames) != 3:
            raise AssertionError("event has %d frames, expected 3" % len(frames))
        topic_frame, header, body = frames
        if not topic_frame.endswith(b"\x00"):
            raise AssertionError("topic frame %r has no NUL terminator" % topic_frame)
        if len(header) < HEADER_SIZE:
            raise AssertionError("header of %d bytes, expected >= 16" % len(header))
        seq, topic_seq = struct.unpack(">QQ", header[:HEADER_SIZE])
        topic = topic_frame[:-1].decode("utf-8")
        last = self.last_topic_seq.get(topic)
        if last is not None and topic_seq > last + 1:
            self.missed += topic_seq - last - 1
        self.last_topic_seq[topic] = topic_seq
        return Event(topic, seq, topic_seq, unpack(body), body, frames)

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
