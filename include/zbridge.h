/*  zbridge.h - libzbridge, the public C API of zbridge: put events into the
    bus and receive them, with the reliability the zbridge programs have.

    One header is the whole contract; link with `pkg-config --libs zbridge`.

    Objects are opaque: zbridge_X_new () makes one, zbridge_X_destroy (&x)
    frees it and sets x to NULL (NULL or a NULL x is fine). An object is used
    from one thread at a time.

    Errors: every function that can fail returns a zbridge_status_t, ZBRIDGE_OK
    (0) on success; zbridge_strerror () names a code, and the object's
    zbridge_X_error () (or the zbridge_error_t a constructor fills) says what
    exactly happened, naming the endpoint, the field or the broker's code.
    Bad arguments (a NULL where an object is needed, a value out of range) are
    ZBRIDGE_EINVAL, never a crash.

    Options: each object takes an options struct. Always fill it with the
    defaults function first (zbridge_X_options_init), then set what you need:
    fields are only ever added at the end, and the struct remembers the size
    your program was compiled with, so a newer library reads only the fields
    you know about.

    Signals: the library uses CZMQ, which by default catches SIGINT and
    SIGTERM. After one of them, the waiting calls (zbridge_consumer_run,
    zbridge_consumer_recv, zbridge_producer_flush, ...) return ZBRIDGE_EINTR.

    Example (a consumer; see examples/ and the README, "Use it from C"):

        zbridge_consumer_options_t options;
        zbridge_consumer_options_init (&options);
        const char *topics [] = { "sales-events", NULL };
        options.topics = topics;
        zbridge_error_t error;
        zbridge_consumer_t *consumer = zbridge_consumer_new (&options, &error);
        if (!consumer)
            fprintf (stderr, "%s\n", error.message);
        zbridge_event_t *event;
        while (zbridge_consumer_recv (consumer, &event, -1) == ZBRIDGE_OK)
            puts (zbridge_event_json (event, NULL));
        zbridge_consumer_destroy (&consumer);
*/
#ifndef ZBRIDGE_H_INCLUDED
#define ZBRIDGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined (__GNUC__) && defined (ZBRIDGE_BUILDING)
#   define ZBRIDGE_EXPORT __attribute__ ((visibility ("default")))
#else
#   define ZBRIDGE_EXPORT
#endif

#define ZBRIDGE_VERSION_MAJOR   0
#define ZBRIDGE_VERSION_MINOR   1
#define ZBRIDGE_VERSION_PATCH   0

//  Limits of option values
#define ZBRIDGE_MAX_CREDIT              100000  //  consumer options.credit
#define ZBRIDGE_CHECKPOINT_NAME_MAX     100     //  consumer options.name, bytes
#define ZBRIDGE_RULE_NAME_MAX           64      //  a broker rule name, characters
#define ZBRIDGE_MAX_DETAIL_TYPE         128     //  a topic (detail-type), bytes

//  The library's version, "MAJOR.MINOR.PATCH".
ZBRIDGE_EXPORT const char *zbridge_version (void);

//  True once SIGINT or SIGTERM was caught (CZMQ's handler, installed when the
//  first consumer or producer is made); waiting calls then return ZBRIDGE_EINTR.
ZBRIDGE_EXPORT bool zbridge_interrupted (void);

//  ---------------------------------------------------------------------------
//  Errors

typedef enum {
    ZBRIDGE_OK = 0,
    ZBRIDGE_EINVAL,         //  a bad argument: NULL, out of range, not a valid name
    ZBRIDGE_EENDPOINT,      //  an endpoint libzmq does not accept ("tcp://host:port")
    ZBRIDGE_EPATTERN,       //  an event pattern that is not valid
    ZBRIDGE_EENTRY,         //  an entry that is not valid (bad JSON, not a map)
    ZBRIDGE_ETIMEOUT,       //  the broker did not answer in time / nothing arrived in time
    ZBRIDGE_EUNREACHABLE,   //  the broker did not answer at start (require_broker)
    ZBRIDGE_EREJECTED,      //  the broker rejected an entry (result.code says why)
    ZBRIDGE_EBROKER,        //  the broker failed a whole request (ERROR reply, retries spent)
    ZBRIDGE_EPROTOCOL,      //  a reply the library could not read
    ZBRIDGE_ECHECKPOINT,    //  the checkpoint cannot be used (locked, corrupt, no directory)
    ZBRIDGE_EINTR,          //  interrupted: SIGINT or SIGTERM
    ZBRIDGE_ENOMEM,         //  out of memory
    ZBRIDGE_ENOTSUP,        //  an option this build does not support yet
    ZBRIDGE_EOUTPUT,        //  the application's flush callback failed
} zbridge_status_t;

