/*  zbctl_replay.c - zbctl replay: read a range of the broker's journal.

    One REPLAY session (common/replay_client.c: credit granted in windows) over
    [from, to], optionally of some topics. Each event goes to stdout as one JSON
    line (the envelope, as zb-consumer prints it), or with --into TOPIC back into
    the bus through the ingest socket, its detail-type rewritten to TOPIC: PUT
    batches of up to 100 entries, each entry with the idempotency key
    "replay/<event id>/<TOPIC>", so that running the same replay again within
    the broker's dedup window puts nothing twice. The replay range ends at the
    broker's head when the request arrives: events put by --into come after it
    and are not replayed again. */

#include <czmq.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "event.h"
#include "replay_client.h"
#include "rfc3339.h"
#include "wire.h"
#include "zbctl.h"

#define REPLAY_NAME     "zbctl replay"
#define REPLAY_CREDIT   1000
#define REPLAY_BATCH    100             //  entries per PUT (the broker's default max-entries)
#define REPLAY_KEY_MAX  128             //  bytes of an idempotency key

typedef struct {
    zbctl_global_t *global;
    //  --into: the ingest DEALER and the batch being built
    const char *into;
    zsock_t *ingest;
    msgpack_sbuffer batch;
    msgpack_packer pk;
    uint32_t entries;                   //  in the batch
    uint64_t corr;
    uint64_t put, duplicates, failed, skipped;
    uint64_t printed;
} replay_t;

static void
s_replay_usage (void)
{
    printf (
        "Usage: zbctl [--control EP] [--ingest EP] replay --from WHERE [--to N]\n"
        "             [--topic T]... [--prefix P]... [--into TOPIC]\n"
        "Read events back from the broker's journal (REPLAY), in sequence order:\n"
        "to stdout as one JSON line each (the envelope, as zb-consumer prints it),\n"
        "or with --into put again on the bus under the detail-type TOPIC.\n\n"
        "      --from WHERE     where to start: N or seq:N (a sequence number),\n"
        "                       earliest, or time:RFC3339 (the first event the broker\n"
        "                       received at or after that time); required\n"
        "      --to N           last sequence number (default: the head when the\n"
        "                       replay starts)\n"
        "      --topic T        only detail-type T (repeatable; $rule/NAME for a rule)\n"
        "      --prefix P       only detail-types starting with P (repeatable)\n"
        "      --into TOPIC     PUT each event again through the ingest socket with its\n"
        "                       detail-type set to TOPIC (source, time, resources and\n"
        "                       detail kept); idempotency key replay/<id>/<TOPIC>, so a\n"
        "                       second run within the dedup window puts nothing twice\n\n"
        "A summary goes to stderr. The replay stops with an error when the broker is\n"
        "silent for --timeout ms.\n\n"
        "Exit status: 0 every event printed or put; 1 the broker did not answer (the\n"
        "endpoint is named), answered ERROR, or refused an entry of --into; 2 usage.\n\n"
        "Examples:\n"
        "  zbctl replay --from earliest > all.jsonl\n"
        "  zbctl replay --from 1000 --to 2000 --topic sales-events\n"
        "  zbctl replay --from time:2026-11-26T17:00:00Z --topic sales-events \\\n"
        "        --into sales-events-reprocess\n"
        "  zbctl replay --from seq:1 --topic '$rule/big-sales' | jq .detail\n");
}

