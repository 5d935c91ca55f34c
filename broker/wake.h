/*  wake.h - wake a blocked zmq_poll at once on SIGINT and SIGTERM.

    CZMQ's signal handler only sets zsys_interrupted. zloop (and any loop
    like it) checks that flag before and after each zmq_poll, so a signal that
    lands after the check but before the poll blocks is seen only when the
    poll ends: at the next timer or message, up to the longest poll timeout
    later. The fix is the self-pipe trick (the zguide's interrupt.c): a
    handler chained after CZMQ's writes a byte to a pipe whose read end is in
    the poll set, so the poll returns whenever the signal lands.

        int fd = zb_wake_install ();        //  after zsys_init (first socket)
        zmq_pollitem_t item = { NULL, fd, ZMQ_POLLIN, 0 };
        zloop_poller (loop, &item, handler, arg);
        ...
        zb_wake_uninstall ();

    Process-wide: installs nest (the handler and the pipe stay until the last
    uninstall). Not thread-safe: call from the main thread. */

#ifndef ZB_BROKER_WAKE_H_INCLUDED
#define ZB_BROKER_WAKE_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  Chain our handler after the SIGINT and SIGTERM handlers in place (CZMQ's,
//  installed by zsys_init). Returns the read end of the wake pipe, readable
//  once either signal has arrived; -1 with errno set when there is nothing to
//  chain to (no handler function installed: ENOENT, e.g. ZSYS_SIGHANDLER=false)
//  or no pipe could be made.
int
    zb_wake_install (void);

//  Undo one zb_wake_install that succeeded. The last one puts the previous
//  handlers back (unless someone replaced ours meanwhile) and closes the pipe.
void
    zb_wake_uninstall (void);

//  Read what the signals wrote, so the wake fd stops being readable. Safe
//  to call at any time; does nothing when not installed.
void
    zb_wake_drain (void);

#ifdef __cplusplus
}
#endif

#endif
