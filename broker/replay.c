/*  replay.c - replay sessions on the control socket; see replay.h.

    A session keeps its own position (next), its end (to, fixed when it
    opens: the head then, or less), its credit and a filter. Serving a
    session is one zb_journal_read from next with a visit function that skips
    what the filter does not want, sends what it wants while credit lasts,
    and stops:
    - at the first wanted record once credit is 0: the session "parks" on it
      and costs nothing until CREDIT comes (or, when no wanted record is left
      in the range, END goes out at once: a client never waits for credit to
      learn that the range is done);
    - before the first wanted record past the turn's limit (fairness);
    - when the client's queue is full (EAGAIN: the record is sent later).
    Sessions live in an array; they are closed by marking and compacted after
    each pass over them, so serving never reorders what it iterates. */

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "event.h"
#include "replay.h"
#include "rfc3339.h"
#include "wire.h"
#include "zb.h"

#define ZB_IDENTITY_MAX     255
#define ZB_RETRY_MS         2           //  a full client queue: try again after
#define ZB_ERRLEN           256

typedef struct {
    //  Name
    uint8_t identity [ZB_IDENTITY_MAX];
    size_t identity_len;
    uint8_t corr [ZB_MAX_CORRELATION];
    size_t corr_len;
    bool delimiter;                     //  the client is a REQ: echo the empty frame

    //  Range and flow
    uint64_t next;                      //  first seq not yet looked at
    uint64_t to;                        //  last seq of the range
    uint64_t credit;
    uint64_t count;                     //  events sent
    bool parked;                        //  next is a wanted record waiting for credit
    int64_t idle_since;                 //  zclock_mono when credit ran out
    int64_t last_progress;              //  zclock_mono of the last event sent (or open)
    int64_t retry_at;                   //  client queue full: not before this
    bool closed;

    //  Filter: nothing given means every topic
    bool all;
    zb_str_t *topics;                   //  sorted (s_str_cmp), into strings
    size_t topic_count;
    zb_str_t *prefixes;                 //  into strings
    size_t prefix_count;
    char *strings;
} session_t;

struct zb_replay_t {
    void *control;
    zb_journal_t *journal;
    size_t max_sessions;
    int64_t idle_ms;
    session_t **sessions;
    size_t count;
    size_t cursor;                      //  where the next turn starts (fairness)
    msgpack_zone zone;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    uint64_t events_sent;
};

//  --------------------------------------------------------------------------
//  Sessions

//  Sessions one client connection may hold, so that a client which opens many
//  and goes away cannot take the whole table from everybody else until the
//  idle timeout frees it.
#define ZB_REPLAY_PER_PEER  16

static size_t
s_peer_sessions (zb_replay_t *self, const void *identity, size_t identity_len)
{
    size_t count = 0;
    for (size_t i = 0; i < self->count; i++)
        if (self->sessions [i]->identity_len == identity_len
        &&  memcmp (self->sessions [i]->identity, identity, identity_len) == 0)
            count++;
    return count;
}

static void
s_session_destroy (session_t **self_p)
{
    session_t *self = *self_p;
    if (self) {
        free (self->topics);
        free (self->prefixes);
        free (self->strings);
        free (self);
        *self_p = NULL;
    }
}

static int
s_str_cmp (const void *a, const void *b)
{
    const zb_str_t *x = (const zb_str_t *) a;
    const zb_str_t *y = (const zb_str_t *) b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp (x->ptr, y->ptr, x->len);
}

//  The bus's own topics ("$rule/NAME") are replayed only when asked for by
//  name or by a prefix that starts with '$', never as part of "everything"
static bool
s_session_wants (const session_t *s, zb_str_t topic)
{
    bool reserved = topic.len > 0 && topic.ptr [0] == ZB_RESERVED_PREFIX;
    if (s->all)
        return !reserved;
    if (s->topic_count
    &&  bsearch (&topic, s->topics, s->topic_count, sizeof (zb_str_t), s_str_cmp))
        return true;
    for (size_t i = 0; i < s->prefix_count; i++)
        if (s->prefixes [i].len <= topic.len
        &&  (!reserved || (s->prefixes [i].len > 0 && s->prefixes [i].ptr [0] == ZB_RESERVED_PREFIX))
        &&  memcmp (s->prefixes [i].ptr, topic.ptr, s->prefixes [i].len) == 0)
            return true;
    return false;
}

