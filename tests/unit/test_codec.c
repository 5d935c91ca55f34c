/*  test_codec.c - JSON <-> msgpack: round trips of every type, exact text,
    and every error (msgpack JSON cannot express, invalid JSON text). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "codec.h"
#include "event.h"

//  --------------------------------------------------------------------------
//  Helpers

typedef struct {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_unpacked result;
    char err [256];
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *self = calloc (1, sizeof (fixture_t));
    if (!self)
        return -1;
    msgpack_sbuffer_init (&self->sbuf);
    msgpack_packer_init (&self->pk, &self->sbuf, msgpack_sbuffer_write);
    msgpack_unpacked_init (&self->result);
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_unpacked_destroy (&self->result);
    msgpack_sbuffer_destroy (&self->sbuf);
    free (self);
    return 0;
}

static msgpack_packer *
s_reset (fixture_t *self)
{
    msgpack_sbuffer_clear (&self->sbuf);
    return &self->pk;
}

static void
s_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body (pk, s, strlen (s));
}

static const msgpack_object *
s_unpack (msgpack_unpacked *result, const char *data, size_t size)
{
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (result, data, size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (off, size);
    return &result->data;
}

//  msgpack packed in self -> JSON text, compared with expected; then the text
//  is parsed and packed again and must give the same msgpack bytes.
static void
s_msgpack_round_trip (fixture_t *self, const char *expected)
{
    const msgpack_object *obj = s_unpack (&self->result, self->sbuf.data, self->sbuf.size);
    char *text = zb_json_text_from_msgpack (obj, self->err, sizeof (self->err));
    if (!text)
        fail_msg ("not converted: %s", self->err);
    assert_string_equal (text, expected);

    json_object *json = zb_json_parse (text, strlen (text), self->err, sizeof (self->err));
    if (!json && strcmp (text, "null") != 0)
        fail_msg ("'%s' does not parse: %s", text, self->err);
    msgpack_sbuffer back;
    msgpack_sbuffer_init (&back);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &back, msgpack_sbuffer_write);
    if (json || strcmp (text, "null") != 0)
        assert_int_equal (zb_json_to_msgpack (json, &pk, self->err, sizeof (self->err)), 0);
    else
        msgpack_pack_nil (&pk);
    msgpack_unpacked again;
    msgpack_unpacked_init (&again);
    const msgpack_object *obj2 = s_unpack (&again, back.data, back.size);
    assert_true (msgpack_object_equal (*obj, *obj2));
    msgpack_unpacked_destroy (&again);
    msgpack_sbuffer_destroy (&back);
    json_object_put (json);
    free (text);
}

//  JSON text -> msgpack -> JSON text, which must be `expected`.
static void
s_json_round_trip (fixture_t *self, const char *input, const char *expected)
{
    json_object *json = zb_json_parse (input, strlen (input), self->err, sizeof (self->err));
    if (!json)
        fail_msg ("'%s' does not parse: %s", input, self->err);
    msgpack_packer *pk = s_reset (self);
    assert_int_equal (zb_json_to_msgpack (json, pk, self->err, sizeof (self->err)), 0);
    json_object_put (json);
    const msgpack_object *obj = s_unpack (&self->result, self->sbuf.data, self->sbuf.size);
    char *text = zb_json_text_from_msgpack (obj, self->err, sizeof (self->err));
    if (!text)
        fail_msg ("'%s' does not convert back: %s", input, self->err);
    assert_string_equal (text, expected);
    free (text);
}

//  JSON text that must be rejected with exactly this message.
static void
s_parse_fails (const char *text, size_t len, const char *message)
{
    char err [256];
    strcpy (err, "(untouched)");
    json_object *json = zb_json_parse (text, len, err, sizeof (err));
    if (json) {
        fail_msg ("'%s' was accepted as %s", text,
                  json_object_to_json_string_ext (json, JSON_C_TO_STRING_PLAIN));
    }
    assert_string_equal (err, message);
}

#define PARSE_FAILS(lit, message) s_parse_fails ((lit), sizeof (lit) - 1, (message))

//  msgpack packed in self must fail conversion to JSON with this message.
static void
s_msgpack_fails (fixture_t *self, const char *message)
{
    const msgpack_object *obj = s_unpack (&self->result, self->sbuf.data, self->sbuf.size);
    char err [256];
    json_object *json = zb_json_from_msgpack (obj, err, sizeof (err));
    assert_null (json);
    assert_string_equal (err, message);
    char *text = zb_json_text_from_msgpack (obj, err, sizeof (err));
    assert_null (text);
    assert_string_equal (err, message);
}

//  --------------------------------------------------------------------------
//  msgpack -> JSON -> msgpack

static void
test_nil_and_booleans_round_trip (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_pack_nil (s_reset (self));
    s_msgpack_round_trip (self, "null");
    msgpack_pack_true (s_reset (self));
    s_msgpack_round_trip (self, "true");
    msgpack_pack_false (s_reset (self));
    s_msgpack_round_trip (self, "false");
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_array (pk, 3);
    msgpack_pack_nil (pk);
    msgpack_pack_true (pk);
    msgpack_pack_false (pk);
    s_msgpack_round_trip (self, "[null,true,false]");
}

static void
test_nil_converts_to_json_null_without_error (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_pack_nil (s_reset (self));
    const msgpack_object *obj = s_unpack (&self->result, self->sbuf.data, self->sbuf.size);
    strcpy (self->err, "(untouched)");
    assert_null (zb_json_from_msgpack (obj, self->err, sizeof (self->err)));
    assert_string_equal (self->err, "");
}

static void
test_integers_at_the_edges_round_trip (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    struct { int64_t value; const char *text; } signed_cases [] = {
        { 0, "0" }, { 1, "1" }, { -1, "-1" }, { 127, "127" }, { 128, "128" },
        { -32, "-32" }, { -33, "-33" }, { -128, "-128" }, { -129, "-129" },
        { 65535, "65535" }, { 65536, "65536" },
        { INT32_MIN, "-2147483648" }, { INT32_MAX, "2147483647" },
        { (int64_t) INT32_MIN - 1, "-2147483649" },
        { INT64_MIN, "-9223372036854775808" }, { INT64_MAX, "9223372036854775807" },
    };
    for (size_t i = 0; i < sizeof (signed_cases) / sizeof (signed_cases [0]); i++) {
        msgpack_pack_int64 (s_reset (self), signed_cases [i].value);
        s_msgpack_round_trip (self, signed_cases [i].text);
    }
    struct { uint64_t value; const char *text; } unsigned_cases [] = {
        { UINT32_MAX, "4294967295" },
        { (uint64_t) INT64_MAX + 1, "9223372036854775808" },
        { UINT64_MAX, "18446744073709551615" },
    };
    for (size_t i = 0; i < sizeof (unsigned_cases) / sizeof (unsigned_cases [0]); i++) {
        msgpack_pack_uint64 (s_reset (self), unsigned_cases [i].value);
        s_msgpack_round_trip (self, unsigned_cases [i].text);
    }
}

static void
test_big_unsigned_integer_comes_back_as_uint64 (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    json_object *json = zb_json_parse ("18446744073709551615", 20, self->err, sizeof (self->err));
    assert_non_null (json);
    assert_int_equal (zb_json_to_msgpack (json, s_reset (self), self->err, sizeof (self->err)), 0);
    json_object_put (json);
    const msgpack_object *obj = s_unpack (&self->result, self->sbuf.data, self->sbuf.size);
    assert_int_equal (obj->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_true (obj->via.u64 == UINT64_MAX);
    //  INT64_MAX itself stays what it is
    json = zb_json_parse ("9223372036854775807", 19, self->err, sizeof (self->err));
    assert_int_equal (zb_json_to_msgpack (json, s_reset (self), self->err, sizeof (self->err)), 0);
    json_object_put (json);
    obj = s_unpack (&self->result, self->sbuf.data, self->sbuf.size);
    assert_true (obj->via.u64 == (uint64_t) INT64_MAX);
    //  ... and INT64_MIN is a negative integer
    json = zb_json_parse ("-9223372036854775808", 20, self->err, sizeof (self->err));
    assert_int_equal (zb_json_to_msgpack (json, s_reset (self), self->err, sizeof (self->err)), 0);
    json_object_put (json);
    obj = s_unpack (&self->result, self->sbuf.data, self->sbuf.size);
    assert_int_equal (obj->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_true (obj->via.i64 == INT64_MIN);
}

static void
test_doubles_print_shortest_and_round_trip_bit_exact (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    struct { double value; const char *text; } cases [] = {
        { 0.1, "0.1" }, { 42.37, "42.37" }, { 300.0, "300.0" }, { 1e300, "1e+300" },
        { -0.0, "-0.0" }, { 0.0, "0.0" }, { 5e-324, "4.94065645841247e-324" },
        { 1.0 / 3.0, "0.3333333333333333" }, { 0.1 + 0.2, "0.30000000000000004" },
        { 12.5, "12.5" }, { -1.5, "-1.5" }, { 1e16, "1e+16" }, { 123456789012345.0, "123456789012345.0" },
        { 9007199254740993.0, "9007199254740992.0" },
        { 1.7976931348623157e308, "1.7976931348623157e+308" },
        { 2.2250738585072014e-308, "2.2250738585072014e-308" }, { 1e-7, "1e-07" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        msgpack_pack_double (s_reset (self), cases [i].value);
        s_msgpack_round_trip (self, cases [i].text);
        //  bit for bit, so -0.0 keeps its sign
        const msgpack_object *obj = &self->result.data;
        json_object *json = zb_json_parse (cases [i].text, strlen (cases [i].text),
                                           self->err, sizeof (self->err));
        assert_non_null (json);
        double back = json_object_get_double (json);
        assert_memory_equal (&back, &obj->via.f64, sizeof (double));
        json_object_put (json);
    }
}

static void
test_float32_prints_shortest_float_text (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_pack_float (s_reset (self), 0.1f);
    const msgpack_object *obj = s_unpack (&self->result, self->sbuf.data, self->sbuf.size);
    char *text = zb_json_text_from_msgpack (obj, self->err, sizeof (self->err));
    assert_string_equal (text, "0.1");
    free (text);
    msgpack_pack_float (s_reset (self), 3.0f);
    obj = s_unpack (&self->result, self->sbuf.data, self->sbuf.size);
    text = zb_json_text_from_msgpack (obj, self->err, sizeof (self->err));
    assert_string_equal (text, "3.0");
    free (text);
    msgpack_pack_float (s_reset (self), 16777217.0f);    //  rounds to 16777216 as float
    obj = s_unpack (&self->result, self->sbuf.data, self->sbuf.size);
    text = zb_json_text_from_msgpack (obj, self->err, sizeof (self->err));
    assert_string_equal (text, "16777216.0");
    free (text);
}

static void
test_strings_round_trip_byte_exact (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    struct { const char *value; size_t len; const char *text; } cases [] = {
        { "", 0, "\"\"" },
        { "plain", 5, "\"plain\"" },
        { "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15, "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"" },
        { "a/b", 3, "\"a/b\"" },                                 //  no slash escaping
        { "q\"b\\", 4, "\"q\\\"b\\\\\"" },
        { "\n\t\r\b\f", 5, "\"\\n\\t\\r\\b\\f\"" },
        { "\x01\x1f", 2, "\"\\u0001\\u001f\"" },
        { "a\0b", 3, "\"a\\u0000b\"" },                           //  NUL inside survives
        { "\x7f", 1, "\"\x7f\"" },
        { "\xef\xbf\xbf\xf4\x8f\xbf\xbf", 7, "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        msgpack_pack_str_with_body (s_reset (self), cases [i].value, cases [i].len);
        s_msgpack_round_trip (self, cases [i].text);
    }
}

static void
test_nested_maps_and_arrays_keep_key_order (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_map (pk, 4);
    s_str (pk, "zeta");
    msgpack_pack_int (pk, 1);
    s_str (pk, "alpha");
    msgpack_pack_array (pk, 3);
    msgpack_pack_int (pk, 1);
    msgpack_pack_map (pk, 2);
    s_str (pk, "m");
    msgpack_pack_nil (pk);
    s_str (pk, "b");
    msgpack_pack_array (pk, 0);
    msgpack_pack_array (pk, 1);
    msgpack_pack_array (pk, 1);
    s_str (pk, "deep");
    s_str (pk, "k\xc3\xa9y");
    msgpack_pack_map (pk, 0);
    s_str (pk, "");
    msgpack_pack_double (pk, 2.5);
    s_msgpack_round_trip (self,
        "{\"zeta\":1,\"alpha\":[1,{\"m\":null,\"b\":[]},[[\"deep\"]]],\"k\xc3\xa9y\":{},\"\":2.5}");
}

static void
test_event_envelope_converts_to_one_line (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_map (pk, 3);
    s_str (pk, "detail-type");
    s_str (pk, "sales-events");
    s_str (pk, "resources");
    msgpack_pack_array (pk, 0);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 2);
    s_str (pk, "sales");
    msgpack_pack_double (pk, 12.5);
    s_str (pk, "note");
    s_str (pk, "line 1\nline 2");
    s_msgpack_round_trip (self,
        "{\"detail-type\":\"sales-events\",\"resources\":[],"
        "\"detail\":{\"sales\":12.5,\"note\":\"line 1\\nline 2\"}}");
}

//  --------------------------------------------------------------------------
//  JSON -> msgpack -> JSON

static void
test_json_values_round_trip_through_msgpack (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    s_json_round_trip (self,
        "{\"b\":1,\"a\":[true,false,null,-5,18446744073709551615,-9223372036854775808,"
        "0.1,1e300,\"x\"]}",
        "{\"b\":1,\"a\":[true,false,null,-5,18446744073709551615,-9223372036854775808,"
        "0.1,1e+300,\"x\"]}");
    s_json_round_trip (self, " { \"z\" : { } , \"a\" : [ ] }\n", "{\"z\":{},\"a\":[]}");
    s_json_round_trip (self, "300.0", "300.0");
    s_json_round_trip (self, "1E2", "100.0");
    s_json_round_trip (self, "-0.0", "-0.0");
    s_json_round_trip (self, "-0", "0");
    s_json_round_trip (self, "5e-324", "4.94065645841247e-324");
    s_json_round_trip (self, "1e-400", "0.0");                     //  underflows to zero
    s_json_round_trip (self, "42.370", "42.37");
    s_json_round_trip (self, "\"\\u00e9\\ud83d\\ude00 \\/\"", "\"\xc3\xa9\xf0\x9f\x98\x80 /\"");
    s_json_round_trip (self, "\"\\u0000\"", "\"\\u0000\"");
    s_json_round_trip (self, "[[[[[[[[[[\"ten\"]]]]]]]]]]", "[[[[[[[[[[\"ten\"]]]]]]]]]]");
}

static void
test_json_numbers_keep_their_msgpack_types (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    struct { const char *text; msgpack_object_type type; } cases [] = {
        { "1", MSGPACK_OBJECT_POSITIVE_INTEGER }, { "-1", MSGPACK_OBJECT_NEGATIVE_INTEGER },
        { "1.0", MSGPACK_OBJECT_FLOAT64 }, { "1e0", MSGPACK_OBJECT_FLOAT64 },
        { "0", MSGPACK_OBJECT_POSITIVE_INTEGER }, { "\"1\"", MSGPACK_OBJECT_STR },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        json_object *json = zb_json_parse (cases [i].text, strlen (cases [i].text),
                                           self->err, sizeof (self->err));
        assert_non_null (json);
        assert_int_equal (zb_json_to_msgpack (json, s_reset (self), self->err, sizeof (self->err)), 0);
        json_object_put (json);
        const msgpack_object *obj = s_unpack (&self->result, self->sbuf.data, self->sbuf.size);
        assert_int_equal (obj->type, cases [i].type);
    }
}

static void
test_json_text_does_not_escape_slashes_and_prints_null (void **state)
{
    (void) state;
    json_object *json = json_object_new_string ("a/b");
    char *text = zb_json_text (json);
    assert_string_equal (text, "\"a/b\"");
    free (text);
    json_object_put (json);
    text = zb_json_text (NULL);
    assert_string_equal (text, "null");
    free (text);
}

//  --------------------------------------------------------------------------
//  msgpack that JSON cannot express

static void
test_binary_is_an_error_naming_the_path (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_map (pk, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 1);
    s_str (pk, "items");
    msgpack_pack_array (pk, 3);
    msgpack_pack_int (pk, 0);
    msgpack_pack_int (pk, 1);
    msgpack_pack_bin_with_body (pk, "xy", 2);
    s_msgpack_fails (self, "detail.items[2]: binary values are not allowed");
    msgpack_pack_bin_with_body (s_reset (self), "xy", 2);
    s_msgpack_fails (self, "value: binary values are not allowed");
}

static void
test_ext_nan_and_infinity_are_errors (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_array (pk, 1);
    msgpack_pack_ext_with_body (pk, "\x01", 1, 5);
    s_msgpack_fails (self, "[0]: extension values are not allowed");
    pk = s_reset (self);
    msgpack_pack_map (pk, 1);
    s_str (pk, "x");
    msgpack_pack_double (pk, NAN);
    s_msgpack_fails (self, "x: NaN is not allowed");
    pk = s_reset (self);
    msgpack_pack_map (pk, 1);
    s_str (pk, "x");
    msgpack_pack_float (pk, -INFINITY);
    s_msgpack_fails (self, "x: Infinity is not allowed");
}

static void
test_bad_keys_and_strings_are_errors (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_map (pk, 1);
    msgpack_pack_int (pk, 1);
    msgpack_pack_nil (pk);
    s_msgpack_fails (self, "value: map key is not a string");

    pk = s_reset (self);
    msgpack_pack_map (pk, 1);
    s_str (pk, "a");
    msgpack_pack_map (pk, 1);
    msgpack_pack_str_with_body (pk, "b\0c", 3);
    msgpack_pack_nil (pk);
    s_msgpack_fails (self, "a[\"b\\x00c\"]: map key contains a NUL character (not supported)");

    pk = s_reset (self);
    msgpack_pack_map (pk, 1);
    msgpack_pack_str_with_body (pk, "\xff", 1);
    msgpack_pack_nil (pk);
    s_msgpack_fails (self, "[\"\\xff\"]: map key is not valid UTF-8");

    pk = s_reset (self);
    msgpack_pack_array (pk, 2);
    s_str (pk, "ok");
    msgpack_pack_str_with_body (pk, "\xed\xa0\x80", 3);
    s_msgpack_fails (self, "[1]: string is not valid UTF-8");
}

static void
test_duplicate_msgpack_keys_are_an_error (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_map (pk, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 3);
    s_str (pk, "a");
    msgpack_pack_int (pk, 1);
    s_str (pk, "b");
    msgpack_pack_int (pk, 2);
    s_str (pk, "a");
    msgpack_pack_int (pk, 3);
    s_msgpack_fails (self, "detail.a: duplicate key");
}

//  Packs `levels` nested arrays ([[...]] with "x" innermost).
static void
s_pack_nested (msgpack_packer *pk, int levels)
{
    for (int i = 0; i < levels; i++)
        msgpack_pack_array (pk, 1);
    s_str (pk, "x");
}

static void
test_msgpack_depth_32_converts_33_is_an_error (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    s_pack_nested (s_reset (self), ZB_MAX_DEPTH);
    const msgpack_object *obj = s_unpack (&self->result, self->sbuf.data, self->sbuf.size);
    char *text = zb_json_text_from_msgpack (obj, self->err, sizeof (self->err));
    assert_non_null (text);
    assert_int_equal (strlen (text), 2 * ZB_MAX_DEPTH + 3);
    free (text);

    //  33 levels cannot come out of msgpack-c's unpacker: build them by hand
    msgpack_object nodes [ZB_MAX_DEPTH + 2];
    for (int i = 0; i <= ZB_MAX_DEPTH; i++) {
        nodes [i].type = MSGPACK_OBJECT_ARRAY;
        nodes [i].via.array.size = 1;
        nodes [i].via.array.ptr = &nodes [i + 1];
    }
    nodes [ZB_MAX_DEPTH + 1].type = MSGPACK_OBJECT_NIL;
    char err [256];
    assert_null (zb_json_from_msgpack (&nodes [0], err, sizeof (err)));
    char expected [256] = "";
    for (int i = 1; i < ZB_MAX_DEPTH + 1; i++)
        strcat (expected, "[0]");
    strcat (expected, ": nesting deeper than 32 levels");
    assert_string_equal (err, expected);
    //  32 by hand is fine
    json_object *json = zb_json_from_msgpack (&nodes [1], err, sizeof (err));
    assert_non_null (json);
    assert_string_equal (err, "");
    json_object_put (json);
}

//  --------------------------------------------------------------------------
//  json-c objects that msgpack (or the bus) cannot take

static void
test_json_depth_32_packs_33_is_an_error (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    char text [200];
    memset (text, '[', ZB_MAX_DEPTH);
    memset (text + ZB_MAX_DEPTH, ']', ZB_MAX_DEPTH);
    text [2 * ZB_MAX_DEPTH] = 0;
    json_object *json = zb_json_parse (text, strlen (text), self->err, sizeof (self->err));
    assert_non_null (json);
    assert_int_equal (zb_json_to_msgpack (json, s_reset (self), self->err, sizeof (self->err)), 0);
    json_object_put (json);

    memset (text, '[', ZB_MAX_DEPTH + 1);
    memset (text + ZB_MAX_DEPTH + 1, ']', ZB_MAX_DEPTH + 1);
    text [2 * ZB_MAX_DEPTH + 2] = 0;
    json = zb_json_parse (text, strlen (text), self->err, sizeof (self->err));
    assert_non_null (json);             //  the parser allows up to 64
    msgpack_packer *pk = s_reset (self);
    assert_int_equal (zb_json_to_msgpack (json, pk, self->err, sizeof (self->err)), -1);
    char expected [256] = "";
    for (int i = 1; i < ZB_MAX_DEPTH + 1; i++)
        strcat (expected, "[0]");
    strcat (expected, ": nesting deeper than 32 levels");
    assert_string_equal (self->err, expected);
    assert_int_equal (self->sbuf.size, 0);       //  nothing packed on error
    json_object_put (json);
}

static void
test_nan_built_in_code_is_an_error_and_packs_nothing (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    json_object *json = json_object_new_object ();
    json_object_object_add (json, "ok", json_object_new_int (1));
    json_object *list = json_object_new_array ();
    json_object_array_add (list, json_object_new_double (NAN));
    json_object_object_add (json, "sales", list);
    msgpack_packer *pk = s_reset (self);
    assert_int_equal (zb_json_to_msgpack (json, pk, self->err, sizeof (self->err)), -1);
    assert_string_equal (self->err, "sales[0]: NaN is not allowed");
    assert_int_equal (self->sbuf.size, 0);
    json_object_put (json);

    json = json_object_new_double (INFINITY);
    assert_int_equal (zb_json_to_msgpack (json, pk, self->err, sizeof (self->err)), -1);
    assert_string_equal (self->err, "value: Infinity is not allowed");
    json_object_put (json);
}

//  --------------------------------------------------------------------------
//  Invalid JSON text

static void
test_truncated_json_is_unexpected_end (void **state)
{
    (void) state;
    PARSE_FAILS ("{\"a\":1", "line 1 column 7: unexpected end of input");
    PARSE_FAILS ("[1,2", "line 1 column 5: unexpected end of input");
    PARSE_FAILS ("\"abc", "line 1 column 5: unexpected end of input");
    PARSE_FAILS ("", "line 1 column 1: unexpected end of input");
    PARSE_FAILS ("  \n ", "line 2 column 2: unexpected end of input");
    PARSE_FAILS ("tru", "line 1 column 4: boolean expected");
    PARSE_FAILS ("1.5e", "line 1 column 5: number expected");
    s_parse_fails (NULL, 0, "line 1 column 1: unexpected end of input");
}

static void
test_trailing_garbage_is_rejected_whitespace_is_not (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    PARSE_FAILS ("[1] x", "line 1 column 5: unexpected character");
    PARSE_FAILS ("{\"a\":1}{}", "line 1 column 8: unexpected character");
    PARSE_FAILS ("1 2", "line 1 column 3: unexpected character");
    s_json_round_trip (self, "[1] \t\r\n ", "[1]");
    s_json_round_trip (self, "7\n", "7");
}

static void
test_invalid_utf8_is_rejected_with_position (void **state)
{
    (void) state;
    PARSE_FAILS ("\"\xff\"", "line 1 column 2: invalid UTF-8");
    PARSE_FAILS ("{\n  \"\xc3\xa9\": \"\xed\xa0\x80\"\n}", "line 2 column 9: invalid UTF-8");
    PARSE_FAILS ("[\"ok\", \"\xc3\"]", "line 1 column 9: invalid UTF-8");
    PARSE_FAILS ("[1]\xc0\x80", "line 1 column 4: invalid UTF-8");
    PARSE_FAILS ("[\"a\0b\"]", "line 1 column 4: NUL byte in JSON text");
}

static void
test_nesting_deeper_than_64_is_rejected (void **state)
{
    (void) state;
    char text [300];
    memset (text, '[', 65);
    memset (text + 65, ']', 65);
    s_parse_fails (text, 130, "line 1 column 65: nesting too deep");
    char err [256];
    json_object *json = zb_json_parse (text + 1, 128, err, sizeof (err));
    assert_non_null (json);
    json_object_put (json);
}

static void
test_out_of_range_numbers_are_rejected_not_saturated (void **state)
{
    (void) state;
    PARSE_FAILS ("18446744073709551616",
                 "line 1 column 1: integer out of range (above 18446744073709551615)");
    PARSE_FAILS ("{\"n\": -9223372036854775809}",
                 "line 1 column 7: integer out of range (below -9223372036854775808)");
    PARSE_FAILS ("[99999999999999999999999999]",
                 "line 1 column 2: integer out of range (above 18446744073709551615)");
    PARSE_FAILS ("1e400", "line 1 column 1: number out of range for a double");
    PARSE_FAILS ("[-1.5e309]", "line 1 column 2: number out of range for a double");
    //  An integer literal with hundreds of digits
    char text [1000];
    memset (text, '9', sizeof (text));
    s_parse_fails (text, sizeof (text),
                   "line 1 column 1: integer out of range");
}

static void
test_nan_infinity_and_lax_numbers_are_rejected (void **state)
{
    (void) state;
    PARSE_FAILS ("NaN", "line 1 column 1: NaN and Infinity are not JSON numbers");
    PARSE_FAILS ("[Infinity]", "line 1 column 2: NaN and Infinity are not JSON numbers");
    PARSE_FAILS ("[1, -Infinity]", "line 1 column 5: NaN and Infinity are not JSON numbers");
    PARSE_FAILS ("00", "line 1 column 1: leading zeros are not allowed");
    PARSE_FAILS ("[-01]", "line 1 column 2: leading zeros are not allowed");
    PARSE_FAILS ("[2.]", "line 1 column 2: digits expected after '.'");
    PARSE_FAILS ("0123", "line 1 column 5: number expected");
    PARSE_FAILS (".5", "line 1 column 1: unexpected character");
    PARSE_FAILS ("+1", "line 1 column 1: unexpected character");
}

static void
test_strict_syntax_is_enforced (void **state)
{
    (void) state;
    PARSE_FAILS ("[1,2,]", "line 1 column 6: unexpected character");
    PARSE_FAILS ("{\"a\":1,}", "line 1 column 8: unexpected character");
    PARSE_FAILS ("{'a':1}", "line 1 column 2: unexpected character");
    PARSE_FAILS ("/* c */ 1", "line 1 column 1: unexpected character");
    PARSE_FAILS ("{a:1}", "line 1 column 2: quoted object property name expected");
    PARSE_FAILS ("True", "line 1 column 1: boolean expected");
    PARSE_FAILS ("[1 2]", "line 1 column 4: array value separator ',' expected");
    PARSE_FAILS ("\"\\x41\"", "line 1 column 3: invalid string sequence");
    PARSE_FAILS ("\"a\tb\"", "line 1 column 3: control character in string (must be escaped)");
}

