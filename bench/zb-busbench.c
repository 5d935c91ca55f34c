/*  zb-busbench - one load client for zbridge and the buses it is compared with.

        zb-busbench TRANSPORT [options]

    TRANSPORT is one of
        zmq-push    raw libzmq PUSH -> PULL (the consumer binds; 1 consumer)
        zmq-pub     raw libzmq XPUB -> SUB (each producer binds)
        zbridge     zb-broker: PUT on --ingest (DEALER, batches, a window of requests
                    in flight, every entry acknowledged), SUB on --publish
        nats        nats-server core pub/sub, the NATS text protocol over TCP
        redis       redis-server PUBLISH/SUBSCRIBE (hiredis)
        mqtt        mosquitto, QoS --qos 0 or 1 (libmosquitto)

    Every transport runs the same scenario: --producers processes send --count
    messages in all (as fast as they can, or paced at --rate messages/s in all, from
    absolute deadlines), alternately on the topics "sales-events" and
    "inventory-events"; --consumers processes subscribe, the even ones to both topics
    (as zb-warehouse does), the odd ones to "sales-events" only (as zb-dispatch does).
    So with --consumers 1 the one consumer receives every message, whatever the
    transport: the "1 producer -> 1 consumer" of issue 6.
    Each message carries the sender's CLOCK_REALTIME just before it was sent; each
    consumer takes its CLOCK_REALTIME at receipt minus that for every message
    (the processes share the machine's clock). The clock starts when every consumer
    is subscribed and every producer connected, and stops at the last message
    received by any consumer.

    Payload: --size bytes. For zbridge that is the size of the published event (the
    msgpack envelope the broker publishes, ~160 bytes of it being the envelope's own
    keys, id, time, account, region); the entry's detail is {"sent_ns": u64, "pad":
    "xxx..."} with pad sized to match. For the others it is the message body: 8 bytes
    of timestamp and filler.

    Every consumer does the least a client of that bus must do per message: receive
    it and read the send time. The zbridge consumer walks the packed events of each
    message in place (common/mpread.h: each event's end and detail.sent_ns, no
    msgpack zone, no allocation); a truncated or malformed event ends the walk of
    its message, the events before it count, and "malformed" counts such messages.

    Prints one JSON line on stdout:
        {"transport":..,"count":N,"size":S,"producers":P,"consumers":C,"rate":R,
         "seconds":X,"msgs_per_s":..,"delivered":D,"expected":E,"lost":L,
         "p50_us":..,"p99_us":..,"p999_us":..,"max_us":..,"mean_us":..,
         "acked":A,"failed":F,"late_max_us":..,"bytes_avg":..,"malformed":M}
    Exit status 0 when every producer finished and every consumer got what it
    expected, 1 otherwise (the line is printed anyway), 2 on a usage error.

    Built with the project, never installed; scripts/bench runs it (docs/BENCHMARKS.md). */

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <msgpack.h>
#include <zmq.h>
#ifdef ZB_HAVE_HIREDIS
#   include <hiredis/hiredis.h>
#endif
#ifdef ZB_HAVE_MOSQUITTO
#   include <mosquitto.h>
#endif
#include "../common/cli.h"
#include "../common/mpread.h"

#ifndef ZB_VERSION
#define ZB_VERSION "0.0.0"
#endif

#define MAX_PROCS       64
#define EP_MAX          256
#define TOPIC_SALES     "sales-events"
#define TOPIC_INVENTORY "inventory-events"

static const char *prog = "zb-busbench";

typedef enum { T_ZMQ_PUSH, T_ZMQ_PUB, T_ZBRIDGE, T_NATS, T_REDIS, T_MQTT } transport_t;

static struct {
    transport_t transport;
    const char *name;
    long long count;
    size_t size;
    long long rate;
    int producers, consumers;
    int batch, window, qos;
    bool batch_given;           //  --batch on the command line (kept when paced)
    const char *ingest, *publish, *control;     //  zbridge
    const char *host;                           //  nats, redis, mqtt
    int port;
    double first_timeout, idle_timeout;
    //  filled by the parent before the second fork wave: where the binders are
    char endpoints [MAX_PROCS][EP_MAX];
    int nendpoints;
} opt = {
    .count = 100000, .size = 350, .producers = 1, .consumers = 1, .batch = 100,
    .window = 128, .host = "127.0.0.1", .first_timeout = 15, .idle_timeout = 5
};

//  What a child tells the parent, over its own pipe.
typedef struct {
    char endpoint [EP_MAX];         //  a binder's endpoint ("" otherwise)
    int ok;                         //  0: the child could not get ready
} ready_msg_t;

typedef struct {
    long long sent, acked, failed;
    double late_max_us;
    int ok;
} producer_result_t;

typedef struct {
    long long received, expected, nlat;
    long long malformed;            //  messages not read to their end (zbridge)
    uint64_t first_ns, last_ns;
    double bytes;
    int ok;
} consumer_result_t;

