/*  replay_client.c - the client side of REPLAY: one session at a time, credit windows.

    Stream from the broker (after an optional empty delimiter):
        ["EVENT"] [corr] [topic + NUL] [header] [event]
        ["END"]   [corr] [{"last", "head", "oldest", "count"}]
        ["ERROR"] [corr] [{"code", "message"}]
    The frames of the last message are kept until the next receive, so an
    EVENT's topic, raw bytes and unpacked map need no copy. */

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "event.h"
#include "replay_client.h"
#include "mpread.h"
#include "curve.h"
#include "wire.h"

#define REPLAY_FRAMES       5           //  frames of an EVENT
#define REPLAY_ZONE_CHUNK   (16 * 1024)
#define REPLAY_CORR_SIZE    8

struct zb_replay_client_t {
    zsock_t *sock;
    void *handle;
    char *endpoint;
    uint32_t credit;                //  the window
    uint64_t sessions;              //  correlation counter
    bool active;
    uint8_t corr [REPLAY_CORR_SIZE];
    uint64_t since_grant;           //  events received since the last CREDIT
    int64_t heard_ms;               //  session opened or last message (monotonic)
    zmq_msg_t frame [REPLAY_FRAMES];
    size_t nframes;
    msgpack_zone zone;
    bool lazy;                      //  events checked, not unpacked (event NULL)
    msgpack_object event;
    msgpack_sbuffer body;           //  request bodies, reused
};