//  A short fixed text for a status code ("bad argument", "timed out", ...);
//  "unknown status" for a value that is not one.
ZBRIDGE_EXPORT const char *zbridge_strerror (int status);

//  What went wrong in a constructor: the code and a one-line message.
typedef struct {
    int code;
    char message [512];
} zbridge_error_t;

//  ---------------------------------------------------------------------------
//  Event patterns

//  Check an EventBridge event pattern (JSON text, see the README "Event
//  patterns"). ZBRIDGE_OK, ZBRIDGE_EINVAL for NULL, or ZBRIDGE_EPATTERN with
//  "not a valid event pattern: <where and why>" in error (may be NULL).
ZBRIDGE_EXPORT int zbridge_pattern_check (const char *pattern, zbridge_error_t *error);

//  Check the values a consumer's options take, before making one (for a
//  command line's usage errors): ZBRIDGE_OK, or ZBRIDGE_EINVAL with the reason
//  in error (may be NULL).
//  from: "latest", "earliest", "seq:N" (N >= 1) or "time:RFC3339".
ZBRIDGE_EXPORT int zbridge_check_from (const char *from, zbridge_error_t *error);
//  A broker rule name: 1 to 64 characters of A-Z a-z 0-9 . - _
ZBRIDGE_EXPORT int zbridge_check_rule_name (const char *name, zbridge_error_t *error);
//  A checkpoint name: 1 to 100 characters of A-Z a-z 0-9 . _ -, not starting with '.'
ZBRIDGE_EXPORT int zbridge_check_checkpoint_name (const char *name, zbridge_error_t *error);

//  ---------------------------------------------------------------------------
//  Events, as a consumer receives them

typedef struct zbridge_event_t zbridge_event_t;

//  The topic it came on: its detail-type, or "$rule/NAME" for what a broker
//  rule delivers.
ZBRIDGE_EXPORT const char *zbridge_event_topic (const zbridge_event_t *event);
//  The broker's sequence number (over all topics), and the topic's own.
ZBRIDGE_EXPORT uint64_t zbridge_event_seq (const zbridge_event_t *event);
ZBRIDGE_EXPORT uint64_t zbridge_event_topic_seq (const zbridge_event_t *event);
//  The envelope as msgpack bytes (one map: version, id, detail-type, source,
//  account, time, region, resources, detail), *size set when not NULL.
ZBRIDGE_EXPORT const void *zbridge_event_msgpack (const zbridge_event_t *event, size_t *size);
//  The envelope as compact JSON text on one line (made on the first call).
//  NULL when the event is not JSON-representable (error says why; may be NULL).
ZBRIDGE_EXPORT const char *zbridge_event_json (zbridge_event_t *event, zbridge_error_t *error);

//  ---------------------------------------------------------------------------
//  Consumer: subscribe by topic, broker rule or pattern, with catch-up from
//  the broker's journal and an optional checkpoint.
//
//  Events arrive in the broker's sequence order, each at most once per run;
//  what the live stream missed is read back from the journal (see the README
//  "Reliability"). Deliver them to a callback (options.on_event, then
//  zbridge_consumer_run) or one at a time (zbridge_consumer_recv).

typedef struct zbridge_consumer_t zbridge_consumer_t;

//  Called for each event; event is valid during the call only. Return 0 to go
//  on, anything else to make zbridge_consumer_run return ZBRIDGE_OK.
typedef int (zbridge_event_fn) (void *arg, zbridge_event_t *event);

