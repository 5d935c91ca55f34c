/*  catchup.c - the consumer's merge of the live stream and the journal.

    See catchup.h for the model (position, baselines, best effort). The rules:

    Each topic's baseline comes with "since": no event of the topic above the
    baseline has a seq <= since (the seq of its last event delivered, or of the
    snapshot that gave the baseline). "uncovered" is the highest seq <= position
    the consumer never saw: a live event accepted past seqs it did not receive
    (events of other topics, or drops). A gap of a topic whose since is below
    uncovered may lie (partly) at or below the position: it is "late".

    live event (anchored, no replay running, nothing buffered):
        seq <= position                      drop (delivered already, or before my start)
        topic_seq == baseline + 1            deliver
        topic_seq >  baseline + 1, or the topic has no baseline yet:
            since < uncovered                late: hold it, replay (since, position] of
                                             the topic alone first
            seq == position + 1              nothing can be missing between them:
                                             a real gap is lost for good (missed),
                                             an unknown topic takes this as its baseline
            else                             hold it, replay (position, seq - 1]
        topic_seq <= baseline                the broker restarted without its journal:
                                             reset (position 0) and replay
    heartbeat at seq H with the heads of all topics:
        H < position                         the broker lost its journal (or, when the
                                             position came from the control socket, the
                                             heartbeat is older than it: verify with a
                                             replay to the head)
        a head above my baseline with since < uncovered:
                                             late: hold the heartbeat, replay
                                             (since, position] of the topic alone first
        a head above my baseline, or a head for a topic without one:
                                             replay (position, H], then take the heads
                                             as baselines
        otherwise                            position = H (nothing of mine in between)
    replay event: deliver when seq > position; a topic_seq jump here means the
        journal no longer has those events (retention): counted as missed,
        unless since < uncovered: then the topic is late, and its events are
        passed over until its own replay.
    replay END: position = last; buffered live events go through the rules above.
    late replay (one topic, (since, position]): deliver every event above the
        baseline, position unchanged (late delivery, in the topic's order); a
        topic_seq jump, or a known head not reached at END, is missed (retention).
        Then since = position, and what was held goes through the rules above.

    The live events buffered during a replay are copies (one allocation each);
    heartbeats in the buffer are coalesced (the newest supersedes the older
    when nothing came between). Beyond buffer_max events the buffer is dropped
    and the replay goes on to a newer head instead: memory stays bounded and
    nothing is lost, because everything dropped is in the journal. */

#include <czmq.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "catchup.h"

typedef struct {
    uint64_t topic_seq;             //  baseline: last topic_seq at or below position
    uint64_t seq;                   //  since: no event of the topic above the baseline
                                    //  has a seq <= this
    bool late;                      //  a gap that may lie at or below the position
                                    //  waits for a replay of this topic alone
    uint64_t late_head;             //  (late) its topic_seq known to exist at or below
                                    //  the position: short of it at END is missed
} topic_state_t;

//  An owned copy of a snapshot, restricted to my topics
typedef struct {
    uint64_t seq;
    uint64_t oldest;
    size_t nheads;
    zb_catchup_head_t *heads;       //  topic pointers into the same allocation
} snapshot_t;

typedef struct item_t {
    struct item_t *next;
    snapshot_t *heartbeat;          //  non-NULL: a heartbeat, else an event
    zb_catchup_event_t event;       //  views into the same allocation
} item_t;

struct zb_catchup_t {
    char **topics;
    size_t ntopics;
    char **prefixes;
    size_t nprefixes;
    size_t buffer_max;
    void (*log) (void *arg, const char *line);
    void *log_arg;

    zhashx_t *baselines;            //  topic -> topic_state_t *
    //  The last baselines found, by topic (s_lookup): most events are of a
    //  few topics, and zhashx hashes the whole name for every lookup. Valid
    //  until the table is purged (a state, once in it, stays where it is).
    struct {
        topic_state_t *state;       //  NULL: empty
        size_t len;
        char topic [ZB_MAX_DETAIL_TYPE];
    } recent [4];
    uint64_t position;
    uint64_t floor;                 //  deliver only seq >= floor
    bool anchored;
    bool all_known;                 //  topics without a baseline have 0
    uint64_t all_known_seq;         //  ... up to this seq (their since)
    uint64_t uncovered;             //  highest seq <= position never seen (0: none)
    size_t nlate;                   //  late topics
    bool delivered_any;             //  (best effort) something was delivered
    uint64_t control_max;           //  highest position the control socket vouched for
    uint64_t early_until;           //  start_at's snapshot seq while live events at or
    uint64_t early_last;            //  below it may still come (see s_decide_live)
    bool hb_seen;
    uint64_t hb_last;

    bool replaying;
    uint64_t replay_to;             //  0: the head
    snapshot_t *replay_snapshot;    //  heads at replay_to, applied at END
    bool overflowed;                //  buffer dropped during this replay
    char *replay_topic;             //  a late replay: of this topic alone (else NULL)
    uint64_t late_count;            //  events the late replay delivered,
    uint64_t late_first;            //  the first one's seq
    uint64_t late_last;             //  and the last one's

