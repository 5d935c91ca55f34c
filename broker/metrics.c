/*  metrics.c - the Prometheus endpoint; see metrics.h for the threading.

    libmicrohttpd does HTTP (parsing, limits, timeouts, bad requests); we own
    only the listening socket, so that a bind error names its reason, and the
    one handler: GET or HEAD of /metrics. Anything else gets 404 or 405. */

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "zb.h"

#define ZB_METRICS_CONNECTIONS  64          //  concurrent HTTP connections
#define ZB_METRICS_TIMEOUT_S    10          //  an idle HTTP connection is closed
#define ZB_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define ZB_METRICS_KEEP         (4 * 1024 * 1024)   //  bigger render buffers are freed

//  Latency buckets, upper bounds in nanoseconds (then +Inf)
static const uint64_t s_bounds_ns [] = {
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
    25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000ULL
};
#define ZB_BUCKETS (sizeof s_bounds_ns / sizeof s_bounds_ns [0])

typedef struct {
    uint64_t bucket [ZB_BUCKETS + 1];       //  per bucket (not cumulative); last: +Inf
    uint64_t count;
    uint64_t sum_ns;
} histogram_t;

typedef struct {
    char *data;
    size_t size;
    size_t cap;
    bool failed;                            //  out of memory: the text is cut
} text_t;

struct zb_metrics_t {
    struct MHD_Daemon *daemon;
    int listen_fd;
    int pipe_r, pipe_w;                     //  scrape -> broker: "render now"
    char url [320];

    //  Shared with the HTTP thread, under lock
    pthread_mutex_t lock;
    pthread_cond_t rendered_cond;
    bool lock_ready, cond_ready;
    text_t published;
    uint64_t wanted;                        //  scrapes that asked for a snapshot
    uint64_t rendered;                      //  the snapshot answers wanted up to this

    //  Broker thread only
    text_t scratch;
    histogram_t commit;
    histogram_t ack;
};

//  --------------------------------------------------------------------------
//  Text

static void
s_text_vadd (text_t *t, const char *format, va_list args)
{
    if (t->failed)
        return;
    size_t room = t->cap - t->size;
    va_list copy;
    va_copy (copy, args);
    int n = vsnprintf (t->data ? t->data + t->size : NULL, t->data ? room : 0, format, copy);
    va_end (copy);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if ((size_t) n >= room) {
        size_t cap = t->cap ? t->cap : 16384;
        while (cap - t->size <= (size_t) n)
            cap *= 2;
        char *data = (char *) realloc (t->data, cap);
        if (!data) {
            t->failed = true;
            return;
        }
        t->data = data;
        t->cap = cap;
        vsnprintf (t->data + t->size, cap - t->size, format, args);
    }
    t->size += (size_t) n;
}

static void
s_add (text_t *t, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_text_vadd (t, format, args);
    va_end (args);
}

//  A label value: backslash, double quote and newline escaped (format 0.0.4)
static void
s_add_label (text_t *t, const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = value [i];
        if (c == '\\')
            s_add (t, "\\\\");
        else
        if (c == '"')
            s_add (t, "\\\"");
        else
        if (c == '\n')
            s_add (t, "\\n");
        else
            s_add (t, "%c", c);
    }
}