typedef struct {
    size_t size;                    //  set by zbridge_consumer_options_init
    const char *publish;            //  broker publish endpoint (tcp://127.0.0.1:5556)
    const char *control;            //  broker control endpoint (tcp://127.0.0.1:5557)
    //  What to receive, NULL-terminated arrays (NULL: none). At least one
    //  topic, prefix, rule or a pattern.
    const char *const *topics;      //  detail-types, exactly
    const char *const *prefixes;    //  every detail-type starting with one ("": all)
    const char *const *rules;       //  broker rule names: their topics "$rule/NAME"
    //  EventBridge event pattern (JSON), or NULL: only matching events are
    //  delivered. Without topics/prefixes it subscribes to the detail-types
    //  its top-level "detail-type" lists, or to everything; with rules alone
    //  it filters the rules' deliveries. Events that do not match still move
    //  the position and the checkpoint (counted as filtered).
    const char *pattern;
    //  Where to start without a checkpoint: "latest" (NULL, the default: new
    //  events only), "earliest", "seq:N", "time:RFC3339".
    const char *from;
    //  Keep the position in STATE_DIR/NAME.checkpoint and resume from it (it
    //  overrides from); NULL: no checkpoint. name is required with it.
    const char *state_dir;
    const char *name;
    uint32_t credit;                //  replay credit window, 1..100000 (1000)
    int start_timeout_ms;           //  PING and JOURNAL wait at start (1000)
    //  true: zbridge_consumer_new fails with ZBRIDGE_EUNREACHABLE when the
    //  broker does not answer PING. false (default): warn, then wait for it.
    bool require_broker;
    zbridge_event_fn *on_event;     //  callback delivery (zbridge_consumer_run)
    //  Called when no further event is immediately pending, and before each
    //  checkpoint save: flush what on_event buffered. Non-zero: the output
    //  failed; no checkpoint is saved from then on and run returns
    //  ZBRIDGE_EOUTPUT. May be NULL.
    int (*flush) (void *arg);
    //  One line per notable event (subscribed, caught up, gap, retry...),
    //  without a newline. NULL: quiet.
    void (*log) (void *arg, const char *line);
    void *arg;                      //  passed to on_event, flush and log
    //  Transport security, as the programs' --curve-server, --curve-cert and
    //  --max-msg-size (docs/SECURITY.md): both certificate files or neither.
    //  The setting is process-wide (the sockets made after it use it): the
    //  last consumer or producer created in a process sets it for all.
    const char *curve_server;       //  the broker's public certificate file
    const char *curve_cert;         //  this client's secret certificate file
    int64_t max_msg_size;           //  largest frame accepted, bytes (0: 256 MiB)
} zbridge_consumer_options_t;

//  Fill options with the defaults (use the macro: it records the size).
ZBRIDGE_EXPORT void zbridge_consumer_options_init_sized (zbridge_consumer_options_t *options,
                                                        size_t size);
#define zbridge_consumer_options_init(o) \
    zbridge_consumer_options_init_sized ((o), sizeof (zbridge_consumer_options_t))

//  Subscribe, ask the broker where its journal stands, load the checkpoint
//  and plan the catch-up. NULL on error, with error (may be NULL) filled:
//  ZBRIDGE_EINVAL (options), EENDPOINT, EPATTERN, ECHECKPOINT, EUNREACHABLE,
//  ENOTSUP, ENOMEM.
ZBRIDGE_EXPORT zbridge_consumer_t *zbridge_consumer_new (const zbridge_consumer_options_t *options,
                                                         zbridge_error_t *error);
//  Save the checkpoint (unless the flush callback failed; the last event
//  zbridge_consumer_recv handed out counts as processed) and free.
ZBRIDGE_EXPORT void zbridge_consumer_destroy (zbridge_consumer_t **self_p);

//  Callback delivery: run until on_event returns non-zero or calls
//  zbridge_consumer_stop (ZBRIDGE_OK), a signal (ZBRIDGE_EINTR) or a failed
//  flush (ZBRIDGE_EOUTPUT). Flushes and saves the checkpoint before it returns.
//  ZBRIDGE_EINVAL without options.on_event.
ZBRIDGE_EXPORT int zbridge_consumer_run (zbridge_consumer_t *self);
//  Make zbridge_consumer_run return after the current event.
ZBRIDGE_EXPORT void zbridge_consumer_stop (zbridge_consumer_t *self);

