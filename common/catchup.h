/*  catchup.h - the consumer's merge of the live stream and the journal
    (the zguide's Clone pattern), as a state machine without sockets.

    The consumer subscribes first, then replays what it missed from the
    broker's journal while it buffers the live events that keep arriving; after
    the replay it goes on with the buffered live events, and from then on fills
    every gap it sees (a topic_seq jump, or a heartbeat head above what it has)
    with another replay. This module makes every ordering decision; the caller
    moves the bytes (SUB socket, REPLAY sessions on a DEALER) and delivers.

    Position: the sequence number up to which every event of my topics has
    been delivered or found missing for good, except the events of a "late"
    topic (below). Events are delivered in global seq order, each at most once
    per run, with one exception: a live-stream drop that is only noticed behind
    the position. Example: under overload the broker's PUB drops U@100, T@101
    (contiguous topic_seq) is delivered and the position is 101; then U@102
    (U's topic_seq jumps) or a heartbeat (U's head) shows U's gap. Whenever a
    gap of topic U may lie at or below the position (a seq I never saw lies
    between U's last delivered event and the position), U is late: a replay of
    U alone over (seq of U's last delivered event, position] runs first, and
    its events above U's baseline are delivered late (after T@101) but in U's
    topic order and before any later event of U; U's events above the position
    then come in seq order again. Global order is relaxed only there; the
    baselines keep every event from being delivered twice. Only what the
    journal no longer has (retention) counts as missed. A checkpoint keeps
    zb_catchup_safe_position (), not the position: it stays at U's last
    delivered event while U is late, so a restart never skips a known-missing
    event. (A drop not yet noticed when the process stops is not covered: the
    gap shows only with a later event or heartbeat of this run.)

    Baselines: the last topic_seq of each of my topics, and the seq up to which
    that is known (of the last event of it delivered, or of the snapshot that
    told it). They come from a snapshot (JOURNAL reply, heartbeat: the heads of
    every topic at one seq) and are kept by every event delivered. A topic
    without a baseline is checked with a replay before its first event is taken
    as one.

    Best effort: a consumer that starts at "latest" before it has a snapshot
    (the control socket did not answer, the broker has no journal) delivers
    live events as they come and reports gaps as missed, until the first
    heartbeat anchors it (a broker that never sends one has no journal).

    Typical driver loop:
        live event     -> zb_catchup_live(): DELIVER / SKIP / DROP / HELD
        heartbeat      -> zb_catchup_heartbeat()
        if zb_catchup_replaying() and no session open:
                          open REPLAY zb_catchup_replay_range(), of
                          zb_catchup_replay_topic() alone when not NULL
        replay EVENT   -> zb_catchup_replayed(): DELIVER / SKIP / DROP
        replay END     -> zb_catchup_end(), then zb_catchup_next() until 0
    Notable decisions are reported as text lines through the log callback. */
#ifndef ZB_CATCHUP_H_INCLUDED
#define ZB_CATCHUP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "zb.h"

//  Live events buffered during one replay before the buffer is dropped
#define ZB_CATCHUP_BUFFER_MAX   100000

typedef struct zb_catchup_t zb_catchup_t;

typedef struct {
    const char *const *topics;      //  exact detail-types
    size_t ntopics;
    const char *const *prefixes;    //  detail-type prefixes ("" matches all)
    size_t nprefixes;
    size_t buffer_max;              //  0: ZB_CATCHUP_BUFFER_MAX
    //  One line per notable decision (gap, replay needed, reset, ...); may be NULL
    void (*log) (void *arg, const char *line);
    void *log_arg;
} zb_catchup_config_t;

//  An event, as published or replayed. Views: valid for the call only, except
//  what zb_catchup_next() returns (valid until the next call on the object).
typedef struct {
    zb_str_t topic;                 //  detail-type
    uint64_t seq;
    uint64_t topic_seq;
    zb_str_t raw;                   //  the msgpack envelope
} zb_catchup_event_t;

typedef struct {
    zb_str_t topic;
    uint64_t head;                  //  last topic_seq of the topic
} zb_catchup_head_t;

//  The broker at one instant: its head seq and the heads of all its topics.
typedef struct {
    uint64_t seq;
    uint64_t oldest;                //  oldest seq in the journal (0: empty)
    const zb_catchup_head_t *heads;
    size_t nheads;
} zb_catchup_snapshot_t;