static void
s_family (text_t *t, const char *name, const char *type, const char *help)
{
    s_add (t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
s_sample (text_t *t, const char *name, uint64_t value)
{
    s_add (t, "%s %" PRIu64 "\n", name, value);
}

static void
s_metric (text_t *t, const char *name, const char *type, const char *help, uint64_t value)
{
    s_family (t, name, type, help);
    s_sample (t, name, value);
}

static void
s_histogram (text_t *t, const char *name, const char *help, const histogram_t *h)
{
    s_family (t, name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < ZB_BUCKETS; i++) {
        cumulative += h->bucket [i];
        s_add (t, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, (double) s_bounds_ns [i] / 1e9,
               cumulative);
    }
    cumulative += h->bucket [ZB_BUCKETS];
    s_add (t, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cumulative);
    s_add (t, "%s_sum %.9f\n", name, (double) h->sum_ns / 1e9);
    s_add (t, "%s_count %" PRIu64 "\n", name, h->count);
}

static void
s_observe (histogram_t *h, uint64_t ns)
{
    size_t i = 0;
    while (i < ZB_BUCKETS && ns > s_bounds_ns [i])
        i++;
    h->bucket [i]++;
    h->count++;
    h->sum_ns += ns;
}

//  --------------------------------------------------------------------------
//  Rendering (broker thread)

static bool
s_is_rule (const zb_topic_t *topic)
{
    size_t plen = sizeof ZB_RULE_TOPIC_PREFIX - 1;
    return topic->len > plen && memcmp (topic->name, ZB_RULE_TOPIC_PREFIX, plen) == 0;
}

//  What one per-topic (or per-rule) family shows of a topic
typedef enum { F_IN, F_OUT, F_REJECTED, F_BYTES, F_SUBSCRIBERS, F_SEQ } field_t;

static uint64_t
s_field (const zb_topic_t *topic, field_t field)
{
    switch (field) {
        case F_IN:          return topic->in;
        case F_OUT:         return topic->out;
        case F_REJECTED:    return topic->rejected;
        case F_BYTES:       return topic->bytes;
        case F_SUBSCRIBERS: return topic->subscribers;
        case F_SEQ:         return topic->seq;
    }
    return 0;
}

static void
s_per_topic (text_t *t, zb_topics_t *topics, bool rules, const char *name, const char *type,
             const char *help, field_t field)
{
    s_family (t, name, type, help);
    size_t plen = sizeof ZB_RULE_TOPIC_PREFIX - 1;
    size_t size = zb_topics_size (topics);
    for (size_t i = 0; i < size; i++) {
        zb_topic_t *topic = zb_topics_at (topics, i);
        if (s_is_rule (topic) != rules || (!rules && topic->name [0] == '$'))
            continue;
        s_add (t, "%s{%s=\"", name, rules ? "rule" : "topic");
        if (rules)
            s_add_label (t, topic->name + plen, topic->len - plen);
        else
            s_add_label (t, topic->name, topic->len);
        s_add (t, "\"} %" PRIu64 "\n", s_field (topic, field));
    }
}

static void
s_render (zb_metrics_t *self, const zb_metrics_source_t *src, text_t *t)
{
    t->size = 0;
    t->failed = false;
    s_family (t, "zbridge_build_info", "gauge", "The broker's version (value 1).");
    s_add (t, "zbridge_build_info{version=\"%s\"} 1\n", ZB_VERSION);
    s_metric (t, "zbridge_uptime_seconds", "gauge", "Seconds since the broker started.",
              src->uptime_ms / 1000);
    s_metric (t, "zbridge_seq", "gauge", "Sequence number of the last event published.",
              src->seq);
    s_metric (t, "zbridge_requests_total", "counter", "PUT requests answered OK.",
              src->requests);
    s_metric (t, "zbridge_requests_failed_total", "counter",
              "Requests answered ERROR, on any socket.", src->requests_failed);
    s_metric (t, "zbridge_entries_in_total", "counter", "Entries accepted and published.",
              src->entries_in);
    s_metric (t, "zbridge_entries_rejected_total", "counter",
              "Entries that got an error result.", src->entries_rejected);
    s_metric (t, "zbridge_ingest_bytes_total", "counter",
              "Bytes of request frames read on the ingest socket.", src->ingest_bytes);
    s_metric (t, "zbridge_duplicates_total", "counter",
              "Entries answered as duplicates of an idempotency key.", src->duplicates);
    s_metric (t, "zbridge_journal_failures_total", "counter",
              "Group commits the journal could not store.", src->journal_failures);
    s_metric (t, "zbridge_producers_active", "gauge",
              "Ingest clients that sent a request in the last minute.", src->producers_active);
    s_family (t, "zbridge_connections", "gauge", "Peers connected to each broker socket.");
    static const char *const sockets [3] = { "ingest", "publish", "control" };
    for (int i = 0; i < 3; i++)
        s_add (t, "zbridge_connections{socket=\"%s\"} %" PRIu64 "\n", sockets [i],
               src->connections [i]);
    s_metric (t, "zbridge_prefix_subscriptions", "gauge",
              "Prefix subscriptions held on the publish socket.", src->prefix_subscriptions);
    s_metric (t, "zbridge_replay_requests_total", "counter",
              "Consumer catch-up requests: REPLAY sessions opened.", src->replay_requests);
    s_metric (t, "zbridge_replay_events_total", "counter",
              "Events sent by replay sessions.", src->replay_events);
    s_metric (t, "zbridge_replay_sessions", "gauge", "Replay sessions open.",
              src->replay_sessions);

    zb_journal_info_t info;
    zb_journal_info (src->journal, &info);
    s_metric (t, "zbridge_journal_head", "gauge", "Sequence number of the newest journal record.",
              info.head);
    s_metric (t, "zbridge_journal_oldest", "gauge",
              "Sequence number of the oldest journal record (0: empty).", info.oldest);
    s_metric (t, "zbridge_journal_events", "gauge", "Records in the journal.", info.events);
    s_metric (t, "zbridge_journal_bytes", "gauge", "Bytes the journal uses.", info.bytes);
    s_histogram (t, "zbridge_journal_commit_seconds",
                 "Time of one group commit (journal append of an ingest pass).", &self->commit);
    s_histogram (t, "zbridge_ack_seconds",
                 "From the first request of an ingest pass read to a PUT's reply sent.",
                 &self->ack);

    zb_topics_t *topics = src->topics;
    s_metric (t, "zbridge_topics", "gauge", "Topics in the broker's table (rule topics included).",
              zb_topics_size (topics));
    s_per_topic (t, topics, false, "zbridge_topic_events_in_total", "counter",
                 "Entries accepted, per detail-type.", F_IN);
    s_per_topic (t, topics, false, "zbridge_topic_events_out_total", "counter",
                 "Events published, per detail-type.", F_OUT);
    s_per_topic (t, topics, false, "zbridge_topic_events_rejected_total", "counter",
                 "Entries that failed, per detail-type the broker tracks.", F_REJECTED);
    s_per_topic (t, topics, false, "zbridge_topic_bytes_in_total", "counter",
                 "Bytes of the events accepted (packed envelopes), per detail-type.", F_BYTES);
    s_per_topic (t, topics, false, "zbridge_topic_subscribers", "gauge",
                 "Exact subscriptions held, per detail-type.", F_SUBSCRIBERS);
    s_per_topic (t, topics, false, "zbridge_topic_seq", "gauge",
                 "Last topic_seq, per detail-type.", F_SEQ);

    s_metric (t, "zbridge_rules", "gauge", "Rules the broker holds.",
              src->rules ? zb_rules_size (src->rules) : 0);
    s_per_topic (t, topics, true, "zbridge_rule_events_in_total", "counter",
                 "Events a rule matched and stored on its topic $rule/NAME.", F_IN);
    s_per_topic (t, topics, true, "zbridge_rule_events_out_total", "counter",
                 "Events published on a rule's topic.", F_OUT);
    s_per_topic (t, topics, true, "zbridge_rule_bytes_in_total", "counter",
                 "Bytes stored on a rule's topic.", F_BYTES);
    s_per_topic (t, topics, true, "zbridge_rule_subscribers", "gauge",
                 "Exact subscriptions to a rule's topic.", F_SUBSCRIBERS);
    s_family (t, "zbridge_rule_failures_total", "counter",
              "Deliveries a rule's transformer could not make.");
    for (size_t i = 0; src->rules && i < zb_rules_size (src->rules); i++) {
        zb_rule_t *rule = zb_rules_at (src->rules, i);
        s_add (t, "zbridge_rule_failures_total{rule=\"");
        s_add_label (t, rule->name, strlen (rule->name));
        s_add (t, "\"} %" PRIu64 "\n", rule->failed);
    }
    if (t->failed) {
        //  Out of memory: keep the whole lines rendered so far
        while (t->size > 0 && t->data [t->size - 1] != '\n')
            t->size--;
        if (t->data)
            t->data [t->size] = 0;
    }
}

//  --------------------------------------------------------------------------
//  The HTTP thread

static enum MHD_Result
s_respond (struct MHD_Connection *connection, unsigned status, const char *type,
           const char *body, size_t size, const char *allow)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer (size, (void *) body, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (allow)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

//  A fresh snapshot from the broker thread, copied into the response.
static enum MHD_Result
s_scrape (zb_metrics_t *self, struct MHD_Connection *connection)
{
    pthread_mutex_lock (&self->lock);
    uint64_t mine = ++self->wanted;
    pthread_mutex_unlock (&self->lock);
    //  Wake the broker; a full pipe already holds a wake-up: fine
    ssize_t rc = write (self->pipe_w, "m", 1);
    (void) rc;

    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ZB_METRICS_WAIT_MS / 1000;
    deadline.tv_nsec += (long) (ZB_METRICS_WAIT_MS % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&self->lock);
    while (self->rendered < mine) {
        if (pthread_cond_timedwait (&self->rendered_cond, &self->lock, &deadline) == ETIMEDOUT)
            break;
    }
    static const char not_yet [] = "the broker has not rendered its metrics yet; retry\n";
    enum MHD_Result result;
    if (self->published.size == 0)
        result = s_respond (connection, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
                            not_yet, sizeof not_yet - 1, NULL);
    else
        result = s_respond (connection, MHD_HTTP_OK, ZB_METRICS_CONTENT_TYPE,
                            self->published.data, self->published.size, NULL);
    pthread_mutex_unlock (&self->lock);
    return result;
}

static enum MHD_Result
s_on_request (void *cls, struct MHD_Connection *connection, const char *url,
              const char *method, const char *version, const char *upload_data,
              size_t *upload_data_size, void **req_cls)
{
    (void) version;
    (void) upload_data;
    (void) upload_data_size;
    (void) req_cls;
    zb_metrics_t *self = (zb_metrics_t *) cls;
    static const char not_found [] = "not found: the metrics are at /metrics\n";
    static const char not_allowed [] = "method not allowed: GET /metrics\n";
    static const char index [] = "zb-broker metrics: GET /metrics (Prometheus text format 0.0.4)\n";
    bool get = streq (method, MHD_HTTP_METHOD_GET) || streq (method, MHD_HTTP_METHOD_HEAD);
    bool metrics = streq (url, "/metrics");
    if (!metrics && !streq (url, "/"))
        return s_respond (connection, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
                          not_found, sizeof not_found - 1, NULL);
    if (!get)
        return s_respond (connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                          not_allowed, sizeof not_allowed - 1, "GET, HEAD");
    if (!metrics)
        return s_respond (connection, MHD_HTTP_OK, "text/plain; charset=utf-8",
                          index, sizeof index - 1, NULL);
    return s_scrape (self, connection);
}

//  libmicrohttpd's own messages (bad requests, resource limits), one line each
static void
s_mhd_log (void *arg, const char *format, va_list args)
{
    (void) arg;
    char line [512];
    vsnprintf (line, sizeof line, format, args);
    size_t len = strlen (line);
    while (len > 0 && (line [len - 1] == '\n' || line [len - 1] == '\r'))
        line [--len] = 0;
    fprintf (stderr, "zb-broker: metrics: %s\n", line);
}

//  --------------------------------------------------------------------------
//  The address

//  Split "HOST:PORT" / "[V6]:PORT" into host and port. 0, or -1 with err.
static int
s_split (const char *address, char *host, size_t hostsize, char *port, size_t portsize,
         char *err, size_t errlen)
{
    const char *colon;
    const char *h = address;
    size_t hlen;
    if (*address == '[') {
        const char *close = strchr (address, ']');
        if (!close || close [1] != ':') {
            snprintf (err, errlen, "'%s' is not ADDR:PORT ([IPv6]:PORT for IPv6)", address);
            return -1;
        }
        h = address + 1;
        hlen = (size_t) (close - h);
        colon = close + 1;
    }
    else {
        colon = strrchr (address, ':');
        if (!colon || strchr (address, ':') != colon) {
            snprintf (err, errlen, "'%s' is not ADDR:PORT (e.g. 127.0.0.1:9100; [::1]:9100)",
                      address);
            return -1;
        }
        hlen = (size_t) (colon - address);
    }
    uint64_t value = 0;
    const char *p = colon + 1;
    bool digits = *p != 0 && strlen (p) <= 5;
    for (const char *c = p; digits && *c; c++) {
        digits = *c >= '0' && *c <= '9';
        value = value * 10 + (uint64_t) (*c - '0');
    }
    if (!digits || value > 65535) {
        snprintf (err, errlen, "'%s': the port must be a number from 0 to 65535", address);
        return -1;
    }
    if (hlen == 0 || hlen >= hostsize) {
        snprintf (err, errlen, "'%s': the address before the port is %s", address,
                  hlen == 0 ? "missing (0.0.0.0:PORT for every interface)" : "too long");
        return -1;
    }
    memcpy (host, h, hlen);
    host [hlen] = 0;
    snprintf (port, portsize, "%" PRIu64, value);
    return 0;
}

//  Resolve the address (first result). The caller frees *result.
static int
s_resolve (const char *address, struct addrinfo **result, char *err, size_t errlen)
{
    char host [256], port [8];
    if (s_split (address, host, sizeof host, port, sizeof port, err, errlen) == -1)
        return -1;
    struct addrinfo hints;
    memset (&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo (host, port, &hints, result);
    if (rc != 0) {
        snprintf (err, errlen, "'%s': cannot resolve %s: %s", address, host, gai_strerror (rc));
        return -1;
    }
    return 0;
}

int
zb_metrics_check_address (const char *address, char *err, size_t errlen)
{
    struct addrinfo *info = NULL;
    if (s_resolve (address, &info, err, errlen) == -1)
        return -1;
    freeaddrinfo (info);
    return 0;
}

//  --------------------------------------------------------------------------
//  Life cycle

zb_metrics_t *
zb_metrics_new (const char *address, char *err, size_t errlen)
{
    assert (address);
    struct addrinfo *info = NULL;
    if (s_resolve (address, &info, err, errlen) == -1)
        return NULL;
    zb_metrics_t *self = (zb_metrics_t *) zmalloc (sizeof (zb_metrics_t));
    assert (self);
    self->listen_fd = -1;
    self->pipe_r = self->pipe_w = -1;
    self->lock_ready = pthread_mutex_init (&self->lock, NULL) == 0;
    pthread_condattr_t attr;
    if (pthread_condattr_init (&attr) == 0) {
        pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
        self->cond_ready = pthread_cond_init (&self->rendered_cond, &attr) == 0;
        pthread_condattr_destroy (&attr);
    }
    int fds [2];
    if (!self->lock_ready || !self->cond_ready || pipe2 (fds, O_NONBLOCK | O_CLOEXEC) == -1) {
        snprintf (err, errlen, "cannot set up the metrics endpoint: %s", strerror (errno));
        freeaddrinfo (info);
        zb_metrics_destroy (&self);
        return NULL;
    }
    self->pipe_r = fds [0];
    self->pipe_w = fds [1];

    //  Our socket, so that a bind failure says why
    self->listen_fd = socket (info->ai_family, info->ai_socktype | SOCK_CLOEXEC, info->ai_protocol);
    int on = 1;
    if (self->listen_fd == -1
    ||  setsockopt (self->listen_fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1
    ||  bind (self->listen_fd, info->ai_addr, info->ai_addrlen) == -1
    ||  listen (self->listen_fd, 64) == -1) {
        snprintf (err, errlen, "cannot bind metrics to %s: %s", address, strerror (errno));
        freeaddrinfo (info);
        zb_metrics_destroy (&self);
        return NULL;
    }
    freeaddrinfo (info);
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    char host [128] = "?", port [8] = "?";
    if (getsockname (self->listen_fd, (struct sockaddr *) &bound, &bound_len) == 0)
        getnameinfo ((struct sockaddr *) &bound, bound_len, host, sizeof host, port, sizeof port,
                     NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf (self->url, sizeof self->url, bound.ss_family == AF_INET6 ? "http://[%s]:%s/metrics"
                                                                     : "http://%s:%s/metrics",
              host, port);

    //  The HTTP thread must not take SIGINT/SIGTERM from the broker's loop:
    //  it inherits this mask
    sigset_t block, old;
    sigemptyset (&block);
    sigaddset (&block, SIGINT);
    sigaddset (&block, SIGTERM);
    sigaddset (&block, SIGPIPE);
    pthread_sigmask (SIG_BLOCK, &block, &old);
    self->daemon = MHD_start_daemon (
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_AUTO,
        0, NULL, NULL, s_on_request, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,        //  first, or MHD complains
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket) self->listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) ZB_METRICS_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) ZB_METRICS_TIMEOUT_S,
        MHD_OPTION_END);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (!self->daemon) {
        snprintf (err, errlen, "cannot start the metrics HTTP server on %s", address);
        zb_metrics_destroy (&self);
        return NULL;
    }
    return self;
}

void
zb_metrics_destroy (zb_metrics_t **self_p)
{
    assert (self_p);
    zb_metrics_t *self = *self_p;
    if (!self)
        return;
    //  A scrape waiting for a snapshot gives up after ZB_METRICS_WAIT_MS;
    //  release it now with what there is
    if (self->lock_ready && self->cond_ready) {
        pthread_mutex_lock (&self->lock);
        self->rendered = UINT64_MAX;
        pthread_cond_broadcast (&self->rendered_cond);
        pthread_mutex_unlock (&self->lock);
    }
    if (self->daemon)
        MHD_stop_daemon (self->daemon);     //  joins the HTTP thread
    if (self->listen_fd != -1)
        close (self->listen_fd);
    if (self->pipe_r != -1)
        close (self->pipe_r);
    if (self->pipe_w != -1)
        close (self->pipe_w);
    if (self->cond_ready)
        pthread_cond_destroy (&self->rendered_cond);
    if (self->lock_ready)
        pthread_mutex_destroy (&self->lock);
    free (self->published.data);
    free (self->scratch.data);
    free (self);
    *self_p = NULL;
}

const char *
zb_metrics_url (zb_metrics_t *self)
{
    assert (self);
    return self->url;
}

int
zb_metrics_fd (zb_metrics_t *self)
{
    assert (self);
    return self->pipe_r;
}

bool
zb_metrics_pending (zb_metrics_t *self)
{
    assert (self);
    char buf [64];
    while (read (self->pipe_r, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock (&self->lock);
    bool pending = self->wanted > self->rendered;
    pthread_mutex_unlock (&self->lock);
    return pending;
}

void
zb_metrics_observe_commit (zb_metrics_t *self, uint64_t ns)
{
    s_observe (&self->commit, ns);
}

void
zb_metrics_observe_ack (zb_metrics_t *self, uint64_t ns)
{
    s_observe (&self->ack, ns);
}

void
zb_metrics_update (zb_metrics_t *self, const zb_metrics_source_t *source)
{
    assert (self && source);
    pthread_mutex_lock (&self->lock);
    uint64_t wanted = self->wanted;
    pthread_mutex_unlock (&self->lock);
    //  Rendered outside the lock: scrapes of the previous text are not held up
    s_render (self, source, &self->scratch);
    pthread_mutex_lock (&self->lock);
    text_t swap = self->published;
    self->published = self->scratch;
    self->scratch = swap;
    if (self->rendered < wanted)
        self->rendered = wanted;
    pthread_cond_broadcast (&self->rendered_cond);
    pthread_mutex_unlock (&self->lock);
    if (self->scratch.cap > ZB_METRICS_KEEP) {
        free (self->scratch.data);
        self->scratch = (text_t) { NULL, 0, 0, false };
    }
}

const char *
zb_metrics_text (zb_metrics_t *self)
{
    assert (self);
    return self->published.data ? self->published.data : "";
}