static void
test_lone_surrogate_escapes_are_rejected (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    PARSE_FAILS ("\"\\ud800\"", "line 1 column 2: \\u escape is a lone high surrogate");
    PARSE_FAILS ("\"\\uDC00\"", "line 1 column 2: \\u escape is a lone low surrogate");
    PARSE_FAILS ("\"x\\ud83dy\"", "line 1 column 3: \\u escape is a lone high surrogate");
    PARSE_FAILS ("\"\\ud800\\u0041\"", "line 1 column 2: \\u escape is a lone high surrogate");
    s_json_round_trip (self, "\"\\uD83D\\uDE00\"", "\"\xf0\x9f\x98\x80\"");
    //  An escaped backslash followed by "ud800" is just text
    s_json_round_trip (self, "\"\\\\ud800\"", "\"\\\\ud800\"");
}

static void
test_duplicate_keys_are_rejected_at_the_second_occurrence (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    PARSE_FAILS ("{\"a\":1,\"a\":2}", "line 1 column 8: duplicate key \"a\"");
    PARSE_FAILS ("{\"x\":{\"b\":1,\"c\":2,\"b\":3}}", "line 1 column 19: duplicate key \"b\"");
    PARSE_FAILS ("{\"a\":1,\"\\u0061\":2}", "line 1 column 8: duplicate key \"a\"");
    PARSE_FAILS ("[{\"a\":1},{\"k\":{\"z\":1},\"k\":2}]", "line 1 column 23: duplicate key \"k\"");
    //  Objects are compared outside in: an outer duplicate is found first
    PARSE_FAILS ("{\"a\":{\"x\":1,\"x\":1},\"a\":2}", "line 1 column 20: duplicate key \"a\"");
    PARSE_FAILS ("{\n \"\xc3\xa9\":1,\n \"\xc3\xa9\":2}", "line 3 column 2: duplicate key \"\xc3\xa9\"");
    //  Same keys in different objects are fine
    s_json_round_trip (self, "[{\"a\":1},{\"a\":2}]", "[{\"a\":1},{\"a\":2}]");
    s_json_round_trip (self, "{\"a\":{\"a\":{\"a\":1}}}", "{\"a\":{\"a\":{\"a\":1}}}");
    //  "a" and "a\u0000"-like prefixes are different keys; "\u0000" in a key is refused
    PARSE_FAILS ("{\"a\\u0000\":1}", "line 1 column 4: object key contains \\u0000 (not supported)");
}

