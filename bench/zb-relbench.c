/*  zb-relbench - the client side of bench/reliability, in C so that the client is
    never the bottleneck of what it measures.

        zb-relbench latency --ingest EP --publish EP [--rate N] [--count N]
        zb-relbench replay  --control EP [--count N] [--credit N]

    latency: publish-to-consume latency at a paced rate. A forked child PUTs one
    event per request to the broker's ingest socket at --rate events/s (absolute
    deadlines with clock_nanosleep, so a late send never shifts the next ones), each
    carrying detail {"sent_ns": CLOCK_REALTIME at send, "i": n}; replies are read
    without waiting (pipelined). The parent subscribes to the event's topic on the
    publish socket and takes, for every event, its CLOCK_REALTIME at receipt minus
    sent_ns. Both processes are on the same machine, so the clocks are the same.
    Before the measured run, warm-up events are put until the subscription is seen
    to work. Prints one JSON line:
        {"count":N,"received":R,"p50_us":..,"p99_us":..,"p999_us":..,"max_us":..,
         "mean_us":..,"send_rate":..,"acked":A,"failed":F,"late_max_us":..}

    replay: REPLAY from seq 1 on the control socket with a credit window (--credit,
    refilled by half a window every half window received), up to END; checks that
    seq goes up by one each event. Prints one JSON line:
        {"events":N,"seconds":S,"events_per_s":R,"end_count":C,"head":H}

    Built with the project, never installed; bench/reliability runs it. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <msgpack.h>
#include <zmq.h>
#include "../common/cli.h"

#ifndef ZB_VERSION
#define ZB_VERSION "0.0.0"
#endif

static const char *prog = "zb-relbench";
static const char *topic = "bench-latency";

static void
usage (FILE *out)
{
    fprintf (out,
        "usage: %s latency --ingest EP --publish EP [--rate N] [--count N]\n"
        "       %s replay --control EP [--count N] [--credit N]\n"
        "Client side of bench/reliability: paced publish-to-consume latency, or the\n"
        "rate of a REPLAY from the journal.\n"
        "  -i, --ingest EP     broker ingest endpoint (latency)\n"
        "  -p, --publish EP    broker publish endpoint (latency)\n"
        "  -c, --control EP    broker control endpoint (replay)\n"
        "  -r, --rate N        events per second (latency; default 10000)\n"
        "  -n, --count N       events to measure (latency: default 50000; replay: the\n"
        "                      number expected, 0 = whatever the journal holds)\n"
        "      --credit N      replay credit window (default 10000)\n"
        "  -h, --help          this help\n"
        "  -V, --version       print the version\n"
        "Examples:\n"
        "  %s latency -i tcp://127.0.0.1:5555 -p tcp://127.0.0.1:5556 -r 10000 -n 50000\n"
        "  %s replay -c tcp://127.0.0.1:5557 -n 200000\n", prog, prog, prog, prog);
}

static uint64_t
now_ns (clockid_t clock)
{
    struct timespec ts;
    clock_gettime (clock, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static void
pack_str (msgpack_packer *pk, const char *s)
{
    size_t len = strlen (s);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

//  Look up key in a msgpack map object; NULL when absent or not a map.
static msgpack_object *
map_get (msgpack_object *map, const char *key)
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

static int
send_frames (void *sock, const void *const *data, const size_t *size, int count)
{
    for (int i = 0; i < count; i++)
        if (zmq_send (sock, data [i], size [i], i < count - 1 ? ZMQ_SNDMORE : 0) == -1)
            return -1;
    return 0;
}

//  Receive one multipart message into frames (at most max; the rest discarded).
//  Returns the frame count, -1 on error/timeout.
static int
recv_frames (void *sock, zmq_msg_t *frames, int max)
{
    int n = 0;
    int more = 1;
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
close_frames (zmq_msg_t *frames, int n, int max)
{
    for (int i = 0; i < n && i < max; i++)
        zmq_msg_close (&frames [i]);
}

//  -------------------------------------------------------------------------
//  latency: the paced producer (child) and the subscriber (parent)

typedef struct {
    long long acked, failed;
    double send_rate;
    double late_max_us;
} producer_result_t;

static uint64_t corr_counter;

//  PUT one event {"sent_ns", "i"} (i < 0: a warm-up event)
static int
put_event (void *dealer, msgpack_sbuffer *sb, long long i)
{
    msgpack_sbuffer_clear (sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 1);
    msgpack_pack_map (&pk, 3);
    pack_str (&pk, "source");
    pack_str (&pk, "zbridge.bench");
    pack_str (&pk, "detail-type");
    pack_str (&pk, topic);
    pack_str (&pk, "detail");
    msgpack_pack_map (&pk, 2);
    pack_str (&pk, "i");
    msgpack_pack_int64 (&pk, i);
    pack_str (&pk, "sent_ns");
    uint64_t sent = now_ns (CLOCK_REALTIME);
    msgpack_pack_uint64 (&pk, sent);
    uint8_t corr [8];
    uint64_t c = ++corr_counter;
    for (int k = 7; k >= 0; k--, c >>= 8)
        corr [k] = (uint8_t) c;
    const void *data [3] = {"PUT", corr, sb->data};
    size_t size [3] = {3, 8, sb->size};
    return send_frames (dealer, data, size, 3);
}

//  Read every reply that is there (wait up to timeout_ms for the first).
static void
read_replies (void *dealer, int timeout_ms, producer_result_t *res, long long *outstanding)
{
    zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
    while (*outstanding > 0 && zmq_poll (&item, 1, timeout_ms) > 0) {
        timeout_ms = 0;
        zmq_msg_t frames [3];
        int n = recv_frames (dealer, frames, 3);
        if (n < 0)
            return;
        (*outstanding)--;
        if (n == 3 && zmq_msg_size (&frames [0]) == 2
        &&  memcmp (zmq_msg_data (&frames [0]), "OK", 2) == 0) {
            msgpack_unpacked up;
            msgpack_unpacked_init (&up);
            size_t off = 0;
            if (msgpack_unpack_next (&up, zmq_msg_data (&frames [2]), zmq_msg_size (&frames [2]),
                                     &off) == MSGPACK_UNPACK_SUCCESS) {
                msgpack_object *failed = map_get (&up.data, "failed");
                if (failed && failed->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                &&  failed->via.u64 > 0)
                    res->failed++;
                else
                    res->acked++;
            }
            else
                res->failed++;
            msgpack_unpacked_destroy (&up);
        }
        else
            res->failed++;
        close_frames (frames, n, 3);
    }
}

static int
run_pacer (const char *ingest, long long count, long long rate, int go_fd, int result_fd)
{
    prctl (PR_SET_TIMERSLACK, 1UL, 0, 0, 0);     //  wake up on time, not 50 us late
    void *ctx = zmq_ctx_new ();
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0, hwm = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_connect (dealer, ingest)) {
        fprintf (stderr, "%s: connect %s: %s\n", prog, ingest, zmq_strerror (errno));
        return 1;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    producer_result_t res = {0, 0, 0, 0};
    long long outstanding = 0;

    //  warm-up: one event every 20 ms until the parent says go (it saw one)
    char go = 0;
    for (;;) {
        if (put_event (dealer, &sb, -1) == 0)
            outstanding++;
        read_replies (dealer, 0, &res, &outstanding);
        struct timeval tv = {0, 20000};
        fd_set fds;
        FD_ZERO (&fds);
        FD_SET (go_fd, &fds);
        int rc = select (go_fd + 1, &fds, NULL, NULL, &tv);
        if (rc > 0) {
            if (read (go_fd, &go, 1) != 1)
                go = 0;
            break;
        }
    }
    if (go != 'g')
        return 1;
    read_replies (dealer, 200, &res, &outstanding);
    res.acked = res.failed = 0;

    uint64_t period = 1000000000ull / (uint64_t) rate;
    uint64_t start = now_ns (CLOCK_MONOTONIC) + 1000000;
    uint64_t late_max = 0;
    for (long long i = 0; i < count; i++) {
        uint64_t target = start + (uint64_t) i * period;
        struct timespec ts = {(time_t) (target / 1000000000ull), (long) (target % 1000000000ull)};
        while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        uint64_t now = now_ns (CLOCK_MONOTONIC);
        if (now > target && now - target > late_max)
            late_max = now - target;
        if (put_event (dealer, &sb, i) == 0)
            outstanding++;
        else
            res.failed++;
        read_replies (dealer, 0, &res, &outstanding);
    }
    double secs = (now_ns (CLOCK_MONOTONIC) - start) / 1e9;
    res.send_rate = count / (secs > 0 ? secs : 1e-9);
    res.late_max_us = late_max / 1e3;
    //  the rest of the replies (at most 10 s of silence)
    while (outstanding > 0) {
        long long before = outstanding;
        read_replies (dealer, 10000, &res, &outstanding);
        if (outstanding == before)
            break;
    }
    res.failed += outstanding;
    msgpack_sbuffer_destroy (&sb);
    zmq_close (dealer);
    zmq_ctx_term (ctx);
    return write (result_fd, &res, sizeof res) == (ssize_t) sizeof res ? 0 : 1;
}

static int
cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static int
run_latency (const char *ingest, const char *publish, long long count, long long rate)
{
    int go [2], result [2];
    if (pipe (go) || pipe (result)) {
        perror ("pipe");
        return 1;
    }
    //  fork before any libzmq context exists
    pid_t pid = fork ();
    if (pid < 0) {
        perror ("fork");
        return 1;
    }
    if (pid == 0) {
        close (go [1]);
        close (result [0]);
        _exit (run_pacer (ingest, count, rate, go [0], result [1]));
    }
    close (go [0]);
    close (result [1]);

    void *ctx = zmq_ctx_new ();
    void *sub = zmq_socket (ctx, ZMQ_SUB);
    int hwm = 0, timeout = 5000, linger = 0;
    zmq_setsockopt (sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt (sub, ZMQ_LINGER, &linger, sizeof linger);
    char sub_topic [64];
    size_t sub_len = strlen (topic) + 1;
    memcpy (sub_topic, topic, sub_len);        //  exact: topic + NUL
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, sub_topic, sub_len);
    if (zmq_connect (sub, publish)) {
        fprintf (stderr, "%s: connect %s: %s\n", prog, publish, zmq_strerror (errno));
        kill (pid, SIGTERM);
        waitpid (pid, NULL, 0);
        return 1;
    }
    uint64_t *lat = calloc ((size_t) count, sizeof *lat);
    if (!lat)
        return 1;
    long long received = 0;
    bool started = false;
    int rc = 0;
    while (received < count) {
        zmq_msg_t frames [3];
        int n = recv_frames (sub, frames, 3);
        uint64_t now = now_ns (CLOCK_REALTIME);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf (stderr, "%s: no event for 5 s after %lld (%s)\n", prog, received,
                     started ? "measuring" : "warming up");
            if (!started)
                rc = 1;
            break;
        }
        //  Protocol version 2: a header of 20 bytes or more carries the count
        //  of events back to back in frame 3 (16 bytes: one)
        uint32_t events = 0;
        if (n == 3) {
            const uint8_t *h = (const uint8_t *) zmq_msg_data (&frames [1]);
            events = 1;
            if (zmq_msg_size (&frames [1]) >= 20)
                events = (uint32_t) h [16] << 24 | (uint32_t) h [17] << 16
                       | (uint32_t) h [18] << 8 | h [19];
        }
        size_t off = 0;
        for (uint32_t e = 0; e < events && received < count; e++) {
            msgpack_unpacked up;
            msgpack_unpacked_init (&up);
            if (msgpack_unpack_next (&up, zmq_msg_data (&frames [2]), zmq_msg_size (&frames [2]),
                                     &off) == MSGPACK_UNPACK_SUCCESS) {
                msgpack_object *detail = map_get (&up.data, "detail");
                msgpack_object *i = detail ? map_get (detail, "i") : NULL;
                msgpack_object *sent = detail ? map_get (detail, "sent_ns") : NULL;
                if (i && sent && sent->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                    if (i->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
                        if (!started) {
                            started = true;
                            if (write (go [1], "g", 1) != 1)
                                rc = 1;
                        }
                    }
                    else
                    if (i->type == MSGPACK_OBJECT_POSITIVE_INTEGER && started)
                        lat [received++] = now > sent->via.u64 ? now - sent->via.u64 : 0;
                }
            }
            msgpack_unpacked_destroy (&up);
        }
        close_frames (frames, n, 3);
        if (rc)
            break;
    }
    close (go [1]);
    producer_result_t res = {0, 0, 0, 0};
    if (read (result [0], &res, sizeof res) != (ssize_t) sizeof res)
        fprintf (stderr, "%s: no result from the paced producer\n", prog);
    int status = 0;
    waitpid (pid, &status, 0);
    zmq_close (sub);
    zmq_ctx_term (ctx);
    if (rc || received == 0) {
        free (lat);
        return 1;
    }
    qsort (lat, (size_t) received, sizeof *lat, cmp_u64);
    double sum = 0;
    for (long long k = 0; k < received; k++)
        sum += lat [k];
#define PCT(p) (lat [(size_t) ((received - 1) * (p))] / 1e3)
    printf ("{\"count\":%lld,\"received\":%lld,\"rate\":%lld,\"p50_us\":%.1f,\"p99_us\":%.1f,"
            "\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,\"send_rate\":%.1f,"
            "\"acked\":%lld,\"failed\":%lld,\"late_max_us\":%.1f}\n",
            count, received, rate, PCT (0.50), PCT (0.99), PCT (0.999),
            lat [received - 1] / 1e3, sum / received / 1e3, res.send_rate, res.acked,
            res.failed, res.late_max_us);
    free (lat);
    return received == count && WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : 1;
}

//  -------------------------------------------------------------------------
//  replay

static int
send_credit (void *dealer, const char *corr, size_t corr_len, uint64_t credit)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    pack_str (&pk, "credit");
    msgpack_pack_uint64 (&pk, credit);
    const void *data [3] = {"CREDIT", corr, sb.data};
    size_t size [3] = {6, corr_len, sb.size};
    int rc = send_frames (dealer, data, size, 3);
    msgpack_sbuffer_destroy (&sb);
    return rc;
}

static uint64_t
be64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p [i];
    return v;
}

static int
run_replay (const char *control, long long count, long long credit)
{
    void *ctx = zmq_ctx_new ();
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    int hwm = 0, timeout = 10000, linger = 0;
    zmq_setsockopt (dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (dealer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect (dealer, control)) {
        fprintf (stderr, "%s: connect %s: %s\n", prog, control, zmq_strerror (errno));
        return 1;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    pack_str (&pk, "from");
    msgpack_pack_uint64 (&pk, 1);
    pack_str (&pk, "credit");
    msgpack_pack_uint64 (&pk, (uint64_t) credit);
    const char *corr = "relbench-replay";
    size_t corr_len = strlen (corr);
    uint64_t t0 = now_ns (CLOCK_MONOTONIC);
    const void *data [3] = {"REPLAY", corr, sb.data};
    size_t size [3] = {6, corr_len, sb.size};
    if (send_frames (dealer, data, size, 3)) {
        fprintf (stderr, "%s: send REPLAY: %s\n", prog, zmq_strerror (errno));
        return 1;
    }
    msgpack_sbuffer_destroy (&sb);

    long long events = 0, since_refill = 0, refill = credit / 2 > 0 ? credit / 2 : 1;
    uint64_t last_seq = 0, end_count = 0, head = 0;
    int rc = 0;
    bool ended = false;
    while (!ended) {
        zmq_msg_t frames [5];
        int n = recv_frames (dealer, frames, 5);
        if (n < 0) {
            fprintf (stderr, "%s: replay stalled after %lld events: %s\n", prog, events,
                     zmq_strerror (errno));
            rc = 1;
            break;
        }
        const char *status = zmq_msg_data (&frames [0]);
        size_t status_len = zmq_msg_size (&frames [0]);
        if (n == 5 && status_len == 5 && memcmp (status, "EVENT", 5) == 0) {
            if (zmq_msg_size (&frames [3]) >= 16) {
                uint64_t seq = be64 (zmq_msg_data (&frames [3]));
                if (last_seq && seq != last_seq + 1) {
                    fprintf (stderr, "%s: seq %" PRIu64 " after %" PRIu64 "\n", prog, seq,
                             last_seq);
                    rc = 1;
                }
                last_seq = seq;
            }
            events++;
            if (++since_refill >= refill) {
                send_credit (dealer, corr, corr_len, (uint64_t) since_refill);
                since_refill = 0;
            }
        }
        else
        if (n == 3 && status_len == 3 && memcmp (status, "END", 3) == 0) {
            msgpack_unpacked up;
            msgpack_unpacked_init (&up);
            size_t off = 0;
            if (msgpack_unpack_next (&up, zmq_msg_data (&frames [2]), zmq_msg_size (&frames [2]),
                                     &off) == MSGPACK_UNPACK_SUCCESS) {
                msgpack_object *c = map_get (&up.data, "count");
                msgpack_object *h = map_get (&up.data, "head");
                end_count = c && c->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? c->via.u64 : 0;
                head = h && h->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? h->via.u64 : 0;
            }
            msgpack_unpacked_destroy (&up);
            ended = true;
        }
        else {
            fprintf (stderr, "%s: unexpected %.*s message (%d frames)\n", prog,
                     (int) status_len, status, n);
            rc = 1;
            ended = true;
        }
        close_frames (frames, n, 5);
    }
    double secs = (now_ns (CLOCK_MONOTONIC) - t0) / 1e9;
    zmq_close (dealer);
    zmq_ctx_term (ctx);
    if (count > 0 && events != count) {
        fprintf (stderr, "%s: replayed %lld events, expected %lld\n", prog, events, count);
        rc = 1;
    }
    if ((uint64_t) events != end_count) {
        fprintf (stderr, "%s: END count %" PRIu64 ", received %lld\n", prog, end_count, events);
        rc = 1;
    }
    printf ("{\"events\":%lld,\"seconds\":%.6f,\"events_per_s\":%.1f,\"end_count\":%" PRIu64
            ",\"head\":%" PRIu64 "}\n", events, secs, events / (secs > 0 ? secs : 1e-9),
            end_count, head);
    return rc;
}

int
main (int argc, char **argv)
{
    const char *ingest = NULL, *publish = NULL, *control = NULL;
    long long rate = 10000, count = -1, credit = 10000;
    static const struct option options [] = {
        {"ingest", required_argument, NULL, 'i'},
        {"publish", required_argument, NULL, 'p'},
        {"control", required_argument, NULL, 'c'},
        {"rate", required_argument, NULL, 'r'},
        {"count", required_argument, NULL, 'n'},
        {"credit", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}
    };
    int opt;
    uint64_t value;
    while ((opt = getopt_long (argc, argv, "i:p:c:r:n:hV", options, NULL)) != -1) {
        switch (opt) {
            case 'i': ingest = optarg; break;
            case 'p': publish = optarg; break;
            case 'c': control = optarg; break;
            case 'r':
                if (!zb_cli_parse_range (optarg, 1, 1000000, &value)) {
                    fprintf (stderr, "%s: --rate: not 1..1000000: %s\n", prog, optarg);
                    return 2;
                }
                rate = (long long) value;
                break;
            case 'n':
                if (!zb_cli_parse_range (optarg, 0, 100000000, &value)) {
                    fprintf (stderr, "%s: --count: not 0..100000000: %s\n", prog, optarg);
                    return 2;
                }
                count = (long long) value;
                break;
            case 'C':
                if (!zb_cli_parse_range (optarg, 1, 100000, &value)) {
                    fprintf (stderr, "%s: --credit: not 1..100000: %s\n", prog, optarg);
                    return 2;
                }
                credit = (long long) value;
                break;
            case 'h':
                usage (stdout);
                return 0;
            case 'V':
                printf ("%s %s\n", prog, ZB_VERSION);
                return 0;
            default:
                usage (stderr);
                return 2;
        }
    }
    if (optind != argc - 1) {
        usage (stderr);
        return 2;
    }
    const char *mode = argv [optind];
    if (strcmp (mode, "latency") == 0) {
        if (!ingest || !publish) {
            fprintf (stderr, "%s: latency needs --ingest and --publish\n", prog);
            return 2;
        }
        if (count == 0) {
            fprintf (stderr, "%s: latency needs --count >= 1\n", prog);
            return 2;
        }
        return run_latency (ingest, publish, count < 0 ? 50000 : count, rate);
    }
    if (strcmp (mode, "replay") == 0) {
        if (!control) {
            fprintf (stderr, "%s: replay needs --control\n", prog);
            return 2;
        }
        return run_replay (control, count < 0 ? 0 : count, credit);
    }
    fprintf (stderr, "%s: unknown mode: %s\n", prog, mode);
    usage (stderr);
    return 2;
}
