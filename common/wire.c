/*  wire.c - the frames of docs/PROTOCOL.md: client requests and replies,
    the publish header and the exact-match topic frame.

    The client side is deliberately small: a request is three frames on a
    DEALER, a reply is three frames (after an optional empty delimiter that
    we skip). Receiving always consumes every frame of a message, whatever
    its shape, so a bad message never leaves the socket out of sync. */

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "curve.h"
#include "wire.h"

//  Send one frame, retrying when a signal interrupts libzmq. Once the first
//  frame of a message is queued the rest must follow, or the socket would be
//  left in the middle of a message; libzmq never blocks on those frames.
static int
s_send_frame (void *sock, const void *data, size_t size, int flags)
{
    while (zmq_send (sock, data, size, flags) == -1) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

int
zb_wire_send_request (void *sock, const char *command,
                      const void *corr, size_t corrlen,
                      const void *body, size_t bodylen)
{
    assert (sock);
    assert (command);
    assert (corr || corrlen == 0);
    assert (body || bodylen == 0);
    //  The first frame may fail (interrupt, timeout): nothing was queued then.
    if (zmq_send (sock, command, strlen (command), ZMQ_SNDMORE) == -1)
        return -1;
    if (s_send_frame (sock, corr, corrlen, ZMQ_SNDMORE) == -1
    ||  s_send_frame (sock, body, bodylen, 0) == -1)
        return -1;
    return 0;
}

//  Receive the next frame of a message already in progress. The frames of a
//  multipart message arrive together, so only a signal can make this fail.
static int
s_recv_more (void *sock, zmq_msg_t *msg)
{
    while (zmq_msg_recv (msg, sock, 0) == -1) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

int
zb_wire_recv_reply (void *sock, zb_reply_t *reply)
{
    assert (sock);
    assert (reply);
    zmq_msg_t *slot [3] = { &reply->status, &reply->corr, &reply->body };
    for (int i = 0; i < 3; i++)
        zmq_msg_init (slot [i]);

    zmq_msg_t part;
    zmq_msg_init (&part);
    if (zmq_msg_recv (&part, sock, 0) == -1) {
        zmq_msg_close (&part);
        return -1;                      //  interrupted or timed out: nothing consumed
    }
    size_t frames = 0;
    bool first = true;
    bool broken = false;
    while (true) {
        bool more = zmq_msg_more (&part) != 0;
        if (first && more && zmq_msg_size (&part) == 0) {
            //  The delimiter a REQ-style envelope carries: skip it
        }
        else {
            if (frames < 3)
                zmq_msg_move (slot [frames], &part);
            frames++;
        }
        first = false;
        if (!more)
            break;
        if (s_recv_more (sock, &part) == -1) {
            broken = true;
            break;
        }
    }
    zmq_msg_close (&part);
    if (broken || frames != 3) {
        zb_reply_close (reply);
        return -1;
    }
    return 0;
}

void
zb_reply_close (zb_reply_t *reply)
{
    assert (reply);
    //  Closed messages are re-initialized empty so that closing twice is safe.
    zmq_msg_t *slot [3] = { &reply->status, &reply->corr, &reply->body };
    for (int i = 0; i < 3; i++) {
        zmq_msg_close (slot [i]);
        zmq_msg_init (slot [i]);
    }
}

bool
zb_reply_is_ok (zb_reply_t *reply)
{
    assert (reply);
    return zmq_msg_size (&reply->status) == strlen (ZB_STATUS_OK)
        && memcmp (zmq_msg_data (&reply->status), ZB_STATUS_OK, strlen (ZB_STATUS_OK)) == 0;
}

//  Copy a msgpack string into out as printable text, at most outsize-1 bytes.
static void
s_copy_str (const msgpack_object *obj, char *out, size_t outsize)
{
    size_t len = 0;
    if (obj && obj->type == MSGPACK_OBJECT_STR) {
        const char *ptr = obj->via.str.ptr;
        for (size_t i = 0; i < obj->via.str.size && len + 1 < outsize; i++)
            out [len++] = (unsigned char) ptr [i] < 0x20 ? '?' : ptr [i];
    }
    out [len] = 0;
}

//  Value of a string key in a msgpack map, or NULL.
static const msgpack_object *
s_map_get (const msgpack_object *obj, const char *key)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t keylen = strlen (key);
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *k = &obj->via.map.ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == keylen
        &&  memcmp (k->via.str.ptr, key, keylen) == 0)
            return &obj->via.map.ptr [i].val;
    }
    return NULL;
}