typedef enum {
    ZB_CATCHUP_DROP = 0,            //  not to be delivered (seq <= position, not mine)
    ZB_CATCHUP_DELIVER,             //  deliver it now; position is its seq (a late
                                    //  replay's events: the position stays)
    ZB_CATCHUP_SKIP,                //  below the start (--from seq:N): position moves, no delivery
    ZB_CATCHUP_HELD,                //  copied into the buffer until the replay ends
} zb_catchup_verdict_t;

zb_catchup_t *zb_catchup_new (const zb_catchup_config_t *config);
void zb_catchup_destroy (zb_catchup_t **self_p);

//  How the consumer starts; call exactly one, once.
//  Best effort until the first heartbeat (latest, no snapshot available):
void zb_catchup_start_unanchored (zb_catchup_t *self);
//  From "now": position = snapshot seq, baselines = its heads (latest):
void zb_catchup_start_at (zb_catchup_t *self, const zb_catchup_snapshot_t *snapshot);
//  Replay everything after position (earliest: 0; seq:N: N-1; a checkpoint).
//  floor: events below it are passed over, not delivered (seq:N: N; else 0).
//  baselines_zero: the baselines at position are known to be all 0 (position
//  0: the journal's beginning). snapshot (may be NULL): the broker now; the
//  first replay then ends at its seq and takes its heads as baselines, and a
//  snapshot below position means the broker lost its journal (reset to 0).
void zb_catchup_start_replay (zb_catchup_t *self, uint64_t position, uint64_t floor,
                              bool baselines_zero, const zb_catchup_snapshot_t *snapshot);

//  A live event from the publish socket.
zb_catchup_verdict_t zb_catchup_live (zb_catchup_t *self, const zb_catchup_event_t *event);

//  A heartbeat from the publish socket (a snapshot on the live stream).
void zb_catchup_heartbeat (zb_catchup_t *self, const zb_catchup_snapshot_t *heartbeat);

//  True while a replay is wanted or running; the range to ask for is
//  (from - 1, to]: *from = position + 1, *to = the last seq wanted, 0 for "the
//  head when the request arrives". Ask again after a failed session: the
//  position may have moved.
bool zb_catchup_replaying (zb_catchup_t *self);
void zb_catchup_replay_range (zb_catchup_t *self, uint64_t *from, uint64_t *to);
//  NULL: the replay wanted is of all my topics (and prefixes). Else it is of
//  this one topic alone (valid until the replay ends): a late replay, with
//  *from = the seq of its last event delivered + 1 and *to = the position.
const char *zb_catchup_replay_topic (zb_catchup_t *self);

//  An EVENT of the replay session.
zb_catchup_verdict_t zb_catchup_replayed (zb_catchup_t *self, const zb_catchup_event_t *event);

//  The END of the replay session: last is the last seq it covered, head the
//  broker's head (a head below my position means the broker lost its journal).
void zb_catchup_end (zb_catchup_t *self, uint64_t last, uint64_t head);

//  After END: the buffered live events, in order. Returns DELIVER or SKIP with
//  *event filled, or DROP (0) when nothing more can go now (the buffer is
//  empty, or a new replay is wanted first: see zb_catchup_replaying).
zb_catchup_verdict_t zb_catchup_next (zb_catchup_t *self, zb_catchup_event_t *event);

uint64_t zb_catchup_position (zb_catchup_t *self);
//  What to save as the checkpoint: the position, or less while a gap of a
//  topic that may lie at or below it waits for its late replay (the seq of
//  the last event of that topic delivered).
uint64_t zb_catchup_safe_position (zb_catchup_t *self);
//  Events of my topics known lost: gaps no replay could fill (retention,
//  best-effort mode).
uint64_t zb_catchup_missed (zb_catchup_t *self);
//  Events delivered (or skipped) from replays, late replays included.
uint64_t zb_catchup_replayed_count (zb_catchup_t *self);
//  Live events held in the buffer now.
size_t zb_catchup_buffered (zb_catchup_t *self);
//  False while best effort (see above).
bool zb_catchup_anchored (zb_catchup_t *self);
//  True when topic is one of mine: exact, or by prefix (a '$' topic, such as
//  "$rule/NAME", only when given exactly).
bool zb_catchup_matches (zb_catchup_t *self, zb_str_t topic);

#endif