static void
test_duplicate_key_in_large_object_is_found (void **state)
{
    (void) state;
    enum { KEYS = 20000 };
    size_t size = KEYS * 16 + 64;
    char *text = malloc (size);
    assert_non_null (text);
    size_t len = 0;
    text [len++] = '{';
    for (int i = 0; i < KEYS; i++)
        len += (size_t) snprintf (text + len, size - len, "%s\"k%d\":%d", i? ",": "", i, i);
    size_t before_dup = len;
    len += (size_t) snprintf (text + len, size - len, ",\"k12345\":0}");
    char err [256];
    json_object *json = zb_json_parse (text, len, err, sizeof (err));
    assert_null (json);
    char expected [64];
    snprintf (expected, sizeof (expected), "line 1 column %zu: duplicate key \"k12345\"",
              before_dup + 2);
    assert_string_equal (err, expected);
    //  Without the duplicate it parses, all keys there
    text [before_dup] = '}';
    json = zb_json_parse (text, before_dup + 1, err, sizeof (err));
    assert_non_null (json);
    assert_int_equal (json_object_object_length (json), KEYS);
    json_object_put (json);
    free (text);
}

static void
test_long_duplicate_key_is_shortened_in_the_message (void **state)
{
    (void) state;
    char text [500];
    char key [201];
    memset (key, 'k', 200);
    key [200] = 0;
    snprintf (text, sizeof (text), "{\"%s\":1,\"%s\":2}", key, key);
    char err [256];
    assert_null (zb_json_parse (text, strlen (text), err, sizeof (err)));
    char expected [256];
    snprintf (expected, sizeof (expected), "line 1 column 207: duplicate key \"%.59s...\"", key);
    assert_string_equal (err, expected);
}

