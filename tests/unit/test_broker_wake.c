/*  test_broker_wake.c - the broker's signal wake pipe (broker/wake.c): a
    SIGINT or SIGTERM that lands before zmq_poll blocks still makes it return
    at once, CZMQ's handler still runs, installs nest, uninstall restores. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>

#include "../../broker/wake.h"

//  zmq_poll on the wake fd: 1 when readable, 0 on timeout
static int
s_poll (int fd, long timeout_ms)
{
    zmq_pollitem_t item = { NULL, fd, ZMQ_POLLIN, 0 };
    int rc = zmq_poll (&item, 1, timeout_ms);
    assert_true (rc == 0 || rc == 1);
    return rc;
}

static void
test_signal_before_the_poll_wakes_it (void **state)
{
    (void) state;
    const int signals [] = { SIGTERM, SIGINT };
    int fd = zb_wake_install ();
    assert_true (fd >= 0);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal (s_poll (fd, 0), 0);
        zsys_interrupted = 0;
        //  The signal lands after any check of zsys_interrupted, before the
        //  poll: with CZMQ's handler alone this poll would wait 5 s
        raise (signals [i]);
        assert_int_equal (zsys_interrupted, 1);         //  CZMQ's handler ran
        int64_t start = zclock_mono ();
        assert_int_equal (s_poll (fd, 5000), 1);
        assert_true (zclock_mono () - start < 1000);
        //  Drained, the fd is quiet until the next signal
        zb_wake_drain ();
        assert_int_equal (s_poll (fd, 0), 0);
        zsys_interrupted = 0;
    }
    zb_wake_uninstall ();
}

static void
test_uninstall_puts_czmq_handler_back (void **state)
{
    (void) state;
    struct sigaction before, during, after;
    assert_int_equal (sigaction (SIGTERM, NULL, &before), 0);
    int fd = zb_wake_install ();
    assert_true (fd >= 0);
    assert_int_equal (sigaction (SIGTERM, NULL, &during), 0);
    assert_true (during.sa_handler != before.sa_handler);
    assert_int_equal (during.sa_flags, before.sa_flags);   //  no SA_RESTART added
    zb_wake_uninstall ();
    assert_int_equal (sigaction (SIGTERM, NULL, &after), 0);
    assert_true (after.sa_handler == before.sa_handler);
    //  The pipe is closed; signals still set zsys_interrupted
    assert_int_equal (fcntl (fd, F_GETFD), -1);
    zsys_interrupted = 0;
    raise (SIGTERM);
    assert_int_equal (zsys_interrupted, 1);
    zsys_interrupted = 0;
    //  Draining or uninstalling again when not installed does nothing
    zb_wake_drain ();
    zb_wake_uninstall ();
}

static void
test_installs_nest (void **state)
{
    (void) state;
    int fd = zb_wake_install ();
    assert_true (fd >= 0);
    assert_int_equal (zb_wake_install (), fd);
    zb_wake_uninstall ();
    //  Still installed for the outer user
    raise (SIGTERM);
    assert_int_equal (s_poll (fd, 1000), 1);
    zb_wake_drain ();
    zsys_interrupted = 0;
    zb_wake_uninstall ();
    assert_int_equal (fcntl (fd, F_GETFD), -1);
}

static void
test_nothing_to_chain_to (void **state)
{
    (void) state;
    //  CZMQ's handling off (as with ZSYS_SIGHANDLER=false): the default
    //  action stays, we install nothing
    struct sigaction czmq, dfl, current;
    memset (&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    assert_int_equal (sigaction (SIGTERM, &dfl, &czmq), 0);
    errno = 0;
    assert_int_equal (zb_wake_install (), -1);
    assert_int_equal (errno, ENOENT);
    assert_int_equal (sigaction (SIGTERM, NULL, &current), 0);
    assert_true (current.sa_handler == SIG_DFL);
    //  Nor when the signal is ignored
    dfl.sa_handler = SIG_IGN;
    assert_int_equal (sigaction (SIGTERM, &dfl, NULL), 0);
    assert_int_equal (zb_wake_install (), -1);
    //  CZMQ's back: installs again
    assert_int_equal (sigaction (SIGTERM, &czmq, NULL), 0);
    int fd = zb_wake_install ();
    assert_true (fd >= 0);
    zb_wake_uninstall ();
}

int
main (void)
{
    zsys_init ();                   //  installs CZMQ's SIGINT/SIGTERM handler
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_signal_before_the_poll_wakes_it),
        cmocka_unit_test (test_uninstall_puts_czmq_handler_back),
        cmocka_unit_test (test_installs_nest),
        cmocka_unit_test (test_nothing_to_chain_to),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
