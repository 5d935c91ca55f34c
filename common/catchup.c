/*  catchup.c - the consumer's merge of the live stream and the journal.

    See catchup.h for the model (position, baselines, best effort). The rules:

    live event (anchored, no replay running, nothing buffered):
        seq <= position                      drop (delivered already, or before my start)
        topic_seq == baseline + 1            deliver
        topic_seq >  baseline + 1, or the topic has no baseline yet:
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
        a head above my baseline, or a head for a topic without one:
                                             replay (position, H], then take the heads
                                             as baselines
        otherwise                            position = H (nothing of mine in between)
    replay event: deliver when seq > position; a topic_seq jump here means the
        journal no longer has those events (retention): counted as missed.
    replay END: position = last; buffered live events go through the rules above.

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
    uint64_t position;
    uint64_t floor;                 //  deliver only seq >= floor
    bool anchored;
    bool all_known;                 //  topics without a baseline have 0
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
    if (topic.len == 0 || topic.ptr [0] == ZB_RESERVED_PREFIX)
        return false;
    for (size_t i = 0; i < self->ntopics; i++)
        if (strlen (self->topics [i]) == topic.len
        &&  memcmp (self->topics [i], topic.ptr, topic.len) == 0)
            return true;
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
    return (topic_state_t *) zhashx_lookup (self->baselines, s_key (self, topic));
}

static topic_state_t *
s_baseline_set (zb_catchup_t *self, zb_str_t topic, uint64_t topic_seq)
{
    topic_state_t *state = s_lookup (self, topic);
    if (!state) {
        state = (topic_state_t *) calloc (1, sizeof (topic_state_t));
        assert (state);
        zhashx_insert (self->baselines, self->key, state);
    }
    state->topic_seq = topic_seq;
    return state;
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

#define WHY_GONE ": not in the journal any more"
//  A gap found after the position moved past it: either pruned, or dropped on
//  the way while events of other topics after them were delivered already
//  (delivering them now would break the seq order)
#define WHY_BEHIND ": not in the journal any more, or behind my position"

//  Take a snapshot's heads as the baselines at its seq (the position is there).
//  A head above a baseline we have (0 for every topic when all are known)
//  means events we can no longer get.
static void
s_apply (zb_catchup_t *self, const zb_catchup_head_t *heads, size_t nheads)
{
    for (size_t i = 0; i < nheads; i++) {
        if (!zb_catchup_matches (self, heads [i].topic))
            continue;
        topic_state_t *state = s_lookup (self, heads [i].topic);
        bool known = state || self->all_known;
        uint64_t have = state? state->topic_seq: 0;
        if (known && heads [i].head > have)
            s_missed (self, heads [i].topic, have + 1, heads [i].head, WHY_BEHIND);
        if (!state || heads [i].head > have)
            s_baseline_set (self, heads [i].topic, heads [i].head);
    }
    self->all_known = true;
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

//  The broker's journal is behind my position: it was lost (a --memory broker
//  restarted, a data directory removed). Start over with what it has now.
static void
s_reset (zb_catchup_t *self, const char *why, uint64_t to, const zb_catchup_snapshot_t *snapshot)
{
    s_log (self, "%s: the broker lost its journal; starting over from its oldest event", why);
    zhashx_purge (self->baselines);
    self->early_until = 0;
    self->position = 0;
    self->floor = 0;
    self->all_known = true;         //  a new journal: every topic starts at 0
    self->control_max = 0;
    self->replaying = false;
    s_snapshot_destroy (&self->replay_snapshot);
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

static zb_catchup_verdict_t
s_accept (zb_catchup_t *self, const zb_catchup_event_t *event)
{
    s_baseline_set (self, event->topic, event->topic_seq);
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
    s_baseline_set (self, event->topic, event->topic_seq);
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
        return s_accept (self, event);
    if (known && event->topic_seq <= baseline) {
        //  Within one journal a topic_seq never goes back
        char why [300];
        snprintf (why, sizeof why, "topic_seq on %.*s went back to %" PRIu64 " after %" PRIu64,
                  (int) topic.len, topic.ptr, event->topic_seq, baseline);
        s_reset (self, why, event->seq - 1, NULL);
        return self->replaying? ZB_CATCHUP_HELD: s_accept (self, event);
    }
    if (adjacent) {
        //  Nothing of any topic between the position and this event
        if (known)
            s_missed (self, topic, baseline + 1, event->topic_seq - 1, WHY_BEHIND);
        return s_accept (self, event);
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

static void
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
            return;
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
            return;
        }
        //  Unknown topics take the heads; known ones keep what they have
        for (size_t i = 0; i < hb->nheads; i++)
            if (zb_catchup_matches (self, hb->heads [i].topic)
            &&  !s_lookup (self, hb->heads [i].topic))
                s_baseline_set (self, hb->heads [i].topic, hb->heads [i].head);
        self->all_known = true;
        if (hb->seq > self->position)
            self->position = hb->seq;
        return;
    }
    if (restarted || (hb->seq < self->position && self->position > self->control_max)) {
        char why [160];
        if (restarted)
            snprintf (why, sizeof why, "heartbeats went back to seq %" PRIu64, hb->seq);
        else
            snprintf (why, sizeof why, "heartbeat at seq %" PRIu64 " is below my position %"
                      PRIu64, hb->seq, self->position);
        s_reset (self, why, hb->seq, hb);
        return;
    }
    if (hb->seq < self->position) {
        //  My position came from the control socket and this heartbeat was
        //  published before it (it waited in the queue). Verify: a replay to the
        //  head tells the head (END), and a head below me means a lost journal.
        s_want_replay (self, 0, NULL);
        return;
    }
    if (hb->seq == self->position) {
        s_apply (self, hb->heads, hb->nheads);
        return;
    }
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
            return;
        }
    }
    //  Nothing of mine between my position and the heartbeat
    self->position = hb->seq;
    self->all_known = true;
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
    if (self->replaying || self->head)
        s_hold_heartbeat (self, heartbeat);
    else
        s_heartbeat_now (self, heartbeat);
}

zb_catchup_verdict_t
zb_catchup_replayed (zb_catchup_t *self, const zb_catchup_event_t *event)
{
    assert (self);
    assert (event);
    if (!self->replaying || !zb_catchup_matches (self, event->topic)
    ||  event->seq <= self->position)
        return ZB_CATCHUP_DROP;
    topic_state_t *state = s_lookup (self, event->topic);
    bool known = state || self->all_known;
    uint64_t baseline = state? state->topic_seq: 0;
    if (known && event->topic_seq > baseline + 1)
        s_missed (self, event->topic, baseline + 1, event->topic_seq - 1, WHY_GONE);
    self->replayed++;
    if (event->seq > self->control_max)
        self->control_max = event->seq;
    return s_accept (self, event);
}

void
zb_catchup_end (zb_catchup_t *self, uint64_t last, uint64_t head)
{
    assert (self);
    if (!self->replaying)
        return;
    self->replaying = false;
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
    if (self->overflowed) {
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
            s_heartbeat_now (self, &heartbeat);
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
