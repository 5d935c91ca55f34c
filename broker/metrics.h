/*  metrics.h - the broker's Prometheus endpoint (zb-broker --metrics ADDR:PORT):
    text exposition format 0.0.4 at GET /metrics, served by libmicrohttpd.

    Threads: the broker is one thread (zloop); libmicrohttpd runs its own
    (MHD_USE_INTERNAL_POLLING_THREAD). They share exactly one thing, the
    published exposition text, behind a mutex. A scrape asks for a fresh
    snapshot: the HTTP thread bumps a request counter and writes a byte to a
    pipe; the broker sees the pipe readable in its loop (zb_metrics_fd), renders
    the text from its own counters into a private buffer, swaps it in under
    the mutex and signals; the HTTP thread copies the text under the mutex
    into its response. So every scrape reflects every request the broker had
    answered before the scrape arrived. A broker thread busy for longer than
    ZB_METRICS_WAIT_MS gets the previous snapshot served instead.

    Nothing the broker counts is touched by the HTTP thread, and the histograms
    are observed and rendered in the broker thread only: no other sharing.

    Usage (broker.c):
        zb_metrics_t *m = zb_metrics_new ("127.0.0.1:9100", err, sizeof err);
        zmq_pollitem_t item = { NULL, zb_metrics_fd (m), ZMQ_POLLIN, 0 };
        ...on the fd readable: if (zb_metrics_pending (m)) zb_metrics_update (m, &source);
        ...in the hot path: zb_metrics_observe_commit (m, ns), _observe_ack (m, ns)
        zb_metrics_destroy (&m); */
#ifndef ZB_METRICS_H_INCLUDED
#define ZB_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "journal.h"
#include "rules.h"
#include "topics.h"

//  How long a scrape waits for the broker thread's fresh snapshot
#define ZB_METRICS_WAIT_MS      2000

typedef struct zb_metrics_t zb_metrics_t;

//  Check an ADDR:PORT (IPv4 literal, [IPv6] literal or host name; port 0 to
//  65535, 0 picks a free one). 0, or -1 with err saying what is wrong.
int zb_metrics_check_address (const char *address, char *err, size_t errlen);

//  Bind address and start serving (the first scrapes wait for the first
//  snapshot). NULL with err ("cannot bind metrics to 127.0.0.1:9100:
//  Address already in use").
zb_metrics_t *zb_metrics_new (const char *address, char *err, size_t errlen);

//  Stop the HTTP thread, close the socket, free everything.
void zb_metrics_destroy (zb_metrics_t **self_p);

//  "http://127.0.0.1:9100/metrics", with the port actually bound.
const char *zb_metrics_url (zb_metrics_t *self);

//  Readable when a scrape waits for a snapshot (poll it in the broker loop).
int zb_metrics_fd (zb_metrics_t *self);

//  Drain the fd; true when some scrape waits for a fresh snapshot.
bool zb_metrics_pending (zb_metrics_t *self);

//  Latency observations, in nanoseconds (broker thread only).
void zb_metrics_observe_commit (zb_metrics_t *self, uint64_t ns);
void zb_metrics_observe_ack (zb_metrics_t *self, uint64_t ns);

//  What the broker knows, read in its thread while rendering.
typedef struct {
    uint64_t uptime_ms;
    uint64_t seq;
    uint64_t requests;
    uint64_t requests_failed;
    uint64_t entries_in;
    uint64_t entries_rejected;
    uint64_t ingest_bytes;          //  request frames read on the ingest socket
    uint64_t duplicates;
    uint64_t journal_failures;
    uint64_t prefix_subscriptions;
    uint64_t replay_requests;       //  REPLAY sessions opened
    uint64_t replay_events;         //  events sent by replays
    uint64_t replay_sessions;       //  open now
    uint64_t rule_failures;
    uint64_t producers_active;      //  ingest clients with a request in the last minute
    uint64_t connections [3];       //  ingest, publish, control
    zb_topics_t *topics;
    zb_journal_t *journal;
    zb_rules_t *rules;
} zb_metrics_source_t;

//  Render the exposition from source and publish it to the waiting scrapes.
void zb_metrics_update (zb_metrics_t *self, const zb_metrics_source_t *source);

//  The exposition text as last rendered (broker thread; for tests).
const char *zb_metrics_text (zb_metrics_t *self);

#endif