//  Send the batch as one PUT and wait for its reply. 0, or 1 after an error.
static int
s_flush (replay_t *self)
{
    if (self->entries == 0)
        return 0;
    //  The batch holds the entries; the array header goes in front
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, self->entries);
    msgpack_sbuffer_write (&body, self->batch.data, self->batch.size);
    uint64_t corr = ++self->corr;
    void *sock = zsock_resolve (self->ingest);
    int rc = zb_wire_send_request (sock, ZB_CMD_PUT, &corr, sizeof corr, body.data, body.size);
    msgpack_sbuffer_destroy (&body);
    uint32_t sent = self->entries;
    self->entries = 0;
    msgpack_sbuffer_clear (&self->batch);
    if (rc != 0)
        return zb_cli_error (ZBCTL_PROG, "cannot send to %s: %s", self->global->ingest,
                             zmq_strerror (zmq_errno ()));
    zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
    int64_t deadline = zclock_mono () + self->global->timeout_ms;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0 || zsys_interrupted)
            return zb_cli_error (ZBCTL_PROG, "no reply from %s within %d ms",
                                 self->global->ingest, self->global->timeout_ms);
        if (zmq_poll (&item, 1, (long) left) <= 0)
            continue;
        zb_reply_t reply;
        if (zb_wire_recv_reply (sock, &reply) != 0)
            continue;
        bool mine = zmq_msg_size (&reply.corr) == sizeof corr
                 && memcmp (zmq_msg_data (&reply.corr), &corr, sizeof corr) == 0;
        msgpack_unpacked body_obj;
        msgpack_unpacked_init (&body_obj);
        size_t off = 0;
        bool decoded = msgpack_unpack_next (&body_obj, zmq_msg_data (&reply.body),
                                            zmq_msg_size (&reply.body), &off)
                       == MSGPACK_UNPACK_SUCCESS;
        bool ok = zb_reply_is_ok (&reply);
        zb_reply_close (&reply);
        if (!mine) {
            msgpack_unpacked_destroy (&body_obj);
            continue;
        }
        const msgpack_object *results = decoded? zb_map_get (&body_obj.data, "results"): NULL;
        if (!ok || !results || results->type != MSGPACK_OBJECT_ARRAY
        ||  results->via.array.size != sent) {
            const msgpack_object *code = decoded? zb_map_get (&body_obj.data, "code"): NULL;
            const msgpack_object *message = decoded? zb_map_get (&body_obj.data, "message"): NULL;
            zb_cli_error (ZBCTL_PROG, "PUT to %s failed: %.*s: %.*s", self->global->ingest,
                          code && code->type == MSGPACK_OBJECT_STR? (int) code->via.str.size: 3,
                          code && code->type == MSGPACK_OBJECT_STR? code->via.str.ptr: "bad",
                          message && message->type == MSGPACK_OBJECT_STR?
                              (int) message->via.str.size: 5,
                          message && message->type == MSGPACK_OBJECT_STR?
                              message->via.str.ptr: "reply");
            msgpack_unpacked_destroy (&body_obj);
            return 1;
        }
        for (uint32_t i = 0; i < sent; i++) {
            const msgpack_object *result = &results->via.array.ptr [i];
            const msgpack_object *dup = zb_map_get (result, "duplicate");
            if (zb_map_get (result, "id"))
                dup && dup->type == MSGPACK_OBJECT_BOOLEAN && dup->via.boolean?
                    self->duplicates++: self->put++;
            else {
                const msgpack_object *message = zb_map_get (result, "message");
                if (self->failed++ < 10)
                    zb_cli_error (ZBCTL_PROG, "entry refused: %.*s",
                                  message && message->type == MSGPACK_OBJECT_STR?
                                      (int) message->via.str.size: 1,
                                  message && message->type == MSGPACK_OBJECT_STR?
                                      message->via.str.ptr: "?");
            }
        }
        msgpack_unpacked_destroy (&body_obj);
        return 0;
    }
}

//  The event as a PUT entry of the batch, its detail-type --into
static int
s_put_event (replay_t *self, const zb_delivery_t *d)
{
    const msgpack_object *event = d->event;
    const msgpack_object *id = zb_map_get (event, "id");
    const msgpack_object *source = zb_map_get (event, "source");
    const msgpack_object *detail = zb_map_get (event, "detail");
    const msgpack_object *resources = zb_map_get (event, "resources");
    const msgpack_object *time = zb_map_get (event, "time");
    if (event->type != MSGPACK_OBJECT_MAP || !id || id->type != MSGPACK_OBJECT_STR
    ||  !source || !detail) {
        //  A rule's transformer output is not an event: nothing to put
        if (self->skipped++ < 10)
            zb_cli_error (ZBCTL_PROG, "seq %" PRIu64 " on %.*s is not an event envelope: "
                          "not put", d->seq, (int) d->topic.len, d->topic.ptr);
        return 0;
    }
    char key [REPLAY_KEY_MAX + 1];
    int len = snprintf (key, sizeof key, "replay/%.*s/%s", (int) id->via.str.size,
                        id->via.str.ptr, self->into);
    size_t keylen = len < 0? 0: (size_t) len > REPLAY_KEY_MAX? REPLAY_KEY_MAX: (size_t) len;
    while (keylen > 0 && ((unsigned char) key [keylen] & 0xC0) == 0x80)
        keylen--;                       //  cut on a character boundary
    msgpack_packer *pk = &self->pk;
    msgpack_pack_map (pk, 4 + (resources? 1: 0) + (time? 1: 0));
    zb_pack_cstr (pk, "source");
    msgpack_pack_object (pk, *source);
    zb_pack_cstr (pk, "detail-type");
    zb_pack_cstr (pk, self->into);
    zb_pack_cstr (pk, "detail");
    msgpack_pack_object (pk, *detail);
    if (resources) {
        zb_pack_cstr (pk, "resources");
        msgpack_pack_object (pk, *resources);
    }
    if (time) {
        zb_pack_cstr (pk, "time");
        msgpack_pack_object (pk, *time);
    }
    zb_pack_cstr (pk, "idempotency-key");
    msgpack_pack_str_with_body (pk, key, keylen);
    if (++self->entries == REPLAY_BATCH)
        return s_flush (self);
    return 0;
}