zb_replay_client_t *
zb_replay_client_new (const char *endpoint, uint32_t credit, char *err, size_t errlen)
{
    assert (endpoint);
    assert (credit >= 1 && credit <= ZB_MAX_CREDIT);
    zb_replay_client_t *self = (zb_replay_client_t *) calloc (1, sizeof (zb_replay_client_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->sock = zsock_new (ZMQ_DEALER);
    if (!self->sock) {
        snprintf (err, errlen, "cannot create a DEALER socket: %s", zmq_strerror (zmq_errno ()));
        free (self);
        return NULL;
    }
    //  Never block on send: a full queue is a failure the caller retries
    zsock_set_sndtimeo (self->sock, 0);
    zsock_set_linger (self->sock, 0);
    //  A replay window arrives faster than we print it
    zsock_set_rcvhwm (self->sock, ZB_MAX_CREDIT + 1000);
    zb_curve_client_apply (self->sock);     //  CURVE keys, maximum frame size
    if (zsock_connect (self->sock, "%s", endpoint) == -1) {
        snprintf (err, errlen, "cannot connect to '%s': %s", endpoint,
                  zmq_strerror (zmq_errno ()));
        zsock_destroy (&self->sock);
        free (self);
        return NULL;
    }
    self->handle = zsock_resolve (self->sock);
    self->endpoint = strdup (endpoint);
    assert (self->endpoint);
    self->credit = credit;
    for (int i = 0; i < REPLAY_FRAMES; i++)
        zmq_msg_init (&self->frame [i]);
    if (!msgpack_zone_init (&self->zone, REPLAY_ZONE_CHUNK)) {
        snprintf (err, errlen, "out of memory");
        zsock_destroy (&self->sock);
        free (self->endpoint);
        free (self);
        return NULL;
    }
    msgpack_sbuffer_init (&self->body);
    return self;
}

void
zb_replay_client_destroy (zb_replay_client_t **self_p)
{
    assert (self_p);
    zb_replay_client_t *self = *self_p;
    if (!self)
        return;
    if (self->active) {
        //  Tell the broker, with a moment for the CANCEL to leave
        zb_replay_client_cancel (self);
        zsock_set_linger (self->sock, 100);
    }
    for (int i = 0; i < REPLAY_FRAMES; i++)
        zmq_msg_close (&self->frame [i]);
    msgpack_zone_destroy (&self->zone);
    msgpack_sbuffer_destroy (&self->body);
    zsock_destroy (&self->sock);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

void
zb_replay_client_set_lazy (zb_replay_client_t *self, bool lazy)
{
    assert (self);
    self->lazy = lazy;
}

void *
zb_replay_client_handle (zb_replay_client_t *self)
{
    assert (self);
    return self->handle;
}

bool
zb_replay_client_active (zb_replay_client_t *self)
{
    assert (self);
    return self->active;
}

int64_t
zb_replay_client_idle_ms (zb_replay_client_t *self)
{
    assert (self);
    return zclock_mono () - self->heard_ms;
}

static int
s_send (zb_replay_client_t *self, const char *command, const void *body, size_t size)
{
    return zb_wire_send_request (self->handle, command, self->corr, sizeof self->corr,
                                 body, size);
}

void
zb_replay_client_cancel (zb_replay_client_t *self)
{
    assert (self);
    if (!self->active)
        return;
    self->active = false;
    //  Best effort: when it cannot be queued the broker ends the session by
    //  itself (no credit for 60 s), and its messages are ignored meanwhile
    s_send (self, ZB_CMD_CANCEL, NULL, 0);
}

int
zb_replay_client_open (zb_replay_client_t *self, const zb_replay_client_request_t *request,
                char *err, size_t errlen)
{
    assert (self);
    assert (request);
    zb_replay_client_cancel (self);

    bool everything = false;
    for (size_t i = 0; i < request->nprefixes; i++)
        if (request->prefixes [i][0] == '\0')
            everything = true;
    msgpack_sbuffer_clear (&self->body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &self->body, msgpack_sbuffer_write);
    size_t keys = 2 + (request->to? 1: 0)
                + (!everything && request->ntopics? 1: 0)
                + (!everything && request->nprefixes? 1: 0);
    msgpack_pack_map (&pk, keys);
    if (request->from_time) {
        zb_pack_cstr (&pk, "from-time");
        zb_pack_cstr (&pk, request->from_time);
    }
    else {
        zb_pack_cstr (&pk, "from");
        msgpack_pack_uint64 (&pk, request->from);
    }
    if (request->to) {
        zb_pack_cstr (&pk, "to");
        msgpack_pack_uint64 (&pk, request->to);
    }
    //  A "" prefix is every topic: the protocol's "no topics, no prefixes"
    if (!everything && request->ntopics) {
        zb_pack_cstr (&pk, "topics");
        msgpack_pack_array (&pk, request->ntopics);
        for (size_t i = 0; i < request->ntopics; i++)
            zb_pack_cstr (&pk, request->topics [i]);
    }
    if (!everything && request->nprefixes) {
        zb_pack_cstr (&pk, "prefixes");
        msgpack_pack_array (&pk, request->nprefixes);
        for (size_t i = 0; i < request->nprefixes; i++)
            zb_pack_cstr (&pk, request->prefixes [i]);
    }
    zb_pack_cstr (&pk, "credit");
    msgpack_pack_uint32 (&pk, self->credit);

    uint64_t id = ++self->sessions;
    for (int i = REPLAY_CORR_SIZE - 1; i >= 0; i--, id >>= 8)
        self->corr [i] = (uint8_t) id;
    if (s_send (self, ZB_CMD_REPLAY, self->body.data, self->body.size) != 0) {
        snprintf (err, errlen, "cannot send REPLAY to %s: %s", self->endpoint,
                  zmq_strerror (zmq_errno ()));
        return -1;
    }
    self->active = true;
    self->since_grant = 0;
    self->heard_ms = zclock_mono ();
    return 0;
}

//  Grant more credit once half the window has been used
static void
s_grant (zb_replay_client_t *self)
{
    uint32_t refill = self->credit / 2? self->credit / 2: 1;
    if (++self->since_grant < refill)
        return;
    msgpack_sbuffer_clear (&self->body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &self->body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    zb_pack_cstr (&pk, "credit");
    msgpack_pack_uint64 (&pk, self->since_grant);
    if (s_send (self, ZB_CMD_CREDIT, self->body.data, self->body.size) == 0)
        self->since_grant = 0;
    //  else: tried again with the next event; the stall timer covers the rest
}

static bool
s_status_is (zmq_msg_t *frame, const char *status)
{
    size_t len = strlen (status);
    return zmq_msg_size (frame) == len && memcmp (zmq_msg_data (frame), status, len) == 0;
}

//  Read one whole message into self->frame (a leading empty delimiter is
//  skipped, frames beyond REPLAY_FRAMES are counted and dropped). false when
//  nothing is waiting.
static bool
s_recv_message (zb_replay_client_t *self)
{
    for (int i = 0; i < REPLAY_FRAMES; i++) {
        zmq_msg_close (&self->frame [i]);
        zmq_msg_init (&self->frame [i]);
    }
    self->nframes = 0;
    zmq_msg_t part;
    zmq_msg_init (&part);
    if (zmq_msg_recv (&part, self->handle, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&part);
        return false;
    }
    bool first = true;
    while (true) {
        bool more = zmq_msg_more (&part) != 0;
        if (!(first && more && zmq_msg_size (&part) == 0)) {
            if (self->nframes < REPLAY_FRAMES)
                zmq_msg_move (&self->frame [self->nframes], &part);
            self->nframes++;
        }
        first = false;
        if (!more)
            break;
        //  The rest of a message is already here
        while (zmq_msg_recv (&part, self->handle, 0) == -1)
            if (zmq_errno () != EINTR)
                break;
    }
    zmq_msg_close (&part);
    return true;
}

static int
s_decode_event (zb_replay_client_t *self, zb_delivery_t *d, char *err, size_t errlen)
{
    const char *topic = (const char *) zmq_msg_data (&self->frame [2]);
    size_t topic_len = zmq_msg_size (&self->frame [2]);
    if (topic_len < 2 || topic [topic_len - 1] != '\0' || memchr (topic, '\0', topic_len - 1)) {
        snprintf (err, errlen, "replayed event: topic frame (%zu bytes) is not a detail-type "
                  "followed by one NUL byte", topic_len);
        return -1;
    }
    uint64_t seq, topic_seq;
    size_t header_len = zmq_msg_size (&self->frame [3]);
    if (zb_header_decode (zmq_msg_data (&self->frame [3]), header_len, &seq, &topic_seq) != 0) {
        snprintf (err, errlen, "replayed event on %s: header frame is %zu bytes, expected %d",
                  topic, header_len, ZB_HEADER_SIZE);
        return -1;
    }
    const char *data = (const char *) zmq_msg_data (&self->frame [4]);
    size_t size = zmq_msg_size (&self->frame [4]);
    size_t offset = 0;
    msgpack_zone_clear (&self->zone);
    const uint8_t *value = (const uint8_t *) data;
    bool whole, map;
    if (self->lazy) {
        //  What msgpack_unpack would accept, without its objects
        whole = mpr_value (&value, (const uint8_t *) data + size)
             && value == (const uint8_t *) data + size;
        uint8_t first = whole ? (uint8_t) data [0] : 0;    //  whole: a byte at least
        map = (first & 0xf0) == 0x80 || first == 0xde || first == 0xdf;
    }
    else {
        whole = msgpack_unpack (data, size, &offset, &self->zone, &self->event)
             == MSGPACK_UNPACK_SUCCESS;
        map = whole && self->event.type == MSGPACK_OBJECT_MAP;
    }
    //  A rule's topic ("$rule/NAME") may carry a transformer's output: any value
    if (!whole
    ||  (!map && strncmp (topic, ZB_RULE_TOPIC_PREFIX, sizeof ZB_RULE_TOPIC_PREFIX - 1) != 0)) {
        snprintf (err, errlen, "replayed event on %s (seq %" PRIu64 "): the event frame is "
                  "not one msgpack map", topic, seq);
        return -1;
    }
    d->topic.ptr = topic;
    d->topic.len = topic_len - 1;
    d->seq = seq;
    d->topic_seq = topic_seq;
    d->missed = 0;
    d->event = self->lazy ? NULL : &self->event;
    d->raw.ptr = data;
    d->raw.len = size;
    return 0;
}

static bool
s_uint (const msgpack_object *map, const char *key, uint64_t *value)
{
    const msgpack_object *v = zb_map_get (map, key);
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *value = v->via.u64;
    return true;
}

zb_replay_client_kind_t
zb_replay_client_recv (zb_replay_client_t *self, zb_replay_client_msg_t *msg)
{
    assert (self);
    assert (msg);
    if (!s_recv_message (self))
        return ZB_REPLAY_CLIENT_NONE;
    msg->text [0] = '\0';
    if (self->nframes < 3) {
        snprintf (msg->text, sizeof msg->text, "message from %s with %zu frame%s ignored",
                  self->endpoint, self->nframes, self->nframes == 1? "": "s");
        return ZB_REPLAY_CLIENT_MALFORMED;
    }
    if (!self->active || zmq_msg_size (&self->frame [1]) != REPLAY_CORR_SIZE
    ||  memcmp (zmq_msg_data (&self->frame [1]), self->corr, REPLAY_CORR_SIZE) != 0)
        return ZB_REPLAY_CLIENT_STRAY;         //  a cancelled session's, or a late one
    self->heard_ms = zclock_mono ();

    zmq_msg_t *status = &self->frame [0];
    if (s_status_is (status, "EVENT")) {
        s_grant (self);
        if (self->nframes != 5) {
            snprintf (msg->text, sizeof msg->text, "replayed EVENT with %zu frames, expected 5",
                      self->nframes);
            return ZB_REPLAY_CLIENT_MALFORMED;
        }
        if (s_decode_event (self, &msg->event, msg->text, sizeof msg->text) != 0)
            return ZB_REPLAY_CLIENT_MALFORMED;
        return ZB_REPLAY_CLIENT_EVENT;
    }
    //  END or ERROR: the session is over whatever the body says
    self->active = false;
    msgpack_object body;
    size_t offset = 0;
    msgpack_zone_clear (&self->zone);
    bool map = self->nframes == 3
            && msgpack_unpack ((const char *) zmq_msg_data (&self->frame [2]),
                               zmq_msg_size (&self->frame [2]), &offset, &self->zone, &body)
               == MSGPACK_UNPACK_SUCCESS
            && body.type == MSGPACK_OBJECT_MAP;
    if (s_status_is (status, "END")) {
        if (map && s_uint (&body, "last", &msg->last) && s_uint (&body, "head", &msg->head)) {
            if (!s_uint (&body, "oldest", &msg->oldest))
                msg->oldest = 0;
            if (!s_uint (&body, "count", &msg->count))
                msg->count = 0;
            return ZB_REPLAY_CLIENT_END;
        }
        snprintf (msg->text, sizeof msg->text, "malformed END from %s (no last/head)",
                  self->endpoint);
        return ZB_REPLAY_CLIENT_ERROR;
    }
    if (s_status_is (status, "ERROR")) {
        const msgpack_object *code = map? zb_map_get (&body, "code"): NULL;
        const msgpack_object *message = map? zb_map_get (&body, "message"): NULL;
        if (code && code->type == MSGPACK_OBJECT_STR)
            snprintf (msg->text, sizeof msg->text, "%.*s: %.*s", (int) code->via.str.size,
                      code->via.str.ptr,
                      message && message->type == MSGPACK_OBJECT_STR?
                          (int) message->via.str.size: 10,
                      message && message->type == MSGPACK_OBJECT_STR?
                          message->via.str.ptr: "no message");
        else
            snprintf (msg->text, sizeof msg->text, "ERROR reply without a code");
        return ZB_REPLAY_CLIENT_ERROR;
    }
    snprintf (msg->text, sizeof msg->text, "unexpected status '%.*s' in a replay from %s",
              (int) (zmq_msg_size (status) < 16? zmq_msg_size (status): 16),
              (const char *) zmq_msg_data (status), self->endpoint);
    return ZB_REPLAY_CLIENT_ERROR;
}
