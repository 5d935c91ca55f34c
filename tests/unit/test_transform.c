/*  test_transform.c - EventBridge input transformers (common/transform.h):
    JSON and string templates, placeholders inside and outside strings,
    missing paths, predefined variables, and every invalid form. */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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


//  --------------------------------------------------------------------------
//  The compiled renderer against the reference renderer, byte for byte

//  An event with every kind of value a transformer may meet: the envelope's
//  keys, and in detail one field per case (packed by hand: float32, bin,
//  ext, NaN, duplicate and non-string keys, invalid UTF-8... JSON has none)
static void
s_pack_cstr (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

static void
s_pack_bytes (msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

//  An array nested `levels` deep around 1 ([[[1]]] is 3)
static void
s_pack_nested (msgpack_packer *pk, int levels)
{
    for (int i = 0; i < levels; i++)
        msgpack_pack_array (pk, 1);
    msgpack_pack_int (pk, 1);
}

//  The fields of the weird event's detail, by name (the paths' last key)
static const char *s_fields [] = {
    "nil", "t", "f", "zero", "small", "u8", "u16", "u32", "u64max", "i64max", "neg", "i64min",
    "f64", "f64int", "f64neg0", "f64big", "f64tiny", "f64third", "f32", "f32third", "f32big",
    "nan", "inf", "f32nan",
    "empty", "plain", "quotes", "controls", "utf8", "badutf8", "nul", "slash", "json", "markers",
    "lt", "bin", "ext", "arr", "emptyarr", "emptymap", "map", "intkey", "dupkey", "nulkey",
    "badkey", "bigmap", "bigdup", "deep2", "deep29", "deep30", "mixed", "floats", "ctlarr", "doubles",
};
#define FIELDS (sizeof s_fields / sizeof s_fields [0])

static void
s_pack_field (msgpack_packer *pk, const char *name)
{
    char all [256];
    if (!strcmp (name, "nil"))            msgpack_pack_nil (pk);
    else if (!strcmp (name, "t"))         msgpack_pack_true (pk);
    else if (!strcmp (name, "f"))         msgpack_pack_false (pk);
    else if (!strcmp (name, "zero"))      msgpack_pack_int (pk, 0);
    else if (!strcmp (name, "small"))     msgpack_pack_int (pk, 7);
    else if (!strcmp (name, "u8"))        msgpack_pack_uint8 (pk, 200);
    else if (!strcmp (name, "u16"))       msgpack_pack_uint16 (pk, 60000);
    else if (!strcmp (name, "u32"))       msgpack_pack_uint32 (pk, 4000000000u);
    else if (!strcmp (name, "u64max"))    msgpack_pack_uint64 (pk, UINT64_MAX);
    else if (!strcmp (name, "i64max"))    msgpack_pack_int64 (pk, INT64_MAX);
    else if (!strcmp (name, "neg"))       msgpack_pack_int (pk, -42);
    else if (!strcmp (name, "i64min"))    msgpack_pack_int64 (pk, INT64_MIN);
    else if (!strcmp (name, "f64"))       msgpack_pack_double (pk, 59.5);
    else if (!strcmp (name, "f64int"))    msgpack_pack_double (pk, 300.0);
    else if (!strcmp (name, "f64neg0"))   msgpack_pack_double (pk, -0.0);
    else if (!strcmp (name, "f64big"))    msgpack_pack_double (pk, 1e300);
    else if (!strcmp (name, "f64tiny"))   msgpack_pack_double (pk, 5e-324);
    else if (!strcmp (name, "f64third"))  msgpack_pack_double (pk, 1.0 / 3);
    else if (!strcmp (name, "f32"))       msgpack_pack_float (pk, 0.1f);
    else if (!strcmp (name, "f32third"))  msgpack_pack_float (pk, 1.0f / 3);
    else if (!strcmp (name, "f32big"))    msgpack_pack_float (pk, 3e38f);
    else if (!strcmp (name, "nan"))       msgpack_pack_double (pk, NAN);
    else if (!strcmp (name, "inf"))       msgpack_pack_double (pk, -INFINITY);
    else if (!strcmp (name, "f32nan"))    msgpack_pack_float (pk, NAN);
    else if (!strcmp (name, "empty"))     s_pack_cstr (pk, "");
    else if (!strcmp (name, "plain"))     s_pack_cstr (pk, "store_7");
    else if (!strcmp (name, "quotes"))    s_pack_cstr (pk, "say \"hi\" \\ back\\slash");
    else if (!strcmp (name, "controls")) {
        for (int c = 0; c < 32; c++)
            all [c] = (char) (c + 1 == 32 ? 127 : c + 1);
        s_pack_bytes (pk, all, 32);
    }
    else if (!strcmp (name, "ctlarr")) {
        for (int c = 0; c < 32; c++)
            all [c] = (char) (c + 1 == 32 ? 127 : c + 1);
        msgpack_pack_map (pk, 2);
        s_pack_bytes (pk, all, 32);
        s_pack_bytes (pk, all, 32);
        s_pack_cstr (pk, "utf8 \"/");
        s_pack_cstr (pk, "Stra\xc3\x9f" "e \xf0\x9f\x98\x80 \xe2\x80\xa8 \xc2\x80 \xef\xbf\xbf");
    }
    else if (!strcmp (name, "doubles")) {
        //  Doubles of every shape, as text (in strings, string templates):
        //  decimals of 1 to 17 digits at every scale, random bits, edges
        static const double edges [] = {
            0.0, -0.0, 1e-3, 0.00099999999999999991, 1e14, 99999999999999.99, 1e15, 1e-4, 1e-5,
            0.1 + 0.2, 1.0 / 3, 2.0 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
            9007199254740993.0, 123456789012345.6, 12345678901234.56, 0.000123456789012345,
            59.5, 9.95, 25.0, 2.75, 100.0, -1.5, 4.35, 0.07, 1e21, 1e22, 1e23,
        };
        size_t nedges = sizeof edges / sizeof edges [0];
        msgpack_pack_array (pk, (uint32_t) (nedges + 3000));
        for (size_t i = 0; i < nedges; i++)
            msgpack_pack_double (pk, edges [i]);
        uint64_t x = 0x9E3779B97F4A7C15ULL;
        for (int i = 0; i < 3000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            double d;
            if (i % 3 == 0) {
                uint64_t bits = x;
                memcpy (&d, &bits, sizeof d);
                if (isnan (d) || isinf (d))
                    d = 1.5;
            }
            else {
                static const double pow10 [] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
                    1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20 };
                uint64_t digits = x % 100000000000000000ULL;
                digits /= (uint64_t) pow10 [(x >> 57) % 17];
                d = (double) digits / pow10 [(x >> 40) % 21];
                if (x & 1)
                    d = -d;
            }
            msgpack_pack_double (pk, d);
        }
    }
    else if (!strcmp (name, "utf8"))      s_pack_cstr (pk, "Stra\xc3\x9f" "e \xf0\x9f\x98\x80 \xe2\x80\xa8");
    else if (!strcmp (name, "badutf8"))   s_pack_cstr (pk, "bad \xc3 byte");
    else if (!strcmp (name, "nul"))       s_pack_bytes (pk, "a\0b", 3);
    else if (!strcmp (name, "slash"))     s_pack_cstr (pk, "a/b</c>");
    else if (!strcmp (name, "json"))      s_pack_cstr (pk, "{\"x\": [1, 2]}");
    else if (!strcmp (name, "markers"))   s_pack_cstr (pk, "\xf3\xb0\x80\x80\xf4\x80\x80\x81");
    else if (!strcmp (name, "lt"))        s_pack_cstr (pk, "<store>");
    else if (!strcmp (name, "bin"))     { msgpack_pack_bin (pk, 2); msgpack_pack_bin_body (pk, "ab", 2); }
    else if (!strcmp (name, "ext"))     { msgpack_pack_ext (pk, 1, 1); msgpack_pack_ext_body (pk, "x", 1); }
    else if (!strcmp (name, "arr")) {
        msgpack_pack_array (pk, 4);
        msgpack_pack_int (pk, 1);
        s_pack_cstr (pk, "two");
        msgpack_pack_nil (pk);
        msgpack_pack_double (pk, 2.5);
    }
    else if (!strcmp (name, "emptyarr"))  msgpack_pack_array (pk, 0);
    else if (!strcmp (name, "emptymap"))  msgpack_pack_map (pk, 0);
    else if (!strcmp (name, "map")) {
        msgpack_pack_map (pk, 3);
        s_pack_cstr (pk, "z");
        msgpack_pack_int (pk, 1);
        s_pack_cstr (pk, "a\n\"");
        msgpack_pack_float (pk, 0.5f);
        s_pack_cstr (pk, "");
        msgpack_pack_map (pk, 1);
        s_pack_cstr (pk, "in");
        s_pack_cstr (pk, "ner");
    }
    else if (!strcmp (name, "intkey")) {
        msgpack_pack_map (pk, 1);
        msgpack_pack_int (pk, 1);
        msgpack_pack_int (pk, 2);
    }
    else if (!strcmp (name, "dupkey")) {
        msgpack_pack_map (pk, 2);
        s_pack_cstr (pk, "a");
        msgpack_pack_int (pk, 1);
        s_pack_cstr (pk, "a");
        msgpack_pack_int (pk, 2);
    }
    else if (!strcmp (name, "nulkey")) {
        msgpack_pack_map (pk, 1);
        s_pack_bytes (pk, "a\0", 2);
        msgpack_pack_int (pk, 1);
    }
    else if (!strcmp (name, "badkey")) {
        msgpack_pack_map (pk, 1);
        s_pack_cstr (pk, "\xff");
        msgpack_pack_int (pk, 1);
    }
    else if (!strcmp (name, "bigmap") || !strcmp (name, "bigdup")) {
        msgpack_pack_map (pk, 40);
        for (int i = 0; i < 40; i++) {
            char key [16];
            snprintf (key, sizeof key, "k%d", !strcmp (name, "bigdup") && i == 39 ? 3 : i);
            s_pack_cstr (pk, key);
            msgpack_pack_int (pk, i);
        }
    }
    else if (!strncmp (name, "deep", 4))  s_pack_nested (pk, atoi (name + 4));
    else if (!strcmp (name, "mixed")) {
        msgpack_pack_map (pk, 2);
        s_pack_cstr (pk, "list");
        msgpack_pack_array (pk, 2);
        msgpack_pack_map (pk, 0);
        msgpack_pack_array (pk, 0);
        s_pack_cstr (pk, "bad");
        msgpack_pack_array (pk, 1);
        msgpack_pack_bin (pk, 0);
    }
    else if (!strcmp (name, "floats")) {
        msgpack_pack_array (pk, 3);
        msgpack_pack_double (pk, 1e21);
        msgpack_pack_double (pk, 123456789.125);
        msgpack_pack_float (pk, 16777216.0f);
    }
    else
        fail_msg ("no field %s", name);
}

static void
s_pack_weird_event (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 4);
    s_pack_cstr (pk, "detail-type");
    s_pack_cstr (pk, "sales-events");
    s_pack_cstr (pk, "source");
    s_pack_cstr (pk, "store-7");
    s_pack_cstr (pk, "resources");
    msgpack_pack_array (pk, 0);
    s_pack_cstr (pk, "detail");
    msgpack_pack_map (pk, FIELDS);
    for (size_t i = 0; i < FIELDS; i++) {
        s_pack_cstr (pk, s_fields [i]);
        s_pack_field (pk, s_fields [i]);
    }
}