static int
s_print_event (replay_t *self, const zb_delivery_t *d)
{
    char err [256];
    char *text = zb_json_text_from_msgpack (d->event, err, sizeof err);
    if (!text) {
        if (self->skipped++ < 10)
            zb_cli_error (ZBCTL_PROG, "seq %" PRIu64 " is not JSON-representable, skipped: %s",
                          d->seq, err);
        return 0;
    }
    bool ok = puts (text) != EOF;
    free (text);
    if (!ok)
        return zb_cli_error (ZBCTL_PROG, "cannot write to stdout");
    self->printed++;
    return 0;
}

//  The session: events until END. 0, or 1 after an error message.
static int
s_run (replay_t *self, zb_replay_client_t *client, const zb_replay_client_request_t *request)
{
    char err [320];
    if (zb_replay_client_open (client, request, err, sizeof err) != 0)
        return zb_cli_error (ZBCTL_PROG, "%s", err);
    void *sock = zb_replay_client_handle (client);
    while (!zsys_interrupted) {
        zb_replay_client_msg_t msg;
        zb_replay_client_kind_t kind = zb_replay_client_recv (client, &msg);
        if (kind == ZB_REPLAY_CLIENT_NONE) {
            if (zb_replay_client_idle_ms (client) >= self->global->timeout_ms)
                return zb_cli_error (ZBCTL_PROG, "no reply from %s within %d ms",
                                     self->global->control, self->global->timeout_ms);
            zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
            zmq_poll (&item, 1, 100);
            continue;
        }
        if (kind == ZB_REPLAY_CLIENT_EVENT) {
            int rc = self->into? s_put_event (self, &msg.event): s_print_event (self, &msg.event);
            if (rc)
                return rc;
        }
        else
        if (kind == ZB_REPLAY_CLIENT_END) {
            int rc = self->into? s_flush (self): 0;
            fflush (stdout);
            fprintf (stderr, ZBCTL_PROG ": replay: %" PRIu64 " events (seq up to %" PRIu64
                     ", head %" PRIu64 ", oldest %" PRIu64 ")", msg.count, msg.last, msg.head,
                     msg.oldest);
            if (self->into)
                fprintf (stderr, "; into %s: %" PRIu64 " put, %" PRIu64 " duplicates, %"
                         PRIu64 " refused", self->into, self->put, self->duplicates,
                         self->failed);
            if (self->skipped)
                fprintf (stderr, "; %" PRIu64 " skipped", self->skipped);
            fprintf (stderr, "\n");
            return rc? rc: self->failed? 1: 0;
        }
        else
        if (kind == ZB_REPLAY_CLIENT_ERROR)
            return zb_cli_error (ZBCTL_PROG, "replay refused by %s: %s", self->global->control,
                                 msg.text);
        else
        if (kind == ZB_REPLAY_CLIENT_MALFORMED)
            return zb_cli_error (ZBCTL_PROG, "bad message from %s: %s", self->global->control,
                                 msg.text);
    }
    return zb_cli_error (ZBCTL_PROG, "interrupted");
}