//  Receive delivery: wait up to timeout_ms (-1: no limit) for the next event.
//  ZBRIDGE_OK with *event (valid until the next call on self), ZBRIDGE_ETIMEOUT,
//  ZBRIDGE_EINTR. The previous event counts as processed: the checkpoint may
//  be saved past it from this call on.
ZBRIDGE_EXPORT int zbridge_consumer_recv (zbridge_consumer_t *self, zbridge_event_t **event,
                                          int timeout_ms);

//  Save the checkpoint now (ZBRIDGE_OK also without one); ZBRIDGE_ECHECKPOINT
//  when the write failed.
ZBRIDGE_EXPORT int zbridge_consumer_checkpoint (zbridge_consumer_t *self);

typedef struct {
    uint64_t delivered;             //  events given to on_event or returned by recv
    uint64_t filtered;              //  taken but not matching the pattern
    uint64_t malformed;             //  messages dropped as malformed
    uint64_t missed;                //  events known lost (the journal no longer had them)
    uint64_t replayed;              //  events delivered from the journal
    uint64_t position;              //  the seq up to which all is delivered
} zbridge_consumer_stats_t;

ZBRIDGE_EXPORT int zbridge_consumer_stats (zbridge_consumer_t *self,
                                           zbridge_consumer_stats_t *stats);
//  The message of the last error on self ("" when none).
ZBRIDGE_EXPORT const char *zbridge_consumer_error (zbridge_consumer_t *self);

//  ---------------------------------------------------------------------------
//  Producer: put events, pipelined. Entries (PutEvents entries) are queued
//  and go to the broker in requests of up to options.batch entries; up to
//  options.window requests are in flight at once, and each entry gets exactly
//  one result. Every entry carries an idempotency key (its own, or one the
//  producer gives it): a request not answered within retry_ms, and entries
//  answered InternalFailure or ThrottlingException (the broker's rate limit),
//  are sent again and the broker stores each key once.
//
//  An entry is JSON text, one object: {"Source": str, "DetailType": str,
//  "Detail": object or its JSON text, "Resources": [str], "Time": RFC 3339,
//  "IdempotencyKey": str} (the lowercase envelope keys a consumer prints work
//  too), or the same as a msgpack map with the wire's keys (source,
//  detail-type, detail, resources, time, idempotency-key).

typedef struct zbridge_producer_t zbridge_producer_t;

typedef struct {
    uint64_t tag;                   //  the tag the entry was sent with
    int status;                     //  ZBRIDGE_OK, or EREJECTED (code/message
                                    //  from the broker), EBROKER, ETIMEOUT,
                                    //  EPROTOCOL, EINTR
    bool duplicate;                 //  accepted before under the same key
    char id [48];                   //  the event id (ZBRIDGE_OK)
    char code [64];                 //  the broker's error code, e.g. "InvalidArgument"
    char message [320];             //  what went wrong
} zbridge_result_t;

//  Called with the result of every entry sent with zbridge_producer_send*.
typedef void (zbridge_result_fn) (void *arg, const zbridge_result_t *result);

typedef struct {
    size_t size;                    //  set by zbridge_producer_options_init
    const char *endpoint;           //  broker ingest endpoint (tcp://127.0.0.1:5555)
    size_t batch;                   //  most entries per request, 1..100000 (10)
    size_t window;                  //  requests in flight, 1..100000 (16)
    //  Give up when requests are in flight and the broker has not answered for
    //  this long: their entries fail with ZBRIDGE_ETIMEOUT (10000; 0: never).
    int timeout_ms;
    int retry_ms;                   //  resend a request not answered within (1000)
    unsigned retries;               //  resends of one request before failing it (10)
    //  Entries without an idempotency key get "<key_prefix>-<n>" (n counts
    //  from 1); NULL (default): a prefix new for every producer.
    const char *key_prefix;
    zbridge_result_fn *on_result;   //  results of zbridge_producer_send*; may be NULL
    void (*log) (void *arg, const char *line);     //  resends, request errors; may be NULL
    void *arg;
    //  Transport security: as the consumer's (process-wide).
    const char *curve_server;
    const char *curve_cert;
    int64_t max_msg_size;
} zbridge_producer_options_t;

ZBRIDGE_EXPORT void zbridge_producer_options_init_sized (zbridge_producer_options_t *options,
                                                        size_t size);