//  One transformer against one event and context: both renderers give the
//  same rc, bytes and message; the fast path never handed over a render
static void
s_same (zb_transform_t *t, const char *transform, const msgpack_object *event,
        const zb_transform_context_t *context, size_t *renders, size_t *failures)
{
    for (int round = 0; round < 2; round++) {
        msgpack_sbuffer fast, ref;
        msgpack_sbuffer_init (&fast);
        msgpack_sbuffer_init (&ref);
        msgpack_packer pk;
        char ferr [256] = "", rerr [256] = "";
        msgpack_packer_init (&pk, &fast, msgpack_sbuffer_write);
        int frc = zb_transform_render (t, event, context, &pk, ferr, sizeof ferr);
        msgpack_packer_init (&pk, &ref, msgpack_sbuffer_write);
        int rrc = zb_transform_render_reference (t, event, context, &pk, rerr, sizeof rerr);
        if (frc != rrc)
            fail_msg ("%s: render %d, reference %d (%s%s)", transform, frc, rrc, ferr, rerr);
        if (frc == 0 && (fast.size != ref.size || memcmp (fast.data, ref.data, fast.size) != 0)) {
            char hex [2][512];
            for (int w = 0; w < 2; w++) {
                const msgpack_sbuffer *b = w ? &ref : &fast;
                size_t n = 0;
                for (size_t i = 0; i < b->size && n + 4 < sizeof hex [w]; i++)
                    n += (size_t) snprintf (hex [w] + n, sizeof hex [w] - n, "%02x",
                                            (unsigned char) b->data [i]);
                hex [w][n] = 0;
            }
            fail_msg ("%s: bytes differ\n  render    %s\n  reference %s", transform, hex [0], hex [1]);
        }
        if (frc != 0) {
            if (strcmp (ferr, rerr) != 0)
                fail_msg ("%s: messages differ: %s / %s", transform, ferr, rerr);
            assert_int_equal (fast.size, 0);
            (*failures)++;
        }
        (*renders)++;
        msgpack_sbuffer_destroy (&fast);
        msgpack_sbuffer_destroy (&ref);
    }
    if (zb_transform_fallbacks (t) != 0)
        fail_msg ("%s: the fast path gave up a render the reference path made", transform);
}