int
zbctl_replay (zbctl_global_t *global, int argc, char **argv)
{
    enum { OPT_FROM = 256, OPT_TO, OPT_TOPIC, OPT_PREFIX, OPT_INTO };
    static const struct option options [] = {
        ZBCTL_GLOBAL_OPTIONS,
        { "from",    required_argument, NULL, OPT_FROM },
        { "to",      required_argument, NULL, OPT_TO },
        { "topic",   required_argument, NULL, OPT_TOPIC },
        { "prefix",  required_argument, NULL, OPT_PREFIX },
        { "into",    required_argument, NULL, OPT_INTO },
        { "help",    no_argument,       NULL, 'h' },
        { "version", no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    const char **topics = (const char **) calloc ((size_t) argc + 1, sizeof (char *));
    const char **prefixes = (const char **) calloc ((size_t) argc + 1, sizeof (char *));
    assert (topics && prefixes);
    zb_replay_client_request_t request = { .topics = topics, .prefixes = prefixes };
    replay_t self = { .global = global };
    char from_time [ZB_TIME_MAX];
    const char *from = NULL;
    int rc = -1;
    opterr = 0;
    optind = 0;
    int opt;
    while (rc < 0 && (opt = getopt_long (argc, argv, ":hV", options, NULL)) != -1) {
        int taken = zbctl_global_option (global, opt, optarg);
        if (taken == 2)
            rc = 2;
        if (taken)
            continue;
        switch (opt) {
            case OPT_FROM: from = optarg; break;
            case OPT_TO:
                if (!zb_cli_parse_range (optarg, 1, UINT64_MAX, &request.to))
                    rc = zb_cli_usage_error (REPLAY_NAME, "--to wants a sequence number >= 1, "
                                             "not '%s'", optarg);
                break;
            case OPT_TOPIC:
                if (!*optarg || strlen (optarg) > ZB_MAX_DETAIL_TYPE + 64)
                    rc = zb_cli_usage_error (REPLAY_NAME, "--topic wants a detail-type, not '%.40s'",
                                             optarg);
                topics [request.ntopics++] = optarg;
                break;
            case OPT_PREFIX: prefixes [request.nprefixes++] = optarg; break;
            case OPT_INTO:
                if (!*optarg || strlen (optarg) > ZB_MAX_DETAIL_TYPE || *optarg == '$'
                ||  !zb_utf8_valid (optarg, strlen (optarg))
                ||  zb_utf8_has_control (optarg, strlen (optarg)))
                    rc = zb_cli_usage_error (REPLAY_NAME, "--into wants a detail-type (1 to %d "
                                             "bytes of UTF-8, no control characters, not "
                                             "starting with $), not '%.40s'",
                                             ZB_MAX_DETAIL_TYPE, optarg);
                self.into = optarg;
                break;
            case 'h': s_replay_usage (); rc = 0; break;
            case 'V': printf (ZBCTL_PROG " %s\n", ZB_VERSION); rc = 0; break;
            default:  rc = zb_cli_option_error (REPLAY_NAME, opt, argv); break;
        }
    }
    if (rc < 0 && optind < argc)
        rc = zb_cli_usage_error (REPLAY_NAME, "unexpected argument '%s'", argv [optind]);
    if (rc < 0 && !from)
        rc = zb_cli_usage_error (REPLAY_NAME, "give --from N, seq:N, earliest or time:RFC3339");
    if (rc < 0) {
        if (streq (from, "earliest"))
            request.from = 1;
        else
        if (strncmp (from, "time:", 5) == 0) {
            if (zb_time_normalize (from + 5, strlen (from + 5), from_time) < 0)
                rc = zb_cli_usage_error (REPLAY_NAME, "--from time: wants an RFC 3339 time "
                                         "(e.g. time:2026-11-26T17:15:01Z), not '%s'", from + 5);
            request.from_time = from_time;
        }
        else
        if (!zb_cli_parse_range (strncmp (from, "seq:", 4) == 0? from + 4: from, 1, UINT64_MAX,
                                 &request.from))
            rc = zb_cli_usage_error (REPLAY_NAME, "--from wants N, seq:N (N >= 1), earliest or "
                                     "time:RFC3339, not '%s'", from);
    }
    if (rc < 0 && request.to && !request.from_time && request.to < request.from)
        rc = zb_cli_usage_error (REPLAY_NAME, "--to %" PRIu64 " is before --from %" PRIu64,
                                 request.to, request.from);
    if (rc < 0) {
        int setup = zbctl_curve_setup ();
        if (setup)
            rc = setup;
    }
    if (rc < 0) {
        zsys_init ();
        char err [320];
        zb_replay_client_t *client = zb_replay_client_new (global->control, REPLAY_CREDIT,
                                                           err, sizeof err);
        if (!client)
            rc = zb_cli_error (ZBCTL_PROG, "%s", err);
        if (client && self.into) {
            self.ingest = zsock_new (ZMQ_DEALER);
            assert (self.ingest);
            zsock_set_linger (self.ingest, 0);
            if (zsock_connect (self.ingest, "%s", global->ingest) == -1)
                rc = zb_cli_error (ZBCTL_PROG, "cannot connect to %s: not a ZeroMQ endpoint",
                                   global->ingest);
            msgpack_sbuffer_init (&self.batch);
            msgpack_packer_init (&self.pk, &self.batch, msgpack_sbuffer_write);
        }
        //  Broker up? A wrong endpoint says so at once, not after a silent session
        if (rc < 0)
            rc = zbctl_ping (global);
        if (rc == 0)
            rc = s_run (&self, client, &request);
        zb_replay_client_destroy (&client);
        if (self.ingest) {
            zsock_destroy (&self.ingest);
            msgpack_sbuffer_destroy (&self.batch);
        }
    }
    free (topics);
    free (prefixes);
    return rc;
}
