/*  replay.h - replay sessions: REPLAY, CREDIT and CANCEL on the control socket
    (docs/PROTOCOL.md "REPLAY").

    A session is named by (client identity, correlation id). It streams the
    journal's records in [from, to] that pass its topic/prefix filter as EVENT
    messages, never more than the credit the client granted, then END. The
    broker's loop calls zb_replay_serve() while it says there is work; each
    call sends at most ZB_REPLAY_TURN events per session (and ZB_REPLAY_BUDGET
    in all) and scans at most ZB_REPLAY_SCAN records per session, so ingest
    never waits long behind a replay.

    The control ROUTER must have ZMQ_ROUTER_MANDATORY set: a client that does
    not read fills its queue and we get EAGAIN (the event is kept and sent on
    a later turn), a client that went away gives EHOSTUNREACH (the session is
    closed). Nothing is ever dropped silently in the middle of a replay.

    Usage (broker.c):
        zb_replay_t *replay = zb_replay_new (control_h, journal, 1000, 60000);
        ...REPLAY request: zb_replay_open (...), answer its ERROR when -1
        ...CREDIT: zb_replay_credit (...);  CANCEL: zb_replay_cancel (...)
        ...from a timer while zb_replay_serve () != ZB_REPLAY_IDLE
        ...every second: zb_replay_expire (replay, zclock_mono ()) */
#ifndef ZB_REPLAY_H_INCLUDED
#define ZB_REPLAY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>
#include "journal.h"

#define ZB_REPLAY_TURN          1000        //  events per session per turn
#define ZB_REPLAY_BUDGET        2000        //  events per turn, all sessions (a few ms)
#define ZB_REPLAY_SCAN          4096        //  records looked at per session per turn
#define ZB_REPLAY_MAX_CREDIT    100000      //  per REPLAY or CREDIT message
#define ZB_REPLAY_MAX_TOPICS    1024        //  "topics" entries per session
#define ZB_REPLAY_MAX_PREFIXES  64          //  "prefixes" entries per session

typedef struct zb_replay_t zb_replay_t;

//  What zb_replay_serve found: call it again at once, soon (a client's queue
//  is full: a few ms), or only after the next REPLAY/CREDIT.
typedef enum {
    ZB_REPLAY_IDLE = 0,
    ZB_REPLAY_BUSY,
    ZB_REPLAY_BLOCKED,
} zb_replay_state_t;

//  control: the raw control ROUTER. At most max_sessions open at once; a
//  session without credit for idle_ms is closed with ERROR Timeout.
zb_replay_t *zb_replay_new (void *control, zb_journal_t *journal, size_t max_sessions,
                            int64_t idle_ms);
void zb_replay_destroy (zb_replay_t **self_p);

//  REPLAY: check the body and open a session (nothing is sent yet: the next
//  zb_replay_serve does). 0 on success; -1 with the ERROR reply's code
//  ("InvalidArgument", "LimitExceeded", "MalformedRequest") and message.
int zb_replay_open (zb_replay_t *self, zmq_msg_t *identity, bool delimiter,
                    zmq_msg_t *corr, zmq_msg_t *body, const char **code,
                    char *err, size_t errlen);

//  CREDIT: add the body's credit to the session. A session that is not open
//  (it ended meanwhile) is ignored: returns 0. A body that is not
//  {"credit": 1..100000} closes the session with ERROR InvalidArgument
//  (sent here) and returns -1.
int zb_replay_credit (zb_replay_t *self, zmq_msg_t *identity, zmq_msg_t *corr,
                      zmq_msg_t *body);

//  CANCEL: close the session without a reply. 0 when it was open, -1 when not.
int zb_replay_cancel (zb_replay_t *self, zmq_msg_t *identity, zmq_msg_t *corr);

//  Close every session of one client connection with ERROR code/message
//  (its key was removed from the allow directory). Returns how many.
size_t zb_replay_close_peer (zb_replay_t *self, const void *identity, size_t identity_len,
                             const char *code, const char *message);

//  Send what the sessions' credit allows, one turn.
zb_replay_state_t zb_replay_serve (zb_replay_t *self);

//  Close (ERROR Timeout) the sessions that have had no credit for idle_ms.
//  now_ms is zclock_mono (). Returns how many were closed.
size_t zb_replay_expire (zb_replay_t *self, int64_t now_ms);

//  One open session, for STATS: its client (the ROUTER identity), the next
//  seq it will look at, the last of its range, and the events sent so far.
typedef struct {
    const uint8_t *identity;
    size_t identity_len;
    uint64_t next;
    uint64_t to;
    uint64_t sent;
    uint64_t credit;
} zb_replay_session_info_t;

//  Call fn for each open session (at most max), in no particular order.
void zb_replay_each (zb_replay_t *self, size_t max,
                     void (*fn) (void *arg, const zb_replay_session_info_t *info), void *arg);

//  Sessions open, and events sent in all (for STATS).
size_t zb_replay_sessions (zb_replay_t *self);
uint64_t zb_replay_events_sent (zb_replay_t *self);

#endif