#define zbridge_producer_options_init(o) \
    zbridge_producer_options_init_sized ((o), sizeof (zbridge_producer_options_t))

//  Connect to the broker's ingest endpoint (no message is sent yet). NULL on
//  error with error filled: ZBRIDGE_EINVAL, EENDPOINT, ENOTSUP, ENOMEM.
ZBRIDGE_EXPORT zbridge_producer_t *zbridge_producer_new (const zbridge_producer_options_t *options,
                                                         zbridge_error_t *error);
//  Free; entries queued or in flight get no result (flush first).
ZBRIDGE_EXPORT void zbridge_producer_destroy (zbridge_producer_t **self_p);

//  Queue one entry (JSON text of len bytes; len 0: strlen) with the caller's
//  tag for its result. A full batch goes out at once; while the window is
//  full this waits for replies. ZBRIDGE_OK; ZBRIDGE_EENTRY when the entry is
//  not valid (nothing queued, no result); ZBRIDGE_ETIMEOUT, EINTR or EBROKER
//  when sending failed (what was in flight got its results).
ZBRIDGE_EXPORT int zbridge_producer_send (zbridge_producer_t *self, const char *json, size_t len,
                                          uint64_t tag);
//  The same with an entry packed as one msgpack map.
ZBRIDGE_EXPORT int zbridge_producer_send_msgpack (zbridge_producer_t *self, const void *data,
                                                  size_t size, uint64_t tag);
//  Send the entries queued so far as one request now, without waiting.
ZBRIDGE_EXPORT int zbridge_producer_submit (zbridge_producer_t *self);
//  Read replies and do the resends due. timeout_ms >= 0: wait up to that
//  long for replies, return once some came (0: only what is here); -1: until
//  nothing is in flight. ZBRIDGE_OK, EINTR (after a signal: what was here
//  is still read), ETIMEOUT (the broker silent for options.timeout_ms: what
//  was in flight failed), or the status of a resend that failed.
ZBRIDGE_EXPORT int zbridge_producer_poll (zbridge_producer_t *self, int timeout_ms);
//  Submit and wait until every entry has its result. ZBRIDGE_OK, ETIMEOUT, EINTR.
ZBRIDGE_EXPORT int zbridge_producer_flush (zbridge_producer_t *self);

//  Put one entry and wait for its result (also flushes what was queued).
//  Returns result->status (ZBRIDGE_OK: result->id is the event id), or
//  EINVAL/EENTRY for an entry that was not sent. result may be NULL.
ZBRIDGE_EXPORT int zbridge_producer_put (zbridge_producer_t *self, const char *json,
                                         zbridge_result_t *result);
//  Put count entries, pipelined, and wait for all: results [i] (may be NULL)
//  is the result of entries [i]. ZBRIDGE_OK when every entry was accepted,
//  ZBRIDGE_EREJECTED when some were not (see results), EINVAL/EENTRY when an
//  entry is not valid (then nothing was sent), ETIMEOUT or EINTR.
ZBRIDGE_EXPORT int zbridge_producer_put_batch (zbridge_producer_t *self,
                                               const char *const *entries, size_t count,
                                               zbridge_result_t *results);

typedef struct {
    uint64_t sent;                  //  entries sent (first sends)
    uint64_t acked;                 //  entries with an event id
    uint64_t failed;                //  entries failed
    uint64_t retried;               //  entries sent again
    uint64_t duplicates;            //  acked entries the broker had stored before
    uint64_t request_errors;        //  requests answered ERROR, unusable or given up
    uint64_t stray_replies;         //  replies for no request in flight (ignored)
    uint64_t resends;               //  requests resent for want of a reply
    size_t queued;                  //  entries queued, not sent yet
    size_t in_flight;               //  entries sent, not answered yet
    size_t requests;                //  requests in flight (at most options.window)
} zbridge_producer_stats_t;

ZBRIDGE_EXPORT int zbridge_producer_stats (zbridge_producer_t *self,
                                           zbridge_producer_stats_t *stats);
//  The message of the last error on self ("" when none).
ZBRIDGE_EXPORT const char *zbridge_producer_error (zbridge_producer_t *self);

#ifdef __cplusplus
}
#endif

#endif