static uint64_t
now_ns (clockid_t clock)
{
    struct timespec ts;
    clock_gettime (clock, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static int
write_full (int fd, const void *data, size_t size)
{
    const char *p = data;
    while (size > 0) {
        ssize_t n = write (fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        size -= (size_t) n;
    }
    return 0;
}

static int
read_full (int fd, void *data, size_t size)
{
    char *p = data;
    while (size > 0) {
        ssize_t n = read (fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        size -= (size_t) n;
    }
    return 0;
}

//  Messages producer `id` sends, and how many of them go to "sales-events"
//  (message k of a producer goes to sales when k is even).
static long long
producer_count (int id)
{
    long long n = opt.count / opt.producers;
    return id < opt.count % opt.producers ? n + 1 : n;
}

static long long
expected_for (int consumer)
{
    if (opt.transport == T_ZMQ_PUSH || consumer % 2 == 0)
        return opt.count;
    long long sales = 0;
    for (int p = 0; p < opt.producers; p++)
        sales += (producer_count (p) + 1) / 2;
    return sales;
}

static int
topics_for (int consumer, const char **topics)
{
    topics [0] = TOPIC_SALES;
    topics [1] = TOPIC_INVENTORY;
    return opt.transport == T_ZMQ_PUSH || consumer % 2 == 0 ? 2 : 1;
}

//  The paced schedule: message k of a producer is due at start + k * period.
typedef struct {
    uint64_t start, period, late_max;
} pacer_t;

static void
pacer_init (pacer_t *self)
{
    self->late_max = 0;
    self->period = opt.rate > 0 ? 1000000000ull * (uint64_t) opt.producers / (uint64_t) opt.rate : 0;
    self->start = now_ns (CLOCK_MONOTONIC) + 1000000;
}

static void
pacer_wait (pacer_t *self, long long k)
{
    if (!self->period)
        return;
    uint64_t target = self->start + (uint64_t) k * self->period;
    struct timespec ts = {(time_t) (target / 1000000000ull), (long) (target % 1000000000ull)};
    while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    uint64_t now = now_ns (CLOCK_MONOTONIC);
    if (now > target && now - target > self->late_max)
        self->late_max = now - target;
}

//  A raw message: 8 bytes of send time, then filler.
static char *
raw_payload (void)
{
    size_t size = opt.size < 8 ? 8 : opt.size;
    char *p = malloc (size);
    if (p)
        for (size_t i = 8; i < size; i++)
            p [i] = (char) ('a' + i % 26);
    return p;
}

static void
stamp (char *payload)
{
    uint64_t t = now_ns (CLOCK_REALTIME);
    memcpy (payload, &t, 8);
}

static uint64_t
stamp_of (const void *data, size_t size)
{
    uint64_t t = 0;
    if (size >= 8)
        memcpy (&t, data, 8);
    return t;
}

//  The consumer's record: counts, first/last receipt, one latency per message
//  (none for a message without a send time: sent_ns 0), or every stride-th
//  one when a run (the soak) has more messages than LAT_MAX.
#define LAT_MAX     (16LL * 1000 * 1000)
typedef struct {
    consumer_result_t res;
    uint64_t *lat;
    long long stride;
    uint64_t last_rx_mono;
} recorder_t;

static int
recorder_init (recorder_t *self, int consumer)
{
    memset (self, 0, sizeof *self);
    self->res.expected = expected_for (consumer);
    self->stride = self->res.expected / LAT_MAX + 1;
    long long room = self->res.expected / self->stride + 1;
    self->lat = malloc ((size_t) room * sizeof (uint64_t));
    return self->lat ? 0 : -1;
}

static void
recorder_add (recorder_t *self, uint64_t sent_ns, size_t bytes)
{
    uint64_t now = now_ns (CLOCK_REALTIME);
    if (!self->res.received)
        self->res.first_ns = now;
    self->res.last_ns = now;
    if (sent_ns && self->res.received % self->stride == 0
    &&  self->res.nlat <= self->res.expected / self->stride)
        self->lat [self->res.nlat++] = now > sent_ns ? now - sent_ns : 0;
    self->res.received++;
    self->res.bytes += (double) bytes;
}

static bool
recorder_done (recorder_t *self)
{
    return self->res.received >= self->res.expected;
}

//  Milliseconds to wait for the next message before giving up.
static int
recorder_timeout_ms (recorder_t *self)
{
    return (int) ((self->res.received ? opt.idle_timeout : opt.first_timeout) * 1000);
}

static int
recorder_send (recorder_t *self, int fd)
{
    self->res.ok = self->res.received == self->res.expected;
    int rc = write_full (fd, &self->res, sizeof self->res);
    if (rc == 0 && self->res.nlat)
        rc = write_full (fd, self->lat, (size_t) self->res.nlat * sizeof (uint64_t));
    free (self->lat);
    return rc;
}

static int
signal_ready (int fd, const char *endpoint, int ok)
{
    ready_msg_t msg;
    memset (&msg, 0, sizeof msg);
    if (endpoint)
        snprintf (msg.endpoint, sizeof msg.endpoint, "%s", endpoint);
    msg.ok = ok;
    return write_full (fd, &msg, sizeof msg);
}

static bool
wait_go (int fd)
{
    char c = 0;
    return read_full (fd, &c, 1) == 0 && c == 'g';
}

//  -------------------------------------------------------------------------
//  ZeroMQ helpers

static int
zmq_recv_all (void *sock, zmq_msg_t *frames, int max)
{
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, sock, 0) == -1) {
            zmq_msg_close (&part);
            for (int i = 0; i < n && i < max; i++)
                zmq_msg_close (&frames [i]);
            return -1;
        }
        more = zmq_msg_more (&part);
        if (n < max) {
            zmq_msg_init (&frames [n]);
            zmq_msg_move (&frames [n], &part);
        }
        zmq_msg_close (&part);
        n++;
    }
    return n;
}

static void
zmq_close_all (zmq_msg_t *frames, int n, int max)
{
    for (int i = 0; i < n && i < max; i++)
        zmq_msg_close (&frames [i]);
}

static void *
zmq_sock (void *ctx, int type, int hwm)
{
    void *s = zmq_socket (ctx, type);
    int linger = -1;
    zmq_setsockopt (s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    return s;
}

//  -------------------------------------------------------------------------
//  Raw libzmq: PUSH -> PULL and XPUB -> SUB
//
//  The high-water marks are those of zbridge's publish path (100,000 per
//  subscriber on both sides), so the raw pub/sub drops exactly when zbridge would.

#define ZMQ_PUBSUB_HWM 100000

static int
raw_producer (int id, int ready_fd, int go_fd, producer_result_t *res)
{
    void *ctx = zmq_ctx_new ();
    bool pub = opt.transport == T_ZMQ_PUB;
    void *s = zmq_sock (ctx, pub ? ZMQ_XPUB : ZMQ_PUSH, pub ? ZMQ_PUBSUB_HWM : 1000);
    char ep [EP_MAX] = "";
    if (pub) {
        int verbose = 1;
        zmq_setsockopt (s, ZMQ_XPUB_VERBOSE, &verbose, sizeof verbose);
        size_t len = sizeof ep;
        if (zmq_bind (s, "tcp://127.0.0.1:*") || zmq_getsockopt (s, ZMQ_LAST_ENDPOINT, ep, &len))
            return signal_ready (ready_fd, NULL, 0), 1;
        //  every consumer's subscriptions: 2 for the even ones, 1 for the odd ones
        //  (the endpoint is reported first, so the consumers can connect)
        signal_ready (ready_fd, ep, 1);
        int want = 0;
        for (int c = 0; c < opt.consumers; c++) {
            const char *t [2];
            want += topics_for (c, t);
        }
        int rcvtimeo = 15000;
        zmq_setsockopt (s, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
        for (int got = 0; got < want; got++) {
            char buf [256];
            if (zmq_recv (s, buf, sizeof buf, 0) < 0)
                return signal_ready (ready_fd, NULL, 0), 1;
        }
        signal_ready (ready_fd, NULL, 1);
    }
    else {
        if (zmq_connect (s, opt.endpoints [0]))
            return signal_ready (ready_fd, NULL, 0), 1;
        signal_ready (ready_fd, NULL, 1);
    }
    if (!wait_go (go_fd))
        return 1;
    char *payload = raw_payload ();
    size_t size = opt.size < 8 ? 8 : opt.size;
    long long n = producer_count (id);
    pacer_t pacer;
    pacer_init (&pacer);
    for (long long k = 0; k < n; k++) {
        pacer_wait (&pacer, k);
        if (pub) {
            const char *topic = k % 2 == 0 ? TOPIC_SALES : TOPIC_INVENTORY;
            zmq_send (s, topic, strlen (topic) + 1, ZMQ_SNDMORE);
        }
        stamp (payload);
        if (zmq_send (s, payload, size, 0) == -1) {
            if (errno == EINTR) {
                k--;
                continue;
            }
            break;
        }
        res->sent++;
    }
    res->acked = res->sent;
    res->late_max_us = pacer.late_max / 1e3;
    res->ok = res->sent == n;
    free (payload);
    zmq_close (s);                  //  linger -1: everything is delivered first
    zmq_ctx_term (ctx);
    return 0;
}

static int
raw_consumer (int id, int ready_fd, recorder_t *rec)
{
    void *ctx = zmq_ctx_new ();
    bool pub = opt.transport == T_ZMQ_PUB;
    void *s = zmq_sock (ctx, pub ? ZMQ_SUB : ZMQ_PULL, pub ? ZMQ_PUBSUB_HWM : 1000);
    int linger = 0;
    zmq_setsockopt (s, ZMQ_LINGER, &linger, sizeof linger);
    char ep [EP_MAX] = "";
    if (pub) {
        const char *topics [2];
        int nt = topics_for (id, topics);
        for (int i = 0; i < nt; i++)
            zmq_setsockopt (s, ZMQ_SUBSCRIBE, topics [i], strlen (topics [i]) + 1);
        for (int i = 0; i < opt.nendpoints; i++)
            if (zmq_connect (s, opt.endpoints [i]))
                return signal_ready (ready_fd, NULL, 0), 1;
    }
    else {
        size_t len = sizeof ep;
        if (zmq_bind (s, "tcp://127.0.0.1:*") || zmq_getsockopt (s, ZMQ_LAST_ENDPOINT, ep, &len))
            return signal_ready (ready_fd, NULL, 0), 1;
    }
    signal_ready (ready_fd, ep, 1);
    int timeout_set = -1;
    while (!recorder_done (rec)) {
        int timeout = recorder_timeout_ms (rec);
        if (timeout != timeout_set)
            zmq_setsockopt (s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
        timeout_set = timeout;
        zmq_msg_t frames [2];
        int n = zmq_recv_all (s, frames, 2);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        zmq_msg_t *body = &frames [n >= 2 ? 1 : 0];
        recorder_add (rec, stamp_of (zmq_msg_data (body), zmq_msg_size (body)),
                      zmq_msg_size (body));
        zmq_close_all (frames, n, 2);
    }
    zmq_close (s);
    zmq_ctx_term (ctx);
    return 0;
}

//  -------------------------------------------------------------------------
//  zbridge

static void
pack_str (msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}
#define PACK_LIT(pk, s) pack_str ((pk), (s), strlen (s))

//  Look up key in a msgpack map; NULL when absent or not a map.
static msgpack_object *
map_get (const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t len = strlen (key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        msgpack_object *k = &map->via.map.ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len
        &&  memcmp (k->via.str.ptr, key, len) == 0)
            return &map->via.map.ptr [i].val;
    }
    return NULL;
}

//  The pad that makes the published event opt.size bytes: pack an event of the
//  broker's shape (same keys, an id and a time of their fixed lengths) without a
//  pad and take the difference; never negative.
static size_t
zbridge_pad (void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 9);
    PACK_LIT (&pk, "version"); PACK_LIT (&pk, "0");
    PACK_LIT (&pk, "id"); PACK_LIT (&pk, "5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21");
    PACK_LIT (&pk, "detail-type"); PACK_LIT (&pk, TOPIC_SALES);
    PACK_LIT (&pk, "source"); PACK_LIT (&pk, "zbridge.bench");
    PACK_LIT (&pk, "account"); PACK_LIT (&pk, "000000000000");
    PACK_LIT (&pk, "time"); PACK_LIT (&pk, "2026-11-26T17:15:01Z");
    PACK_LIT (&pk, "region"); PACK_LIT (&pk, "local");
    PACK_LIT (&pk, "resources"); msgpack_pack_array (&pk, 0);
    PACK_LIT (&pk, "detail");
    msgpack_pack_map (&pk, 2);
    PACK_LIT (&pk, "sent_ns"); msgpack_pack_uint64 (&pk, UINT64_MAX);
    PACK_LIT (&pk, "pad");
    size_t base = sb.size;
    msgpack_sbuffer_destroy (&sb);
    if (opt.size <= base + 1)
        return 0;
    size_t pad = opt.size - base - 1;           //  the str header takes 1 to 5 bytes
    if (pad > 31)
        pad -= pad > 255 ? (pad > 65535 ? 4 : 2) : 1;
    return pad;
}

//  The entries, as the peers' payloads: packed once per topic, then copied
//  and stamped in place for each message (the other clients memcpy a payload
//  and write its stamp the same way). The stamp is a uint64 (0xcf and 8 bytes
//  big-endian) at a fixed offset.
typedef struct {
    msgpack_sbuffer sb [2];     //  sales-events, inventory-events
    size_t stamp_at [2];        //  offset of the stamp's 8 bytes
} zb_entries_t;

static void
zbridge_entries_init (zb_entries_t *self, const char *pad, size_t padlen)
{
    for (int t = 0; t < 2; t++) {
        msgpack_sbuffer *sb = &self->sb [t];
        msgpack_sbuffer_init (sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 3);
        PACK_LIT (&pk, "source"); PACK_LIT (&pk, "zbridge.bench");
        PACK_LIT (&pk, "detail-type"); PACK_LIT (&pk, t == 0 ? TOPIC_SALES : TOPIC_INVENTORY);
        PACK_LIT (&pk, "detail");
        msgpack_pack_map (&pk, 2);
        PACK_LIT (&pk, "sent_ns");
        self->stamp_at [t] = sb->size + 1;
        msgpack_pack_uint64 (&pk, UINT64_MAX);      //  0xcf: the 8-byte form
        PACK_LIT (&pk, "pad"); pack_str (&pk, pad, padlen);
        assert ((uint8_t) sb->data [self->stamp_at [t] - 1] == 0xcf);
    }
}

static void
zbridge_entries_destroy (zb_entries_t *self)
{
    msgpack_sbuffer_destroy (&self->sb [0]);
    msgpack_sbuffer_destroy (&self->sb [1]);
}

//  A PUT body of entries k..k+m-1 (a msgpack array), stamped now, in msg.
static int
zbridge_body (const zb_entries_t *self, long long k, long long m, zmq_msg_t *msg)
{
    size_t size = m < 16 ? 1 : m <= 65535 ? 3 : 5;
    for (long long j = 0; j < m && j < 2; j++)
        size += self->sb [(k + j) % 2].size * (size_t) ((m - j + 1) / 2);
    if (zmq_msg_init_size (msg, size))
        return -1;
    uint8_t *p = (uint8_t *) zmq_msg_data (msg);
    if (m < 16)
        *p++ = (uint8_t) (0x90 | m);
    else {
        int bytes = m <= 65535 ? 2 : 4;
        *p++ = m <= 65535 ? 0xdc : 0xdd;
        for (int i = bytes - 1; i >= 0; i--)
            *p++ = (uint8_t) ((uint64_t) m >> (8 * i));
    }
    for (long long j = 0; j < m; j++) {
        int t = (int) ((k + j) % 2);
        memcpy (p, self->sb [t].data, self->sb [t].size);
        uint64_t now = now_ns (CLOCK_REALTIME);
        for (int i = 7; i >= 0; i--, now >>= 8)
            p [self->stamp_at [t] + (size_t) i] = (uint8_t) now;
        p += self->sb [t].size;
    }
    assert (p == (uint8_t *) zmq_msg_data (msg) + size);
    return 0;
}

static int
zbridge_request_head (void *dealer, const char *command, uint64_t corr)
{
    uint8_t c [8];
    for (int i = 7; i >= 0; i--, corr >>= 8)
        c [i] = (uint8_t) corr;
    if (zmq_send (dealer, command, strlen (command), ZMQ_SNDMORE) == -1
    ||  zmq_send (dealer, c, 8, ZMQ_SNDMORE) == -1)
        return -1;
    return 0;
}

static int
zbridge_request (void *dealer, const char *command, uint64_t corr, const void *body, size_t size)
{
    if (zbridge_request_head (dealer, command, corr)
    ||  zmq_send (dealer, body, size, 0) == -1)
        return -1;
    return 0;
}

//  A PUT reply body's "failed" count, when it is the map's first key (as the
//  broker packs it), read in place: a client that wants only the count of
//  entries stored need not unpack the 100 results that follow it.
static bool
zbridge_reply_failed (zmq_msg_t *body, long long *failed)
{
    const uint8_t *p = (const uint8_t *) zmq_msg_data (body);
    const uint8_t *end = p + zmq_msg_size (body);
    uint32_t pairs;
    bool match;
    uint64_t value;
    if (!mpr_map (&p, end, &pairs) || pairs == 0 || !mpr_key (&p, end, "failed", 6, &match)
    ||  !match || !mpr_uint (&p, end, &value) || value > (uint64_t) *failed)
        return false;
    *failed = (long long) value;
    return true;
}

//  One reply; counts its entries into res. -1 on timeout.
static int
zbridge_reply (void *dealer, int timeout_ms, producer_result_t *res, long long entries)
{
    zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return -1;
    zmq_msg_t frames [3];
    int n = zmq_recv_all (dealer, frames, 3);
    if (n < 0)
        return -1;
    long long failed = entries;
    bool ok = n == 3 && zmq_msg_size (&frames [0]) == 2
           && memcmp (zmq_msg_data (&frames [0]), "OK", 2) == 0;
    //  The count is read in place when the reply starts with it (the broker's do)
    if (ok && !zbridge_reply_failed (&frames [2], &failed)) {
        msgpack_unpacked up;
        msgpack_unpacked_init (&up);
        size_t off = 0;
        if (msgpack_unpack_next (&up, zmq_msg_data (&frames [2]), zmq_msg_size (&frames [2]),
                                 &off) == MSGPACK_UNPACK_SUCCESS) {
            msgpack_object *f = map_get (&up.data, "failed");
            if (f && f->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                failed = (long long) f->via.u64;
            else
            if (f && f->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                failed = 0;
        }
        msgpack_unpacked_destroy (&up);
    }
    res->failed += failed;
    res->acked += entries - failed;
    zmq_close_all (frames, n, 3);
    return 0;
}

//  Wait until the broker's STATS shows every consumer's subscriptions.
static bool
zbridge_wait_subscribers (void *ctx)
{
    if (!opt.control)
        return true;
    int want_sales = opt.consumers, want_inventory = (opt.consumers + 1) / 2;
    void *dealer = zmq_sock (ctx, ZMQ_DEALER, 1000);
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect (dealer, opt.control);
    bool ok = false;
    uint64_t deadline = now_ns (CLOCK_MONOTONIC) + 15000000000ull;
    while (!ok && now_ns (CLOCK_MONOTONIC) < deadline) {
        zbridge_request (dealer, "STATS", 1, "", 0);
        zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 2000) <= 0)
            continue;
        zmq_msg_t frames [3];
        int n = zmq_recv_all (dealer, frames, 3);
        if (n == 3) {
            msgpack_unpacked up;
            msgpack_unpacked_init (&up);
            size_t off = 0;
            if (msgpack_unpack_next (&up, zmq_msg_data (&frames [2]), zmq_msg_size (&frames [2]),
                                     &off) == MSGPACK_UNPACK_SUCCESS) {
                msgpack_object *topics = map_get (&up.data, "topics");
                msgpack_object *s = topics ? map_get (topics, TOPIC_SALES) : NULL;
                msgpack_object *i = topics ? map_get (topics, TOPIC_INVENTORY) : NULL;
                s = s ? map_get (s, "subscribers") : NULL;
                i = i ? map_get (i, "subscribers") : NULL;
                ok = s && i && s->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                  && i->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                  && s->via.u64 >= (uint64_t) want_sales
                  && i->via.u64 >= (uint64_t) want_inventory;
            }
            msgpack_unpacked_destroy (&up);
        }
        if (n > 0)
            zmq_close_all (frames, n, 3);
        if (!ok)
            usleep (20000);
    }
    zmq_close (dealer);
    return ok;
}

static int
zbridge_producer (int id, int ready_fd, int go_fd, producer_result_t *res)
{
    void *ctx = zmq_ctx_new ();
    void *dealer = zmq_sock (ctx, ZMQ_DEALER, 0);
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect (dealer, opt.ingest))
        return signal_ready (ready_fd, NULL, 0), 1;
    //  connected: one PING answered; producer 0 also waits for the subscribers
    producer_result_t ping = {0};
    if (zbridge_request (dealer, "PING", 0, "", 0) || zbridge_reply (dealer, 15000, &ping, 0)
    ||  (id == 0 && !zbridge_wait_subscribers (ctx)))
        return signal_ready (ready_fd, NULL, 0), 1;
    signal_ready (ready_fd, NULL, 1);
    if (!wait_go (go_fd))
        return 1;

    size_t padlen = zbridge_pad ();
    char *pad = malloc (padlen + 1);
    memset (pad, 'x', padlen);
    //  Paced: one event per PUT unless --batch says otherwise (the soak paces
    //  batches; a batch goes when its last event is due)
    int batch = opt.rate > 0 && !opt.batch_given ? 1 : opt.batch;
    long long n = producer_count (id), k = 0;
    long long *inflight = calloc ((size_t) opt.window, sizeof *inflight);
    uint64_t corr = 1, answered = 1;    //  requests corr..: answered in order
    zb_entries_t entries;
    zbridge_entries_init (&entries, pad, padlen);
    pacer_t pacer;
    pacer_init (&pacer);
    int rc = 0;
    while (k < n || answered < corr) {
        //  a full window (or nothing left to send): wait for a reply
        if (k >= n || corr - answered >= (uint64_t) opt.window) {
            if (zbridge_reply (dealer, 15000, res, inflight [answered % opt.window])) {
                fprintf (stderr, "%s: zbridge: no reply for 15 s\n", prog);
                rc = 1;
                break;
            }
            answered++;
            continue;
        }
        long long m = n - k < batch ? n - k : batch;
        pacer_wait (&pacer, k + m - 1);
        zmq_msg_t body;
        if (zbridge_request_head (dealer, "PUT", corr)
        ||  zbridge_body (&entries, k, m, &body)) {
            rc = 1;
            break;
        }
        if (zmq_msg_send (&body, dealer, 0) == -1) {
            zmq_msg_close (&body);
            rc = 1;
            break;
        }
        inflight [corr % opt.window] = m;
        corr++;
        k += m;
        res->sent += m;
        //  take the replies that are already there
        while (answered < corr
           &&  zbridge_reply (dealer, 0, res, inflight [answered % opt.window]) == 0)
            answered++;
    }
    res->late_max_us = pacer.late_max / 1e3;
    res->ok = rc == 0 && res->acked == n;
    zbridge_entries_destroy (&entries);
    free (inflight);
    free (pad);
    zmq_close (dealer);
    zmq_ctx_term (ctx);
    return rc;
}

static int
zbridge_consumer (int id, int ready_fd, recorder_t *rec)
{
    void *ctx = zmq_ctx_new ();
    void *s = zmq_sock (ctx, ZMQ_SUB, ZMQ_PUBSUB_HWM);
    int linger = 0;
    zmq_setsockopt (s, ZMQ_LINGER, &linger, sizeof linger);
    const char *topics [2];
    int nt = topics_for (id, topics);
    for (int i = 0; i < nt; i++)
        zmq_setsockopt (s, ZMQ_SUBSCRIBE, topics [i], strlen (topics [i]) + 1);
    if (zmq_connect (s, opt.publish))
        return signal_ready (ready_fd, NULL, 0), 1;
    signal_ready (ready_fd, NULL, 1);
    int timeout_set = -1;
    while (!recorder_done (rec)) {
        int timeout = recorder_timeout_ms (rec);
        if (timeout != timeout_set)
            zmq_setsockopt (s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
        timeout_set = timeout;
        zmq_msg_t frames [3];
        int n = zmq_recv_all (s, frames, 3);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (n == 3) {
            //  Protocol version 2 (docs/PROTOCOL.md "Publish socket"): a header
            //  of 16 bytes, one event in frame 3; of 20 bytes or more, a count
            //  of events back to back there. 17 to 19 bytes, or less than 16:
            //  malformed, nothing read.
            const uint8_t *h = (const uint8_t *) zmq_msg_data (&frames [1]);
            size_t hlen = zmq_msg_size (&frames [1]);
            uint32_t count = hlen >= 20 ? (uint32_t) mpr_be (h + 16, 4) : hlen == 16 ? 1 : 0;
            const uint8_t *p = (const uint8_t *) zmq_msg_data (&frames [2]);
            const uint8_t *end = p + zmq_msg_size (&frames [2]);
            uint32_t i;
            for (i = 0; i < count; i++) {
                //  each event's end and detail.sent_ns, read in place; a
                //  truncated or malformed event ends the walk of this message
                const uint8_t *start = p;
                uint64_t sent;
                if (!mpr_event_sent_ns (&p, end, &sent))
                    break;
                recorder_add (rec, sent, (size_t) (p - start));
            }
            if (i < count || count == 0)
                rec->res.malformed++;
        }
        else
            rec->res.malformed++;
        zmq_close_all (frames, n, 3);
    }
    zmq_close (s);
    zmq_ctx_term (ctx);
    return 0;
}

//  -------------------------------------------------------------------------
//  NATS: the text protocol (https://docs.nats.io/reference/reference-protocols/nats-protocol)
//  over one TCP connection: INFO from the server, CONNECT, SUB, PUB, MSG, PING/PONG.

typedef struct {
    int fd;
    char *in;
    size_t in_size, in_start, in_end;
    char *out;
    size_t out_size, out_len;
} nats_t;

static int
tcp_connect (const char *host, int port)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    char portstr [16];
    snprintf (portstr, sizeof portstr, "%d", port);
    if (getaddrinfo (host, portstr, &hints, &ai))
        return -1;
    int fd = socket (ai->ai_family, ai->ai_socktype, 0);
    if (fd >= 0 && connect (fd, ai->ai_addr, ai->ai_addrlen)) {
        close (fd);
        fd = -1;
    }
    freeaddrinfo (ai);
    if (fd >= 0) {
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static int
nats_flush (nats_t *self)
{
    int rc = write_full (self->fd, self->out, self->out_len);
    self->out_len = 0;
    return rc;
}

static int
nats_write (nats_t *self, const void *data, size_t size)
{
    if (self->out_len + size > self->out_size && nats_flush (self))
        return -1;
    if (size > self->out_size)
        return write_full (self->fd, data, size);
    memcpy (self->out + self->out_len, data, size);
    self->out_len += size;
    return 0;
}

//  Make at least want bytes available from in_start; wait up to timeout_ms
//  for each read. -1 on timeout, error or EOF.
static int
nats_fill (nats_t *self, size_t want, int timeout_ms)
{
    while (self->in_end - self->in_start < want) {
        if (self->in_start > 0) {
            memmove (self->in, self->in + self->in_start, self->in_end - self->in_start);
            self->in_end -= self->in_start;
            self->in_start = 0;
        }
        if (want > self->in_size) {
            char *more = realloc (self->in, want);
            if (!more)
                return -1;
            self->in = more;
            self->in_size = want;
        }
        struct pollfd p = {self->fd, POLLIN, 0};
        int rc = poll (&p, 1, timeout_ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        ssize_t n = read (self->fd, self->in + self->in_end, self->in_size - self->in_end);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        self->in_end += (size_t) n;
    }
    return 0;
}

//  The next protocol line (without CRLF, NUL-terminated in the buffer); NULL on
//  timeout or error.
static char *
nats_line (nats_t *self, int timeout_ms)
{
    for (;;) {
        char *start = self->in + self->in_start;
        size_t avail = self->in_end - self->in_start;
        char *crlf = avail >= 2 ? memmem (start, avail, "\r\n", 2) : NULL;
        if (crlf) {
            *crlf = 0;
            self->in_start += (size_t) (crlf - start) + 2;
            return start;
        }
        if (nats_fill (self, avail + 1, timeout_ms))
            return NULL;
    }
}

static int
nats_open (nats_t *self)
{
    memset (self, 0, sizeof *self);
    self->in_size = 1 << 20;
    self->out_size = 1 << 16;
    self->in = malloc (self->in_size);
    self->out = malloc (self->out_size);
    self->fd = tcp_connect (opt.host, opt.port);
    if (self->fd < 0 || !self->in || !self->out)
        return -1;
    char *line = nats_line (self, 5000);
    if (!line || strncmp (line, "INFO ", 5) != 0)
        return -1;
    const char *hello = "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,"
                        "\"name\":\"zb-busbench\",\"lang\":\"c\",\"version\":\"" ZB_VERSION "\"}\r\n";
    return nats_write (self, hello, strlen (hello));
}

//  PING and wait for the PONG: everything sent before is processed by the server.
static int
nats_sync (nats_t *self, int timeout_ms)
{
    if (nats_write (self, "PING\r\n", 6) || nats_flush (self))
        return -1;
    for (;;) {
        char *line = nats_line (self, timeout_ms);
        if (!line)
            return -1;
        if (strcmp (line, "PONG") == 0)
            return 0;
        if (strcmp (line, "PING") == 0) {
            if (nats_write (self, "PONG\r\n", 6) || nats_flush (self))
                return -1;
        }
        else
        if (strncmp (line, "-ERR", 4) == 0) {
            fprintf (stderr, "%s: nats: %s\n", prog, line);
            return -1;
        }
    }
}

static void
nats_close (nats_t *self)
{
    if (self->fd >= 0)
        close (self->fd);
    free (self->in);
    free (self->out);
}

static int
nats_producer (int id, int ready_fd, int go_fd, producer_result_t *res)
{
    nats_t nc;
    if (nats_open (&nc) || nats_sync (&nc, 5000))
        return signal_ready (ready_fd, NULL, 0), 1;
    signal_ready (ready_fd, NULL, 1);
    if (!wait_go (go_fd))
        return 1;
    char *payload = raw_payload ();
    size_t size = opt.size < 8 ? 8 : opt.size;
    long long n = producer_count (id);
    pacer_t pacer;
    pacer_init (&pacer);
    int rc = 0;
    for (long long k = 0; k < n && rc == 0; k++) {
        pacer_wait (&pacer, k);
        char head [128];
        int hl = snprintf (head, sizeof head, "PUB %s %zu\r\n",
                           k % 2 == 0 ? TOPIC_SALES : TOPIC_INVENTORY, size);
        stamp (payload);
        rc = nats_write (&nc, head, (size_t) hl) || nats_write (&nc, payload, size)
          || nats_write (&nc, "\r\n", 2);
        //  paced: every message goes out at once (a real client flushes when idle)
        if (rc == 0 && opt.rate > 0)
            rc = nats_flush (&nc);
        if (rc == 0)
            res->sent++;
    }
    if (rc == 0)
        rc = nats_sync (&nc, 30000);
    res->acked = rc == 0 ? res->sent : 0;
    res->late_max_us = pacer.late_max / 1e3;
    res->ok = rc == 0 && res->sent == n;
    free (payload);
    nats_close (&nc);
    return rc;
}

static int
nats_consumer (int id, int ready_fd, recorder_t *rec)
{
    nats_t nc;
    if (nats_open (&nc))
        return signal_ready (ready_fd, NULL, 0), 1;
    const char *topics [2];
    int nt = topics_for (id, topics);
    for (int i = 0; i < nt; i++) {
        char sub [128];
        int len = snprintf (sub, sizeof sub, "SUB %s %d\r\n", topics [i], i + 1);
        nats_write (&nc, sub, (size_t) len);
    }
    if (nats_sync (&nc, 5000))
        return signal_ready (ready_fd, NULL, 0), 1;
    signal_ready (ready_fd, NULL, 1);
    while (!recorder_done (rec)) {
        char *line = nats_line (&nc, recorder_timeout_ms (rec));
        if (!line)
            break;
        if (strncmp (line, "MSG ", 4) == 0) {
            //  MSG <subject> <sid> [reply-to] <#bytes>
            char *last = strrchr (line, ' ');
            size_t size = (size_t) strtoull (last + 1, NULL, 10);
            if (nats_fill (&nc, size + 2, recorder_timeout_ms (rec)))
                break;
            recorder_add (rec, stamp_of (nc.in + nc.in_start, size), size);
            nc.in_start += size + 2;
        }
        else
        if (strcmp (line, "PING") == 0) {
            if (nats_write (&nc, "PONG\r\n", 6) || nats_flush (&nc))
                break;
        }
        else
        if (strncmp (line, "-ERR", 4) == 0) {
            fprintf (stderr, "%s: nats consumer %d: %s\n", prog, id, line);
            break;
        }
    }
    nats_close (&nc);
    return 0;
}

//  -------------------------------------------------------------------------
//  Redis: PUBLISH pipelined (at most 1,000 replies outstanding), SUBSCRIBE

#ifdef ZB_HAVE_HIREDIS
static redisContext *
redis_open (void)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout (opt.host, opt.port, tv);
    if (!c || c->err) {
        fprintf (stderr, "%s: redis: %s\n", prog, c ? c->errstr : "out of memory");
        if (c)
            redisFree (c);
        return NULL;
    }
    return c;
}

static int
redis_producer (int id, int ready_fd, int go_fd, producer_result_t *res)
{
    redisContext *c = redis_open ();
    redisReply *r = c ? redisCommand (c, "PING") : NULL;
    if (!r)
        return signal_ready (ready_fd, NULL, 0), 1;
    freeReplyObject (r);
    signal_ready (ready_fd, NULL, 1);
    if (!wait_go (go_fd))
        return 1;
    char *payload = raw_payload ();
    size_t size = opt.size < 8 ? 8 : opt.size;
    long long n = producer_count (id), outstanding = 0;
    pacer_t pacer;
    pacer_init (&pacer);
    int rc = 0;
    for (long long k = 0; k < n + 1 && rc == 0; k++) {
        if (k < n) {
            pacer_wait (&pacer, k);
            stamp (payload);
            redisAppendCommand (c, "PUBLISH %s %b", k % 2 == 0 ? TOPIC_SALES : TOPIC_INVENTORY,
                                payload, size);
            res->sent++;
            outstanding++;
            if (opt.rate > 0) {
                int done = 0;
                while (!done && rc == 0)
                    rc = redisBufferWrite (c, &done) == REDIS_OK ? 0 : 1;
            }
        }
        //  read the replies of a full window, and all of them at the end
        while (rc == 0 && outstanding > 0 && (outstanding >= 1000 || k == n)) {
            void *reply = NULL;
            if (redisGetReply (c, &reply) != REDIS_OK) {
                rc = 1;
                break;
            }
            freeReplyObject (reply);
            res->acked++;
            outstanding--;
        }
    }
    res->late_max_us = pacer.late_max / 1e3;
    res->ok = rc == 0 && res->acked == n;
    free (payload);
    redisFree (c);
    return rc;
}

static int
redis_consumer (int id, int ready_fd, recorder_t *rec)
{
    redisContext *c = redis_open ();
    if (!c)
        return signal_ready (ready_fd, NULL, 0), 1;
    const char *topics [2];
    int nt = topics_for (id, topics);
    for (int i = 0; i < nt; i++)
        redisAppendCommand (c, "SUBSCRIBE %s", topics [i]);
    for (int i = 0; i < nt; i++) {
        void *reply = NULL;
        if (redisGetReply (c, &reply) != REDIS_OK)
            return signal_ready (ready_fd, NULL, 0), 1;
        freeReplyObject (reply);
    }
    signal_ready (ready_fd, NULL, 1);
    int ms_set = -1;
    while (!recorder_done (rec)) {
        //  a new timeout only when it changes: redisSetTimeout is two setsockopt calls
        int ms = recorder_timeout_ms (rec);
        if (ms != ms_set) {
            struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
            redisSetTimeout (c, tv);
            ms_set = ms;
        }
        redisReply *r = NULL;
        if (redisGetReply (c, (void **) &r) != REDIS_OK)
            break;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3
        &&  r->element [2]->type == REDIS_REPLY_STRING)
            recorder_add (rec, stamp_of (r->element [2]->str, r->element [2]->len),
                          r->element [2]->len);
        freeReplyObject (r);
    }
    redisFree (c);
    return 0;
}
#endif

//  -------------------------------------------------------------------------
//  MQTT (mosquitto): one client per process; the consumer runs mosquitto_loop
//  in its only thread, the producer publishes while libmosquitto's own thread
//  (mosquitto_loop_start) reads the acknowledgements.

#ifdef ZB_HAVE_MOSQUITTO
typedef struct {
    bool connected, failed;
    int subscribed;
    long long published;            //  QoS 0: handed to the socket; QoS 1: PUBACK
    recorder_t *rec;
} mqtt_state_t;

static void
mqtt_on_connect (struct mosquitto *m, void *arg, int rc)
{
    mqtt_state_t *st = arg;
    (void) m;
    if (rc == 0)
        st->connected = true;
    else
        st->failed = true;
}

static void
mqtt_on_subscribe (struct mosquitto *m, void *arg, int mid, int n, const int *granted)
{
    (void) m; (void) mid; (void) n; (void) granted;
    ((mqtt_state_t *) arg)->subscribed++;
}

static void
mqtt_on_publish (struct mosquitto *m, void *arg, int mid)
{
    (void) m; (void) mid;
    __atomic_add_fetch (&((mqtt_state_t *) arg)->published, 1, __ATOMIC_RELEASE);
}

static void
mqtt_on_message (struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
    (void) m;
    mqtt_state_t *st = arg;
    recorder_add (st->rec, stamp_of (msg->payload, (size_t) msg->payloadlen),
                  (size_t) msg->payloadlen);
}

static struct mosquitto *
mqtt_open (const char *role, int id, mqtt_state_t *st)
{
    char client_id [64];
    snprintf (client_id, sizeof client_id, "zb-busbench-%s-%d-%d", role, id, (int) getpid ());
    struct mosquitto *m = mosquitto_new (client_id, true, st);
    if (!m)
        return NULL;
    mosquitto_connect_callback_set (m, mqtt_on_connect);
    mosquitto_subscribe_callback_set (m, mqtt_on_subscribe);
    mosquitto_publish_callback_set (m, mqtt_on_publish);
    mosquitto_message_callback_set (m, mqtt_on_message);
    mosquitto_max_inflight_messages_set (m, 1000);
    //  small PUBACKs under Nagle's algorithm wait for the delayed ACK (40 ms)
    mosquitto_int_option (m, MOSQ_OPT_TCP_NODELAY, 1);
    if (mosquitto_connect (m, opt.host, opt.port, 60) != MOSQ_ERR_SUCCESS) {
        mosquitto_destroy (m);
        return NULL;
    }
    uint64_t deadline = now_ns (CLOCK_MONOTONIC) + 5000000000ull;
    while (!st->connected && !st->failed && now_ns (CLOCK_MONOTONIC) < deadline)
        if (mosquitto_loop (m, 100, 1) != MOSQ_ERR_SUCCESS)
            break;
    if (!st->connected) {
        mosquitto_destroy (m);
        return NULL;
    }
    return m;
}

static int
mqtt_producer (int id, int ready_fd, int go_fd, producer_result_t *res)
{
    mqtt_state_t st = {0};
    struct mosquitto *m = mqtt_open ("pub", id, &st);
    if (!m)
        return signal_ready (ready_fd, NULL, 0), 1;
    //  the network loop in its own thread: PUBACKs are read as they come, and
    //  what the inflight window held back goes out at once
    if (mosquitto_loop_start (m) != MOSQ_ERR_SUCCESS)
        return signal_ready (ready_fd, NULL, 0), 1;
    signal_ready (ready_fd, NULL, 1);
    if (!wait_go (go_fd))
        return 1;
    char *payload = raw_payload ();
    int size = (int) (opt.size < 8 ? 8 : opt.size);
    long long n = producer_count (id);
    pacer_t pacer;
    pacer_init (&pacer);
    int rc = 0;
    for (long long k = 0; k < n && rc == 0; k++) {
        //  a window of 1,000 unacknowledged messages, as libmosquitto's inflight
        //  limit: beyond it the library queues them in a list it walks per ack
        while (res->sent - __atomic_load_n (&st.published, __ATOMIC_ACQUIRE) >= 1000)
            sched_yield ();
        pacer_wait (&pacer, k);
        stamp (payload);
        int err = mosquitto_publish (m, NULL, k % 2 == 0 ? TOPIC_SALES : TOPIC_INVENTORY,
                                     size, payload, opt.qos, false);
        if (err != MOSQ_ERR_SUCCESS) {
            fprintf (stderr, "%s: mqtt publish: %s\n", prog, mosquitto_strerror (err));
            rc = 1;
            break;
        }
        res->sent++;
    }
    uint64_t deadline = now_ns (CLOCK_MONOTONIC) + 30000000000ull;
    while (rc == 0 && __atomic_load_n (&st.published, __ATOMIC_ACQUIRE) < res->sent
       &&  now_ns (CLOCK_MONOTONIC) < deadline)
        usleep (1000);
    res->acked = __atomic_load_n (&st.published, __ATOMIC_ACQUIRE);
    res->late_max_us = pacer.late_max / 1e3;
    res->ok = rc == 0 && res->acked == n;
    mosquitto_disconnect (m);
    mosquitto_loop_stop (m, false);
    mosquitto_destroy (m);
    free (payload);
    return rc;
}

static int
mqtt_consumer (int id, int ready_fd, recorder_t *rec)
{
    mqtt_state_t st = {0};
    st.rec = rec;
    struct mosquitto *m = mqtt_open ("sub", id, &st);
    if (!m)
        return signal_ready (ready_fd, NULL, 0), 1;
    const char *topics [2];
    int nt = topics_for (id, topics);
    for (int i = 0; i < nt; i++)
        mosquitto_subscribe (m, NULL, topics [i], opt.qos);
    uint64_t deadline = now_ns (CLOCK_MONOTONIC) + 5000000000ull;
    while (st.subscribed < nt && now_ns (CLOCK_MONOTONIC) < deadline)
        if (mosquitto_loop (m, 100, 1) != MOSQ_ERR_SUCCESS)
            break;
    if (st.subscribed < nt)
        return signal_ready (ready_fd, NULL, 0), 1;
    signal_ready (ready_fd, NULL, 1);
    uint64_t last = now_ns (CLOCK_MONOTONIC);
    while (!recorder_done (rec)) {
        long long before = rec->res.received;
        if (mosquitto_loop (m, 100, 1000) != MOSQ_ERR_SUCCESS)
            break;
        uint64_t now = now_ns (CLOCK_MONOTONIC);
        if (rec->res.received != before)
            last = now;
        else
        if (now - last > (uint64_t) recorder_timeout_ms (rec) * 1000000ull)
            break;
    }
    mosquitto_disconnect (m);
    mosquitto_destroy (m);
    return 0;
}
#endif

//  -------------------------------------------------------------------------
//  The parent: fork, synchronize, collect

typedef struct {
    pid_t pid;
    int ready_fd;           //  child -> parent: ready_msg_t, then the result
    int go_fd;              //  parent -> child: 'g'
    bool producer;
    int id;
} child_t;

static int
run_child (bool producer, int id, int ready_fd, int go_fd)
{
    prctl (PR_SET_PDEATHSIG, SIGTERM);
    prctl (PR_SET_TIMERSLACK, 1UL, 0, 0, 0);    //  wake on time, not 50 us late
    if (producer) {
        producer_result_t res;
        memset (&res, 0, sizeof res);
        int rc = 1;
        switch (opt.transport) {
            case T_ZMQ_PUSH:
            case T_ZMQ_PUB: rc = raw_producer (id, ready_fd, go_fd, &res); break;
            case T_ZBRIDGE: rc = zbridge_producer (id, ready_fd, go_fd, &res); break;
            case T_NATS: rc = nats_producer (id, ready_fd, go_fd, &res); break;
#ifdef ZB_HAVE_HIREDIS
            case T_REDIS: rc = redis_producer (id, ready_fd, go_fd, &res); break;
#endif
#ifdef ZB_HAVE_MOSQUITTO
            case T_MQTT: rc = mqtt_producer (id, ready_fd, go_fd, &res); break;
#endif
            default: break;
        }
        if (rc)
            res.ok = 0;
        return write_full (ready_fd, &res, sizeof res) ? 1 : rc;
    }
    recorder_t rec;
    if (recorder_init (&rec, id))
        return signal_ready (ready_fd, NULL, 0), 1;
    int rc = 1;
    switch (opt.transport) {
        case T_ZMQ_PUSH:
        case T_ZMQ_PUB: rc = raw_consumer (id, ready_fd, &rec); break;
        case T_ZBRIDGE: rc = zbridge_consumer (id, ready_fd, &rec); break;
        case T_NATS: rc = nats_consumer (id, ready_fd, &rec); break;
#ifdef ZB_HAVE_HIREDIS
        case T_REDIS: rc = redis_consumer (id, ready_fd, &rec); break;
#endif
#ifdef ZB_HAVE_MOSQUITTO
        case T_MQTT: rc = mqtt_consumer (id, ready_fd, &rec); break;
#endif
        default: break;
    }
    if (rc)
        return 1;
    return recorder_send (&rec, ready_fd) ? 1 : 0;
}

static int
spawn (child_t *child, bool producer, int id)
{
    int up [2], down [2];
    if (pipe (up) || pipe (down))
        return -1;
    fflush (NULL);
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close (up [0]);
        close (down [1]);
        _exit (run_child (producer, id, up [1], down [0]));
    }
    close (up [1]);
    close (down [0]);
    child->pid = pid;
    child->ready_fd = up [0];
    child->go_fd = down [1];
    child->producer = producer;
    child->id = id;
    return 0;
}

//  Wait for one ready message; a binder's endpoint goes into opt.endpoints.
static bool
await_ready (child_t *child)
{
    ready_msg_t msg;
    if (read_full (child->ready_fd, &msg, sizeof msg) || !msg.ok) {
        fprintf (stderr, "%s: %s %d could not get ready\n", prog,
                 child->producer ? "producer" : "consumer", child->id);
        return false;
    }
    if (msg.endpoint [0] && opt.nendpoints < MAX_PROCS)
        snprintf (opt.endpoints [opt.nendpoints++], EP_MAX, "%s", msg.endpoint);
    return true;
}

static int
cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static int
run (void)
{
    child_t kids [2 * MAX_PROCS];
    int nkids = 0;
    child_t *producers = kids, *consumers = kids + MAX_PROCS;
    memset (kids, 0, sizeof kids);
    bool ok = true;
    //  binders first: their endpoints go to the others (the fork copies opt)
    bool producers_bind = opt.transport == T_ZMQ_PUB;
    for (int wave = 0; wave < 2 && ok; wave++) {
        bool prod = (wave == 0) == producers_bind;
        int n = prod ? opt.producers : opt.consumers;
        child_t *set = prod ? producers : consumers;
        for (int i = 0; i < n && ok; i++) {
            if (spawn (&set [i], prod, i)) {
                perror ("fork");
                ok = false;
            }
            nkids++;
        }
        //  the first ready message of every child of this wave
        for (int i = 0; i < n && ok; i++)
            ok = await_ready (&set [i]);
    }
    //  raw pub/sub producers send a second ready once they have every subscription
    if (ok && producers_bind)
        for (int i = 0; i < opt.producers && ok; i++)
            ok = await_ready (&producers [i]);

    uint64_t go_ns = now_ns (CLOCK_REALTIME);
    for (int i = 0; i < opt.producers && ok; i++)
        if (write_full (producers [i].go_fd, "g", 1))
            ok = false;

    producer_result_t tot = {0};
    for (int i = 0; i < opt.producers; i++) {
        producer_result_t res;
        if (!ok || read_full (producers [i].ready_fd, &res, sizeof res)) {
            ok = false;
            break;
        }
        tot.sent += res.sent;
        tot.acked += res.acked;
        tot.failed += res.failed;
        if (res.late_max_us > tot.late_max_us)
            tot.late_max_us = res.late_max_us;
        if (!res.ok)
            ok = false;
    }
    long long received = 0, expected = 0, nlat = 0, malformed = 0;
    uint64_t last_ns = 0;
    double bytes = 0;
    uint64_t *lat = NULL;
    for (int i = 0; i < opt.consumers; i++) {
        consumer_result_t res;
        if (read_full (consumers [i].ready_fd, &res, sizeof res)) {
            ok = false;
            continue;
        }
        uint64_t *more = realloc (lat, (size_t) (nlat + res.nlat + 1) * sizeof *lat);
        if (!more || read_full (consumers [i].ready_fd, more + nlat,
                                (size_t) res.nlat * sizeof *lat)) {
            ok = false;
            lat = more;
            continue;
        }
        lat = more;
        nlat += res.nlat;
        received += res.received;
        expected += res.expected;
        malformed += res.malformed;
        bytes += res.bytes;
        if (res.last_ns > last_ns)
            last_ns = res.last_ns;
        if (!res.ok)
            ok = false;
    }
    for (int i = 0; i < 2 * MAX_PROCS; i++) {
        if (kids [i].pid > 0) {
            int status = 0;
            close (kids [i].ready_fd);
            close (kids [i].go_fd);
            waitpid (kids [i].pid, &status, 0);
            if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
                ok = false;
        }
    }
    double secs = last_ns > go_ns ? (last_ns - go_ns) / 1e9 : 0;
    if (nlat > 0)
        qsort (lat, (size_t) nlat, sizeof *lat, cmp_u64);
    double sum = 0;
    for (long long k = 0; k < nlat; k++)
        sum += (double) lat [k];
#define PCT(p) (nlat ? lat [(size_t) ((double) (nlat - 1) * (p))] / 1e3 : 0)
    printf ("{\"transport\":\"%s\",\"qos\":%d,\"count\":%lld,\"size\":%zu,\"producers\":%d,"
            "\"consumers\":%d,\"rate\":%lld,\"batch\":%d,\"seconds\":%.6f,\"msgs_per_s\":%.1f,"
            "\"delivered\":%lld,\"expected\":%lld,\"lost\":%lld,\"p50_us\":%.1f,\"p99_us\":%.1f,"
            "\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,\"sent\":%lld,\"acked\":%lld,"
            "\"failed\":%lld,\"late_max_us\":%.1f,\"bytes_avg\":%.1f,\"malformed\":%lld,"
            "\"ok\":%s}\n",
            opt.name, opt.qos, opt.count, opt.size, opt.producers, opt.consumers, opt.rate,
            opt.transport == T_ZBRIDGE ? (opt.rate > 0 && !opt.batch_given ? 1 : opt.batch) : 1,
            secs, secs > 0 ? opt.count / secs : 0, received, expected, expected - received,
            PCT (0.50), PCT (0.99), PCT (0.999), nlat ? lat [nlat - 1] / 1e3 : 0,
            nlat ? sum / (double) nlat / 1e3 : 0, tot.sent, tot.acked, tot.failed,
            tot.late_max_us, received ? bytes / (double) received : 0, malformed,
            ok ? "true" : "false");
    free (lat);
    return ok ? 0 : 1;
}

static void
usage (FILE *out)
{
    fprintf (out,
        "usage: %s TRANSPORT [options]\n"
        "One load client for zbridge and its peers: P producers, C consumers, N messages\n"
        "of S bytes, as fast as possible or paced; prints one JSON line (msgs/s, latency).\n"
        "TRANSPORT: zmq-push, zmq-pub, zbridge, nats, redis, mqtt%s%s\n"
        "  -n, --count N         messages in all (default 100000)\n"
        "  -s, --size BYTES      message size; zbridge: published event size (default 350)\n"
        "  -r, --rate N          messages/s in all, 0 = as fast as possible (default 0)\n"
        "  -P, --producers N     producer processes, 1..%d (default 1)\n"
        "  -C, --consumers N     consumer processes, 1..%d (default 1); even ones take\n"
        "                        both topics, odd ones sales-events only: with -C 1 the\n"
        "                        one consumer receives every message (the issue's\n"
        "                        \"1 producer -> 1 consumer\"), with -C 2 the shape of\n"
        "                        zb-warehouse + zb-dispatch\n"
        "  -b, --batch N         zbridge: entries per PUT, 1..10000 (default 100; 1 when paced\n"
        "                        unless given: then a batch goes when its last event is due)\n"
        "  -w, --window N        zbridge: PUT requests in flight, 1..10000 (default 128:\n"
        "                        12,800 events, ~4.5 MB in flight, what the peers' publishers\n"
        "                        have in their TCP buffers without waiting for acks)\n"
        "      --ingest EP       zbridge: broker ingest endpoint\n"
        "      --publish EP      zbridge: broker publish endpoint\n"
        "      --control EP      zbridge: control endpoint (to wait for the subscribers)\n"
        "      --host HOST       nats, redis, mqtt: server address (default 127.0.0.1)\n"
        "      --port PORT       nats, redis, mqtt: server port\n"
        "  -q, --qos 0|1         mqtt: QoS of publications and subscriptions (default 0)\n"
        "  -h, --help            this help\n"
        "  -V, --version         print the version\n"
        "Examples:\n"
        "  %s zmq-push -n 1000000 -s 350\n"
        "  %s zbridge --ingest tcp://127.0.0.1:5555 --publish tcp://127.0.0.1:5556 \\\n"
        "      --control tcp://127.0.0.1:5557 -n 200000 -C 2\n"
        "  %s nats --port 4222 -n 200000 -C 2 -r 10000\n",
        prog,
#ifdef ZB_HAVE_HIREDIS
        "",
#else
        " (redis: not built, no hiredis)",
#endif
#ifdef ZB_HAVE_MOSQUITTO
        "",
#else
        " (mqtt: not built, no libmosquitto)",
#endif
        MAX_PROCS, MAX_PROCS, prog, prog, prog);
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        {"count", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
        {"rate", required_argument, NULL, 'r'},
        {"producers", required_argument, NULL, 'P'},
        {"consumers", required_argument, NULL, 'C'},
        {"batch", required_argument, NULL, 'b'},
        {"window", required_argument, NULL, 'w'},
        {"qos", required_argument, NULL, 'q'},
        {"ingest", required_argument, NULL, 1},
        {"publish", required_argument, NULL, 2},
        {"control", required_argument, NULL, 3},
        {"host", required_argument, NULL, 4},
        {"port", required_argument, NULL, 5},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}
    };
    zb_cli_tune_malloc ();     //  as every zbridge program, for every bus alike
    opterr = 0;
    int o;
    uint64_t v;
    while ((o = getopt_long (argc, argv, ":n:s:r:P:C:b:w:q:hV", options, NULL)) != -1) {
        switch (o) {
            case 'n':
                if (!zb_cli_parse_range (optarg, 1, 1000000000, &v))
                    return zb_cli_usage_error (prog, "--count: not 1..1000000000: %s", optarg);
                opt.count = (long long) v;
                break;
            case 's':
                if (!zb_cli_parse_range (optarg, 8, 16 * 1024 * 1024, &v))
                    return zb_cli_usage_error (prog, "--size: not 8..16777216: %s", optarg);
                opt.size = (size_t) v;
                break;
            case 'r':
                if (!zb_cli_parse_range (optarg, 0, 10000000, &v))
                    return zb_cli_usage_error (prog, "--rate: not 0..10000000: %s", optarg);
                opt.rate = (long long) v;
                break;
            case 'P':
            case 'C':
                if (!zb_cli_parse_range (optarg, 1, MAX_PROCS, &v))
                    return zb_cli_usage_error (prog, "--%s: not 1..%d: %s",
                                               o == 'P' ? "producers" : "consumers", MAX_PROCS,
                                               optarg);
                *(o == 'P' ? &opt.producers : &opt.consumers) = (int) v;
                break;
            case 'b':
            case 'w':
                if (!zb_cli_parse_range (optarg, 1, 10000, &v))
                    return zb_cli_usage_error (prog, "--%s: not 1..10000: %s",
                                               o == 'b' ? "batch" : "window", optarg);
                *(o == 'b' ? &opt.batch : &opt.window) = (int) v;
                if (o == 'b')
                    opt.batch_given = true;
                break;
            case 'q':
                if (!zb_cli_parse_range (optarg, 0, 1, &v))
                    return zb_cli_usage_error (prog, "--qos: not 0 or 1: %s", optarg);
                opt.qos = (int) v;
                break;
            case 1: opt.ingest = optarg; break;
            case 2: opt.publish = optarg; break;
            case 3: opt.control = optarg; break;
            case 4: opt.host = optarg; break;
            case 5:
                if (!zb_cli_parse_range (optarg, 1, 65535, &v))
                    return zb_cli_usage_error (prog, "--port: not 1..65535: %s", optarg);
                opt.port = (int) v;
                break;
            case 'h':
                usage (stdout);
                return 0;
            case 'V':
                printf ("%s %s\n", prog, ZB_VERSION);
                return 0;
            default:
                return zb_cli_option_error (prog, o, argv);
        }
    }
    if (optind != argc - 1)
        return zb_cli_usage_error (prog, "one TRANSPORT expected");
    static const struct { const char *name; transport_t t; } names [] = {
        {"zmq-push", T_ZMQ_PUSH}, {"zmq-pub", T_ZMQ_PUB}, {"zbridge", T_ZBRIDGE},
        {"nats", T_NATS}, {"redis", T_REDIS}, {"mqtt", T_MQTT}
    };
    opt.name = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++)
        if (strcmp (argv [optind], names [i].name) == 0) {
            opt.name = names [i].name;
            opt.transport = names [i].t;
        }
    if (!opt.name)
        return zb_cli_usage_error (prog, "unknown transport: %s", argv [optind]);
