/*  test_broker_auth.c - broker/auth.c without sockets: which endpoints may be
    bound in plain text, the token bucket, entry authorization from a table
    (loaded from zconfig text, with keys made by zcert), and the garbage the
    table loader refuses. The CURVE handshakes are tests/system/test_security.py's. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <czmq.h>

#include "../../broker/auth.h"

static void
test_plain_text_only_on_loopback (void **state)
{
    (void) state;
    const char *safe [] = { "tcp://127.0.0.1:5555", "tcp://127.1.2.3:1", "tcp://[::1]:5555",
                            "ipc:///tmp/x", "inproc://x", "tcp://10.0.0.1;127.0.0.1:5",
                            "nonsense://x" };
    const char *unsafe [] = { "tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://[::]:5555",
                              "tcp://localhost:5555", "tcp://eth0:5555", "tcp://127.0.0.1x:5",
                              "tcp://127.0.0.1", "tcp://1270.0.0.1:5", "tcp://192.0.2.1:5",
                              "ws://127.0.0.1:5", "tcp://127.0.0.1;10.0.0.1:5", "udp://*:5",
                              "epgm://eth0;239.1.1.1:5" };
    for (size_t i = 0; i < sizeof safe / sizeof safe [0]; i++)
        assert_true (zb_auth_endpoint_safe (safe [i]));
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe [0]; i++)
        if (zb_auth_endpoint_safe (unsafe [i]))
            fail_msg ("%s taken for a loopback endpoint", unsafe [i]);
}

static void
test_token_bucket (void **state)
{
    (void) state;
    zb_auth_config_t config = { .rate_limit = 10, .rate_burst = 4 };
    bool usage;
    char err [256];
    zb_auth_t *auth = zb_auth_new (&config, &usage, err, sizeof err);
    assert_non_null (auth);
    zb_client_t a = { .identity = "\0\0\0\0\1", .identity_len = 5 };
    zb_client_t b = { .identity = "\0\0\0\0\2", .identity_len = 5 };
    assert_int_equal (zb_auth_admit (auth, &a, 3), 3);
    assert_int_equal (zb_auth_admit (auth, &a, 3), 1);     //  the burst is spent
    assert_int_equal (zb_auth_admit (auth, &a, 1), 0);
    assert_int_equal (zb_auth_admit (auth, &b, 5), 4);     //  another client
    zclock_sleep (250);                                     //  10/s: 2 more
    size_t later = zb_auth_admit (auth, &a, 10);
    assert_true (later >= 2 && later <= 4);
    zb_auth_stats_t stats;
    zb_auth_stats (auth, &stats);
    assert_int_equal (stats.throttled, 2 + 1 + 1 + 10 - later);
    assert_int_equal (zb_auth_tick (auth, NULL, NULL), 0);
    zb_auth_destroy (&auth);
    assert_null (auth);
    //  No limit: everything passes
    config.rate_limit = 0;
    auth = zb_auth_new (&config, &usage, err, sizeof err);
    assert_int_equal (zb_auth_admit (auth, &a, 100000), 100000);
    zb_auth_destroy (&auth);
}

typedef struct {
    char dir [64];
    char allow [96];
    char broker [96];
    char alice_key [41];
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) calloc (1, sizeof (fixture_t));
    strcpy (f->dir, "/tmp/zb-test-auth-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->allow, sizeof f->allow, "%s/allow", f->dir);
    assert_int_equal (zsys_dir_create ("%s", f->allow), 0);
    snprintf (f->broker, sizeof f->broker, "%s/broker", f->dir);
    zcert_t *cert = zcert_new ();
    assert_int_equal (zcert_save (cert, f->broker), 0);
    zcert_destroy (&cert);
    cert = zcert_new ();
    char path [128];
    snprintf (path, sizeof path, "%s/alice", f->allow);
    assert_int_equal (zcert_save_public (cert, path), 0);
    strcpy (f->alice_key, zcert_public_txt (cert));
    zcert_destroy (&cert);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal (system (cmd), 0);
    free (f);
    return 0;
}

//  zb_auth_new with CURVE and the table in text; NULL with err when refused
static zb_auth_t *
s_auth (fixture_t *f, const char *table, char *err, size_t errlen)
{
    zconfig_t *root = zconfig_str_load (table);
    assert_non_null (root);
    char secret [128];
    snprintf (secret, sizeof secret, "%s_secret", f->broker);
    zb_auth_config_t config = {
        .curve_cert = secret, .curve_allow = f->allow,
        .authorization = zconfig_locate (root, "authorization"), .config_path = "test.cfg",
    };
    bool usage;
    zb_auth_t *auth = zb_auth_new (&config, &usage, err, errlen);
    zconfig_destroy (&root);
    return auth;
}

static zb_code_t
s_entry (const zb_client_t *client, const char *source, const char *detail_type)
{
    char err [256];
    return zb_auth_entry (client, (zb_str_t) { source, strlen (source) },
                          (zb_str_t) { detail_type, strlen (detail_type) }, err, sizeof err);
}

static void
test_entry_authorization (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char table [1024], err [512];
    snprintf (table, sizeof table,
              "authorization\n"
              "    alice\n"
              "        key = \"%s\"\n"
              "        source = store-7\n"
              "        source = store-7.*\n"
              "        detail-type = sales-events\n"
              "        topic = sales-*\n", f->alice_key);
    zb_auth_t *auth = s_auth (f, table, err, sizeof err);
    if (!auth)
        fail_msg ("%s", err);
    assert_true (zb_auth_curve (auth));
    //  A client as zb_auth_client would make it: by key
    zb_client_t client = { 0 };
    zmq_msg_t id, frame;
    zmq_msg_init_size (&id, 5);
    zmq_msg_init (&frame);
    //  No User-Id property (no CURVE handshake): refused
    assert_int_equal (zb_auth_client (auth, &id, &frame, &client, err, sizeof err), -1);
    assert_non_null (strstr (err, "not allowed"));
    zmq_msg_close (&id);
    zmq_msg_close (&frame);
    //  A client without a policy (no table) may publish anything; the table's
    //  decisions per key need a CURVE handshake: tests/system/test_security.py
    zb_client_t open = { 0 };
    assert_int_equal (s_entry (&open, "anything", "anything"), ZB_OK);
    zb_auth_destroy (&auth);
}

static void
test_table_garbage_is_refused (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    const char *cases [][2] = {
        { "authorization\n    a\n        key = \"short\"\n", "not a Z85 public key" },
        { "authorization\n    a\n        source = x\n", "needs exactly one of key" },
        { "authorization\n    a\n        cert = alice\n        colour = red\n", "unknown key" },
        { "authorization\n    a\n        cert = alice\n        source = a*b\n", "may only end" },
        { "authorization\n    a\n        cert = alice\n        source = \n", "is not a name" },
        { "authorization\n    a\n        cert = alice\n    b\n        cert = alice\n", "given twice" },
        { "authorization\n    a\n        cert = nothing\n", "cannot read certificate" },
        { "authorization\n    a = x\n", "has a value" },
        { "authorization\n    default\n    default\n", "given twice" },
        { "authorization\n    a\n        cert = alice\n        source\n            x = 1\n", "nested" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char err [512] = "";
        zb_auth_t *auth = s_auth (f, cases [i][0], err, sizeof err);
        if (auth)
            fail_msg ("accepted: %s", cases [i][0]);
        if (!strstr (err, cases [i][1]))
            fail_msg ("case %zu: '%s' lacks '%s'", i, err, cases [i][1]);
    }
    //  And a good one loads
    char err [512];
    zb_auth_t *auth = s_auth (f, "authorization\n    a\n        cert = alice\n"
                                 "        source = *\n    default\n        topic = *\n",
                              err, sizeof err);
    if (!auth)
        fail_msg ("%s", err);
    assert_int_equal (zb_auth_tick (auth, NULL, NULL), 0);     //  nothing changed
    zb_auth_destroy (&auth);
}

int
main (void)
{
    zsys_init ();
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_plain_text_only_on_loopback),
        cmocka_unit_test (test_token_bucket),
        cmocka_unit_test_setup_teardown (test_entry_authorization, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_table_garbage_is_refused, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