static session_t *
s_find (zb_replay_t *self, const void *identity, size_t identity_len,
        const void *corr, size_t corr_len)
{
    for (size_t i = 0; i < self->count; i++) {
        session_t *s = self->sessions [i];
        if (!s->closed
        &&  s->identity_len == identity_len && s->corr_len == corr_len
        &&  memcmp (s->corr, corr, corr_len) == 0
        &&  memcmp (s->identity, identity, identity_len) == 0)
            return s;
    }
    return NULL;
}

//  Free the sessions marked closed, keeping the others in order.
static void
s_compact (zb_replay_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->count; i++) {
        if (self->sessions [i]->closed)
            s_session_destroy (&self->sessions [i]);
        else
            self->sessions [kept++] = self->sessions [i];
    }
    self->count = kept;
}

//  --------------------------------------------------------------------------
//  Sending: [identity][""]?[status][corr] ... ; 0 sent, 1 the client's queue
//  is full (nothing sent), -1 the client is gone (or the context ends).

static int
s_send_frame (void *sock, const void *data, size_t size, int flags)
{
    while (zmq_send (sock, data, size, flags | ZMQ_DONTWAIT) == -1) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

static int
s_send_head (zb_replay_t *self, session_t *s, const char *status)
{
    if (s_send_frame (self->control, s->identity, s->identity_len, ZMQ_SNDMORE) == -1)
        return errno == EAGAIN ? 1 : -1;
    //  The rest of a message always goes once its first frame went
    if ((s->delimiter && s_send_frame (self->control, "", 0, ZMQ_SNDMORE) == -1)
    ||  s_send_frame (self->control, status, strlen (status), ZMQ_SNDMORE) == -1
    ||  s_send_frame (self->control, s->corr, s->corr_len, ZMQ_SNDMORE) == -1)
        return -1;
    return 0;
}

static int
s_send_event (zb_replay_t *self, session_t *s, const zb_record_t *record)
{
    int rc = s_send_head (self, s, "EVENT");
    if (rc != 0)
        return rc;
    char topic [ZB_MAX_DETAIL_TYPE + 1];
    size_t len = record->topic.len <= ZB_MAX_DETAIL_TYPE ? record->topic.len : ZB_MAX_DETAIL_TYPE;
    memcpy (topic, record->topic.ptr, len);
    topic [len] = 0;
    uint8_t header [ZB_HEADER_SIZE];
    zb_header_encode (header, record->seq, record->topic_seq);
    if (s_send_frame (self->control, topic, len + 1, ZMQ_SNDMORE) == -1
    ||  s_send_frame (self->control, header, sizeof header, ZMQ_SNDMORE) == -1
    ||  s_send_frame (self->control, record->event.ptr, record->event.len, 0) == -1)
        return -1;
    return 0;
}

static int
s_send_body (zb_replay_t *self, session_t *s, const char *status)
{
    int rc = s_send_head (self, s, status);
    if (rc != 0)
        return rc;
    return s_send_frame (self->control, self->buf.data, self->buf.size, 0) == -1 ? -1 : 0;
}

//  END: the range is done. 1 when the client's queue is full (try again).
static int
s_send_end (zb_replay_t *self, session_t *s)
{
    msgpack_sbuffer_clear (&self->buf);
    msgpack_pack_map (&self->pk, 4);
    zb_pack_cstr (&self->pk, "last");
    msgpack_pack_uint64 (&self->pk, s->to);
    zb_pack_cstr (&self->pk, "head");
    msgpack_pack_uint64 (&self->pk, zb_journal_head (self->journal));
    zb_pack_cstr (&self->pk, "oldest");
    msgpack_pack_uint64 (&self->pk, zb_journal_oldest (self->journal));
    zb_pack_cstr (&self->pk, "count");
    msgpack_pack_uint64 (&self->pk, s->count);
    int rc = s_send_body (self, s, "END");
    if (rc != 1)
        s->closed = true;
    return rc;
}

//  ERROR: the session failed; it is closed whether the reply goes out or not.
static void
s_send_error (zb_replay_t *self, session_t *s, const char *code, const char *message)
{
    msgpack_sbuffer_clear (&self->buf);
    msgpack_pack_map (&self->pk, 2);
    zb_pack_cstr (&self->pk, "code");
    zb_pack_cstr (&self->pk, code);
    zb_pack_cstr (&self->pk, "message");
    zb_pack_cstr (&self->pk, message);
    s_send_body (self, s, ZB_STATUS_ERROR);
    s->closed = true;
}

//  --------------------------------------------------------------------------
//  REPLAY

//  An RFC 3339 time as ns since the epoch (0 before it); -1 when not valid.
static int
s_time_ns (const msgpack_object *value, uint64_t *ns)
{
    if (value->type != MSGPACK_OBJECT_STR)
        return -1;
    char normal [ZB_TIME_MAX];
    int len = zb_time_normalize (value->via.str.ptr, value->via.str.size, normal);
    int64_t seconds;
    if (len < 0 || zb_time_parse (normal, (size_t) len, &seconds) == -1)
        return -1;
    //  "YYYY-MM-DDTHH:MM:SS[.frac]Z": the fraction, up to 9 digits
    uint64_t frac = 0;
    const char *dot = memchr (normal, '.', (size_t) len);
    if (dot) {
        int digits = 0;
        for (const char *p = dot + 1; *p >= '0' && *p <= '9' && digits < 9; p++, digits++)
            frac = frac * 10 + (uint64_t) (*p - '0');
        for (; digits < 9; digits++)
            frac *= 10;
    }
    *ns = seconds < 0 ? 0 : (uint64_t) seconds * 1000000000ULL + frac;
    return 0;
}

//  A "topics"/"prefixes" array: every element a string of min..ZB_MAX_DETAIL_TYPE
//  bytes of UTF-8. Returns the bytes of all its strings, or -1 with err.
static int64_t
s_check_names (const msgpack_object *value, const char *key, size_t min, size_t max_count,
               char *err, size_t errlen)
{
    if (value->type != MSGPACK_OBJECT_ARRAY) {
        snprintf (err, errlen, "%s must be an array of strings, not %s", key,
                  zb_msgpack_type_name (value->type));
        return -1;
    }
    if (value->via.array.size > max_count) {
        snprintf (err, errlen, "%s has %" PRIu32 " elements, more than %zu", key,
                  value->via.array.size, max_count);
        return -1;
    }
    int64_t bytes = 0;
    for (uint32_t i = 0; i < value->via.array.size; i++) {
        const msgpack_object *name = &value->via.array.ptr [i];
        if (name->type != MSGPACK_OBJECT_STR
        ||  name->via.str.size < min || name->via.str.size > ZB_MAX_DETAIL_TYPE
        ||  !zb_utf8_valid (name->via.str.ptr, name->via.str.size)) {
            snprintf (err, errlen, "%s[%" PRIu32 "] must be a string of %zu to %d bytes of UTF-8",
                      key, i, min, ZB_MAX_DETAIL_TYPE);
            return -1;
        }
        bytes += name->via.str.size;
    }
    return bytes;
}

static bool
s_get_uint (const msgpack_object *value, uint64_t *out)
{
    if (value->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *out = value->via.u64;
    return true;
}

//  Fill the session from the body map. 0, or -1 with err (InvalidArgument).
static int
s_parse_request (zb_replay_t *self, session_t *s, const msgpack_object *root,
                 char *err, size_t errlen)
{
    static const char *const keys [] = { "from", "from-time", "to", "topics", "prefixes", "credit" };
    enum { K_FROM, K_FROM_TIME, K_TO, K_TOPICS, K_PREFIXES, K_CREDIT, K_COUNT };
    const msgpack_object *field [K_COUNT] = { NULL };
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *key = &root->via.map.ptr [i].key;
        int k = K_COUNT;
        if (key->type == MSGPACK_OBJECT_STR)
            for (k = 0; k < K_COUNT; k++)
                if (zb_str_eq (key, keys [k]))
                    break;
        if (k == K_COUNT) {
            char name [160] = "";
            if (key->type == MSGPACK_OBJECT_STR)
                zb_path_key (name, sizeof name, key->via.str.ptr, key->via.str.size);
            else
                snprintf (name, sizeof name, "(%s)", zb_msgpack_type_name (key->type));
            snprintf (err, errlen, "unknown key '%s' (allowed: from, from-time, to, topics, "
                      "prefixes, credit)", name);
            return -1;
        }
        if (field [k]) {
            snprintf (err, errlen, "'%s' given more than once", keys [k]);
            return -1;
        }
        field [k] = &root->via.map.ptr [i].val;
    }
    uint64_t head = zb_journal_head (self->journal);

    //  credit first: without it nothing would ever be sent
    if (!field [K_CREDIT]) {
        snprintf (err, errlen, "credit is required (1 to %d events)", ZB_REPLAY_MAX_CREDIT);
        return -1;
    }
    if (!s_get_uint (field [K_CREDIT], &s->credit)
    ||  s->credit < 1 || s->credit > ZB_REPLAY_MAX_CREDIT) {
        snprintf (err, errlen, "credit must be an integer from 1 to %d", ZB_REPLAY_MAX_CREDIT);
        return -1;
    }
    if (field [K_FROM] && field [K_FROM_TIME]) {
        snprintf (err, errlen, "give from or from-time, not both");
        return -1;
    }
    s->next = 1;
    if (field [K_FROM] && !s_get_uint (field [K_FROM], &s->next)) {
        snprintf (err, errlen, "from must be a sequence number (an unsigned integer), not %s",
                  zb_msgpack_type_name (field [K_FROM]->type));
        return -1;
    }
    if (field [K_FROM_TIME]) {
        uint64_t ns;
        if (s_time_ns (field [K_FROM_TIME], &ns) == -1) {
            snprintf (err, errlen, "from-time: not an RFC 3339 date-time");
            return -1;
        }
        s->next = zb_journal_seq_at (self->journal, ns);
    }
    if (s->next == 0)
        s->next = 1;
    s->to = head;
    if (field [K_TO] && !s_get_uint (field [K_TO], &s->to)) {
        snprintf (err, errlen, "to must be a sequence number (an unsigned integer), not %s",
                  zb_msgpack_type_name (field [K_TO]->type));
        return -1;
    }
    //  The range ends at the head when the request arrives: a replay never
    //  waits for events that do not exist yet (the live stream has them)
    if (s->to > head)
        s->to = head;

    int64_t topic_bytes = 0, prefix_bytes = 0;
    if (field [K_TOPICS]
    &&  (topic_bytes = s_check_names (field [K_TOPICS], "topics", 1, ZB_REPLAY_MAX_TOPICS,
                                      err, errlen)) == -1)
        return -1;
    if (field [K_PREFIXES]
    &&  (prefix_bytes = s_check_names (field [K_PREFIXES], "prefixes", 0, ZB_REPLAY_MAX_PREFIXES,
                                       err, errlen)) == -1)
        return -1;
    size_t topic_count = field [K_TOPICS] ? field [K_TOPICS]->via.array.size : 0;
    size_t prefix_count = field [K_PREFIXES] ? field [K_PREFIXES]->via.array.size : 0;
    s->all = topic_count == 0 && prefix_count == 0;
    if (s->all)
        return 0;
    s->strings = (char *) malloc ((size_t) (topic_bytes + prefix_bytes) + 1);
    s->topics = topic_count ? (zb_str_t *) calloc (topic_count, sizeof (zb_str_t)) : NULL;
    s->prefixes = prefix_count ? (zb_str_t *) calloc (prefix_count, sizeof (zb_str_t)) : NULL;
    if (!s->strings || (topic_count && !s->topics) || (prefix_count && !s->prefixes)) {
        snprintf (err, errlen, "out of memory");
        return -2;
    }
    char *at = s->strings;
    for (size_t i = 0; i < topic_count; i++) {
        const msgpack_object *name = &field [K_TOPICS]->via.array.ptr [i];
        memcpy (at, name->via.str.ptr, name->via.str.size);
        s->topics [i] = (zb_str_t) { at, name->via.str.size };
        at += name->via.str.size;
    }
    for (size_t i = 0; i < prefix_count; i++) {
        const msgpack_object *name = &field [K_PREFIXES]->via.array.ptr [i];
        if (name->via.str.size == 0)
            s->all = true;              //  the empty prefix: every topic
        memcpy (at, name->via.str.ptr, name->via.str.size);
        s->prefixes [i] = (zb_str_t) { at, name->via.str.size };
        at += name->via.str.size;
    }
    s->topic_count = topic_count;
    s->prefix_count = prefix_count;
    if (topic_count > 1)
        qsort (s->topics, topic_count, sizeof (zb_str_t), s_str_cmp);
    return 0;
}

int
zb_replay_open (zb_replay_t *self, zmq_msg_t *identity, bool delimiter,
                zmq_msg_t *corr, zmq_msg_t *body, const char **code,
                char *err, size_t errlen)
{
    assert (self);
    *code = "InvalidArgument";
    size_t corr_len = zmq_msg_size (corr);
    size_t identity_len = zmq_msg_size (identity);
    if (corr_len == 0 || corr_len > ZB_MAX_CORRELATION) {
        snprintf (err, errlen, "REPLAY needs a correlation id of 1 to %d bytes: it names the session",
                  ZB_MAX_CORRELATION);
        return -1;
    }
    if (identity_len == 0 || identity_len > ZB_IDENTITY_MAX) {
        //  A ROUTER always gives 1..255 bytes; be safe anyway
        *code = "MalformedRequest";
        snprintf (err, errlen, "client identity of %zu bytes", identity_len);
        return -1;
    }
    msgpack_object root = { .type = MSGPACK_OBJECT_MAP };
    root.via.map.size = 0;
    if (zmq_msg_size (body) > 0) {
        int rc = zb_msgpack_decode (zmq_msg_data (body), zmq_msg_size (body), 3, &self->zone,
                                    &root, err, errlen);
        if (rc != 0) {
            *code = rc == -2 ? "InternalFailure" : "MalformedRequest";
            msgpack_zone_clear (&self->zone);
            return -1;
        }
        if (root.type != MSGPACK_OBJECT_MAP) {
            *code = "MalformedRequest";
            snprintf (err, errlen, "REPLAY body must be a map, not %s",
                      zb_msgpack_type_name (root.type));
            msgpack_zone_clear (&self->zone);
            return -1;
        }
    }
    session_t *s = (session_t *) calloc (1, sizeof (session_t));
    int rc = s ? s_parse_request (self, s, &root, err, errlen) : -2;
    msgpack_zone_clear (&self->zone);
    if (rc == -2) {
        *code = "InternalFailure";
        snprintf (err, errlen, "out of memory opening the session; retry");
    }
    if (rc == 0 && s_find (self, zmq_msg_data (identity), identity_len,
                           zmq_msg_data (corr), corr_len)) {
        snprintf (err, errlen, "a replay session with this correlation id is open already");
        rc = -1;
    }
    if (rc == 0 && s_peer_sessions (self, zmq_msg_data (identity), identity_len)
                   >= ZB_REPLAY_PER_PEER) {
        *code = "LimitExceeded";
        snprintf (err, errlen, "this client already has %d replay sessions open",
                  ZB_REPLAY_PER_PEER);
        rc = -1;
    }
    if (rc == 0 && self->count >= self->max_sessions) {
        *code = "LimitExceeded";
        snprintf (err, errlen, "the broker already serves its maximum of %zu replay sessions",
                  self->max_sessions);
        rc = -1;
    }
    if (rc != 0) {
        s_session_destroy (&s);
        return -1;
    }
    memcpy (s->identity, zmq_msg_data (identity), identity_len);
    s->identity_len = identity_len;
    memcpy (s->corr, zmq_msg_data (corr), corr_len);
    s->corr_len = corr_len;
    s->delimiter = delimiter;
    s->last_progress = zclock_mono ();
    self->sessions [self->count++] = s;
    return 0;
}

int
zb_replay_credit (zb_replay_t *self, zmq_msg_t *identity, zmq_msg_t *corr, zmq_msg_t *body)
{
    assert (self);
    session_t *s = s_find (self, zmq_msg_data (identity), zmq_msg_size (identity),
                           zmq_msg_data (corr), zmq_msg_size (corr));
    if (!s)
        return 0;
    char err [ZB_ERRLEN] = "";
    msgpack_object root;
    uint64_t credit = 0;
    int rc = zb_msgpack_decode (zmq_msg_data (body), zmq_msg_size (body), 2, &self->zone,
                                &root, err, sizeof err);
    if (rc == 0 && root.type == MSGPACK_OBJECT_MAP && root.via.map.size == 1
    &&  zb_str_eq (&root.via.map.ptr [0].key, "credit")
    &&  s_get_uint (&root.via.map.ptr [0].val, &credit)
    &&  credit >= 1 && credit <= ZB_REPLAY_MAX_CREDIT)
        rc = 0;
    else
        rc = -1;
    msgpack_zone_clear (&self->zone);
    if (rc == -1) {
        char message [ZB_ERRLEN + 64];
        snprintf (message, sizeof message, "CREDIT body must be {\"credit\": 1..%d}%s%s",
                  ZB_REPLAY_MAX_CREDIT, err [0] ? ": " : "", err);
        s_send_error (self, s, "InvalidArgument", message);
        s_compact (self);
        return -1;
    }
    s->credit += credit;
    s->parked = false;
    s->last_progress = zclock_mono ();
    return 0;
}

int
zb_replay_cancel (zb_replay_t *self, zmq_msg_t *identity, zmq_msg_t *corr)
{
    assert (self);
    session_t *s = s_find (self, zmq_msg_data (identity), zmq_msg_size (identity),
                           zmq_msg_data (corr), zmq_msg_size (corr));
    if (!s)
        return -1;
    s->closed = true;
    s_compact (self);
    return 0;
}

size_t
zb_replay_close_peer (zb_replay_t *self, const void *identity, size_t identity_len,
                      const char *code, const char *message)
{
    assert (self);
    size_t closed = 0;
    for (size_t i = 0; i < self->count; i++) {
        session_t *s = self->sessions [i];
        if (!s->closed && s->identity_len == identity_len
        &&  memcmp (s->identity, identity, identity_len) == 0) {
            s_send_error (self, s, code, message);
            s->closed = true;           //  even when the error could not be sent
            closed++;
        }
    }
    s_compact (self);
    return closed;
}

//  --------------------------------------------------------------------------
//  Serving

typedef struct {
    zb_replay_t *self;
    session_t *session;
    size_t limit;                       //  events this turn
    size_t sent;
    int64_t now;
    bool stopped;                       //  the visit set session->next itself
    bool full;                          //  the client's queue is full
    bool gone;                          //  the client is gone
} visit_t;

static int
s_visit (void *arg, const zb_record_t *record)
{
    visit_t *v = (visit_t *) arg;
    session_t *s = v->session;
    if (!s_session_wants (s, record->topic)) {
        s->next = record->seq + 1;
        return 0;
    }
    if (s->credit == 0) {
        s->next = record->seq;
        s->parked = true;
        v->stopped = true;
        return 1;
    }
    if (v->sent >= v->limit) {
        s->next = record->seq;
        v->stopped = true;
        return 1;
    }
    int rc = s_send_event (v->self, s, record);
    if (rc != 0) {
        s->next = record->seq;
        v->stopped = true;
        if (rc == 1)
            v->full = true;
        else
            v->gone = true;
        return 1;
    }
    s->next = record->seq + 1;
    s->credit--;
    s->count++;
    s->last_progress = v->now;
    s->retry_at = 0;
    v->sent++;
    v->self->events_sent++;
    if (s->credit == 0)
        s->idle_since = v->now;
    return 0;
}

//  One turn of one session. Sets *busy when it has more to do at once,
//  *blocked when it waits for its client to read.
static void
s_serve_session (zb_replay_t *self, session_t *s, int64_t now, size_t *budget,
                 bool *busy, bool *blocked)
{
    if (s->retry_at > now) {
        *blocked = true;
        return;
    }
    if (s->next <= s->to && !(s->credit == 0 && s->parked)) {
        if (*budget == 0 && s->credit > 0) {
            *busy = true;
            return;
        }
        visit_t v = { self, s, s->credit > 0 ? (*budget < ZB_REPLAY_TURN ? *budget : ZB_REPLAY_TURN) : 0,
                      0, now, false, false, false };
        uint64_t from = s->next;
        uint64_t next = from;
        char err [ZB_ERRLEN] = "";
        int rc = zb_journal_read (self->journal, from, s->to, ZB_REPLAY_SCAN, s_visit, &v,
                                  &next, err, sizeof err);
        *budget -= v.sent;
        if (rc == -1) {
            char message [ZB_ERRLEN + 64];
            snprintf (message, sizeof message, "journal read failed: %s; retry", err);
            s_send_error (self, s, "InternalFailure", message);
            return;
        }
        if (v.gone) {
            s->closed = true;
            return;
        }
        if (!v.stopped) {
            if (next <= from) {
                s_send_error (self, s, "InternalFailure", "journal read made no progress; retry");
                return;
            }
            s->next = next;
        }
        if (v.full) {
            s->retry_at = now + ZB_RETRY_MS;
            *blocked = true;
            return;
        }
    }
    if (s->next > s->to) {
        if (s_send_end (self, s) == 1) {
            s->retry_at = now + ZB_RETRY_MS;
            *blocked = true;
        }
        return;
    }
    if (!(s->credit == 0 && s->parked))
        *busy = true;
}

zb_replay_state_t
zb_replay_serve (zb_replay_t *self)
{
    assert (self);
    if (self->count == 0)
        return ZB_REPLAY_IDLE;
    int64_t now = zclock_mono ();
    size_t budget = ZB_REPLAY_BUDGET;
    bool busy = false, blocked = false;
    size_t count = self->count;
    size_t start = self->cursor++ % count;
    for (size_t k = 0; k < count; k++) {
        session_t *s = self->sessions [(start + k) % count];
        if (!s->closed)
            s_serve_session (self, s, now, &budget, &busy, &blocked);
    }
    s_compact (self);
    return busy ? ZB_REPLAY_BUSY : blocked ? ZB_REPLAY_BLOCKED : ZB_REPLAY_IDLE;
}

size_t
zb_replay_expire (zb_replay_t *self, int64_t now_ms)
{
    assert (self);
    size_t closed = 0;
    char message [128];
    for (size_t i = 0; i < self->count; i++) {
        session_t *s = self->sessions [i];
        if (s->closed)
            continue;
        if (s->credit == 0 && now_ms - s->idle_since >= self->idle_ms) {
            snprintf (message, sizeof message, "no credit for %" PRId64 " s: session closed",
                      self->idle_ms / 1000);
            s_send_error (self, s, "Timeout", message);
            closed++;
        }
        else
        if (s->credit > 0 && s->retry_at > 0 && now_ms - s->last_progress >= self->idle_ms) {
            //  Credit, but the client has not read anything for that long
            snprintf (message, sizeof message, "client read nothing for %" PRId64 " s: session closed",
                      self->idle_ms / 1000);
            s_send_error (self, s, "Timeout", message);
            closed++;
        }
    }
    s_compact (self);
    return closed;
}

//  --------------------------------------------------------------------------

zb_replay_t *
zb_replay_new (void *control, zb_journal_t *journal, size_t max_sessions, int64_t idle_ms)
{
    assert (control && journal && max_sessions > 0 && idle_ms > 0);
    zb_replay_t *self = (zb_replay_t *) calloc (1, sizeof (zb_replay_t));
    if (!self)
        return NULL;
    self->control = control;
    self->journal = journal;
    self->max_sessions = max_sessions;
    self->idle_ms = idle_ms;
    self->sessions = (session_t **) calloc (max_sessions, sizeof (session_t *));
    if (!self->sessions || !msgpack_zone_init (&self->zone, 4096)) {
        free (self->sessions);
        free (self);
        return NULL;
    }
    msgpack_sbuffer_init (&self->buf);
    msgpack_packer_init (&self->pk, &self->buf, msgpack_sbuffer_write);
    return self;
}

void
zb_replay_destroy (zb_replay_t **self_p)
{
    assert (self_p);
    zb_replay_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        s_session_destroy (&self->sessions [i]);
    free (self->sessions);
    msgpack_zone_destroy (&self->zone);
    msgpack_sbuffer_destroy (&self->buf);
    free (self);
    *self_p = NULL;
}

size_t
zb_replay_sessions (zb_replay_t *self)
{
    assert (self);
    return self->count;
}

uint64_t
zb_replay_events_sent (zb_replay_t *self)
{
    assert (self);
    return self->events_sent;
}

void
zb_replay_each (zb_replay_t *self, size_t max,
                void (*fn) (void *arg, const zb_replay_session_info_t *info), void *arg)
{
    assert (self && fn);
    size_t done = 0;
    for (size_t i = 0; i < self->count && done < max; i++) {
        const session_t *s = self->sessions [i];
        if (s->closed)
            continue;
        done++;
        zb_replay_session_info_t info = {
            .identity = s->identity, .identity_len = s->identity_len,
            .next = s->next, .to = s->to, .sent = s->count, .credit = s->credit,
        };
        fn (arg, &info);
    }
}