//  Template shapes: %s is where the placeholder(s) go (written "<v>" once
//  expanded); each expands for every field of the weird event
static const char *s_shapes [] = {
    "<v>", " <v> ", "{\"a\": <v>}", "[<v>, <v>]", "{\"a\": [1, {\"b\": <v>}], \"c\": \"x\"}",
    "\"<v>\"", "\"[<v>]\"", "{\"s\": \"<v> and <v>\", \"n\": <v>}", "[\"<v>\", \"<v><v>\"]",
    "<v> and text", "text <v> and <v> more", "{\"<v>\": 1}", "{\"k<v>\": 1, \"k\": 2}",
    "{\"a\": 1, \"<v>\": <v>}", "\"\\u00e9<v>\\n\\t\\\"\"", "\"\\u00<v>\"", "\"\\u00<v>e9\"", "[\"\\ud83d<v>\\ude00\"]",
    "[<v> ]", "{\"a\":<v>,\"b\":null,\"c\":true,\"d\":-0,\"e\":-0.0,\"f\":1e3,\"g\":1.0,"
    "\"h\":18446744073709551615,\"i\":-9223372036854775808,\"j\":1E-2,\"k\":0.1}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[<v>]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[<v>]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"<v>\"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "{\"x\": \"\xf3\xb0\x80\x80\", \"v\": <v>}", "{\"x\": \"\\udb80\\udc00\", \"v\": \"<v>\"}",
    "{\"x\": \"\xf4\x80\x80\x80\", \"v\": <v>}", "<v> <v>", "[<v><v>]", "a < b <v> > c",
    "{\"rule\": <aws.events.rule-name>, \"arn\": \"<aws.events.rule-arn> <v>\","
    " \"at\": <aws.events.event.ingestion-time>}", "\"<aws.events.rule-name>\"", "[<idx>, \"<idx>\", <idx2>]",
    "[<aws.events.event>, \"<aws.events.event.json>\"]", "<aws.events.event> <v>",
    "null", " null ", "[null, <v>]", "{\"a\": \"<v>\", \"a\": 1}", "\"\\\\<v>\"",
};
#define SHAPES (sizeof s_shapes / sizeof s_shapes [0])

//  The shape with <v> as <name>, as transformer JSON text
static void
s_transformer (char *out, size_t size, const char *shape, const char *field)
{
    char template_text [1024];
    size_t n = 0;
    for (const char *p = shape; *p && n + 40 < sizeof template_text; ) {
        if (!strncmp (p, "<v>", 3)) {
            n += (size_t) snprintf (template_text + n, sizeof template_text - n, "<%s>", field);
            p += 3;
        }
        else
            template_text [n++] = *p++;
    }
    template_text [n] = 0;
    //  As a JSON string
    n = (size_t) snprintf (out, size, "{\"InputPathsMap\": {\"%s\": \"$.detail.%s\", \"gone\": "
                           "\"$.detail.nope\", \"whole\": \"$\", \"src\": \"$.source\", \"idx\": "
                           "\"$.detail.arr.3\", \"idx2\": \"$.detail.arr.4\"},"
                           " \"InputTemplate\": \"", field, field);
    for (const char *p = template_text; *p && n + 8 < size; p++) {
        if (*p == '"' || *p == '\\')
            out [n++] = '\\';
        out [n++] = *p;
    }
    snprintf (out + n, size - n, "\"}");
}

static void
test_compiled_matches_reference (void **state)
{
    (void) state;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    s_pack_weird_event (&pk);
    //  and the sales event of the other tests
    char err [256];
    json_object *json = zb_json_parse (s_event_json, strlen (s_event_json), err, sizeof err);
    assert_non_null (json);
    assert_int_equal (zb_json_to_msgpack (json, &pk, err, sizeof err), 0);
    json_object_put (json);
    msgpack_unpacked events [2];
    size_t off = 0;
    for (int e = 0; e < 2; e++) {
        msgpack_unpacked_init (&events [e]);
        assert_int_equal (msgpack_unpack_next (&events [e], buf.data, buf.size, &off),
                          MSGPACK_UNPACK_SUCCESS);     //  msgpack-c: at most 32 levels
    }
    static const zb_transform_context_t odd_context = {
        .rule_name = { "r\"\n\\", 4 },
        .rule_arn = { "bad \xc3", 5 },
        .ingestion_time = { "", 0 },
    };
    const char *names [FIELDS + 3];
    for (size_t f = 0; f < FIELDS; f++)
        names [f] = s_fields [f];
    names [FIELDS] = "gone";
    names [FIELDS + 1] = "whole";
    names [FIELDS + 2] = "src";
    size_t renders = 0, failures = 0, compiled = 0, transformers = 0;
    char transform [4096];
    for (size_t s = 0; s < SHAPES; s++)
        for (size_t f = 0; f < FIELDS + 3; f++) {
            s_transformer (transform, sizeof transform, s_shapes [s], names [f]);
            zb_transform_t *t = zb_transform_new (transform, strlen (transform), err, sizeof err);
            if (!t)
                continue;       //  refused: nothing to render
            transformers++;
            compiled += zb_transform_compiled (t);
            //  One transformer, events and contexts in turn (values are
            //  looked up once per render: nothing may stay from the last)
            for (int e = 0; e < 2; e++) {
                s_same (t, transform, &events [e].data, &s_context, &renders, &failures);
                s_same (t, transform, &events [e].data, &odd_context, &renders, &failures);
            }
            s_same (t, transform, &events [0].data, &s_context, &renders, &failures);
            zb_transform_destroy (&t);
        }
    print_message ("%zu transformers (%zu compiled), %zu renders compared, %zu failed alike\n",
                   transformers, compiled, renders, failures);
    assert_true (renders > 1000);
    assert_true (compiled * 10 > transformers * 7);
    for (int e = 0; e < 2; e++)
        msgpack_unpacked_destroy (&events [e]);
    msgpack_sbuffer_destroy (&buf);
}

//  Which templates take the skeleton, which the reference path
static void
s_compiled (const char *template_json, bool expected)
{
    char transform [1024];
    snprintf (transform, sizeof transform,
              "{\"InputPathsMap\": {\"x\": \"$.detail.store_id\"}, \"InputTemplate\": \"%s\"}",
              template_json);
    char err [256] = "";
    zb_transform_t *t = zb_transform_new (transform, strlen (transform), err, sizeof err);
    if (!t)
        fail_msg ("refused %s: %s", transform, err);
    if (zb_transform_compiled (t) != expected)
        fail_msg ("%s: compiled %d, expected %d", template_json, !expected, expected);
    zb_transform_destroy (&t);
}

static void
test_compiled_or_reference (void **state)
{
    (void) state;
    s_compiled ("{\\\"a\\\": <x>, \\\"b\\\": \\\"<x> <x>\\\", \\\"c\\\": [1, 2.5, null]}", true);
    s_compiled ("<x>", true);
    s_compiled ("null", true);
    s_compiled ("plain <x> text", true);                //  a string template
    //  A placeholder in a key: its value decides the key
    s_compiled ("{\\\"<x>\\\": 1}", false);
    //  A literal escape running into a placeholder
    s_compiled ("\\\"\\\\u00<x>e9\\\"", false);
    //  The template spells a sentinel code point
    s_compiled ("[\\\"\\\\udb80\\\\udc00\\\", <x>]", false);
    s_compiled ("[\\\"\xf3\xb0\x80\x80\\\", <x>]", false);
    //  Deeper than the output may be: the reference path refuses it
    s_compiled ("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[<x>]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", false);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_json_template),
        cmocka_unit_test (test_predefined_variables),
        cmocka_unit_test (test_string_template),
        cmocka_unit_test (test_invalid_transformers),
        cmocka_unit_test (test_compiled_matches_reference),
        cmocka_unit_test (test_compiled_or_reference),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