static void
test_whole_text_null_is_rejected_scalars_are_not (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    PARSE_FAILS ("null", "line 1 column 1: null is not accepted as the whole JSON text");
    s_json_round_trip (self, "true", "true");
    s_json_round_trip (self, "\"s\"", "\"s\"");
    s_json_round_trip (self, "[null]", "[null]");
    s_json_round_trip (self, "{\"n\":null}", "{\"n\":null}");
}

static void
test_parse_error_fits_a_small_buffer (void **state)
{
    (void) state;
    const char *text = "{\"\xe2\x82\xac\":1,\"\xe2\x82\xac\":2}";
    for (size_t size = 1; size < 40; size++) {
        char err [48];
        memset (err, 'Z', sizeof (err));
        assert_null (zb_json_parse (text, strlen (text), err, size));
        size_t len = strnlen (err, size);
        assert_true (len < size);
        assert_int_equal (err [size], 'Z');
        assert_true (zb_utf8_valid (err, len));
    }
    assert_null (zb_json_parse (text, strlen (text), NULL, 0));
}

static void
test_text_without_terminating_nul_is_read_to_len_only (void **state)
{
    (void) state;
    char text [8];
    memcpy (text, "[12345]X", 8);
    char err [256];
    json_object *json = zb_json_parse (text, 7, err, sizeof (err));
    assert_non_null (json);
    assert_int_equal (json_object_get_int (json_object_array_get_idx (json, 0)), 12345);
    json_object_put (json);
    memcpy (text, "12345678", 8);
    json = zb_json_parse (text, 3, err, sizeof (err));
    assert_non_null (json);
    assert_int_equal (json_object_get_int (json), 123);
    json_object_put (json);
}

