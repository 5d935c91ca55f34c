/*  test_transform.c - EventBridge input transformers (common/transform.h):
    JSON and string templates, placeholders inside and outside strings,
    missing paths, predefined variables, and every invalid form. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "codec.h"
#include "transform.h"

static const char *s_event_json =
    "{\"version\":\"0\",\"id\":\"5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21\","
    "\"detail-type\":\"sales-events\",\"source\":\"store-7\",\"account\":\"000000000000\","
    "\"time\":\"2026-11-26T17:15:01Z\",\"region\":\"local\",\"resources\":[],"
    "\"detail\":{\"store_id\":\"store_7\",\"total\":59.5,\"qty\":3,\"vip\":true,\"note\":null,"
    "\"quote\":\"say \\\"hi\\\"\\n\",\"items\":[{\"sku\":\"A-1\"},{\"sku\":\"B-2\"}],"
    "\"customer\":{\"name\":\"Ana\"}}}";

static const zb_transform_context_t s_context = {
    .rule_name = { "big-sales", 9 },
    .rule_arn = { "arn:zbridge:events:local:000000000000:rule/big-sales", 52 },
    .ingestion_time = { "2026-11-26T17:15:02.5Z", 22 },
};

//  Render the transformer text against the event; the output as JSON text
//  (a string output as a JSON string). Fails the test on any error.
static char *
s_render (const char *transform)
{
    char err [256] = "";
    zb_transform_t *t = zb_transform_new (transform, strlen (transform), err, sizeof err);
    if (!t)
        fail_msg ("refused %s: %s", transform, err);
    json_object *json = zb_json_parse (s_event_json, strlen (s_event_json), err, sizeof err);
    assert_non_null (json);
    msgpack_sbuffer in;
    msgpack_sbuffer_init (&in);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &in, msgpack_sbuffer_write);
    assert_int_equal (zb_json_to_msgpack (json, &pk, err, sizeof err), 0);
    json_object_put (json);
    msgpack_zone zone;
    msgpack_zone_init (&zone, 4096);
    msgpack_object event;
    size_t off = 0;
    assert_int_equal (msgpack_unpack (in.data, in.size, &off, &zone, &event), MSGPACK_UNPACK_SUCCESS);

    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    msgpack_packer_init (&pk, &out, msgpack_sbuffer_write);
    if (zb_transform_render (t, &event, &s_context, &pk, err, sizeof err) != 0)
        fail_msg ("render of %s failed: %s", transform, err);
    //  Render twice: the scratch buffer is reused
    msgpack_sbuffer_clear (&out);
    assert_int_equal (zb_transform_render (t, &event, &s_context, &pk, err, sizeof err), 0);
    msgpack_object result;
    msgpack_zone zone2;
    msgpack_zone_init (&zone2, 4096);
    off = 0;
    assert_int_equal (msgpack_unpack (out.data, out.size, &off, &zone2, &result), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (off, out.size);
    char *text = zb_json_text_from_msgpack (&result, err, sizeof err);
    assert_non_null (text);
    msgpack_zone_destroy (&zone2);
    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_destroy (&in);
    msgpack_sbuffer_destroy (&out);
    zb_transform_destroy (&t);
    assert_null (t);
    return text;
}

static void
s_expect (const char *transform, const char *expected)
{
    char *text = s_render (transform);
    if (strcmp (text, expected) != 0)
        fail_msg ("transform %s\n  gave     %s\n  expected %s", transform, text, expected);
    free (text);
}

static void
s_refused (const char *transform, const char *message_part)
{
    char err [256] = "";
    zb_transform_t *t = zb_transform_new (transform, strlen (transform), err, sizeof err);
    if (t)
        fail_msg ("accepted %s", transform);
    if (!strstr (err, message_part))
        fail_msg ("refusing %s said \"%s\", expected it to contain \"%s\"", transform, err, message_part);
    for (const char *p = err; *p; p++)
        assert_true ((unsigned char) *p >= 0x20);
}

static void
test_json_template (void **state)
{
    (void) state;
    //  Outside quotes: the value as JSON; inside: its text, escaped
    s_expect ("{\"InputPathsMap\": {\"store\": \"$.detail.store_id\", \"total\": \"$.detail.total\"},"
              " \"InputTemplate\": \"{\\\"store\\\": <store>, \\\"total\\\": <total>,"
              " \\\"line\\\": \\\"<store> sold <total>\\\"}\"}",
              "{\"store\":\"store_7\",\"total\":59.5,\"line\":\"store_7 sold 59.5\"}");
    //  Objects, arrays, booleans, null, and escaping inside a string
    s_expect ("{\"InputPathsMap\": {\"c\": \"$.detail.customer\", \"i\": \"$.detail.items\","
              " \"v\": \"$.detail.vip\", \"n\": \"$.detail.note\", \"q\": \"$.detail.quote\"},"
              " \"InputTemplate\": \"{\\\"c\\\": <c>, \\\"i\\\": <i>, \\\"v\\\": <v>, \\\"n\\\": <n>,"
              " \\\"q\\\": <q>, \\\"in\\\": \\\"<c> <q>\\\"}\"}",
              "{\"c\":{\"name\":\"Ana\"},\"i\":[{\"sku\":\"A-1\"},{\"sku\":\"B-2\"}],\"v\":true,"
              "\"n\":null,\"q\":\"say \\\"hi\\\"\\n\",\"in\":\"{\\\"name\\\":\\\"Ana\\\"} say \\\"hi\\\"\\n\"}");
    //  Array index in dot notation; a missing path: null outside, nothing inside
    s_expect ("{\"InputPathsMap\": {\"sku\": \"$.detail.items.1.sku\", \"gone\": \"$.detail.nope.x\","
              " \"past\": \"$.detail.items.9\"},"
              " \"InputTemplate\": \"[<sku>, <gone>, \\\"[<gone>]\\\", <past>]\"}",
              "[\"B-2\",null,\"[]\",null]");
    //  The whole event, and a template that is a single placeholder
    s_expect ("{\"InputPathsMap\": {\"d\": \"$.detail.customer\"}, \"InputTemplate\": \"<d>\"}",
              "{\"name\":\"Ana\"}");
    s_expect ("{\"InputPathsMap\": {\"all\": \"$\"}, \"InputTemplate\": \"{\\\"t\\\": <all>}\"}",
              "{\"t\":{\"version\":\"0\",\"id\":\"5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21\","
              "\"detail-type\":\"sales-events\",\"source\":\"store-7\",\"account\":\"000000000000\","
              "\"time\":\"2026-11-26T17:15:01Z\",\"region\":\"local\",\"resources\":[],"
              "\"detail\":{\"store_id\":\"store_7\",\"total\":59.5,\"qty\":3,\"vip\":true,\"note\":null,"
              "\"quote\":\"say \\\"hi\\\"\\n\",\"items\":[{\"sku\":\"A-1\"},{\"sku\":\"B-2\"}],"
              "\"customer\":{\"name\":\"Ana\"}}}}");
    s_expect ("{\"InputPathsMap\": {\"n\": \"$.detail.nothing\"}, \"InputTemplate\": \"<n>\"}", "null");
}

static void
test_predefined_variables (void **state)
{
    (void) state;
    s_expect ("{\"InputTemplate\": \"{\\\"rule\\\": <aws.events.rule-name>, \\\"arn\\\": \\\"<aws.events.rule-arn>\\\","
              " \\\"at\\\": <aws.events.event.ingestion-time>, \\\"src\\\": <aws.events.event>}\"}",
              "{\"rule\":\"big-sales\",\"arn\":\"arn:zbridge:events:local:000000000000:rule/big-sales\","
              "\"at\":\"2026-11-26T17:15:02.5Z\",\"src\":{\"version\":\"0\",\"id\":\"5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21\","
              "\"detail-type\":\"sales-events\",\"source\":\"store-7\",\"account\":\"000000000000\","
              "\"time\":\"2026-11-26T17:15:01Z\",\"region\":\"local\",\"resources\":[],"
              "\"detail\":{\"store_id\":\"store_7\",\"total\":59.5,\"qty\":3,\"vip\":true,\"note\":null,"
              "\"quote\":\"say \\\"hi\\\"\\n\",\"items\":[{\"sku\":\"A-1\"},{\"sku\":\"B-2\"}],"
              "\"customer\":{\"name\":\"Ana\"}}}}");
}

static void
test_string_template (void **state)
{
    (void) state;
    //  Not JSON: a string, values as text, strings without quotes
    s_expect ("{\"InputPathsMap\": {\"store\": \"$.detail.store_id\", \"total\": \"$.detail.total\","
              " \"c\": \"$.detail.customer\", \"gone\": \"$.x\"},"
              " \"InputTemplate\": \"<store> sold <total> to <c><gone> (a < b > c)\"}",
              "\"store_7 sold 59.5 to {\\\"name\\\":\\\"Ana\\\"} (a < b > c)\"");
}

static void
test_invalid_transformers (void **state)
{
    (void) state;
    s_refused ("", "not valid JSON");
    s_refused ("[1]", "must be an object");
    s_refused ("{\"InputPathsMap\": {}}", "InputTemplate: is required");
    s_refused ("{\"InputTemplate\": 5}", "InputTemplate: must be a string");
    s_refused ("{\"InputTemplate\": \"\"}", "1 to 8192 bytes");
    s_refused ("{\"InputTemplate\": \"x\", \"Extra\": 1}", "unknown key \"Extra\"");
    s_refused ("{\"InputTemplate\": \"x\", \"InputPathsMap\": []}", "InputPathsMap: must be an object");
    s_refused ("{\"InputTemplate\": \"x\", \"InputPathsMap\": {\"a\": 1}}", "InputPathsMap.a: must be a JSON path");
    s_refused ("{\"InputTemplate\": \"x\", \"InputPathsMap\": {\"a\": \"detail.x\"}}", "starting with \"$\"");
    s_refused ("{\"InputTemplate\": \"x\", \"InputPathsMap\": {\"a\": \"$['x']\"}}", "dot notation");
    s_refused ("{\"InputTemplate\": \"x\", \"InputPathsMap\": {\"a\": \"$.x[0]\"}}", "dot notation");
    s_refused ("{\"InputTemplate\": \"x\", \"InputPathsMap\": {\"a\": \"$.x..y\"}}", "empty key");
    s_refused ("{\"InputTemplate\": \"x\", \"InputPathsMap\": {\"a b\": \"$.x\"}}", "A-Z a-z 0-9");
    s_refused ("{\"InputTemplate\": \"x\", \"InputPathsMap\": {\"aws.mine\": \"$.x\"}}", "reserved");
    s_refused ("{\"InputTemplate\": \"<nope>\"}", "<nope> is neither");
    s_refused ("{\"InputTemplate\": \"x\", \"InputPathsMap\": {\"\\n\": \"$.x\"}}", "InputPathsMap.?");
    //  101 variables
    char big [4096];
    size_t n = (size_t) snprintf (big, sizeof big, "{\"InputTemplate\": \"x\", \"InputPathsMap\": {");
    for (int i = 0; i <= ZB_TRANSFORM_MAX_VARS; i++)
        n += (size_t) snprintf (big + n, sizeof big - n, "%s\"v%d\": \"$.x\"", i ? ", " : "", i);
    snprintf (big + n, sizeof big - n, "}}");
    s_refused (big, "at most 100");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_json_template),
        cmocka_unit_test (test_predefined_variables),
        cmocka_unit_test (test_string_template),
        cmocka_unit_test (test_invalid_transformers),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