    item_t *head;                   //  buffer, oldest first
    item_t *tail;
    size_t nevents;                 //  events (not heartbeats) in the buffer
    item_t *current;                //  returned by zb_catchup_next, freed on the next call

    uint64_t missed;
    uint64_t replayed;
    char *key;                      //  scratch: topic as a C string
    size_t key_size;
};

static void
s_log (zb_catchup_t *self, const char *format, ...)
{
    if (!self->log)
        return;
    char line [512];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    self->log (self->log_arg, line);
}

static void
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static char **
s_copy_list (const char *const *list, size_t count)
{
    char **copy = (char **) calloc (count + 1, sizeof (char *));
    assert (copy);
    for (size_t i = 0; i < count; i++) {
        copy [i] = strdup (list [i]);
        assert (copy [i]);
    }
    return copy;
}

static void
s_free_list (char **list, size_t count)
{
    if (!list)
        return;
    for (size_t i = 0; i < count; i++)
        free (list [i]);
    free (list);
}

zb_catchup_t *
zb_catchup_new (const zb_catchup_config_t *config)
{
    assert (config);
    assert (config->ntopics + config->nprefixes > 0);
    zb_catchup_t *self = (zb_catchup_t *) calloc (1, sizeof (zb_catchup_t));
    if (!self)
        return NULL;
    self->topics = s_copy_list (config->topics, config->ntopics);
    self->ntopics = config->ntopics;
    self->prefixes = s_copy_list (config->prefixes, config->nprefixes);
    self->nprefixes = config->nprefixes;
    self->buffer_max = config->buffer_max? config->buffer_max: ZB_CATCHUP_BUFFER_MAX;
    self->log = config->log;
    self->log_arg = config->log_arg;
    self->baselines = zhashx_new ();
    assert (self->baselines);
    zhashx_set_destructor (self->baselines, s_free_item);
    self->key_size = 256;
    self->key = (char *) malloc (self->key_size);
    assert (self->key);
    return self;
}

static void
s_snapshot_destroy (snapshot_t **snapshot_p)
{
    free (*snapshot_p);
    *snapshot_p = NULL;
}

static void
s_item_destroy (item_t **item_p)
{
    item_t *item = *item_p;
    if (item) {
        s_snapshot_destroy (&item->heartbeat);
        free (item);
        *item_p = NULL;
    }
}

static void
s_drop_buffer (zb_catchup_t *self)
{
    while (self->head) {
        item_t *item = self->head;
        self->head = item->next;
        s_item_destroy (&item);
    }
    self->tail = NULL;
    self->nevents = 0;
}