int
main (void)
{
#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)
    const struct CMUnitTest tests [] = {
        T (test_nil_and_booleans_round_trip),
        T (test_nil_converts_to_json_null_without_error),
        T (test_integers_at_the_edges_round_trip),
        T (test_big_unsigned_integer_comes_back_as_uint64),
        T (test_doubles_print_shortest_and_round_trip_bit_exact),
        T (test_float32_prints_shortest_float_text),
        T (test_strings_round_trip_byte_exact),
        T (test_nested_maps_and_arrays_keep_key_order),
        T (test_event_envelope_converts_to_one_line),
        T (test_json_values_round_trip_through_msgpack),
        T (test_json_numbers_keep_their_msgpack_types),
        T (test_json_text_does_not_escape_slashes_and_prints_null),
        T (test_binary_is_an_error_naming_the_path),
        T (test_ext_nan_and_infinity_are_errors),
        T (test_bad_keys_and_strings_are_errors),
        T (test_duplicate_msgpack_keys_are_an_error),
        T (test_msgpack_depth_32_converts_33_is_an_error),
        T (test_json_depth_32_packs_33_is_an_error),
        T (test_nan_built_in_code_is_an_error_and_packs_nothing),
        T (test_truncated_json_is_unexpected_end),
        T (test_trailing_garbage_is_rejected_whitespace_is_not),
        T (test_invalid_utf8_is_rejected_with_position),
        T (test_nesting_deeper_than_64_is_rejected),
        T (test_out_of_range_numbers_are_rejected_not_saturated),
        T (test_nan_infinity_and_lax_numbers_are_rejected),
        T (test_strict_syntax_is_enforced),
        T (test_lone_surrogate_escapes_are_rejected),
        T (test_duplicate_keys_are_rejected_at_the_second_occurrence),
        T (test_duplicate_key_in_large_object_is_found),
        T (test_long_duplicate_key_is_shortened_in_the_message),
        T (test_whole_text_null_is_rejected_scalars_are_not),
        T (test_parse_error_fits_a_small_buffer),
        T (test_text_without_terminating_nul_is_read_to_len_only),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