//  Unpack a frame into result so that result owns everything: msgpack-c's
//  strings point into the buffer they were decoded from, so the frame is
//  copied into the result's own zone first. 0 on success.
static int
s_unpack_owned (zmq_msg_t *frame, msgpack_unpacked *result)
{
    size_t size = zmq_msg_size (frame);
    msgpack_zone *zone = msgpack_zone_new (size + 1024);
    if (!zone)
        return -1;
    char *copy = (char *) msgpack_zone_malloc (zone, size ? size : 1);
    if (!copy) {
        msgpack_zone_free (zone);
        return -1;
    }
    memcpy (copy, zmq_msg_data (frame), size);
    size_t offset = 0;
    msgpack_object obj;
    if (msgpack_unpack (copy, size, &offset, zone, &obj) != MSGPACK_UNPACK_SUCCESS) {
        msgpack_zone_free (zone);
        return -1;
    }
    msgpack_unpacked_destroy (result);
    result->zone = zone;
    result->data = obj;
    return 0;
}

int
zb_wire_call (const char *endpoint, const char *command,
              const void *body, size_t bodylen, int timeout_ms,
              msgpack_unpacked *result, char *err, size_t errlen)
{
    assert (endpoint);
    assert (command);
    assert (result);
    assert (err && errlen > 0);
    msgpack_unpacked_init (result);
    err [0] = 0;

    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer) {
        snprintf (err, errlen, "cannot create a socket: %s", zmq_strerror (zmq_errno ()));
        msgpack_unpacked_destroy (result);
        return -1;
    }
    void *sock = zsock_resolve (dealer);
    int zero = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &zero, sizeof zero);
    //  Never block on send, whatever the peer does
    zmq_setsockopt (sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
    zb_curve_client_apply (dealer);         //  CURVE keys, maximum frame size
    if (zmq_connect (sock, endpoint) == -1) {
        snprintf (err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&dealer);
        msgpack_unpacked_destroy (result);
        return -1;
    }
    //  A correlation id unique within this process: the socket is fresh, so
    //  any reply carrying another id is not ours and is ignored.
    static uint64_t s_calls = 0;
    uint8_t corr [8];
    uint64_t id = ++s_calls ^ ((uint64_t) getpid () << 32);
    for (int i = 7; i >= 0; i--, id >>= 8)
        corr [i] = (uint8_t) id;

    int rc = -1;
    if (zb_wire_send_request (sock, command, corr, sizeof corr, body, bodylen) == -1) {
        snprintf (err, errlen, "cannot send to %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        goto done;
    }
    //  A negative timeout waits for ever
    int64_t deadline = zclock_mono () + (timeout_ms < 0 ? 0 : timeout_ms);
    while (true) {
        int64_t left = timeout_ms < 0 ? -1 : deadline - zclock_mono ();
        if (timeout_ms >= 0 && left < 0)
            left = 0;
        zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
        int n = zmq_poll (&item, 1, (long) left);
        if (n == -1) {
            snprintf (err, errlen, "%s waiting for %s",
                      errno == EINTR ? "interrupted" : zmq_strerror (errno), endpoint);
            goto done;
        }
        if (n == 0) {
            snprintf (err, errlen, "no reply from %s within %d ms", endpoint, timeout_ms);
            goto done;
        }
        zb_reply_t reply;
        if (zb_wire_recv_reply (sock, &reply) == -1)
            continue;                   //  not a three-frame reply: not ours
        if (zmq_msg_size (&reply.corr) != sizeof corr
        ||  memcmp (zmq_msg_data (&reply.corr), corr, sizeof corr) != 0) {
            zb_reply_close (&reply);
            continue;
        }
        if (s_unpack_owned (&reply.body, result) == -1) {
            snprintf (err, errlen, "bad reply from %s: body is not one msgpack value", endpoint);
            zb_reply_close (&reply);
            goto done;
        }
        if (zb_reply_is_ok (&reply))
            rc = 0;
        else {
            char code [64], message [256];
            s_copy_str (s_map_get (&result->data, "code"), code, sizeof code);
            s_copy_str (s_map_get (&result->data, "message"), message, sizeof message);
            if (*code)
                snprintf (err, errlen, "%s: %s", code, message);
            else
                snprintf (err, errlen, "bad reply from %s: status is not OK and has no code",
                          endpoint);
            rc = -2;
        }
        zb_reply_close (&reply);
        break;
    }
done:
    if (rc != 0)
        msgpack_unpacked_destroy (result);     //  leaves it safe to destroy again
    zsock_destroy (&dealer);
    return rc;
}

void
zb_header_encode (uint8_t out [ZB_HEADER_SIZE], uint64_t seq, uint64_t topic_seq)
{
    for (int i = 7; i >= 0; i--) {
        out [i] = (uint8_t) seq;
        out [8 + i] = (uint8_t) topic_seq;
        seq >>= 8;
        topic_seq >>= 8;
    }
}

int
zb_header_decode (const void *data, size_t len, uint64_t *seq, uint64_t *topic_seq)
{
    if (!data || len < ZB_HEADER_SIZE)
        return -1;
    const uint8_t *in = (const uint8_t *) data;
    uint64_t a = 0, b = 0;
    for (int i = 0; i < 8; i++) {
        a = (a << 8) | in [i];
        b = (b << 8) | in [8 + i];
    }
    if (seq)
        *seq = a;
    if (topic_seq)
        *topic_seq = b;
    return 0;
}

size_t
zb_header_encode_batch (uint8_t out [ZB_BATCH_HEADER_SIZE], uint64_t seq, uint64_t topic_seq,
                        uint32_t count)
{
    assert (count > 0);
    zb_header_encode (out, seq, topic_seq);
    if (count == 1)
        return ZB_HEADER_SIZE;
    out [16] = (uint8_t) (count >> 24);
    out [17] = (uint8_t) (count >> 16);
    out [18] = (uint8_t) (count >> 8);
    out [19] = (uint8_t) count;
    return ZB_BATCH_HEADER_SIZE;
}

int
zb_header_decode_batch (const void *data, size_t len, uint64_t *seq, uint64_t *topic_seq,
                        uint32_t *count)
{
    if (zb_header_decode (data, len, seq, topic_seq) != 0
    ||  (len > ZB_HEADER_SIZE && len < ZB_BATCH_HEADER_SIZE))
        return -1;
    uint32_t n = 1;
    if (len >= ZB_BATCH_HEADER_SIZE) {
        const uint8_t *in = (const uint8_t *) data + ZB_HEADER_SIZE;
        n = (uint32_t) in [0] << 24 | (uint32_t) in [1] << 16 | (uint32_t) in [2] << 8 | in [3];
        if (n == 0)
            return -1;
    }
    if (count)
        *count = n;
    return 0;
}

size_t
zb_topic_encode (const char *detail_type, size_t len, char *out, size_t outsize)
{
    assert (detail_type || len == 0);
    assert (out || outsize == 0);
    if (len >= outsize)                 //  len + 1 bytes needed
        return 0;
    memcpy (out, detail_type, len);
    out [len] = 0;
    return len + 1;
}