void
zb_catchup_destroy (zb_catchup_t **self_p)
{
    assert (self_p);
    zb_catchup_t *self = *self_p;
    if (!self)
        return;
    s_drop_buffer (self);
    s_item_destroy (&self->current);
    s_snapshot_destroy (&self->replay_snapshot);
    free (self->replay_topic);
    zhashx_destroy (&self->baselines);
    s_free_list (self->topics, self->ntopics);
    s_free_list (self->prefixes, self->nprefixes);
    free (self->key);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  Topics

bool
zb_catchup_matches (zb_catchup_t *self, zb_str_t topic)
{
    assert (self);
    if (topic.len == 0)
        return false;
    //  The bus's own topics ("$rule/NAME") only when named exactly
    for (size_t i = 0; i < self->ntopics; i++)
        if (strlen (self->topics [i]) == topic.len
        &&  memcmp (self->topics [i], topic.ptr, topic.len) == 0)
            return true;
    if (topic.ptr [0] == ZB_RESERVED_PREFIX)
        return false;
    for (size_t i = 0; i < self->nprefixes; i++) {
        size_t len = strlen (self->prefixes [i]);
        if (len <= topic.len && memcmp (self->prefixes [i], topic.ptr, len) == 0)
            return true;
    }
    return false;
}

//  The topic as a C string in the scratch key (topics never hold a NUL: the
//  subscriber and the replay decoder reject such frames).
static const char *
s_key (zb_catchup_t *self, zb_str_t topic)
{
    if (topic.len + 1 > self->key_size) {
        size_t size = topic.len + 1;
        char *key = (char *) realloc (self->key, size);
        assert (key);
        self->key = key;
        self->key_size = size;
    }
    memcpy (self->key, topic.ptr, topic.len);
    self->key [topic.len] = '\0';
    return self->key;
}

static topic_state_t *
s_lookup (zb_catchup_t *self, zb_str_t topic)
{
    size_t slot = topic.len ? (topic.len ^ (uint8_t) topic.ptr [topic.len - 1]) & 3 : 0;
    if (self->recent [slot].state && self->recent [slot].len == topic.len
    &&  memcmp (self->recent [slot].topic, topic.ptr, topic.len) == 0)
        return self->recent [slot].state;
    topic_state_t *state = (topic_state_t *) zhashx_lookup (self->baselines, s_key (self, topic));
    if (state && topic.len <= ZB_MAX_DETAIL_TYPE) {
        self->recent [slot].state = state;
        self->recent [slot].len = topic.len;
        memcpy (self->recent [slot].topic, topic.ptr, topic.len);
    }
    return state;
}

static void
s_baselines_purge (zb_catchup_t *self)
{
    zhashx_purge (self->baselines);
    memset (self->recent, 0, sizeof self->recent);
}

//  The baseline of a topic: topic_seq, known up to seq (since)
static topic_state_t *
s_baseline_set (zb_catchup_t *self, zb_str_t topic, uint64_t topic_seq, uint64_t seq)
{
    topic_state_t *state = s_lookup (self, topic);
    if (!state) {
        state = (topic_state_t *) calloc (1, sizeof (topic_state_t));
        assert (state);
        zhashx_insert (self->baselines, self->key, state);
    }
    state->topic_seq = topic_seq;
    state->seq = seq;
    return state;
}

//  Since of a topic with a baseline (state), or of one with baseline 0 because
//  all are known
static uint64_t
s_since (zb_catchup_t *self, topic_state_t *state)
{
    return state? state->seq: self->all_known_seq;
}

//  ---------------------------------------------------------------------------
//  Snapshots

static snapshot_t *
s_snapshot_copy (zb_catchup_t *self, const zb_catchup_snapshot_t *from)
{
    size_t nheads = 0, bytes = 0;
    for (size_t i = 0; i < from->nheads; i++)
        if (zb_catchup_matches (self, from->heads [i].topic)) {
            nheads++;
            bytes += from->heads [i].topic.len + 1;
        }
    snapshot_t *copy = (snapshot_t *) malloc (sizeof (snapshot_t)
                                              + nheads * sizeof (zb_catchup_head_t) + bytes);
    assert (copy);
    copy->seq = from->seq;
    copy->oldest = from->oldest;
    copy->nheads = nheads;
    copy->heads = (zb_catchup_head_t *) (copy + 1);
    char *text = (char *) (copy->heads + nheads);
    size_t n = 0;
    for (size_t i = 0; i < from->nheads; i++)
        if (zb_catchup_matches (self, from->heads [i].topic)) {
            zb_str_t topic = from->heads [i].topic;
            memcpy (text, topic.ptr, topic.len);
            text [topic.len] = '\0';
            copy->heads [n].topic.ptr = text;
            copy->heads [n].topic.len = topic.len;
            copy->heads [n].head = from->heads [i].head;
            text += topic.len + 1;
            n++;
        }
    return copy;
}

static void
s_missed (zb_catchup_t *self, zb_str_t topic, uint64_t first, uint64_t last, const char *why)
{
    uint64_t count = last - first + 1;
    self->missed += count;
    s_log (self, "missed %" PRIu64 " events on %.*s (topic_seq %" PRIu64 "..%" PRIu64 ")%s",
           count, (int) topic.len, topic.ptr, first, last, why);
}

//  Every seq where the missing events can be was read (replayed, seen, or
//  vouched for by a snapshot) and they were not there: the journal no longer
//  has them (retention)
#define WHY_GONE ": not in the journal any more"

static void s_want_late (zb_catchup_t *self);

//  A gap of this topic (topic_seq first..last; known: it has a baseline, or
//  all are) may lie at or below the position: its events since its baseline
//  was known are replayed, of this topic alone, before any later event of it
//  goes. below: the whole gap is known to lie at or below the position.
static void
s_late (zb_catchup_t *self, zb_str_t topic, uint64_t first, uint64_t last, bool below)
{
    topic_state_t *state = s_lookup (self, topic);
    if (!state)
        state = s_baseline_set (self, topic, 0, self->all_known_seq);
    if (!state->late) {
        state->late = true;
        self->nlate++;
        s_log (self, "gap on %.*s (topic_seq %" PRIu64 "..%" PRIu64 ") may lie behind my "
               "position %" PRIu64, (int) topic.len, topic.ptr, first, last, self->position);
    }
    if (below && last > state->late_head)
        state->late_head = last;
    if (!self->replaying)
        s_want_late (self);
}

//  Whether a gap of a topic with this since may lie at or below the position
static bool
s_behind (zb_catchup_t *self, topic_state_t *state)
{
    return (state && state->late) || s_since (self, state) < self->uncovered;
}

//  Take a snapshot's heads as the baselines at its seq (the position is there).
//  A head above a baseline we have (0 for every topic when all are known)
//  means events we can no longer get, or events of a late topic.
static void
s_apply (zb_catchup_t *self, const zb_catchup_head_t *heads, size_t nheads)
{
    for (size_t i = 0; i < nheads; i++) {
        if (!zb_catchup_matches (self, heads [i].topic))
            continue;
        topic_state_t *state = s_lookup (self, heads [i].topic);
        bool known = state || self->all_known;
        uint64_t have = state? state->topic_seq: 0;
        if (known && heads [i].head > have && s_behind (self, state)) {
            //  Its late replay fills the baseline up to the head
            s_late (self, heads [i].topic, have + 1, heads [i].head, true);
            continue;
        }
        if (known && heads [i].head > have)
            s_missed (self, heads [i].topic, have + 1, heads [i].head, WHY_GONE);
        if (!state || heads [i].head > have)
            s_baseline_set (self, heads [i].topic, heads [i].head, self->position);
        else
        if (heads [i].head == have && !state->late && state->seq < self->position)
            state->seq = self->position;
    }
    self->all_known = true;
    if (self->all_known_seq < self->position)
        self->all_known_seq = self->position;
}

//  ---------------------------------------------------------------------------
//  Replays

//  Ask for (position, to] (to 0: the head), with the heads at to when known.
static void
s_want_replay (zb_catchup_t *self, uint64_t to, const zb_catchup_snapshot_t *snapshot)
{
    assert (!self->replaying);
    if (to != 0 && to <= self->position) {
        //  Nothing to read: the snapshot is already at (or below) the position
        if (snapshot && snapshot->seq == self->position)
            s_apply (self, snapshot->heads, snapshot->nheads);
        return;
    }
    self->replaying = true;
    self->replay_to = to;
    s_snapshot_destroy (&self->replay_snapshot);
    if (snapshot)
        self->replay_snapshot = s_snapshot_copy (self, snapshot);
}

//  A late topic is done: its events up to the position are in (or missed)
static void
s_late_done (zb_catchup_t *self, const char *topic, topic_state_t *state)
{
    if (state->late_head > state->topic_seq) {
        zb_str_t name = { topic, strlen (topic) };
        s_missed (self, name, state->topic_seq + 1, state->late_head, WHY_GONE);
        state->topic_seq = state->late_head;
    }
    if (state->seq < self->position)
        state->seq = self->position;
    state->late = false;
    state->late_head = 0;
    self->nlate--;
}

//  Ask for the events of the next late topic, alone, over (since, position]
static void
s_want_late (zb_catchup_t *self)
{
    assert (!self->replaying);
    if (self->nlate == 0)
        return;
    for (topic_state_t *state = (topic_state_t *) zhashx_first (self->baselines); state;
         state = (topic_state_t *) zhashx_next (self->baselines)) {
        if (!state->late)
            continue;
        const char *topic = (const char *) zhashx_cursor (self->baselines);
        if (state->seq >= self->position) {
            //  Nothing of it can be at or below the position (cannot happen: a
            //  late topic's since is below uncovered)
            s_late_done (self, topic, state);
            continue;
        }
        self->replaying = true;
        self->replay_to = self->position;
        self->replay_topic = strdup (topic);
        assert (self->replay_topic);
        self->late_count = 0;
        s_log (self, "replaying seq %" PRIu64 "..%" PRIu64 " of %s alone", state->seq + 1,
               self->position, topic);
        return;
    }
}

//  The broker's journal is behind my position: it was lost (a --memory broker
//  restarted, a data directory removed). Start over with what it has now.
static void
s_reset (zb_catchup_t *self, const char *why, uint64_t to, const zb_catchup_snapshot_t *snapshot)
{
    s_log (self, "%s: the broker lost its journal; starting over from its oldest event", why);
    s_baselines_purge (self);
    self->early_until = 0;
    self->position = 0;
    self->floor = 0;
    self->all_known = true;         //  a new journal: every topic starts at 0
    self->all_known_seq = 0;
    self->uncovered = 0;
    self->nlate = 0;
    self->control_max = 0;
    self->replaying = false;
    s_snapshot_destroy (&self->replay_snapshot);
    free (self->replay_topic);
    self->replay_topic = NULL;
    s_want_replay (self, to, snapshot);
}

bool
zb_catchup_replaying (zb_catchup_t *self)
{
    assert (self);
    return self->replaying;
}

void
zb_catchup_replay_range (zb_catchup_t *self, uint64_t *from, uint64_t *to)
{
    assert (self);
    assert (from && to);
    *from = self->position + 1;
    *to = self->replay_to;
    if (self->replay_topic) {
        //  From after the last event of it delivered (it moves as the late
        //  replay delivers: a failed session is asked again from there)
        topic_state_t *state = (topic_state_t *) zhashx_lookup (self->baselines,
                                                                self->replay_topic);
        *from = (state? state->seq: 0) + 1;
    }
}

const char *
zb_catchup_replay_topic (zb_catchup_t *self)
{
    assert (self);
    return self->replaying? self->replay_topic: NULL;
}

//  ---------------------------------------------------------------------------
//  Starting

void
zb_catchup_start_unanchored (zb_catchup_t *self)
{
    assert (self);
    self->anchored = false;
}

void
zb_catchup_start_at (zb_catchup_t *self, const zb_catchup_snapshot_t *snapshot)
{
    assert (self);
    assert (snapshot);
    self->anchored = true;
    self->position = snapshot->seq;
    self->control_max = snapshot->seq;
    self->early_until = snapshot->seq;
    s_apply (self, snapshot->heads, snapshot->nheads);
}

void
zb_catchup_start_replay (zb_catchup_t *self, uint64_t position, uint64_t floor,
                         bool baselines_zero, const zb_catchup_snapshot_t *snapshot)
{
    assert (self);
    self->anchored = true;
    self->position = position;
    self->floor = floor;
    self->all_known = baselines_zero;
    if (!snapshot) {
        s_want_replay (self, 0, NULL);
        return;
    }
    if (snapshot->seq < position) {
        char why [160];
        snprintf (why, sizeof why, "the broker's head is seq %" PRIu64 ", below my position %"
                  PRIu64, snapshot->seq, position);
        s_reset (self, why, snapshot->seq, snapshot);
        return;
    }
    self->control_max = snapshot->seq;
    s_want_replay (self, snapshot->seq, snapshot);
}

//  ---------------------------------------------------------------------------
//  The buffer

static void
s_append (zb_catchup_t *self, item_t *item)
{
    item->next = NULL;
    if (self->tail)
        self->tail->next = item;
    else
        self->head = item;
    self->tail = item;
}

//  Hold a copy of a live event until the replay ends
static void
s_hold (zb_catchup_t *self, const zb_catchup_event_t *event)
{
    if (self->nevents >= self->buffer_max) {
        s_drop_buffer (self);
        if (!self->overflowed)
            s_log (self, "more than %zu live events arrived during catch-up: dropped them "
                   "from memory, replaying them from the journal instead", self->buffer_max);
        self->overflowed = true;
        if (!self->replaying)
            s_want_replay (self, 0, NULL);
    }
    item_t *item = (item_t *) malloc (sizeof (item_t) + event->topic.len + event->raw.len + 1);
    assert (item);
    char *text = (char *) (item + 1);
    memcpy (text, event->topic.ptr, event->topic.len);
    memcpy (text + event->topic.len, event->raw.ptr, event->raw.len);
    item->heartbeat = NULL;
    item->event = *event;
    item->event.topic.ptr = text;
    item->event.raw.ptr = text + event->topic.len;
    s_append (self, item);
    self->nevents++;
}

static void
s_hold_heartbeat (zb_catchup_t *self, const zb_catchup_snapshot_t *heartbeat)
{
    if (self->tail && self->tail->heartbeat) {
        //  Nothing came since the last one: the newer heartbeat says it all
        s_snapshot_destroy (&self->tail->heartbeat);
        self->tail->heartbeat = s_snapshot_copy (self, heartbeat);
        return;
    }
    item_t *item = (item_t *) calloc (1, sizeof (item_t));
    assert (item);
    item->heartbeat = s_snapshot_copy (self, heartbeat);
    s_append (self, item);
}

//  ---------------------------------------------------------------------------
//  Decisions

//  live: from the publish socket, where the seqs it passes over were never
//  seen (a replay reads every seq of my topics in its range)
static zb_catchup_verdict_t
s_accept (zb_catchup_t *self, const zb_catchup_event_t *event, bool live)
{
    if (live && event->seq > self->position + 1)
        self->uncovered = event->seq - 1;
    s_baseline_set (self, event->topic, event->topic_seq, event->seq);
    self->position = event->seq;
    return event->seq < self->floor? ZB_CATCHUP_SKIP: ZB_CATCHUP_DELIVER;
}

//  Best effort: deliver what comes, report gaps (the phase-1 consumer).
static zb_catchup_verdict_t
s_best_effort (zb_catchup_t *self, const zb_catchup_event_t *event)
{
    topic_state_t *state = s_lookup (self, event->topic);
    if (state && event->topic_seq > state->topic_seq + 1)
        s_missed (self, event->topic, state->topic_seq + 1, event->topic_seq - 1, "");
    //  A topic_seq at or below the last one: the broker restarted; new baseline
    s_baseline_set (self, event->topic, event->topic_seq, event->seq);
    if (self->delivered_any && event->seq > self->position + 1)
        self->uncovered = event->seq - 1;
    self->position = event->seq;
    self->delivered_any = true;
    return ZB_CATCHUP_DELIVER;
}

//  A live event, with no replay running and nothing buffered before it.
//  HELD means: a replay is now wanted and the event waits for it (the caller
//  holds it).
static zb_catchup_verdict_t
s_decide_live (zb_catchup_t *self, const zb_catchup_event_t *event)
{
    if (!zb_catchup_matches (self, event->topic))
        return ZB_CATCHUP_DROP;
    if (!self->anchored)
        return s_best_effort (self, event);
    if (event->seq <= self->position) {
        //  Started at "latest": an event at or below the snapshot that arrives
        //  live was published after my subscription was in place (the snapshot
        //  was taken after it), so it is mine, as it was for the phase-1
        //  consumer. Its topic_seq is already in the snapshot's baselines.
        if (event->seq <= self->early_until && event->seq > self->early_last) {
            self->early_last = event->seq;
            return event->seq < self->floor? ZB_CATCHUP_SKIP: ZB_CATCHUP_DELIVER;
        }
        return ZB_CATCHUP_DROP;
    }
    self->early_until = 0;          //  the live stream is past the snapshot

    topic_state_t *state = s_lookup (self, event->topic);
    bool known = state || self->all_known;
    uint64_t baseline = state? state->topic_seq: 0;
    bool adjacent = event->seq == self->position + 1;
    zb_str_t topic = event->topic;

    if (known && event->topic_seq == baseline + 1)
        return s_accept (self, event, true);
    if (known && event->topic_seq <= baseline) {
        //  Within one journal a topic_seq never goes back
        char why [300];
        snprintf (why, sizeof why, "topic_seq on %.*s went back to %" PRIu64 " after %" PRIu64,
                  (int) topic.len, topic.ptr, event->topic_seq, baseline);
        s_reset (self, why, event->seq - 1, NULL);
        return self->replaying? ZB_CATCHUP_HELD: s_accept (self, event, true);
    }
    if (known && s_behind (self, state)) {
        //  The gap is after the last event of the topic I have, and a seq I
        //  never saw lies between it and the position: a replay of the topic
        //  alone first (when adjacent, the whole gap is at or below the position)
        s_late (self, topic, baseline + 1, event->topic_seq - 1, adjacent);
        if (self->replaying)
            return ZB_CATCHUP_HELD;
        state = s_lookup (self, topic);
        baseline = state? state->topic_seq: 0;
        if (event->topic_seq == baseline + 1)
            return s_accept (self, event, true);
    }
    if (adjacent) {
        //  Nothing of any topic between the position and this event
        if (known)
            s_missed (self, topic, baseline + 1, event->topic_seq - 1, WHY_GONE);
        return s_accept (self, event, true);
    }
    if (known)
        s_log (self, "gap on %.*s (topic_seq %" PRIu64 "..%" PRIu64 "): replaying seq %"
               PRIu64 "..%" PRIu64, (int) topic.len, topic.ptr, baseline + 1,
               event->topic_seq - 1, self->position + 1, event->seq - 1);
    //  else: a topic without a baseline: the replay shows whether any of its
    //  events came after the position, quietly
    s_want_replay (self, event->seq - 1, NULL);
    return ZB_CATCHUP_HELD;
}

//  A heartbeat at or above my position: the topics whose head is the
//  baseline I have had nothing more up to its seq
static void
s_heads_seen (zb_catchup_t *self, const zb_catchup_snapshot_t *hb)
{
    for (size_t i = 0; i < hb->nheads; i++) {
        if (!zb_catchup_matches (self, hb->heads [i].topic))
            continue;
        topic_state_t *state = s_lookup (self, hb->heads [i].topic);
        if (state && !state->late && hb->heads [i].head == state->topic_seq
        &&  state->seq < hb->seq)
            state->seq = hb->seq;
    }
}

//  A heartbeat, with no replay running and nothing buffered before it.
//  Returns true when it must wait for the late replay it asked for (the
//  caller holds it, first in line).
static bool
s_heartbeat_now (zb_catchup_t *self, const zb_catchup_snapshot_t *hb)
{
    bool restarted = self->hb_seen && hb->seq < self->hb_last;
    self->hb_seen = true;
    self->hb_last = hb->seq;
    if (hb->seq >= self->early_until)
        self->early_until = 0;      //  published after every event of the snapshot

    if (!self->anchored) {
        //  The first heartbeat anchors a best-effort consumer
        self->anchored = true;
        if (self->delivered_any && hb->seq < self->position) {
            char why [160];
            snprintf (why, sizeof why, "heartbeat at seq %" PRIu64 " is below the last event "
                      "I received (seq %" PRIu64 ")", hb->seq, self->position);
            s_reset (self, why, hb->seq, hb);
            return false;
        }
        //  A head above what I saw may be events I missed since my first one
        //  (or, for a topic I saw nothing of, events from before it: the
        //  replay after my position returns only what I really missed)
        bool behind = false;
        for (size_t i = 0; i < hb->nheads && self->delivered_any; i++) {
            if (!zb_catchup_matches (self, hb->heads [i].topic))
                continue;
            topic_state_t *state = s_lookup (self, hb->heads [i].topic);
            if (hb->heads [i].head > (state? state->topic_seq: 0))
                behind = true;
        }
        if (!self->delivered_any)
            self->position = hb->seq;
        if (behind && hb->seq > self->position) {
            s_log (self, "heartbeat at seq %" PRIu64 " shows events I missed: replaying seq %"
                   PRIu64 "..%" PRIu64, hb->seq, self->position + 1, hb->seq);
            s_want_replay (self, hb->seq, hb);
            return false;
        }
        //  Unknown topics take the heads; known ones keep what they have
        if (hb->seq >= self->position)
            s_heads_seen (self, hb);
        for (size_t i = 0; i < hb->nheads; i++)
            if (zb_catchup_matches (self, hb->heads [i].topic)
            &&  !s_lookup (self, hb->heads [i].topic))
                s_baseline_set (self, hb->heads [i].topic, hb->heads [i].head, hb->seq);
        self->all_known = true;
        self->all_known_seq = hb->seq;
        if (hb->seq > self->position)
            self->position = hb->seq;
        return false;
    }
    if (restarted || (hb->seq < self->position && self->position > self->control_max)) {
        char why [160];
        if (restarted)
            snprintf (why, sizeof why, "heartbeats went back to seq %" PRIu64, hb->seq);
        else
            snprintf (why, sizeof why, "heartbeat at seq %" PRIu64 " is below my position %"
                      PRIu64, hb->seq, self->position);
        s_reset (self, why, hb->seq, hb);
        return false;
    }
    if (hb->seq < self->position) {
        //  My position came from the control socket and this heartbeat was
        //  published before it (it waited in the queue). Verify: a replay to the
        //  head tells the head (END), and a head below me means a lost journal.
        s_want_replay (self, 0, NULL);
        return false;
    }
    if (hb->seq == self->position) {
        s_apply (self, hb->heads, hb->nheads);
        return false;
    }
    s_heads_seen (self, hb);
    //  A head above what I have, for a topic with a seq I never saw between
    //  its last event and my position: its replay alone goes first, then the
    //  heartbeat again (the events above the position then come in order)
    bool late = false;
    for (size_t i = 0; i < hb->nheads; i++) {
        const zb_catchup_head_t *h = &hb->heads [i];
        if (!zb_catchup_matches (self, h->topic))
            continue;
        topic_state_t *state = s_lookup (self, h->topic);
        uint64_t have = state? state->topic_seq: 0;
        if (h->head > have && (state || self->all_known) && s_behind (self, state)) {
            s_late (self, h->topic, have + 1, h->head, false);
            late = true;
        }
    }
    if (late && self->replaying)
        return true;
    for (size_t i = 0; i < hb->nheads; i++) {
        const zb_catchup_head_t *h = &hb->heads [i];
        if (!zb_catchup_matches (self, h->topic))
            continue;
        topic_state_t *state = s_lookup (self, h->topic);
        uint64_t have = state? state->topic_seq: 0;
        if (h->head > have) {
            if (state || self->all_known)
                s_log (self, "heartbeat: %.*s is at topic_seq %" PRIu64 ", I have %" PRIu64
                       ": replaying seq %" PRIu64 "..%" PRIu64, (int) h->topic.len,
                       h->topic.ptr, h->head, have, self->position + 1, hb->seq);
            s_want_replay (self, hb->seq, hb);
            return false;
        }
    }
    //  Nothing of mine between my position and the heartbeat
    self->position = hb->seq;
    self->all_known = true;
    self->all_known_seq = hb->seq;
    return false;
}

//  ---------------------------------------------------------------------------
//  Inputs

zb_catchup_verdict_t
zb_catchup_live (zb_catchup_t *self, const zb_catchup_event_t *event)
{
    assert (self);
    assert (event);
    if (!zb_catchup_matches (self, event->topic))
        return ZB_CATCHUP_DROP;
    if (self->replaying || self->head) {
        s_hold (self, event);
        return ZB_CATCHUP_HELD;
    }
    zb_catchup_verdict_t verdict = s_decide_live (self, event);
    if (verdict == ZB_CATCHUP_HELD)
        s_hold (self, event);
    return verdict;
}

void
zb_catchup_heartbeat (zb_catchup_t *self, const zb_catchup_snapshot_t *heartbeat)
{
    assert (self);
    assert (heartbeat);
    if (self->replaying || self->head || s_heartbeat_now (self, heartbeat))
        s_hold_heartbeat (self, heartbeat);
}

//  An event of a late replay: the topic's events after its last one
//  delivered, up to the position; the position stays where it is
static zb_catchup_verdict_t
s_replayed_late (zb_catchup_t *self, const zb_catchup_event_t *event)
{
    if (strlen (self->replay_topic) != event->topic.len
    ||  memcmp (self->replay_topic, event->topic.ptr, event->topic.len) != 0)
        return ZB_CATCHUP_DROP;
    topic_state_t *state = s_lookup (self, event->topic);
    if (!state || event->seq > self->replay_to || event->seq <= state->seq
    ||  event->topic_seq <= state->topic_seq)
        return ZB_CATCHUP_DROP;     //  delivered already (or outside the range)
    if (event->topic_seq > state->topic_seq + 1)
        s_missed (self, event->topic, state->topic_seq + 1, event->topic_seq - 1, WHY_GONE);
    state->topic_seq = event->topic_seq;
    state->seq = event->seq;
    self->replayed++;
    if (event->seq < self->floor)
        return ZB_CATCHUP_SKIP;
    if (self->late_count++ == 0)
        self->late_first = event->seq;
    self->late_last = event->seq;
    return ZB_CATCHUP_DELIVER;
}

zb_catchup_verdict_t
zb_catchup_replayed (zb_catchup_t *self, const zb_catchup_event_t *event)
{
    assert (self);
    assert (event);
    if (!self->replaying || !zb_catchup_matches (self, event->topic))
        return ZB_CATCHUP_DROP;
    if (self->replay_topic)
        return s_replayed_late (self, event);
    if (event->seq <= self->position)
        return ZB_CATCHUP_DROP;
    topic_state_t *state = s_lookup (self, event->topic);
    bool known = state || self->all_known;
    uint64_t baseline = state? state->topic_seq: 0;
    if (known && event->topic_seq > baseline + 1 && s_behind (self, state))
        //  The gap may lie below this replay's start: the topic's events wait
        //  for its own replay (which reads up to the position then, this one too)
        s_late (self, event->topic, baseline + 1, event->topic_seq - 1, true);
    state = s_lookup (self, event->topic);
    if (state && state->late) {
        if (event->topic_seq > state->late_head)
            state->late_head = event->topic_seq;
        return ZB_CATCHUP_DROP;
    }
    if (known && event->topic_seq > baseline + 1)
        s_missed (self, event->topic, baseline + 1, event->topic_seq - 1, WHY_GONE);
    self->replayed++;
    if (event->seq > self->control_max)
        self->control_max = event->seq;
    return s_accept (self, event, false);
}

//  The END of a late replay: its topic is filled up to the position
static void
s_end_late (zb_catchup_t *self)
{
    topic_state_t *state = (topic_state_t *) zhashx_lookup (self->baselines, self->replay_topic);
    if (self->late_count)
        s_log (self, "%" PRIu64 " events of %s delivered late after a drop (seq %" PRIu64 "..%"
               PRIu64 ", behind my position %" PRIu64 ")", self->late_count, self->replay_topic,
               self->late_first, self->late_last, self->position);
    if (state && state->late)
        s_late_done (self, self->replay_topic, state);
    free (self->replay_topic);
    self->replay_topic = NULL;
    self->late_count = 0;
}

void
zb_catchup_end (zb_catchup_t *self, uint64_t last, uint64_t head)
{
    assert (self);
    if (!self->replaying)
        return;
    self->replaying = false;
    if (self->replay_topic) {
        if (head < self->position) {
            char why [160];
            snprintf (why, sizeof why, "the broker's head is seq %" PRIu64 ", below my "
                      "position %" PRIu64, head, self->position);
            self->overflowed = false;
            s_reset (self, why, head, NULL);
            return;
        }
        s_end_late (self);
        s_want_late (self);
        if (self->overflowed && !self->replaying) {
            self->overflowed = false;
            s_want_replay (self, 0, NULL);
        }
        return;
    }
    if (last > self->position && (self->replay_to == 0 || last <= self->replay_to))
        self->position = last;
    if (self->position > self->control_max)
        self->control_max = self->position;
    snapshot_t *snapshot = self->replay_snapshot;
    self->replay_snapshot = NULL;
    if (head < self->position) {
        char why [160];
        snprintf (why, sizeof why, "the broker's head is seq %" PRIu64 ", below my position %"
                  PRIu64, head, self->position);
        s_snapshot_destroy (&snapshot);
        self->overflowed = false;
        s_reset (self, why, head, NULL);
        return;
    }
    if (snapshot && snapshot->seq == self->position)
        s_apply (self, snapshot->heads, snapshot->nheads);
    s_snapshot_destroy (&snapshot);
    //  Topics found late during this replay first: their replays read up to
    //  the position it reached
    if (!self->replaying)
        s_want_late (self);
    if (self->overflowed && !self->replaying) {
        self->overflowed = false;
        s_want_replay (self, 0, NULL);
    }
}

zb_catchup_verdict_t
zb_catchup_next (zb_catchup_t *self, zb_catchup_event_t *event)
{
    assert (self);
    assert (event);
    s_item_destroy (&self->current);
    while (!self->replaying && self->head) {
        item_t *item = self->head;
        self->head = item->next;
        if (!self->head)
            self->tail = NULL;
        if (item->heartbeat) {
            zb_catchup_snapshot_t heartbeat = {
                .seq = item->heartbeat->seq, .oldest = item->heartbeat->oldest,
                .heads = item->heartbeat->heads, .nheads = item->heartbeat->nheads
            };
            if (s_heartbeat_now (self, &heartbeat)) {
                //  It waits for the late replay it asked for, first in line
                item->next = self->head;
                self->head = item;
                if (!self->tail)
                    self->tail = item;
                return ZB_CATCHUP_DROP;
            }
            s_item_destroy (&item);
            continue;
        }
        self->nevents--;
        zb_catchup_verdict_t verdict = s_decide_live (self, &item->event);
        if (verdict == ZB_CATCHUP_HELD) {
            //  It waits for the replay it asked for, first in line
            item->next = self->head;
            self->head = item;
            if (!self->tail)
                self->tail = item;
            self->nevents++;
            return ZB_CATCHUP_DROP;
        }
        if (verdict == ZB_CATCHUP_DELIVER || verdict == ZB_CATCHUP_SKIP) {
            self->current = item;
            *event = item->event;
            return verdict;
        }
        s_item_destroy (&item);
    }
    return ZB_CATCHUP_DROP;
}

//  ---------------------------------------------------------------------------
//  State

uint64_t
zb_catchup_position (zb_catchup_t *self)
{
    assert (self);
    return self->position;
}

uint64_t
zb_catchup_safe_position (zb_catchup_t *self)
{
    assert (self);
    uint64_t safe = self->position;
    if (self->nlate)
        for (topic_state_t *state = (topic_state_t *) zhashx_first (self->baselines); state;
             state = (topic_state_t *) zhashx_next (self->baselines))
            if (state->late && state->seq < safe)
                safe = state->seq;
    return safe;
}

uint64_t
zb_catchup_missed (zb_catchup_t *self)
{
    assert (self);
    return self->missed;
}

uint64_t
zb_catchup_replayed_count (zb_catchup_t *self)
{
    assert (self);
    return self->replayed;
}

size_t
zb_catchup_buffered (zb_catchup_t *self)
{
    assert (self);
    return self->nevents;
}

bool
zb_catchup_anchored (zb_catchup_t *self)
{
    assert (self);
    return self->anchored;
}
