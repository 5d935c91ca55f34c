/*  test_broker_edge.c - the zloop reader on ZMQ_FD (broker/edge.c): input
    that came before the loop started, input left by a handler that reads one
    message a run, a handler whose own sends take the socket's wake-up signal,
    a handler that is called with nothing to read, readers ended inside and
    outside the loop and by a timer in the turn their input is ready. Every loop is bounded by a timer that fails the test. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <czmq.h>

#include "../../broker/edge.h"

typedef struct {
    zb_edge_t edge;
    int received;               //  messages read by the handler
    int calls;                  //  handler runs
    int empty_calls;            //  runs that found nothing to read
    int want;                   //  stop the loop at this many
    bool echo;                  //  answer each message on the same socket
    bool end_in_handler;        //  end the reader from its own handler
    bool timed_out;
} served_t;

static int
s_timeout (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    ((served_t *) arg)->timed_out = true;
    return -1;
}

static int
s_stop (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    (void) arg;
    return -1;
}

//  One message a run at most (so that input is left over), read without blocking
static int
s_on_input (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    served_t *self = (served_t *) arg;
    self->calls++;
    zmsg_t *msg = NULL;
    if (zsock_events (sock) & ZMQ_POLLIN)
        msg = zmsg_recv (sock);
    if (!msg) {
        self->empty_calls++;
        return 0;
    }
    self->received++;
    if (self->echo)
        zmsg_send (&msg, sock);
    zmsg_destroy (&msg);
    if (self->end_in_handler)
        zb_edge_reader_end (&self->edge);
    return self->received >= self->want ? -1 : 0;
}

//  A PULL socket at endpoint with count messages queued from a PUSH (*push)
static zsock_t *
s_queued (const char *endpoint, int count, zsock_t **push)
{
    zsock_t *pull = zsock_new (ZMQ_PULL);
    assert_non_null (pull);
    assert_int_equal (zsock_bind (pull, "%s", endpoint), 0);
    *push = zsock_new (ZMQ_PUSH);
    assert_non_null (*push);
    assert_int_equal (zsock_connect (*push, "%s", endpoint), 0);
    for (int i = 0; i < count; i++)
        assert_int_equal (zstr_sendf (*push, "%d", i), 0);
    return pull;
}

static void
s_run (zloop_t *loop, served_t *served, size_t limit_ms)
{
    int timer = zloop_timer (loop, limit_ms, 1, s_timeout, served);
    assert_int_not_equal (timer, -1);
    zloop_start (loop);
    //  zloop_timer_end after the loop ended removes the timer at once
    zloop_timer_end (loop, timer);
}

static void
test_input_before_the_loop_and_left_over (void **state)
{
    (void) state;
    //  All of it queued before the reader exists, and the socket's signal
    //  taken (asking for its events reads the commands): nothing will wake
    //  the descriptor
    zsock_t *push;
    zsock_t *pull = s_queued ("inproc://edge-left-over", 100, &push);
    for (int i = 0; i < 100 && !(zsock_events (pull) & ZMQ_POLLIN); i++)
        zclock_sleep (10);
    assert_true (zsock_events (pull) & ZMQ_POLLIN);
    zloop_t *loop = zloop_new ();
    served_t served = { .want = 100 };
    assert_int_equal (zb_edge_reader (&served.edge, loop, pull, s_on_input, &served), 0);
    s_run (loop, &served, 5000);
    assert_false (served.timed_out);
    assert_int_equal (served.received, 100);
    zb_edge_reader_end (&served.edge);
    zb_edge_reader_end (&served.edge);          //  twice: harmless
    zloop_destroy (&loop);
    zsock_destroy (&push);
    zsock_destroy (&pull);
}

//  A peer that sends the next request only when it has the reply: every
//  request arrives while (or just after) the handler sends on the socket,
//  whose send may take the signal. 2,000 round trips must all complete.
static void *
s_client (void *arg)
{
    zsock_t *dealer = zsock_new_dealer ((const char *) arg);
    int answered = 0;
    zsock_set_rcvtimeo (dealer, 5000);
    for (int i = 0; i < 2000; i++) {
        if (zstr_sendf (dealer, "%d", i) != 0)
            break;
        char *reply = zstr_recv (dealer);
        if (!reply)
            break;
        zstr_free (&reply);
        answered++;
    }
    zsock_destroy (&dealer);
    return (void *) (intptr_t) answered;
}

static void
test_handler_sends_on_its_socket (void **state)
{
    (void) state;
    zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
    assert_non_null (router);
    char *endpoint = zsock_last_endpoint (router);
    zloop_t *loop = zloop_new ();
    served_t served = { .want = 2000, .echo = true };
    assert_int_equal (zb_edge_reader (&served.edge, loop, router, s_on_input, &served), 0);
    pthread_t client;
    assert_int_equal (pthread_create (&client, NULL, s_client, endpoint), 0);
    s_run (loop, &served, 20000);
    void *answered = NULL;
    pthread_join (client, &answered);
    assert_false (served.timed_out);
    assert_int_equal (served.received, 2000);
    assert_int_equal ((int) (intptr_t) answered, 2000);
    zb_edge_reader_end (&served.edge);
    zloop_destroy (&loop);
    zsock_destroy (&router);
    zstr_free (&endpoint);
}

static void
test_called_with_nothing_to_read (void **state)
{
    (void) state;
    zsock_t *pull = zsock_new_pull ("inproc://edge-nothing");
    assert_non_null (pull);
    zloop_t *loop = zloop_new ();
    served_t served = { .want = 1 };
    assert_int_equal (zb_edge_reader (&served.edge, loop, pull, s_on_input, &served), 0);
    //  The first turn runs the handler (input may have come before the
    //  reader); with nothing there it reads nothing, and the loop sleeps
    zloop_timer (loop, 50, 1, s_stop, NULL);
    zloop_start (loop);
    assert_int_equal (served.received, 0);
    assert_true (served.calls >= 1 && served.calls <= 2);
    assert_int_equal (served.empty_calls, served.calls);
    zb_edge_reader_end (&served.edge);
    zloop_destroy (&loop);
    zsock_destroy (&pull);
}

static void
test_ended_reader_is_not_called (void **state)
{
    (void) state;
    zsock_t *push;
    zsock_t *pull = s_queued ("inproc://edge-ended", 10, &push);
    zloop_t *loop = zloop_new ();
    //  Ended from its own handler after the first message: the other nine stay
    served_t served = { .want = 10, .end_in_handler = true };
    assert_int_equal (zb_edge_reader (&served.edge, loop, pull, s_on_input, &served), 0);
    zloop_timer (loop, 100, 1, s_stop, NULL);
    zloop_start (loop);
    assert_int_equal (served.received, 1);
    assert_null (served.edge.sock);

    //  Ended before the loop runs: never called
    served_t other = { .want = 10 };
    assert_int_equal (zb_edge_reader (&other.edge, loop, pull, s_on_input, &other), 0);
    zb_edge_reader_end (&other.edge);
    zloop_timer (loop, 50, 1, s_stop, NULL);
    zloop_start (loop);
    assert_int_equal (other.calls, 0);
    zloop_destroy (&loop);
    zsock_destroy (&push);
    zsock_destroy (&pull);
}

static int
s_end_reader (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zb_edge_reader_end (&((served_t *) arg)->edge);
    return 0;
}

//  zloop runs timers before the pollers of the same turn, from a copy of the
//  poll set: a timer that ends a reader whose input is ready must not see
//  that reader's handler called afterwards.
static void
test_ended_by_a_timer_in_the_same_turn (void **state)
{
    (void) state;
    zsock_t *push;
    zsock_t *pull = s_queued ("inproc://edge-timer-end", 10, &push);
    zloop_t *loop = zloop_new ();
    served_t served = { .want = 10 };
    assert_int_equal (zb_edge_reader (&served.edge, loop, pull, s_on_input, &served), 0);
    zloop_timer (loop, 0, 1, s_end_reader, &served);
    zloop_timer (loop, 50, 1, s_stop, NULL);
    zloop_start (loop);
    assert_int_equal (served.calls, 0);
    zloop_destroy (&loop);
    zsock_destroy (&push);
    zsock_destroy (&pull);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_input_before_the_loop_and_left_over),
        cmocka_unit_test (test_handler_sends_on_its_socket),
        cmocka_unit_test (test_called_with_nothing_to_read),
        cmocka_unit_test (test_ended_reader_is_not_called),
        cmocka_unit_test (test_ended_by_a_timer_in_the_same_turn),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
