/*  subscriber.c - the consumer side of the publish socket.

    A message from the broker's publish socket has three frames (PROTOCOL.md,
    protocol version 2):
        [detail-type + NUL] [seq, topic_seq: 2 x uint64 big-endian (, count: uint32)]
        [events: count msgpack maps back to back]
    The events of one message have consecutive seq and topic_seq, starting
    with the header's. zb_subscriber_recv() reads one message with zmq_msg_t
    frames that it keeps while it hands out the message's events one per call,
    so the delivery's topic, raw bytes and the unpacked event (whose strings
    point into the event frame) need no copy. The unpacked objects live in one
    msgpack zone that is cleared, not freed, between events: in the steady
    state receiving an event allocates nothing.

    Gap detection: the last topic_seq seen per topic is kept in a hash (one
    small allocation per distinct topic, ever). The first event of a topic sets
    the baseline: events published before we subscribed are not "missed", they
    were never ours. A topic_seq that is not greater than the last one means the
    broker restarted (its sequences restart at 1): the baseline is reset and no
    gap is reported. */

#include <czmq.h>
#include <errno.h>
#include <string.h>

#include "subscriber.h"
#include "mpread.h"
#include "curve.h"
#include "wire.h"

//  Events may arrive in bursts far above libzmq's default high-water mark of
//  1000 messages; a consumer that is briefly slower must not drop them.
#define SUBSCRIBER_RCVHWM   100000

//  Zone chunk size: an event of a few dozen objects fits in the first chunk.
#define SUBSCRIBER_ZONE_CHUNK   (16 * 1024)

//  Longest topic frame we subscribe to: detail-type bytes plus the NUL.
#define SUBSCRIBER_TOPIC_MAX    (ZB_MAX_DETAIL_TYPE * 4 + 2)

//  A SUB socket of libzmq 4.3 reconnects by itself, but does not always send
//  its subscriptions again to a publisher that closed its socket (libzmq issue
//  4057): a broker restart, or the broker cutting every subscriber because a
//  key was removed (docs/SECURITY.md). A subscriber of heartbeats that hears
//  nothing for this long sends its subscriptions again (unsubscribe, then
//  subscribe, so that a connection that had them keeps each once).
#define SUBSCRIBER_SILENCE_MS   3000

struct zb_subscriber_t {
    zlistx_t *subscriptions;    //  zframe_t: every subscription, to send again
    int64_t heard;              //  zclock_mono of the last message (or resend)
    zsock_t *sock;
    void *handle;               //  raw libzmq socket of sock
    zhashx_t *last_seq;         //  topic (C string) -> uint64_t * last topic_seq
    uint64_t missed;            //  sum of all gaps seen
    bool heartbeats;            //  return "$heartbeat" messages
    zhashx_t *reserved;         //  other '$' topics subscribed exactly ("$rule/NAME")
    zmq_msg_t frame [3];        //  frames of the current message
    zmq_msg_t extra;            //  frames beyond the third, discarded
    msgpack_zone zone;          //  objects of the current event
    msgpack_object event;       //  the current event
    bool lazy;                  //  events checked, not unpacked (d->event NULL)
    uint64_t *lastseq;          //  the current message's topic's, once looked up
    //  The message being handed out: events [index, count) are still to come
    uint32_t count;
    uint32_t index;
    size_t offset;              //  of the next event in frame [2]
    uint64_t seq;               //  the header's (the first event's)
    uint64_t topic_seq;
    uint32_t said;              //  > 0: the frame ended after `count` events,
                                //  its header said this many (reported next)
};

static void
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

