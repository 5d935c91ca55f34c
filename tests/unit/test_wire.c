/*  test_wire.c - the frames of docs/PROTOCOL.md (common/wire.c): publish header,
    topic frame, request/reply framing on a DEALER, and zb_wire_call against a
    scripted ROUTER server. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <czmq.h>
#include "wire.h"

//  --------------------------------------------------------------------------
//  Publish header and topic frame

static void
test_header_is_two_big_endian_uint64 (void **state)
{
    (void) state;
    uint8_t out [ZB_HEADER_SIZE];
    zb_header_encode (out, 0x0102030405060708ULL, 42);
    const uint8_t expect [ZB_HEADER_SIZE] = {
        1, 2, 3, 4, 5, 6, 7, 8,
        0, 0, 0, 0, 0, 0, 0, 42
    };
    assert_memory_equal (out, expect, ZB_HEADER_SIZE);
}

static void
test_header_round_trip_extremes (void **state)
{
    (void) state;
    const uint64_t values [] = { 0, 1, 255, 256, UINT32_MAX, (uint64_t) UINT32_MAX + 1, UINT64_MAX };
    for (size_t i = 0; i < sizeof values / sizeof values [0]; i++) {
        uint8_t frame [ZB_HEADER_SIZE];
        uint64_t seq = 0, topic_seq = 0;
        zb_header_encode (frame, values [i], UINT64_MAX - values [i]);
        assert_int_equal (zb_header_decode (frame, sizeof frame, &seq, &topic_seq), 0);
        assert_true (seq == values [i]);
        assert_true (topic_seq == UINT64_MAX - values [i]);
    }
}

static void
test_header_decode_accepts_longer_rejects_shorter (void **state)
{
    (void) state;
    uint8_t frame [ZB_HEADER_SIZE + 8];
    memset (frame, 0xEE, sizeof frame);
    zb_header_encode (frame, 7, 3);
    uint64_t seq = 0, topic_seq = 0;
    //  Readers must ignore extra bytes (a later protocol may add fields)
    assert_int_equal (zb_header_decode (frame, sizeof frame, &seq, &topic_seq), 0);
    assert_true (seq == 7 && topic_seq == 3);
    seq = topic_seq = 99;
    assert_int_equal (zb_header_decode (frame, ZB_HEADER_SIZE - 1, &seq, &topic_seq), -1);
    assert_int_equal (zb_header_decode (frame, 0, &seq, &topic_seq), -1);
    assert_int_equal (zb_header_decode (NULL, 0, &seq, &topic_seq), -1);
    assert_true (seq == 99 && topic_seq == 99);     //  untouched on failure
}

//  Protocol version 2: the count after the two sequence numbers
static void
test_batch_header (void **state)
{
    (void) state;
    uint8_t frame [ZB_BATCH_HEADER_SIZE + 4];
    memset (frame, 0xEE, sizeof frame);
    assert_int_equal (zb_header_encode_batch (frame, 7, 3, 1), ZB_HEADER_SIZE);
    assert_int_equal (frame [ZB_HEADER_SIZE], 0xEE);      //  nothing after one event's header
    uint64_t seq = 0, topic_seq = 0;
    uint32_t count = 0;
    assert_int_equal (zb_header_decode_batch (frame, ZB_HEADER_SIZE, &seq, &topic_seq, &count), 0);
    assert_true (seq == 7 && topic_seq == 3 && count == 1);
    assert_int_equal (zb_header_encode_batch (frame, 8, 4, 0x01020304), ZB_BATCH_HEADER_SIZE);
    const uint8_t expect [4] = { 1, 2, 3, 4 };
    assert_memory_equal (frame + ZB_HEADER_SIZE, expect, 4);
    //  Bytes after the count are ignored
    assert_int_equal (zb_header_decode_batch (frame, sizeof frame, &seq, &topic_seq, &count), 0);
    assert_true (seq == 8 && topic_seq == 4 && count == 0x01020304);
    //  Garbage: 17 to 19 bytes, a count of 0, too short
    count = 99;
    for (size_t len = ZB_HEADER_SIZE + 1; len < ZB_BATCH_HEADER_SIZE; len++)
        assert_int_equal (zb_header_decode_batch (frame, len, &seq, &topic_seq, &count), -1);
    memset (frame + ZB_HEADER_SIZE, 0, 4);
    assert_int_equal (zb_header_decode_batch (frame, sizeof frame, &seq, &topic_seq, &count), -1);
    assert_int_equal (zb_header_decode_batch (frame, 3, &seq, &topic_seq, &count), -1);
    assert_int_equal (zb_header_decode_batch (NULL, 0, &seq, &topic_seq, &count), -1);
    assert_int_equal (count, 99);
}

static void
test_topic_frame_is_name_plus_nul (void **state)
{
    (void) state;
    char out [64];
    memset (out, 'X', sizeof out);
    size_t len = zb_topic_encode ("sales-events", 12, out, sizeof out);
    assert_int_equal (len, 13);
    assert_memory_equal (out, "sales-events\0", 13);
    //  Exactly fitting, and one byte short
    assert_int_equal (zb_topic_encode ("abc", 3, out, 4), 4);
    assert_memory_equal (out, "abc\0", 4);
    assert_int_equal (zb_topic_encode ("abcd", 4, out, 4), 0);
    //  The longest detail-type fits a ZB_MAX_DETAIL_TYPE + 1 buffer
    char name [ZB_MAX_DETAIL_TYPE];
    memset (name, 'n', sizeof name);
    char frame [ZB_MAX_DETAIL_TYPE + 1];
    assert_int_equal (zb_topic_encode (name, sizeof name, frame, sizeof frame), ZB_MAX_DETAIL_TYPE + 1);
    assert_int_equal (frame [ZB_MAX_DETAIL_TYPE], 0);
}

//  --------------------------------------------------------------------------
//  Request and reply framing over a DEALER/ROUTER pair

typedef struct {
    zsock_t *router;
    zsock_t *dealer;
} pair_t;

static int
s_pair_setup (void **state)
{
    static int instance = 0;
    pair_t *pair = (pair_t *) calloc (1, sizeof (pair_t));
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://test-wire-%d", ++instance);
    pair->router = zsock_new (ZMQ_ROUTER);
    assert_int_equal (zsock_bind (pair->router, "%s", endpoint), 0);
    pair->dealer = zsock_new (ZMQ_DEALER);
    assert_int_equal (zsock_connect (pair->dealer, "%s", endpoint), 0);
    zsock_set_rcvtimeo (pair->router, 2000);
    zsock_set_rcvtimeo (pair->dealer, 2000);
    *state = pair;
    return 0;
}

static int
s_pair_teardown (void **state)
{
    pair_t *pair = (pair_t *) *state;
    zsock_destroy (&pair->dealer);
    zsock_destroy (&pair->router);
    free (pair);
    return 0;
}

//  The router's view of the last request: identity then frames.
static zmsg_t *
s_router_recv (pair_t *pair)
{
    zmsg_t *msg = zmsg_recv (pair->router);
    assert_non_null (msg);
    return msg;
}

//  Send [identity] + the given frames (NULL-terminated, each a C string;
//  "" is an empty frame) from the router.
static void
s_router_send (pair_t *pair, zframe_t *identity, ...)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &identity);
    va_list args;
    va_start (args, identity);
    const char *frame;
    while ((frame = va_arg (args, const char *)))
        zmsg_addmem (msg, frame, strlen (frame));
    va_end (args);
    assert_int_equal (zmsg_send (&msg, pair->router), 0);
}

static void
test_request_is_three_frames_without_delimiter (void **state)
{
    pair_t *pair = (pair_t *) *state;
    void *dealer = zsock_resolve (pair->dealer);
    const uint8_t corr [8] = { 0, 0, 0, 0, 0, 0, 0, 7 };
    assert_int_equal (zb_wire_send_request (dealer, ZB_CMD_PUT, corr, sizeof corr, "\x90", 1), 0);
    zmsg_t *msg = s_router_recv (pair);
    assert_int_equal (zmsg_size (msg), 4);         //  identity + 3
    zframe_t *identity = zmsg_pop (msg);
    zframe_t *command = zmsg_pop (msg);
    zframe_t *c = zmsg_pop (msg);
    zframe_t *body = zmsg_pop (msg);
    assert_true (zframe_streq (command, "PUT"));
    assert_int_equal (zframe_size (c), 8);
    assert_memory_equal (zframe_data (c), corr, 8);
    assert_int_equal (zframe_size (body), 1);
    assert_int_equal (zframe_data (body) [0], 0x90);
    zframe_destroy (&identity);
    zframe_destroy (&command);
    zframe_destroy (&c);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
}

static void
test_request_with_empty_corr_and_body (void **state)
{
    pair_t *pair = (pair_t *) *state;
    assert_int_equal (zb_wire_send_request (zsock_resolve (pair->dealer), ZB_CMD_PING,
                                            NULL, 0, NULL, 0), 0);
    zmsg_t *msg = s_router_recv (pair);
    assert_int_equal (zmsg_size (msg), 4);
    zframe_t *frame = zmsg_first (msg);             //  identity
    frame = zmsg_next (msg);
    assert_true (zframe_streq (frame, "PING"));
    assert_int_equal (zframe_size (zmsg_next (msg)), 0);
    assert_int_equal (zframe_size (zmsg_next (msg)), 0);
    zmsg_destroy (&msg);
}

//  Send a request so the router learns the dealer's identity; returns it.
static zframe_t *
s_identity (pair_t *pair)
{
    assert_int_equal (zb_wire_send_request (zsock_resolve (pair->dealer), ZB_CMD_PING,
                                            "c", 1, NULL, 0), 0);
    zmsg_t *msg = s_router_recv (pair);
    zframe_t *identity = zmsg_pop (msg);
    zmsg_destroy (&msg);
    return identity;
}

static void
test_reply_ok_and_error (void **state)
{
    pair_t *pair = (pair_t *) *state;
    void *dealer = zsock_resolve (pair->dealer);
    zframe_t *identity = s_identity (pair);
    s_router_send (pair, zframe_dup (identity), "OK", "c1", "\x80", NULL);
    s_router_send (pair, identity, "ERROR", "c2", "\x80", NULL);

    zb_reply_t reply;
    assert_int_equal (zb_wire_recv_reply (dealer, &reply), 0);
    assert_true (zb_reply_is_ok (&reply));
    assert_int_equal (zmq_msg_size (&reply.corr), 2);
    assert_memory_equal (zmq_msg_data (&reply.corr), "c1", 2);
    assert_int_equal (zmq_msg_size (&reply.body), 1);
    zb_reply_close (&reply);
    zb_reply_close (&reply);                        //  closing twice is harmless

    assert_int_equal (zb_wire_recv_reply (dealer, &reply), 0);
    assert_false (zb_reply_is_ok (&reply));
    assert_memory_equal (zmq_msg_data (&reply.status), "ERROR", 5);
    zb_reply_close (&reply);
}

static void
test_reply_delimiter_is_skipped (void **state)
{
    pair_t *pair = (pair_t *) *state;
    zframe_t *identity = s_identity (pair);
    s_router_send (pair, identity, "", "OK", "", "\xc0", NULL);
    zb_reply_t reply;
    assert_int_equal (zb_wire_recv_reply (zsock_resolve (pair->dealer), &reply), 0);
    assert_true (zb_reply_is_ok (&reply));
    assert_int_equal (zmq_msg_size (&reply.corr), 0);
    assert_int_equal (zmq_msg_size (&reply.body), 1);
    zb_reply_close (&reply);
}

static void
test_bad_replies_are_consumed_whole (void **state)
{
    pair_t *pair = (pair_t *) *state;
    void *dealer = zsock_resolve (pair->dealer);
    zframe_t *identity = s_identity (pair);
    //  Two frames, four frames, a lone frame, a delimiter and two frames:
    //  each fails, and none leaves a frame behind for the next receive
    s_router_send (pair, zframe_dup (identity), "OK", "x", NULL);
    s_router_send (pair, zframe_dup (identity), "OK", "x", "y", "z", NULL);
    s_router_send (pair, zframe_dup (identity), "OK", NULL);
    s_router_send (pair, zframe_dup (identity), "", "OK", "x", NULL);
    s_router_send (pair, identity, "OK", "good", "\xc3", NULL);
    zb_reply_t reply;
    for (int i = 0; i < 4; i++) {
        assert_int_equal (zb_wire_recv_reply (dealer, &reply), -1);
        //  A failed receive leaves empty messages: closing is still safe
        assert_int_equal (zmq_msg_size (&reply.status), 0);
        zb_reply_close (&reply);
    }
    assert_int_equal (zb_wire_recv_reply (dealer, &reply), 0);
    assert_memory_equal (zmq_msg_data (&reply.corr), "good", 4);
    zb_reply_close (&reply);
}

static void
test_recv_reply_times_out (void **state)
{
    pair_t *pair = (pair_t *) *state;
    zsock_set_rcvtimeo (pair->dealer, 50);
    zb_reply_t reply;
    assert_int_equal (zb_wire_recv_reply (zsock_resolve (pair->dealer), &reply), -1);
    zb_reply_close (&reply);
}

//  --------------------------------------------------------------------------
//  zb_wire_call against a scripted server: the command says how it answers.
//    PING   OK {"status": "ok"}
//    FAIL   ERROR {"code": "UnknownCommand", "message": "no such thing"}
//    MUTE   no answer
//    JUNK   OK with a body that is not msgpack
//    STALE  first a reply with another correlation id, then the real one
//    SHORT  first a two-frame message, then the real reply
//    BARE   ERROR with an empty map

static void
s_pack_map_str (msgpack_packer *pk, const char *k, const char *v)
{
    msgpack_pack_str (pk, strlen (k));
    msgpack_pack_str_body (pk, k, strlen (k));
    msgpack_pack_str (pk, strlen (v));
    msgpack_pack_str_body (pk, v, strlen (v));
}

static void
s_server (zsock_t *pipe, void *args)
{
    char *endpoint = (char *) args;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (port > 0);
    snprintf (endpoint, 64, "tcp://127.0.0.1:%d", port);
    zsock_signal (pipe, 0);

    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which != router)
            break;                      //  $TERM or interrupted
        zmsg_t *msg = zmsg_recv (router);
        if (!msg)
            break;
        zframe_t *identity = zmsg_pop (msg);
        char *command = zmsg_popstr (msg);
        zframe_t *corr = zmsg_pop (msg);

        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        const char *status = "OK";
        if (streq (command, "FAIL")) {
            status = "ERROR";
            msgpack_pack_map (&pk, 2);
            s_pack_map_str (&pk, "code", "UnknownCommand");
            s_pack_map_str (&pk, "message", "no such thing");
        }
        else
        if (streq (command, "BARE")) {
            status = "ERROR";
            msgpack_pack_map (&pk, 0);
        }
        else
        if (streq (command, "JUNK"))
            msgpack_sbuffer_write (&sbuf, "\xc1\xc1", 2);
        else {
            msgpack_pack_map (&pk, 1);
            s_pack_map_str (&pk, "status", "ok");
        }
        if (streq (command, "STALE"))
            zsock_send (router, "fsss", identity, "OK", "not-yours", "\x80");
        if (streq (command, "SHORT"))
            zsock_send (router, "fs", identity, "OK");
        if (!streq (command, "MUTE"))
            zsock_send (router, "fsfb", identity, status, corr, sbuf.data, sbuf.size);
        msgpack_sbuffer_destroy (&sbuf);
        zframe_destroy (&identity);
        zframe_destroy (&corr);
        zstr_free (&command);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

typedef struct {
    zactor_t *actor;
    char endpoint [64];
} server_t;

static int
s_server_setup (void **state)
{
    server_t *server = (server_t *) calloc (1, sizeof (server_t));
    server->actor = zactor_new (s_server, server->endpoint);
    assert_non_null (server->actor);
    *state = server;
    return 0;
}

static int
s_server_teardown (void **state)
{
    server_t *server = (server_t *) *state;
    zactor_destroy (&server->actor);
    free (server);
    return 0;
}

static void
test_call_ok (void **state)
{
    server_t *server = (server_t *) *state;
    msgpack_unpacked result;
    char err [256];
    int rc = zb_wire_call (server->endpoint, ZB_CMD_PING, NULL, 0, 2000, &result, err, sizeof err);
    assert_int_equal (rc, 0);
    assert_int_equal (result.data.type, MSGPACK_OBJECT_MAP);
    assert_int_equal (result.data.via.map.size, 1);
    msgpack_object *value = &result.data.via.map.ptr [0].val;
    assert_int_equal (value->type, MSGPACK_OBJECT_STR);
    assert_int_equal (value->via.str.size, 2);
    assert_memory_equal (value->via.str.ptr, "ok", 2);
    msgpack_unpacked_destroy (&result);
}

static void
test_call_error_reply (void **state)
{
    server_t *server = (server_t *) *state;
    msgpack_unpacked result;
    char err [256];
    assert_int_equal (zb_wire_call (server->endpoint, "FAIL", NULL, 0, 2000, &result, err, sizeof err), -2);
    assert_string_equal (err, "UnknownCommand: no such thing");
    msgpack_unpacked_destroy (&result);             //  harmless after a failure
    assert_int_equal (zb_wire_call (server->endpoint, "BARE", NULL, 0, 2000, &result, err, sizeof err), -2);
    assert_non_null (strstr (err, "has no code"));
}

static void
test_call_times_out (void **state)
{
    server_t *server = (server_t *) *state;
    msgpack_unpacked result;
    char err [256];
    int64_t start = zclock_mono ();
    assert_int_equal (zb_wire_call (server->endpoint, "MUTE", NULL, 0, 150, &result, err, sizeof err), -1);
    int64_t took = zclock_mono () - start;
    assert_true (took >= 140 && took < 2000);
    char expect [256];
    snprintf (expect, sizeof expect, "no reply from %s within 150 ms", server->endpoint);
    assert_string_equal (err, expect);
}

static void
test_call_nobody_listening (void **state)
{
    (void) state;
    //  Bind and close a port so that nothing listens there
    zsock_t *probe = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (probe, "tcp://127.0.0.1:*");
    assert_true (port > 0);
    zsock_destroy (&probe);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    msgpack_unpacked result;
    char err [256];
    assert_int_equal (zb_wire_call (endpoint, ZB_CMD_PING, NULL, 0, 100, &result, err, sizeof err), -1);
    assert_non_null (strstr (err, "no reply from"));
}

static void
test_call_bad_reply_body (void **state)
{
    server_t *server = (server_t *) *state;
    msgpack_unpacked result;
    char err [256];
    assert_int_equal (zb_wire_call (server->endpoint, "JUNK", NULL, 0, 2000, &result, err, sizeof err), -1);
    assert_non_null (strstr (err, "bad reply from"));
}

static void
test_call_skips_foreign_and_broken_replies (void **state)
{
    server_t *server = (server_t *) *state;
    msgpack_unpacked result;
    char err [256];
    assert_int_equal (zb_wire_call (server->endpoint, "STALE", NULL, 0, 2000, &result, err, sizeof err), 0);
    assert_int_equal (result.data.type, MSGPACK_OBJECT_MAP);
    msgpack_unpacked_destroy (&result);
    assert_int_equal (zb_wire_call (server->endpoint, "SHORT", NULL, 0, 2000, &result, err, sizeof err), 0);
    assert_int_equal (result.data.type, MSGPACK_OBJECT_MAP);
    msgpack_unpacked_destroy (&result);
}

static void
test_call_bad_endpoint (void **state)
{
    (void) state;
    msgpack_unpacked result;
    char err [256];
    assert_int_equal (zb_wire_call ("nonsense", ZB_CMD_PING, NULL, 0, 100, &result, err, sizeof err), -1);
    assert_non_null (strstr (err, "cannot connect to nonsense"));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_header_is_two_big_endian_uint64),
        cmocka_unit_test (test_header_round_trip_extremes),
        cmocka_unit_test (test_header_decode_accepts_longer_rejects_shorter),
        cmocka_unit_test (test_batch_header),
        cmocka_unit_test (test_topic_frame_is_name_plus_nul),
        cmocka_unit_test_setup_teardown (test_request_is_three_frames_without_delimiter,
                                         s_pair_setup, s_pair_teardown),
        cmocka_unit_test_setup_teardown (test_request_with_empty_corr_and_body,
                                         s_pair_setup, s_pair_teardown),
        cmocka_unit_test_setup_teardown (test_reply_ok_and_error, s_pair_setup, s_pair_teardown),
        cmocka_unit_test_setup_teardown (test_reply_delimiter_is_skipped, s_pair_setup, s_pair_teardown),
        cmocka_unit_test_setup_teardown (test_bad_replies_are_consumed_whole,
                                         s_pair_setup, s_pair_teardown),
        cmocka_unit_test_setup_teardown (test_recv_reply_times_out, s_pair_setup, s_pair_teardown),
        cmocka_unit_test_setup_teardown (test_call_ok, s_server_setup, s_server_teardown),
        cmocka_unit_test_setup_teardown (test_call_error_reply, s_server_setup, s_server_teardown),
        cmocka_unit_test_setup_teardown (test_call_times_out, s_server_setup, s_server_teardown),
        cmocka_unit_test (test_call_nobody_listening),
        cmocka_unit_test_setup_teardown (test_call_bad_reply_body, s_server_setup, s_server_teardown),
        cmocka_unit_test_setup_teardown (test_call_skips_foreign_and_broken_replies,
                                         s_server_setup, s_server_teardown),
        cmocka_unit_test (test_call_bad_endpoint),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