#ifndef ZB_HAVE_HIREDIS
    if (opt.transport == T_REDIS)
        return zb_cli_error (prog, "redis: not built (hiredis was missing at build time)");
#endif
#ifndef ZB_HAVE_MOSQUITTO
    if (opt.transport == T_MQTT)
        return zb_cli_error (prog, "mqtt: not built (libmosquitto was missing at build time)");
#endif
    if (opt.transport == T_ZMQ_PUSH && opt.consumers != 1)
        return zb_cli_usage_error (prog, "zmq-push: PUSH spreads messages over its PULL "
                                   "peers; use --consumers 1");
    if (opt.transport == T_ZBRIDGE && (!opt.ingest || !opt.publish))
        return zb_cli_usage_error (prog, "zbridge needs --ingest and --publish");
    if ((opt.transport == T_NATS || opt.transport == T_REDIS || opt.transport == T_MQTT)
    &&  !opt.port)
        return zb_cli_usage_error (prog, "%s needs --port", opt.name);
    if (opt.count < opt.producers)
        return zb_cli_usage_error (prog, "--count must be at least --producers");
#ifdef ZB_HAVE_MOSQUITTO
    mosquitto_lib_init ();
#endif
    signal (SIGPIPE, SIG_IGN);
    int rc = run ();
#ifdef ZB_HAVE_MOSQUITTO
    mosquitto_lib_cleanup ();
#endif
    return rc;
}