zb_subscriber_t *
zb_subscriber_new (const char *endpoint, char *err, size_t errlen)
{
    assert (endpoint);
    zb_subscriber_t *self = (zb_subscriber_t *) calloc (1, sizeof (zb_subscriber_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->sock = zsock_new (ZMQ_SUB);
    if (!self->sock) {
        snprintf (err, errlen, "cannot create a SUB socket: %s", zmq_strerror (zmq_errno ()));
        free (self);
        return NULL;
    }
    zsock_set_rcvhwm (self->sock, SUBSCRIBER_RCVHWM);
    zb_curve_client_apply (self->sock);     //  CURVE keys, maximum frame size
    if (zsock_connect (self->sock, "%s", endpoint) == -1) {
        snprintf (err, errlen, "cannot connect to '%s': %s", endpoint,
                  zmq_strerror (zmq_errno ()));
        zsock_destroy (&self->sock);
        free (self);
        return NULL;
    }
    self->handle = zsock_resolve (self->sock);
    self->subscriptions = zlistx_new ();
    assert (self->subscriptions);
    zlistx_set_destructor (self->subscriptions, (zlistx_destructor_fn *) zframe_destroy);
    self->heard = zclock_mono ();
    self->last_seq = zhashx_new ();
    assert (self->last_seq);
    zhashx_set_destructor (self->last_seq, s_free_item);
    self->reserved = zhashx_new ();
    assert (self->reserved);
    for (int i = 0; i < 3; i++)
        zmq_msg_init (&self->frame [i]);
    zmq_msg_init (&self->extra);
    if (!msgpack_zone_init (&self->zone, SUBSCRIBER_ZONE_CHUNK)) {
        snprintf (err, errlen, "out of memory");
        zb_subscriber_destroy (&self);
        return NULL;
    }
    return self;
}

void
zb_subscriber_destroy (zb_subscriber_t **self_p)
{
    assert (self_p);
    zb_subscriber_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < 3; i++)
        zmq_msg_close (&self->frame [i]);
    zmq_msg_close (&self->extra);
    msgpack_zone_destroy (&self->zone);
    zhashx_destroy (&self->last_seq);
    zhashx_destroy (&self->reserved);
    zlistx_destroy (&self->subscriptions);
    zsock_destroy (&self->sock);
    free (self);
    *self_p = NULL;
}

//  Subscribe, and remember the subscription to send it again after silence.
static int
s_subscribe (zb_subscriber_t *self, const void *frame, size_t len)
{
    int rc = zmq_setsockopt (self->handle, ZMQ_SUBSCRIBE, frame, len);
    if (rc == 0)
        zlistx_add_end (self->subscriptions, zframe_new (frame, len));
    return rc;
}

//  Nothing heard for SUBSCRIBER_SILENCE_MS although heartbeats should come:
//  send every subscription again (see SUBSCRIBER_SILENCE_MS).
static void
s_check_silence (zb_subscriber_t *self)
{
    if (!self->heartbeats || zclock_mono () - self->heard < SUBSCRIBER_SILENCE_MS)
        return;
    for (zframe_t *f = (zframe_t *) zlistx_first (self->subscriptions); f;
         f = (zframe_t *) zlistx_next (self->subscriptions)) {
        zmq_setsockopt (self->handle, ZMQ_UNSUBSCRIBE, zframe_data (f), zframe_size (f));
        zmq_setsockopt (self->handle, ZMQ_SUBSCRIBE, zframe_data (f), zframe_size (f));
    }
    self->heard = zclock_mono ();
}

int
zb_subscriber_subscribe (zb_subscriber_t *self, const char *detail_type)
{
    assert (self);
    assert (detail_type);
    char frame [SUBSCRIBER_TOPIC_MAX];
    size_t len = zb_topic_encode (detail_type, strlen (detail_type), frame, sizeof frame);
    if (len == 0)
        return -1;              //  longer than any detail-type can be
    //  One of the bus's own topics asked for by name (a rule's): its events
    //  are delivered like any other
    if (detail_type [0] == ZB_RESERVED_PREFIX && strcmp (detail_type, ZB_HEARTBEAT_TOPIC) != 0)
        zhashx_insert (self->reserved, detail_type, (void *) 1);
    return s_subscribe (self, frame, len);
}

int
zb_subscriber_subscribe_prefix (zb_subscriber_t *self, const char *prefix)
{
    assert (self);
    assert (prefix);
    return s_subscribe (self, prefix, strlen (prefix));
}

int
zb_subscriber_subscribe_heartbeats (zb_subscriber_t *self)
{
    assert (self);
    int rc = zb_subscriber_subscribe (self, ZB_HEARTBEAT_TOPIC);
    if (rc == 0)
        self->heartbeats = true;
    return rc;
}

//  Receive the rest of a multipart message whose first frame is in frame [0].
//  Returns the number of frames in the whole message.
static size_t
s_recv_rest (zb_subscriber_t *self)
{
    size_t nframes = 1;
    zmq_msg_t *last = &self->frame [0];
    while (zmq_msg_more (last)) {
        zmq_msg_t *next = nframes < 3? &self->frame [nframes]: &self->extra;
        //  libzmq delivers the parts of a message atomically: once the
        //  first is here, the others are too and this does not block.
        if (zmq_msg_recv (next, self->handle, 0) == -1)
            break;
        nframes++;
        last = next;
    }
    return nframes;
}

static const char *
s_unpack_error (msgpack_unpack_return rc)
{
    return rc == MSGPACK_UNPACK_EXTRA_BYTES? "trailing bytes after the msgpack value":
           rc == MSGPACK_UNPACK_CONTINUE? "truncated or empty msgpack":
           rc == MSGPACK_UNPACK_NOMEM_ERROR? "out of memory decoding msgpack":
                                             "invalid msgpack";
}

//  A heartbeat message (3 frames, topic "$heartbeat\0"): 0, or -1 with err.
static int
s_decode_heartbeat (zb_subscriber_t *self, zb_delivery_t *d, char *err, size_t errlen)
{
    uint64_t seq, topic_seq;
    size_t header_len = zmq_msg_size (&self->frame [1]);
    if (zb_header_decode (zmq_msg_data (&self->frame [1]), header_len, &seq, &topic_seq) != 0) {
        snprintf (err, errlen, "header frame on " ZB_HEARTBEAT_TOPIC " is %zu bytes, expected %d",
                  header_len, ZB_HEADER_SIZE);
        return -1;
    }
    const char *data = (const char *) zmq_msg_data (&self->frame [2]);
    size_t size = zmq_msg_size (&self->frame [2]);
    size_t offset = 0;
    msgpack_zone_clear (&self->zone);
    msgpack_unpack_return rc = msgpack_unpack (data, size, &offset, &self->zone, &self->event);
    if (rc != MSGPACK_UNPACK_SUCCESS || self->event.type != MSGPACK_OBJECT_MAP) {
        snprintf (err, errlen, "heartbeat (seq %" PRIu64 ", %zu bytes): %s", seq, size,
                  rc != MSGPACK_UNPACK_SUCCESS? s_unpack_error (rc): "not a msgpack map");
        return -1;
    }
    d->topic = ZB_STR (ZB_HEARTBEAT_TOPIC);
    d->seq = seq;
    d->topic_seq = topic_seq;
    d->missed = 0;
    d->event = &self->event;
    d->raw.ptr = data;
    d->raw.len = size;
    return 0;
}

//  Hand out the next event of the current message into d. 0, or -1 with err
//  (the rest of the message is dropped then).
static int
s_next (zb_subscriber_t *self, zb_delivery_t *d, char *err, size_t errlen)
{
    const char *topic = (const char *) zmq_msg_data (&self->frame [0]);
    size_t topic_len = zmq_msg_size (&self->frame [0]);
    const char *data = (const char *) zmq_msg_data (&self->frame [2]);
    size_t size = zmq_msg_size (&self->frame [2]);
    uint32_t i = self->index;
    uint64_t seq = self->seq + i;
    uint64_t topic_seq = self->topic_seq + i;
    bool last = i + 1 == self->count;
    size_t start = self->offset;
    self->index = self->count;          //  until this event proves good
    msgpack_zone_clear (&self->zone);
    msgpack_unpack_return rc = MSGPACK_UNPACK_CONTINUE;
    const uint8_t *value = (const uint8_t *) data + start;
    if (self->lazy && start < size && mpr_value (&value, (const uint8_t *) data + size)) {
        //  What msgpack_unpack would read, without its objects
        self->offset = (size_t) ((const char *) value - data);
        rc = self->offset < size ? MSGPACK_UNPACK_EXTRA_BYTES : MSGPACK_UNPACK_SUCCESS;
    }
    else
    if (start < size)               //  (lazy: fails too, and says how)
        rc = msgpack_unpack (data, size, &self->offset, &self->zone, &self->event);
    //  Every event but the last has more after it; the last fills the frame
    if (rc == MSGPACK_UNPACK_EXTRA_BYTES && !last)
        rc = MSGPACK_UNPACK_SUCCESS;
    else
    if (rc == MSGPACK_UNPACK_SUCCESS && !last) {
        //  This one is good, but the frame has no more: said on the next call
        self->said = self->count;
        self->count = i + 1;
    }
    if (rc != MSGPACK_UNPACK_SUCCESS) {
        snprintf (err, errlen, "event frame on %s (seq %" PRIu64 ", %zu bytes): %s",
                  topic, seq, size - start, s_unpack_error (rc));
        return -1;
    }
    //  A rule's topic ("$rule/NAME") may carry a transformer's output: any value
    uint8_t first = (uint8_t) data [start];
    bool map = self->lazy ? (first & 0xf0) == 0x80 || first == 0xde || first == 0xdf
                          : self->event.type == MSGPACK_OBJECT_MAP;
    if (!map && strncmp (topic, ZB_RULE_TOPIC_PREFIX, sizeof ZB_RULE_TOPIC_PREFIX - 1) != 0) {
        snprintf (err, errlen, "event frame on %s (seq %" PRIu64 ") is not a msgpack map",
                  topic, seq);
        return -1;
    }
    self->index = i + 1;
    //  A valid event: account for it in the topic's sequence (the topic is
    //  the message's: looked up once for all its events)
    uint64_t missed = 0;
    uint64_t *lastseq = i > 0 && self->lastseq
                      ? self->lastseq : (uint64_t *) zhashx_lookup (self->last_seq, topic);
    if (!lastseq) {
        lastseq = (uint64_t *) malloc (sizeof (uint64_t));
        if (!lastseq) {
            self->index = self->count;
            snprintf (err, errlen, "out of memory");
            return -1;
        }
        zhashx_insert (self->last_seq, topic, lastseq);
    }
    else
    if (topic_seq > *lastseq + 1)
        missed = topic_seq - *lastseq - 1;
    //  else topic_seq <= *lastseq: the broker restarted; this is the new baseline
    *lastseq = topic_seq;
    self->lastseq = lastseq;
    self->missed += missed;

    d->topic.ptr = topic;
    d->topic.len = topic_len - 1;
    d->seq = seq;
    d->topic_seq = topic_seq;
    d->missed = missed;
    d->event = self->lazy ? NULL : &self->event;
    d->raw.ptr = data + start;
    d->raw.len = self->offset - start;
    return 0;
}

//  Check the frames of the message just received, then hand out its first
//  event into d. 0, or -1 with err.
static int
s_decode (zb_subscriber_t *self, zb_delivery_t *d, char *err, size_t errlen)
{
    self->count = self->index = self->said = 0;
    const char *topic = (const char *) zmq_msg_data (&self->frame [0]);
    size_t topic_len = zmq_msg_size (&self->frame [0]);
    if (topic_len < 2 || topic [topic_len - 1] != '\0') {
        snprintf (err, errlen, "topic frame (%zu bytes) is not a detail-type "
                  "followed by a NUL byte", topic_len);
        return -1;
    }
    if (memchr (topic, '\0', topic_len - 1)) {
        snprintf (err, errlen, "topic frame holds a NUL byte before its end");
        return -1;
    }
    size_t header_len = zmq_msg_size (&self->frame [1]);
    if (zb_header_decode_batch (zmq_msg_data (&self->frame [1]), header_len,
                                &self->seq, &self->topic_seq, &self->count) != 0) {
        snprintf (err, errlen, "header frame on %s is %zu bytes, expected %d, or %d or more "
                  "with a count of at least 1", topic, header_len, ZB_HEADER_SIZE,
                  ZB_BATCH_HEADER_SIZE);
        self->count = 0;
        return -1;
    }
    self->offset = 0;
    return s_next (self, d, err, errlen);
}

int
zb_subscriber_recv (zb_subscriber_t *self, zb_delivery_t *d, int timeout_ms,
                    char *err, size_t errlen)
{
    assert (self);
    assert (d);
    //  The rest of a message of several events first
    if (self->index < self->count)
        return s_next (self, d, err, errlen) == 0? 1: -1;
    if (self->said) {
        snprintf (err, errlen, "event frame on %s (seq %" PRIu64 ") holds %" PRIu32
                  " events, its header says %" PRIu32,
                  (const char *) zmq_msg_data (&self->frame [0]), self->seq, self->count,
                  self->said);
        self->said = 0;
        return -1;
    }
    int64_t deadline = timeout_ms >= 0? zclock_mono () + timeout_ms: -1;
    while (true) {
        //  Try first: while events stream in, this costs no poll call
        if (zmq_msg_recv (&self->frame [0], self->handle, ZMQ_DONTWAIT) == -1) {
            if (zmq_errno () != EAGAIN)
                return 0;       //  EINTR (a signal) or ETERM (shutting down)
            s_check_silence (self);
            long wait = -1;
            if (deadline >= 0) {
                wait = (long) (deadline - zclock_mono ());
                if (wait <= 0)
                    return 0;
            }
            zmq_pollitem_t item = { self->handle, 0, ZMQ_POLLIN, 0 };
            int rc = zmq_poll (&item, 1, wait);
            if (rc <= 0)
                return 0;       //  timeout, or interrupted
            continue;
        }
        size_t nframes = s_recv_rest (self);
        self->heard = zclock_mono ();
        const char *topic = (const char *) zmq_msg_data (&self->frame [0]);
        size_t topic_len = zmq_msg_size (&self->frame [0]);
        if (topic_len > 1 && topic [0] == ZB_RESERVED_PREFIX && topic [topic_len - 1] == 0
        &&  zhashx_lookup (self->reserved, topic)) {
            if (nframes != 3) {
                snprintf (err, errlen, "message with %zu frame%s, expected 3 "
                          "(topic, header, event)", nframes, nframes == 1? "": "s");
                return -1;
            }
            return s_decode (self, d, err, errlen) == 0? 1: -1;
        }
        if (topic_len > 0 && topic [0] == ZB_RESERVED_PREFIX) {
            if (!self->heartbeats || topic_len != sizeof ZB_HEARTBEAT_TOPIC
            ||  memcmp (topic, ZB_HEARTBEAT_TOPIC, sizeof ZB_HEARTBEAT_TOPIC) != 0)
                continue;       //  the bus's own topics are not events
            if (nframes != 3) {
                snprintf (err, errlen, "heartbeat with %zu frame%s, expected 3",
                          nframes, nframes == 1? "": "s");
                return -1;
            }
            return s_decode_heartbeat (self, d, err, errlen) == 0? 2: -1;
        }
        if (nframes != 3) {
            snprintf (err, errlen, "message with %zu frame%s, expected 3 "
                      "(topic, header, event)", nframes, nframes == 1? "": "s");
            return -1;
        }
        return s_decode (self, d, err, errlen) == 0? 1: -1;
    }
}

uint64_t
zb_subscriber_missed (zb_subscriber_t *self)
{
    assert (self);
    return self->missed;
}

void
zb_subscriber_set_lazy (zb_subscriber_t *self, bool lazy)
{
    assert (self);
    self->lazy = lazy;
}

void *
zb_subscriber_handle (zb_subscriber_t *self)
{
    assert (self);
    return self->handle;
}
