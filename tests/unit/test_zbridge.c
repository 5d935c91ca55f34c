/*  test_zbridge.c - libzbridge's public API (zbridge.h) without a broker: bad
    arguments, bad endpoints, bad patterns and entries, an unreachable broker
    with short timeouts, each with its error code and a message that says
    what; and garbage (random entries, random patterns) that must give an
    error, never a crash. Linked against the shared library, as a user is. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <msgpack.h>
#include <zbridge.h>

//  Nothing listens there: connections are refused, requests never answered
#define NOWHERE_PUB     "tcp://127.0.0.1:1"
#define NOWHERE_CTL     "tcp://127.0.0.1:2"
#define NOWHERE_INGEST  "tcp://127.0.0.1:3"

static const char *const s_topics [] = { "sales-events", NULL };

static void
test_strerror_and_version (void **state)
{
    (void) state;
    assert_string_equal (zbridge_strerror (ZBRIDGE_OK), "success");
    for (int code = ZBRIDGE_EINVAL; code <= ZBRIDGE_EOUTPUT; code++) {
        const char *text = zbridge_strerror (code);
        assert_non_null (text);
        assert_string_not_equal (text, "unknown status");
    }
    assert_string_equal (zbridge_strerror (-1), "unknown status");
    assert_string_equal (zbridge_strerror (9999), "unknown status");
    char version [32];
    snprintf (version, sizeof version, "%d.%d.%d", ZBRIDGE_VERSION_MAJOR,
              ZBRIDGE_VERSION_MINOR, ZBRIDGE_VERSION_PATCH);
    assert_string_equal (zbridge_version (), version);
}

static void
test_checks (void **state)
{
    (void) state;
    zbridge_error_t error;
    assert_int_equal (zbridge_pattern_check (NULL, &error), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_pattern_check ("{\"detail-type\":[\"a\"]}", &error), ZBRIDGE_OK);
    assert_int_equal (zbridge_pattern_check ("{\"detail-type\":\"a\"}", &error),
                      ZBRIDGE_EPATTERN);
    assert_non_null (strstr (error.message, "not a valid event pattern"));
    assert_int_equal (zbridge_pattern_check ("{", NULL), ZBRIDGE_EPATTERN);

    const char *good [] = { "latest", "earliest", "seq:1", "time:2026-11-26T17:15:01Z" };
    for (size_t i = 0; i < sizeof good / sizeof good [0]; i++)
        assert_int_equal (zbridge_check_from (good [i], &error), ZBRIDGE_OK);
    const char *bad [] = { "", "seq:0", "seq:", "seq:-1", "time:yesterday", "Latest", "seq:1x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert_int_equal (zbridge_check_from (bad [i], &error), ZBRIDGE_EINVAL);
        assert_non_null (strstr (error.message, "from wants"));
    }
    assert_int_equal (zbridge_check_from (NULL, NULL), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_check_rule_name ("big-sales_2.x", &error), ZBRIDGE_OK);
    assert_int_equal (zbridge_check_rule_name ("a/b", &error), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_check_rule_name ("", &error), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_check_rule_name (NULL, &error), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_check_checkpoint_name ("audit", &error), ZBRIDGE_OK);
    assert_int_equal (zbridge_check_checkpoint_name (".hidden", &error), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_check_checkpoint_name ("a b", &error), ZBRIDGE_EINVAL);
}

static void
test_event_accessors_null (void **state)
{
    (void) state;
    size_t size = 99;
    assert_null (zbridge_event_topic (NULL));
    assert_int_equal (zbridge_event_seq (NULL), 0);
    assert_int_equal (zbridge_event_topic_seq (NULL), 0);
    assert_null (zbridge_event_msgpack (NULL, &size));
    assert_int_equal (size, 0);
    zbridge_error_t error;
    assert_null (zbridge_event_json (NULL, &error));
    assert_int_equal (error.code, ZBRIDGE_EINVAL);
}

//  zbridge_consumer_new with options o must fail with code, message holding text
static void
s_consumer_fails (const zbridge_consumer_options_t *o, int code, const char *text)
{
    zbridge_error_t error;
    zbridge_consumer_t *consumer = zbridge_consumer_new (o, &error);
    assert_null (consumer);
    assert_int_equal (error.code, code);
    if (!strstr (error.message, text))
        fail_msg ("message '%s' does not say '%s'", error.message, text);
}

static void
s_consumer_options (zbridge_consumer_options_t *o)
{
    zbridge_consumer_options_init (o);
    o->publish = NOWHERE_PUB;
    o->control = NOWHERE_CTL;
    o->topics = s_topics;
    o->start_timeout_ms = 100;
}

static void
test_consumer_bad_options (void **state)
{
    (void) state;
    zbridge_consumer_options_t o;
    s_consumer_fails (NULL, ZBRIDGE_EINVAL, "options is NULL");
    memset (&o, 0, sizeof o);
    s_consumer_fails (&o, ZBRIDGE_EINVAL, "zbridge_consumer_options_init");

    s_consumer_options (&o);
    o.topics = NULL;
    s_consumer_fails (&o, ZBRIDGE_EINVAL, "at least one topic");
    s_consumer_options (&o);
    o.publish = NULL;
    s_consumer_fails (&o, ZBRIDGE_EINVAL, "publish endpoint");
    s_consumer_options (&o);
    o.publish = "nonsense";
    s_consumer_fails (&o, ZBRIDGE_EENDPOINT, "nonsense");
    s_consumer_options (&o);
    o.control = "tcp://no-port";
    s_consumer_fails (&o, ZBRIDGE_EENDPOINT, "tcp://no-port");
    s_consumer_options (&o);
    o.pattern = "{\"detail\":{\"sales\":[{\"numeric\":[\">\"]}]}}";
    s_consumer_fails (&o, ZBRIDGE_EPATTERN, "not a valid event pattern");
    s_consumer_options (&o);
    const char *rules [] = { "no/slash", NULL };
    o.rules = rules;
    s_consumer_fails (&o, ZBRIDGE_EINVAL, "no/slash");
    s_consumer_options (&o);
    const char *empty [] = { "", NULL };
    o.topics = empty;
    s_consumer_fails (&o, ZBRIDGE_EINVAL, "not a detail-type");
    s_consumer_options (&o);
    o.from = "tomorrow";
    s_consumer_fails (&o, ZBRIDGE_EINVAL, "tomorrow");
    s_consumer_options (&o);
    o.credit = 0;
    s_consumer_fails (&o, ZBRIDGE_EINVAL, "credit");
    s_consumer_options (&o);
    o.state_dir = "/tmp";
    s_consumer_fails (&o, ZBRIDGE_EINVAL, "needs a name");
    s_consumer_options (&o);
    o.state_dir = "/proc/no/such/dir";
    o.name = "x";
    s_consumer_fails (&o, ZBRIDGE_ECHECKPOINT, "/proc/no/such/dir");
    s_consumer_options (&o);
    o.curve_server = "broker.cert";
    s_consumer_fails (&o, ZBRIDGE_EINVAL, "curve_server and curve_cert go together");
    s_consumer_options (&o);
    o.curve_server = "/no/such/broker.cert";
    o.curve_cert = "/no/such/client.cert_secret";
    s_consumer_fails (&o, ZBRIDGE_EINVAL, "/no/such/broker.cert");
    s_consumer_options (&o);
    o.max_msg_size = -1;
    s_consumer_fails (&o, ZBRIDGE_EINVAL, "max_msg_size");
}

static void
test_consumer_unreachable (void **state)
{
    (void) state;
    zbridge_consumer_options_t o;
    s_consumer_options (&o);
    o.require_broker = true;
    s_consumer_fails (&o, ZBRIDGE_EUNREACHABLE, NOWHERE_CTL);

    //  Without require_broker: it waits for the broker; recv times out
    s_consumer_options (&o);
    zbridge_error_t error;
    zbridge_consumer_t *consumer = zbridge_consumer_new (&o, &error);
    assert_non_null (consumer);
    zbridge_event_t *event = (zbridge_event_t *) &error;
    assert_int_equal (zbridge_consumer_recv (consumer, &event, 50), ZBRIDGE_ETIMEOUT);
    assert_null (event);
    assert_non_null (strstr (zbridge_consumer_error (consumer), "no event within 50 ms"));
    assert_int_equal (zbridge_consumer_recv (consumer, NULL, 0), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_consumer_run (consumer), ZBRIDGE_EINVAL);   //  no on_event
    assert_non_null (strstr (zbridge_consumer_error (consumer), "on_event"));
    zbridge_consumer_stats_t stats;
    assert_int_equal (zbridge_consumer_stats (consumer, &stats), ZBRIDGE_OK);
    assert_int_equal (stats.delivered, 0);
    assert_int_equal (zbridge_consumer_stats (consumer, NULL), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_consumer_checkpoint (consumer), ZBRIDGE_OK);
    zbridge_consumer_destroy (&consumer);
    assert_null (consumer);
    zbridge_consumer_destroy (&consumer);
    zbridge_consumer_destroy (NULL);

    //  Calls on NULL
    assert_int_equal (zbridge_consumer_recv (NULL, &event, 0), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_consumer_run (NULL), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_consumer_checkpoint (NULL), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_consumer_stats (NULL, &stats), ZBRIDGE_EINVAL);
    zbridge_consumer_stop (NULL);
    assert_non_null (zbridge_consumer_error (NULL));
}

static void
s_producer_fails (const zbridge_producer_options_t *o, int code, const char *text)
{
    zbridge_error_t error;
    zbridge_producer_t *producer = zbridge_producer_new (o, &error);
    assert_null (producer);
    assert_int_equal (error.code, code);
    if (!strstr (error.message, text))
        fail_msg ("message '%s' does not say '%s'", error.message, text);
}

static void
test_producer_bad_options (void **state)
{
    (void) state;
    zbridge_producer_options_t o;
    s_producer_fails (NULL, ZBRIDGE_EINVAL, "options is NULL");
    memset (&o, 0, sizeof o);
    s_producer_fails (&o, ZBRIDGE_EINVAL, "zbridge_producer_options_init");
    zbridge_producer_options_init (&o);
    o.endpoint = "";
    s_producer_fails (&o, ZBRIDGE_EINVAL, "endpoint");
    zbridge_producer_options_init (&o);
    o.endpoint = "udp://what";
    s_producer_fails (&o, ZBRIDGE_EENDPOINT, "udp://what");
    zbridge_producer_options_init (&o);
    o.batch = 0;
    s_producer_fails (&o, ZBRIDGE_EINVAL, "batch");
    zbridge_producer_options_init (&o);
    o.window = 1000000;
    s_producer_fails (&o, ZBRIDGE_EINVAL, "window");
    zbridge_producer_options_init (&o);
    o.retry_ms = 0;
    s_producer_fails (&o, ZBRIDGE_EINVAL, "retry_ms");
    zbridge_producer_options_init (&o);
    o.key_prefix = "";
    s_producer_fails (&o, ZBRIDGE_EINVAL, "key_prefix");
    zbridge_producer_options_init (&o);
    o.curve_cert = "client.cert";
    s_producer_fails (&o, ZBRIDGE_EINVAL, "curve_server and curve_cert go together");
    zbridge_producer_options_init (&o);
    o.max_msg_size = -5;
    s_producer_fails (&o, ZBRIDGE_EINVAL, "max_msg_size");
}

static void
s_count_result (void *arg, const zbridge_result_t *result)
{
    int *results = (int *) arg;
    assert_int_equal (result->status, ZBRIDGE_ETIMEOUT);
    (*results)++;
}

static void
test_producer_unreachable (void **state)
{
    (void) state;
    zbridge_producer_options_t o;
    zbridge_producer_options_init (&o);
    o.endpoint = NOWHERE_INGEST;
    o.timeout_ms = 300;
    o.retry_ms = 100;
    int results = 0;
    o.on_result = s_count_result;
    o.arg = &results;
    zbridge_error_t error;
    zbridge_producer_t *producer = zbridge_producer_new (&o, &error);
    assert_non_null (producer);

    //  Bad entries: nothing queued, nothing sent
    assert_int_equal (zbridge_producer_send (producer, NULL, 0, 1), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_producer_send (producer, "{\"Source\":", 0, 1), ZBRIDGE_EENTRY);
    assert_non_null (strstr (zbridge_producer_error (producer), "not valid JSON"));
    assert_int_equal (zbridge_producer_send (producer, "[1,2]", 0, 1), ZBRIDGE_EENTRY);
    //  A key with a newline: the message stays one line (fuzz_entry found it)
    assert_int_equal (zbridge_producer_send (producer, "{\"a\\nb\":1}", 0, 1), ZBRIDGE_EENTRY);
    assert_null (strchr (zbridge_producer_error (producer), '\n'));
    assert_non_null (strstr (zbridge_producer_error (producer), "unknown key \"a\\u000ab\""));
    assert_int_equal (zbridge_producer_send (producer, "{\"Colour\":\"red\"}", 0, 1),
                      ZBRIDGE_EENTRY);
    const char array [] = { (char) 0x92, 0x01, 0x02 };
    assert_int_equal (zbridge_producer_send_msgpack (producer, array, sizeof array, 1),
                      ZBRIDGE_EENTRY);
    const char map_and_more [] = { (char) 0x80, 0x01 };
    assert_int_equal (zbridge_producer_send_msgpack (producer, map_and_more,
                                                     sizeof map_and_more, 1), ZBRIDGE_EENTRY);
    assert_int_equal (zbridge_producer_send_msgpack (producer, NULL, 0, 1), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_producer_send_msgpack (producer, array, 0, 1), ZBRIDGE_EENTRY);
    zbridge_producer_stats_t stats;
    assert_int_equal (zbridge_producer_stats (producer, &stats), ZBRIDGE_OK);
    assert_int_equal (stats.queued, 0);
    assert_int_equal (stats.sent, 0);

    //  put: no answer within timeout_ms
    zbridge_result_t result;
    const char *entry = "{\"Source\":\"t\",\"DetailType\":\"sales-events\",\"Detail\":{}}";
    assert_int_equal (zbridge_producer_put (producer, entry, &result), ZBRIDGE_ETIMEOUT);
    assert_int_equal (result.status, ZBRIDGE_ETIMEOUT);
    assert_non_null (strstr (result.message, "no reply from " NOWHERE_INGEST " within 300 ms"));
    assert_int_equal (results, 0);      //  put's results do not go to on_result

    //  send + flush: the result goes to on_result
    assert_int_equal (zbridge_producer_send (producer, entry, 0, 7), ZBRIDGE_OK);
    assert_int_equal (zbridge_producer_stats (producer, &stats), ZBRIDGE_OK);
    assert_int_equal (stats.queued, 1);
    assert_int_equal (zbridge_producer_flush (producer), ZBRIDGE_ETIMEOUT);
    assert_int_equal (results, 1);
    assert_int_equal (zbridge_producer_stats (producer, &stats), ZBRIDGE_OK);
    assert_int_equal (stats.failed, 2);
    assert_int_equal (stats.in_flight, 0);
    assert_true (stats.resends >= 1);   //  resent after retry_ms before giving up

    //  put_batch with a bad entry sends nothing
    const char *entries [] = { entry, "not json" };
    zbridge_result_t two [2];
    assert_int_equal (zbridge_producer_put_batch (producer, entries, 2, two), ZBRIDGE_EENTRY);
    assert_non_null (strstr (zbridge_producer_error (producer), "entry 1"));
    assert_int_equal (zbridge_producer_put_batch (producer, NULL, 1, two), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_producer_put_batch (producer, entries, 0, NULL), ZBRIDGE_OK);
    assert_int_equal (zbridge_producer_put (producer, NULL, NULL), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_producer_poll (producer, 0), ZBRIDGE_OK);
    zbridge_producer_destroy (&producer);
    assert_null (producer);
    zbridge_producer_destroy (&producer);

    assert_int_equal (zbridge_producer_send (NULL, entry, 0, 0), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_producer_send_msgpack (NULL, entry, 1, 0), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_producer_submit (NULL), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_producer_poll (NULL, 0), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_producer_flush (NULL), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_producer_put (NULL, entry, NULL), ZBRIDGE_EINVAL);
    assert_int_equal (zbridge_producer_stats (NULL, &stats), ZBRIDGE_EINVAL);
    assert_non_null (zbridge_producer_error (NULL));
}

//  xorshift64*: reproducible garbage
static uint64_t
s_random (uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ULL;
}

static void
test_garbage (void **state)
{
    (void) state;
    uint64_t seed = 0x5eed;
    //  Random bytes as msgpack entries and as JSON entries: an error or a
    //  queued entry, never a crash; nothing goes out (batch is never full)
    zbridge_producer_options_t o;
    zbridge_producer_options_init (&o);
    o.endpoint = NOWHERE_INGEST;
    o.batch = 100000;
    zbridge_producer_t *producer = zbridge_producer_new (&o, NULL);
    assert_non_null (producer);
    //  Headers that promise more than the bytes hold: refused without
    //  reserving room for them
    const char huge_array [] = { (char) 0xdd, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff };
    const char huge_map [] = { (char) 0x81, (char) 0xa1, 'a', (char) 0xdf, 0x7f, (char) 0xff,
                               (char) 0xff, (char) 0xff };
    const char long_str [] = { (char) 0x81, (char) 0xdb, 0x7f, (char) 0xff, (char) 0xff, 0x00 };
    assert_int_equal (zbridge_producer_send_msgpack (producer, huge_array, sizeof huge_array, 0),
                      ZBRIDGE_EENTRY);
    assert_int_equal (zbridge_producer_send_msgpack (producer, huge_map, sizeof huge_map, 0),
                      ZBRIDGE_EENTRY);
    assert_int_equal (zbridge_producer_send_msgpack (producer, long_str, sizeof long_str, 0),
                      ZBRIDGE_EENTRY);
    //  A map with an entry's keys (no idempotency key: one is added)
    const char entry [] = "\x83" "\xa6" "source" "\xa1" "s" "\xab" "detail-type" "\xa1" "t"
                          "\xa6" "detail" "\x80";
    assert_int_equal (zbridge_producer_send_msgpack (producer, entry, sizeof entry - 1, 0),
                      ZBRIDGE_OK);
    char buffer [64];
    size_t queued = 1;
    const char *alphabet = "{}[]\":,0123456789.-eE truefalsnul\\u";
    for (int round = 0; round < 3000; round++) {
        size_t len = 1 + s_random (&seed) % (sizeof buffer - 1);
        for (size_t i = 0; i < len; i++)
            buffer [i] = round % 2? (char) s_random (&seed)
                                  : alphabet [s_random (&seed) % strlen (alphabet)];
        int rc = round % 2? zbridge_producer_send_msgpack (producer, buffer, len, 0)
                          : zbridge_producer_send (producer, buffer, len, 0);
        assert_true (rc == ZBRIDGE_OK || rc == ZBRIDGE_EENTRY);
        if (rc == ZBRIDGE_OK)
            queued++;
        else
            assert_true (strlen (zbridge_producer_error (producer)) > 0);
    }
    zbridge_producer_stats_t stats;
    zbridge_producer_stats (producer, &stats);
    assert_int_equal (stats.queued, queued);
    assert_int_equal (stats.sent, 0);
    zbridge_producer_destroy (&producer);

    //  Random pattern text: OK or EPATTERN with a message
    for (int round = 0; round < 3000; round++) {
        size_t len = s_random (&seed) % (sizeof buffer - 1);
        for (size_t i = 0; i < len; i++)
            buffer [i] = alphabet [s_random (&seed) % strlen (alphabet)];
        buffer [len] = '\0';
        zbridge_error_t error;
        int rc = zbridge_pattern_check (buffer, &error);
        assert_true (rc == ZBRIDGE_OK || rc == ZBRIDGE_EPATTERN);
        if (rc == ZBRIDGE_EPATTERN)
            assert_true (strlen (error.message) > strlen ("not a valid event pattern: "));
        //  ... and garbage from: EINVAL or OK
        rc = zbridge_check_from (buffer, NULL);
        assert_true (rc == ZBRIDGE_OK || rc == ZBRIDGE_EINVAL);
    }
}

//  zbridge_producer_send_msgpack checks an entry on its packed bytes: it
//  must take exactly what msgpack-c unpacks as one map with nothing after
//  it (nesting included: msgpack-c stops at 32 open containers, an empty
//  one counted). Differential, over generated values, their prefixes and
//  a byte after them.
static uint64_t s_rand_state = 0x9e3779b97f4a7c15ULL;

static uint32_t
s_rand (uint32_t n)
{
    s_rand_state ^= s_rand_state << 13;
    s_rand_state ^= s_rand_state >> 7;
    s_rand_state ^= s_rand_state << 17;
    return (uint32_t) (s_rand_state % n);
}

static void
s_gen_value (msgpack_packer *pk, int depth, int max_depth)
{
    uint32_t kind = depth < max_depth ? s_rand (10) : 4 + s_rand (6);
    switch (kind) {
        case 0: case 1: case 2: {
            uint32_t n = depth + 1 == max_depth ? s_rand (2) : 1 + s_rand (3);
            msgpack_pack_map (pk, n);
            for (uint32_t i = 0; i < n; i++) {
                if (s_rand (4) == 0)
                    msgpack_pack_str_with_body (pk, "idempotency-key", 15);
                else
                if (s_rand (8) == 0)
                    msgpack_pack_bin_with_body (pk, "idempotency-key", 15);
                else
                    msgpack_pack_str_with_body (pk, "k", 1);
                s_gen_value (pk, depth + 1, max_depth);
            }
            break;
        }
        case 3: {
            uint32_t n = s_rand (3);
            msgpack_pack_array (pk, n);
            for (uint32_t i = 0; i < n; i++)
                s_gen_value (pk, depth + 1, max_depth);
            break;
        }
        case 4: msgpack_pack_uint64 (pk, (uint64_t) s_rand (1000000) << s_rand (40)); break;
        case 5: msgpack_pack_double (pk, 1.5); break;
        case 6: msgpack_pack_str_with_body (pk, "a string of some length, over 31 bytes", 38); break;
        case 7: msgpack_pack_nil (pk); break;
        case 8: msgpack_pack_ext_with_body (pk, "\x01\x02\x03", 3, 5); break;
        default: msgpack_pack_true (pk); break;
    }
}

static bool
s_unpacks_as_one_map (const char *data, size_t size)
{
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object obj;
    size_t off = 0;
    bool ok = msgpack_unpack (data, size, &off, &zone, &obj) == MSGPACK_UNPACK_SUCCESS
           && obj.type == MSGPACK_OBJECT_MAP && off == size;
    msgpack_zone_destroy (&zone);
    return ok;
}

static void
test_producer_entry_check_matches_msgpack (void **state)
{
    (void) state;
    zbridge_producer_options_t o;
    zbridge_producer_options_init (&o);
    o.endpoint = NOWHERE_INGEST;
    o.batch = 100000;                   //  everything accepted stays queued
    zbridge_error_t error;
    zbridge_producer_t *producer = zbridge_producer_new (&o, &error);
    assert_non_null (producer);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    size_t accepted = 0, refused = 0, deep = 0;
    for (int round = 0; round < 3000; round++) {
        msgpack_sbuffer_clear (&sb);
        //  mostly shallow, some around msgpack-c's limit of 32
        int max_depth = round % 5 == 0 ? 30 + (int) s_rand (5) : 1 + (int) s_rand (6);
        if (max_depth >= 30) {
            //  a chain of one-key maps down to max_depth, then a value
            for (int d = 0; d < max_depth; d++) {
                msgpack_pack_map (&pk, 1);
                if (d == 0)
                    msgpack_pack_str_with_body (&pk, "idempotency-key", 15);
                else
                    msgpack_pack_str_with_body (&pk, "k", 1);
            }
            s_gen_value (&pk, max_depth, max_depth + (int) s_rand (2));
            deep++;
        }
        else
            s_gen_value (&pk, 0, max_depth);
        if (s_rand (10) == 0)
            msgpack_pack_nil (&pk);             //  a byte after the value
        //  the whole value, and one prefix of it
        size_t sizes [2] = { sb.size, s_rand ((uint32_t) sb.size) };
        for (int k = 0; k < 2; k++) {
            int rc = zbridge_producer_send_msgpack (producer, sb.data, sizes [k], 1);
            if (sizes [k] == 0)
                assert_int_equal (rc, ZBRIDGE_EENTRY);
            else
                assert_int_equal (rc, s_unpacks_as_one_map (sb.data, sizes [k])
                                      ? ZBRIDGE_OK : ZBRIDGE_EENTRY);
            if (rc == ZBRIDGE_OK)
                accepted++;
            else
                refused++;
        }
    }
    //  Both verdicts, and deep values on both sides of the limit, were seen
    assert_true (accepted > 500 && refused > 500 && deep > 300);
    zbridge_producer_stats_t stats;
    assert_int_equal (zbridge_producer_stats (producer, &stats), ZBRIDGE_OK);
    assert_int_equal (stats.queued, accepted);
    msgpack_sbuffer_destroy (&sb);
    zbridge_producer_destroy (&producer);
}

int
main (int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter (argv [1]);      //  e.g. test_zbridge test_garbage
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_strerror_and_version),
        cmocka_unit_test (test_checks),
        cmocka_unit_test (test_event_accessors_null),
        cmocka_unit_test (test_consumer_bad_options),
        cmocka_unit_test (test_consumer_unreachable),
        cmocka_unit_test (test_producer_bad_options),
        cmocka_unit_test (test_producer_unreachable),
        cmocka_unit_test (test_producer_entry_check_matches_msgpack),
        cmocka_unit_test (test_garbage),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
