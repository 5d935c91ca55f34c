/*  wire.h - the frames of docs/PROTOCOL.md, shared by the broker and every client.

    Request  (client -> ROUTER):  [""]? [command] [correlation] [body]
    Reply    (ROUTER -> client):  [""]? [status]  [correlation] [body]
    Publish  (XPUB -> SUB):       [topic = detail-type + "\0"] [header, 16 or 20 bytes]
                                  [event, or events back to back (protocol version 2)]

    The empty frame is present only when the client is a REQ socket; the broker
    echoes it. Socket arguments are raw libzmq handles (zsock_resolve()). */
#ifndef ZB_WIRE_H_INCLUDED
#define ZB_WIRE_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>
#include "zb.h"

//  Send one request as a DEALER (no delimiter). 0 on success, -1 on zmq error.
int zb_wire_send_request (void *sock, const char *command,
                          const void *corr, size_t corrlen,
                          const void *body, size_t bodylen);

//  A received reply. The frames stay owned by the zmq messages until closed.
typedef struct {
    zmq_msg_t status;
    zmq_msg_t corr;
    zmq_msg_t body;
} zb_reply_t;

//  Receive one reply from a DEALER (a leading empty frame is skipped).
//  0 on success; -1 when interrupted or the message does not have exactly
//  three frames (all its frames are consumed either way).
int zb_wire_recv_reply (void *sock, zb_reply_t *reply);
void zb_reply_close (zb_reply_t *reply);
bool zb_reply_is_ok (zb_reply_t *reply);

//  One request/reply exchange on a fresh DEALER connected to endpoint, waiting at
//  most timeout_ms. On 0, *result holds the unpacked reply body (caller calls
//  msgpack_unpacked_destroy). On -1 (no reply in time, bad reply) or -2 (the
//  broker answered ERROR) err says what happened, naming the endpoint or the code.
int zb_wire_call (const char *endpoint, const char *command,
                  const void *body, size_t bodylen, int timeout_ms,
                  msgpack_unpacked *result, char *err, size_t errlen);

//  Publish header: global sequence and per-topic sequence, big-endian uint64 each.
void zb_header_encode (uint8_t out[ZB_HEADER_SIZE], uint64_t seq, uint64_t topic_seq);
//  0 on success, -1 when the frame is shorter than ZB_HEADER_SIZE.
int zb_header_decode (const void *data, size_t len, uint64_t *seq, uint64_t *topic_seq);

//  Protocol version 2: a published message carries `count` events of one topic
//  with consecutive seq and topic_seq, the first ones given. One event: the
//  16-byte header above; more: ZB_BATCH_HEADER_SIZE bytes, the count as a
//  big-endian uint32 after the two sequence numbers. Returns the header size.
#define ZB_BATCH_HEADER_SIZE    20
size_t zb_header_encode_batch (uint8_t out[ZB_BATCH_HEADER_SIZE], uint64_t seq,
                               uint64_t topic_seq, uint32_t count);
//  A published header: 16 bytes (count 1), or 20 or more (count at bytes 16-19,
//  later bytes ignored). 0 on success; -1 when shorter than 16 bytes, 17 to 19
//  bytes long, or the count is 0.
int zb_header_decode_batch (const void *data, size_t len, uint64_t *seq, uint64_t *topic_seq,
                            uint32_t *count);

//  The exact-match subscription/topic frame for a detail-type: its bytes plus
//  one NUL. Returns the frame length, or 0 when it does not fit in outsize.
size_t zb_topic_encode (const char *detail_type, size_t len, char *out, size_t outsize);

#endif
