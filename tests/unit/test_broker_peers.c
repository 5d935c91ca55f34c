/*  test_broker_peers.c - connections counted from the socket monitor, a
    re-created socket watched again, active identities forgotten after a
    minute (broker/peers.c). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <czmq.h>

#include "../../broker/peers.h"

static int
s_stop (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    (void) arg;
    return -1;
}

//  Serve the loop for a moment (its readers run), then return
static void
s_turn (zloop_t *loop)
{
    zloop_timer (loop, 10, 1, s_stop, NULL);
    zloop_start (loop);
}

static uint64_t
s_wait (zloop_t *loop, zb_peers_t *peers, size_t index, uint64_t want)
{
    for (int i = 0; i < 500 && zb_peers_connections (peers, index) != want; i++)
        s_turn (loop);
    return zb_peers_connections (peers, index);
}

static void
test_connections_and_rewatch (void **state)
{
    (void) state;
    zloop_t *loop = zloop_new ();
    zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
    assert_non_null (router);
    char *endpoint = zsock_last_endpoint (router);
    void *sockets [1] = { zsock_resolve (router) };
    char err [256];
    zb_peers_t *peers = zb_peers_new (loop, sockets, 1, err, sizeof err);
    assert_non_null (peers);
    assert_int_equal (zb_peers_connections (peers, 0), 0);

    zsock_t *a = zsock_new_dealer (endpoint);
    zsock_t *b = zsock_new_dealer (endpoint);
    assert_int_equal (s_wait (loop, peers, 0, 2), 2);
    zsock_destroy (&a);
    assert_int_equal (s_wait (loop, peers, 0, 1), 1);

    //  The socket is replaced (as the broker re-creates its publish socket)
    zsock_destroy (&router);
    zsock_t *again = zsock_new_router ("tcp://127.0.0.1:*");
    assert_non_null (again);
    assert_int_equal (zb_peers_rewatch (peers, 0, zsock_resolve (again), err, sizeof err), 0);
    assert_int_equal (zb_peers_connections (peers, 0), 0);
    char *endpoint2 = zsock_last_endpoint (again);
    zsock_t *c = zsock_new_dealer (endpoint2);
    assert_int_equal (s_wait (loop, peers, 0, 1), 1);

    zsock_destroy (&b);
    zsock_destroy (&c);
    zb_peers_destroy (&peers);
    assert_null (peers);
    zsock_destroy (&again);
    zstr_free (&endpoint);
    zstr_free (&endpoint2);
    zloop_destroy (&loop);
}

static void
test_active_identities (void **state)
{
    (void) state;
    zloop_t *loop = zloop_new ();
    char err [256];
    zb_peers_t *peers = zb_peers_new (loop, NULL, 0, err, sizeof err);
    assert_non_null (peers);
    uint8_t x [5] = { 0, 1, 2, 3, 4 }, y [5] = { 0, 1, 2, 3, 5 };
    zb_peers_seen (peers, x, 5, 1000);
    zb_peers_seen (peers, x, 5, 1001);
    zb_peers_seen (peers, y, 5, 1002);
    zb_peers_seen (peers, x, 5, 30000);
    assert_int_equal (zb_peers_active (peers, 30000), 2);
    //  y's last request was a minute ago, x's 30 s ago
    assert_int_equal (zb_peers_active (peers, 1002 + ZB_PEERS_ACTIVE_MS), 1);
    assert_int_equal (zb_peers_active (peers, 30000 + ZB_PEERS_ACTIVE_MS), 0);
    //  seen again after being forgotten: counted again
    zb_peers_seen (peers, x, 5, 30000 + ZB_PEERS_ACTIVE_MS + 1);
    assert_int_equal (zb_peers_active (peers, 30000 + ZB_PEERS_ACTIVE_MS + 2), 1);
    //  an identity of any bytes, up to 255
    uint8_t big [255];
    memset (big, 0xff, sizeof big);
    zb_peers_seen (peers, big, sizeof big, 100000);
    assert_int_equal (zb_peers_active (peers, 100000), 2);
    zb_peers_destroy (&peers);
    zloop_destroy (&loop);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_connections_and_rewatch),
        cmocka_unit_test (test_active_identities),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
