/*  zb-rawpipe - the raw libzmq baseline for bench/throughput.

    Two processes, one PUSH socket sending N messages of S bytes to one PULL socket
    over TCP loopback, nothing else: no broker, no encoding, no acknowledgement.
    It is the ceiling zbridge's numbers are compared against.

        zb-rawpipe [-n COUNT] [-s SIZE] [-e ENDPOINT]

    The PULL side (parent) binds ENDPOINT (default tcp://127.0.0.1:*, a free port),
    forks the PUSH side, and times from the moment the sender is told the endpoint
    to the last message received. Prints one JSON line on stdout:
        {"messages":N,"size":S,"seconds":X,"msgs_per_s":R,"mb_per_s":M}  */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include "../common/cli.h"

#ifndef ZB_VERSION
#define ZB_VERSION "0.0.0"
#endif

static const char *prog = "zb-rawpipe";

static void
usage (FILE *out)
{
    fprintf (out,
        "usage: %s [-n COUNT] [-s SIZE] [-e ENDPOINT]\n"
        "Raw libzmq PUSH->PULL throughput between two processes (the zbridge baseline).\n"
        "  -n, --count N      messages to send (default 200000)\n"
        "  -s, --size BYTES   bytes per message (default 350)\n"
        "  -e, --endpoint EP  endpoint the receiver binds (default tcp://127.0.0.1:*)\n"
        "  -h, --help         this help\n"
        "  -V, --version      print the version\n"
        "Example:\n"
        "  %s -n 1000000 -s 350\n", prog, prog);
}

static double
now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

//  The PUSH side: read the endpoint from the pipe, send count messages, exit.
static int
run_sender (int fd, long long count, size_t size)
{
    char endpoint [256];
    ssize_t n = read (fd, endpoint, sizeof endpoint - 1);
    if (n <= 0) {
        fprintf (stderr, "%s: sender: no endpoint from the receiver\n", prog);
        return 1;
    }
    endpoint [n] = 0;
    void *ctx = zmq_ctx_new ();
    void *push = zmq_socket (ctx, ZMQ_PUSH);
    int linger = -1;
    zmq_setsockopt (push, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect (push, endpoint)) {
        fprintf (stderr, "%s: sender: connect %s: %s\n", prog, endpoint, zmq_strerror (errno));
        return 1;
    }
    char *payload = malloc (size ? size : 1);
    if (!payload)
        return 1;
    for (size_t i = 0; i < size; i++)
        payload [i] = (char) ('a' + i % 26);
    for (long long i = 0; i < count; i++) {
        while (zmq_send (push, payload, size, 0) == -1) {
            if (errno != EINTR) {
                fprintf (stderr, "%s: sender: send: %s\n", prog, zmq_strerror (errno));
                return 1;
            }
        }
    }
    free (payload);
    zmq_close (push);          //  linger -1: every message is delivered before exit
    zmq_ctx_term (ctx);
    return 0;
}

int
main (int argc, char **argv)
{
    long long count = 200000, size = 350;
    const char *endpoint = "tcp://127.0.0.1:*";
    static const struct option options [] = {
        {"count", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
        {"endpoint", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}
    };
    int opt;
    uint64_t value;
    while ((opt = getopt_long (argc, argv, "n:s:e:hV", options, NULL)) != -1) {
        switch (opt) {
            case 'n':
                if (!zb_cli_parse_range (optarg, 1, LLONG_MAX, &value)) {
                    fprintf (stderr, "%s: --count: not a positive integer: %s\n", prog, optarg);
                    return 2;
                }
                count = (long long) value;
                break;
            case 's':
                if (!zb_cli_parse_range (optarg, 0, 64 * 1024 * 1024, &value)) {
                    fprintf (stderr, "%s: --size: not a size in bytes: %s\n", prog, optarg);
                    return 2;
                }
                size = (long long) value;
                break;
            case 'e':
                endpoint = optarg;
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
    if (optind < argc) {
        fprintf (stderr, "%s: unexpected argument: %s\n", prog, argv [optind]);
        return 2;
    }

    int fds [2];
    if (pipe (fds)) {
        perror ("pipe");
        return 1;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        perror ("fork");
        return 1;
    }
    if (pid == 0) {
        close (fds [1]);
        _exit (run_sender (fds [0], count, (size_t) size));
    }
    close (fds [0]);

    void *ctx = zmq_ctx_new ();
    void *pull = zmq_socket (ctx, ZMQ_PULL);
    int rc = zmq_bind (pull, endpoint);
    char bound [256] = "";
    size_t boundlen = sizeof bound;
    if (rc == 0)
        rc = zmq_getsockopt (pull, ZMQ_LAST_ENDPOINT, bound, &boundlen);
    if (rc) {
        fprintf (stderr, "%s: bind %s: %s\n", prog, endpoint, zmq_strerror (errno));
        close (fds [1]);
        waitpid (pid, NULL, 0);
        return 1;
    }
    double start = now_s ();
    if (write (fds [1], bound, strlen (bound)) != (ssize_t) strlen (bound)) {
        perror ("write");
        kill (pid, SIGTERM);
        waitpid (pid, NULL, 0);
        return 1;
    }
    close (fds [1]);

    //  Give up when the sender has been silent for 10 s (it died).
    int timeout = 10000;
    zmq_setsockopt (pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    long long received = 0;
    size_t bytes = 0;
    while (received < count) {
        if (zmq_msg_recv (&msg, pull, 0) == -1) {
            if (errno == EINTR)
                continue;
            fprintf (stderr, "%s: receive after %lld messages: %s\n", prog, received,
                     zmq_strerror (errno));
            break;
        }
        bytes += zmq_msg_size (&msg);
        received++;
    }
    double seconds = now_s () - start;
    zmq_msg_close (&msg);
    zmq_close (pull);
    zmq_ctx_term (ctx);

    int status = 0;
    waitpid (pid, &status, 0);
    if (received < count || !WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        fprintf (stderr, "%s: run failed: received %lld of %lld\n", prog, received, count);
        return 1;
    }
    if (bytes != (size_t) count * (size_t) size) {
        fprintf (stderr, "%s: received %zu bytes, expected %lld\n", prog, bytes, count * size);
        return 1;
    }
    double rate = received / seconds;
    fprintf (stderr, "%s: %lld messages of %lld bytes in %.3f s: %.0f msgs/s, %.1f MB/s\n",
             prog, received, size, seconds, rate, rate * size / 1e6);
    printf ("{\"messages\":%lld,\"size\":%lld,\"seconds\":%.6f,\"msgs_per_s\":%.1f,"
            "\"mb_per_s\":%.3f}\n", received, size, seconds, rate, rate * size / 1e6);
    return 0;
}
