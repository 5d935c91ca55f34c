/*  topics.h - the broker's table of topics (detail-types): counters, the
    per-topic sequence and the number of exact subscriptions held on the
    publish socket.

    A topic enters the table in one of two ways:
    - an entry with that detail-type is accepted ("tracked" topic). Tracked
      topics stay for the broker's lifetime; at most max_tracked of them.
    - a consumer subscribes to it exactly (detail-type + NUL) before any event
      of it arrived. Such a subscription-only topic leaves the table again when
      its last subscription goes; at most max_tracked of those as well, so
      neither producers nor consumers can grow the table without bound.

    Lookups hash the name with SipHash-1-3 under a random key (a client cannot
    aim collisions at the table) into an open-addressing table with linear
    probing. Nothing allocates except when a topic is added. */
#ifndef ZB_TOPICS_H_INCLUDED
#define ZB_TOPICS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "zb.h"

typedef struct {
    uint64_t in;                //  entries accepted
    uint64_t out;               //  events published
    uint64_t rejected;          //  entries of this detail-type that failed
    uint64_t bytes;             //  bytes of the events stored (packed envelopes)
    uint64_t seq;               //  topic_seq of the last event published
    uint64_t subscribers;       //  exact subscriptions currently held
    bool tracked;               //  at least one entry was accepted
    uint8_t len;                //  name length, without the NUL
    //  The broker's scratch for grouping an ingest pass's events by topic
    //  (broker.c s_pass_order); zero when the topic is added.
    uint32_t pass_gen;
    uint32_t pass_last;
    //  The name followed by a NUL: also the topic frame of its events.
    char name [ZB_MAX_DETAIL_TYPE + 1];
} zb_topic_t;

typedef struct zb_topics_t zb_topics_t;

//  A table that tracks at most max_tracked topics (> 0).
zb_topics_t *zb_topics_new (size_t max_tracked);
void zb_topics_destroy (zb_topics_t **self_p);

//  The topic with this name, or NULL.
zb_topic_t *zb_topics_lookup (zb_topics_t *self, const char *name, size_t len);

//  The topic for an accepted entry, added or turned into a tracked topic when
//  needed. Returns 0 and sets *topic; -1 when max_tracked topics are tracked
//  already (LimitExceeded); -2 when out of memory. len is 1..ZB_MAX_DETAIL_TYPE.
int zb_topics_track (zb_topics_t *self, const char *name, size_t len, zb_topic_t **topic);

//  One more / one fewer exact subscription; both return the topic's new
//  subscriber count. Subscribing adds a subscription-only topic when needed and
//  returns -1 when none can be added (limit or memory). Unsubscribing returns -1
//  when the topic is not in the table, never counts below zero, and removes a
//  subscription-only topic whose last subscription went.
int64_t zb_topics_subscribe (zb_topics_t *self, const char *name, size_t len);
int64_t zb_topics_unsubscribe (zb_topics_t *self, const char *name, size_t len);

//  Topics in the table, and how many of them are tracked.
size_t zb_topics_size (zb_topics_t *self);
size_t zb_topics_tracked (zb_topics_t *self);

//  Iterate: index 0 .. size-1, in the order topics were added (removals move
//  the last topic into the gap).
zb_topic_t *zb_topics_at (zb_topics_t *self, size_t index);

#endif
