/*  test_event.c - PutEvents entry validation (every rule, every code, every
    limit at its boundary) and packing of the 9-key event envelope. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "event.h"

//  --------------------------------------------------------------------------
//  Helpers: build msgpack with a packer, unpack it, validate it

typedef struct {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_unpacked result;
    bool unpacked;
    char err [256];
    zb_entry_t entry;
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

//  Start a new value (forget what was packed before).
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

static void
s_strn (msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str_with_body (pk, s, len);
}

//  Unpack what was packed (must be exactly one value).
static const msgpack_object *
s_object (fixture_t *self)
{
    size_t off = 0;
    int rc = msgpack_unpack_next (&self->result, self->sbuf.data, self->sbuf.size, &off);
    assert_int_equal (rc, MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (off, self->sbuf.size);
    return &self->result.data;
}

//  Validate what was packed; returns the code, message in self->err.
static zb_code_t
s_parse (fixture_t *self)
{
    memset (&self->entry, 0, sizeof (self->entry));
    strcpy (self->err, "(untouched)");
    return zb_entry_parse (s_object (self), &self->entry, self->err, sizeof (self->err));
}

//  Checks the code and that the message is exactly the expected text.
static void
s_expect (fixture_t *self, zb_code_t code, const char *message)
{
    zb_code_t rc = s_parse (self);
    if (rc != code)
        fail_msg ("expected %s, got %s: %s", zb_code_name (code), zb_code_name (rc), self->err);
    if (message)
        assert_string_equal (self->err, message);
}

//  Pack an entry map with the usual source/detail-type and n_more more pairs
//  that the caller packs next (detail not included).
static msgpack_packer *
s_entry (fixture_t *self, uint32_t n_more)
{
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_map (pk, 2 + n_more);
    s_str (pk, "source");
    s_str (pk, "store-7");
    s_str (pk, "detail-type");
    s_str (pk, "sales-events");
    return pk;
}

//  An entry whose detail is {"k": <value the caller packs>}.
static msgpack_packer *
s_entry_with_value (fixture_t *self)
{
    msgpack_packer *pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 1);
    s_str (pk, "k");
    return pk;
}

//  An entry with detail {} and source/detail-type as given (NULL: absent).
static void
s_entry_named (fixture_t *self, const char *source, size_t slen,
               const char *dtype, size_t dlen)
{
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_map (pk, 1 + (source != NULL) + (dtype != NULL));
    if (source) {
        s_str (pk, "source");
        s_strn (pk, source, slen);
    }
    if (dtype) {
        s_str (pk, "detail-type");
        s_strn (pk, dtype, dlen);
    }
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
}

//  --------------------------------------------------------------------------
//  Valid entries

static void
test_minimal_entry_is_accepted_as_views (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 1);
    s_str (pk, "sales");
    msgpack_pack_double (pk, 12.5);
    assert_int_equal (s_parse (self), ZB_OK);
    assert_string_equal (self->err, "");
    const zb_entry_t *e = &self->entry;
    assert_int_equal (e->source.len, 7);
    assert_memory_equal (e->source.ptr, "store-7", 7);
    assert_int_equal (e->detail_type.len, 12);
    assert_memory_equal (e->detail_type.ptr, "sales-events", 12);
    assert_null (e->time.ptr);
    assert_null (e->resources);
    assert_non_null (e->detail);
    assert_int_equal (e->detail->type, MSGPACK_OBJECT_MAP);
    //  Views point into the unpacked buffer, nothing is copied
    assert_ptr_equal (e->detail, zb_map_get (&self->result.data, "detail"));
    assert_ptr_equal (e->source.ptr, zb_map_get (&self->result.data, "source")->via.str.ptr);
}

static void
test_full_entry_with_time_and_resources (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_map (pk, 5);
    s_str (pk, "time");
    s_str (pk, "2026-11-26T18:15:01.250+01:00");
    s_str (pk, "resources");
    msgpack_pack_array (pk, 2);
    s_str (pk, "arn:store:7");
    s_str (pk, "");
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_str (pk, "detail-type");
    s_str (pk, "inventory-events");
    s_str (pk, "source");
    s_str (pk, "zbridge.store-producer");
    assert_int_equal (s_parse (self), ZB_OK);
    assert_int_equal (self->entry.time.len, strlen ("2026-11-26T18:15:01.250+01:00"));
    assert_memory_equal (self->entry.time.ptr, "2026-11-26T18:15:01.250+01:00", self->entry.time.len);
    //  ... and normalized once, for the broker to publish
    assert_int_equal (self->entry.time_utc_len, strlen ("2026-11-26T17:15:01.250Z"));
    assert_memory_equal (self->entry.time_utc, "2026-11-26T17:15:01.250Z", self->entry.time_utc_len);
    assert_non_null (self->entry.resources);
    assert_int_equal (self->entry.resources->via.array.size, 2);
    assert_int_equal (self->entry.detail->via.map.size, 0);
}

static void
test_every_json_value_type_in_detail_is_accepted (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 11);
    s_str (pk, "nil");      msgpack_pack_nil (pk);
    s_str (pk, "true");     msgpack_pack_true (pk);
    s_str (pk, "false");    msgpack_pack_false (pk);
    s_str (pk, "min");      msgpack_pack_int64 (pk, INT64_MIN);
    s_str (pk, "max");      msgpack_pack_uint64 (pk, UINT64_MAX);
    s_str (pk, "f64");      msgpack_pack_double (pk, -0.0);
    s_str (pk, "f32");      msgpack_pack_float (pk, 1.5f);
    s_str (pk, "str");      s_str (pk, "h\xc3\xa9llo \xf0\x9f\x98\x80");
    s_str (pk, "");         s_str (pk, "");
    s_str (pk, "arr");
    msgpack_pack_array (pk, 3);
    msgpack_pack_int (pk, 1);
    msgpack_pack_array (pk, 0);
    msgpack_pack_map (pk, 0);
    s_str (pk, "map");
    msgpack_pack_map (pk, 1);
    s_str (pk, "inner");
    msgpack_pack_array (pk, 1);
    s_str (pk, "x");
    s_expect (self, ZB_OK, "");
}

//  --------------------------------------------------------------------------
//  The entry map and its keys

static void
test_entry_that_is_not_a_map_is_invalid_argument (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_pack_array (s_reset (self), 0);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "entry is not a map (array)");
    s_str (s_reset (self), "{}");
    s_expect (self, ZB_E_INVALID_ARGUMENT, "entry is not a map (string)");
    msgpack_pack_nil (s_reset (self));
    s_expect (self, ZB_E_INVALID_ARGUMENT, "entry is not a map (nil)");
    char err [64];
    zb_entry_t entry;
    assert_int_equal (zb_entry_parse (NULL, &entry, err, sizeof (err)), ZB_E_INVALID_ARGUMENT);
}

static void
test_entry_key_that_is_not_a_string_is_invalid_argument (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    msgpack_pack_int (pk, 7);
    msgpack_pack_nil (pk);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "entry has a key that is not a string (integer)");
    pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    msgpack_pack_bin_with_body (pk, "time", 4);
    s_str (pk, "2026-11-26T17:15:01Z");
    s_expect (self, ZB_E_INVALID_ARGUMENT, "entry has a key that is not a string (binary)");
}

static void
test_unknown_key_is_invalid_argument_naming_it (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_str (pk, "Source");           //  keys are case-sensitive
    s_str (pk, "x");
    s_expect (self, ZB_E_INVALID_ARGUMENT,
              "unknown key 'Source' (allowed: source, detail-type, detail, resources, time, "
              "idempotency-key)");
    pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_str (pk, "bad key\n");
    msgpack_pack_nil (pk);
    s_expect (self, ZB_E_INVALID_ARGUMENT,
              "unknown key '[\"bad key\\x0a\"]' (allowed: source, detail-type, detail, resources, "
              "time, idempotency-key)");
}

static void
test_idempotency_key_is_optional_and_checked (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    //  Absent: ptr NULL
    msgpack_packer *pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    assert_int_equal (s_parse (self), ZB_OK);
    assert_null (self->entry.idem_key.ptr);
    assert_int_equal (self->entry.idem_key.len, 0);

    //  1 and 128 bytes (the limits), UTF-8 beyond ASCII: accepted, a view of the bytes
    char key [ZB_MAX_IDEM_KEY + 2];
    memset (key, 'k', sizeof key);
    const size_t lengths [] = { 1, ZB_MAX_IDEM_KEY };
    for (size_t i = 0; i < 2; i++) {
        pk = s_entry (self, 2);
        s_str (pk, "idempotency-key");
        s_strn (pk, key, lengths [i]);
        s_str (pk, "detail");
        msgpack_pack_map (pk, 0);
        assert_int_equal (s_parse (self), ZB_OK);
        assert_int_equal (self->entry.idem_key.len, lengths [i]);
        assert_memory_equal (self->entry.idem_key.ptr, key, lengths [i]);
    }
    pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_str (pk, "idempotency-key");
    s_str (pk, "run-\xc3\xa9t\xc3\xa9-42");
    assert_int_equal (s_parse (self), ZB_OK);
    assert_int_equal (self->entry.idem_key.len, 12);
    assert_memory_equal (self->entry.idem_key.ptr, "run-\xc3\xa9t\xc3\xa9-42", 12);

    //  Empty, too long, not a string, nil, not UTF-8, twice: InvalidArgument naming it
    pk = s_entry (self, 2);
    s_str (pk, "idempotency-key");
    s_strn (pk, key, 0);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "idempotency-key must be 1 to 128 bytes, not 0");
    pk = s_entry (self, 2);
    s_str (pk, "idempotency-key");
    s_strn (pk, key, ZB_MAX_IDEM_KEY + 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "idempotency-key must be 1 to 128 bytes, not 129");
    pk = s_entry (self, 2);
    s_str (pk, "idempotency-key");
    msgpack_pack_uint64 (pk, 42);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "idempotency-key is not a string (integer)");
    pk = s_entry (self, 2);
    s_str (pk, "idempotency-key");
    msgpack_pack_nil (pk);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "idempotency-key is not a string (nil)");
    pk = s_entry (self, 2);
    s_str (pk, "idempotency-key");
    s_strn (pk, "ab\xff", 3);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "idempotency-key is not valid UTF-8");
    pk = s_entry (self, 3);
    s_str (pk, "idempotency-key");
    s_str (pk, "a");
    s_str (pk, "idempotency-key");
    s_str (pk, "b");
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "entry has 'idempotency-key' more than once");

    //  Not part of the published event: the envelope keeps its nine keys
    pk = s_entry (self, 2);
    s_str (pk, "idempotency-key");
    s_str (pk, "k-1");
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    assert_int_equal (s_parse (self), ZB_OK);
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    msgpack_packer opk;
    msgpack_packer_init (&opk, &out, msgpack_sbuffer_write);
    zb_stamp_t stamp = {
        .id = ZB_STR ("5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21"),
        .time = ZB_STR ("2026-11-26T17:15:01Z"),
        .account = ZB_STR ("000000000000"),
        .region = ZB_STR ("local"),
    };
    zb_event_pack (&opk, &self->entry, &stamp);
    msgpack_unpacked event;
    msgpack_unpacked_init (&event);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&event, out.data, out.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (event.data.type, MSGPACK_OBJECT_MAP);
    assert_int_equal (event.data.via.map.size, 9);
    assert_null (zb_map_get (&event.data, "idempotency-key"));
    msgpack_unpacked_destroy (&event);
    msgpack_sbuffer_destroy (&out);
}

static void
test_broker_set_keys_are_refused (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    const char *keys [] = { "id", "version", "account", "region" };
    for (size_t i = 0; i < 4; i++) {
        msgpack_packer *pk = s_entry (self, 2);
        s_str (pk, "detail");
        msgpack_pack_map (pk, 0);
        s_str (pk, keys [i]);
        s_str (pk, "x");
        char expected [64];
        snprintf (expected, sizeof (expected), "'%s' is set by the broker", keys [i]);
        s_expect (self, ZB_E_INVALID_ARGUMENT, expected);
    }
}

static void
test_entry_key_given_twice_is_invalid_argument (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_str (pk, "source");
    s_str (pk, "other");
    s_expect (self, ZB_E_INVALID_ARGUMENT, "entry has 'source' more than once");
    pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "entry has 'detail' more than once");
}

//  --------------------------------------------------------------------------
//  source and detail-type

static void
test_source_is_required_non_empty_string (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    s_entry_named (self, NULL, 0, "sales-events", 12);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "source is required");
    s_entry_named (self, "", 0, "sales-events", 12);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "source is empty");
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_map (pk, 3);
    s_str (pk, "source");
    msgpack_pack_int (pk, 7);
    s_str (pk, "detail-type");
    s_str (pk, "x");
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "source is not a string (integer)");
}

static void
test_detail_type_is_required_non_empty_string (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    s_entry_named (self, "s", 1, NULL, 0);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "detail-type is required");
    s_entry_named (self, "s", 1, "", 0);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "detail-type is empty");
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_map (pk, 3);
    s_str (pk, "source");
    s_str (pk, "s");
    s_str (pk, "detail-type");
    msgpack_pack_bin_with_body (pk, "sales", 5);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "detail-type is not a string (binary)");
}

static void
test_source_256_bytes_ok_257_rejected (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    char buf [300];
    memset (buf, 's', sizeof (buf));
    s_entry_named (self, buf, 256, "t", 1);
    s_expect (self, ZB_OK, "");
    assert_int_equal (self->entry.source.len, 256);
    s_entry_named (self, buf, 257, "t", 1);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "source is longer than 256 bytes");
}

static void
test_detail_type_128_bytes_ok_129_rejected (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    char buf [200];
    memset (buf, 'd', sizeof (buf));
    s_entry_named (self, "s", 1, buf, 128);
    s_expect (self, ZB_OK, "");
    assert_int_equal (self->entry.detail_type.len, 128);
    s_entry_named (self, "s", 1, buf, 129);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "detail-type is longer than 128 bytes");
}

static void
test_limits_count_bytes_not_characters (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    //  64 x "é" (2 bytes each) = 128 bytes: ok; one more ASCII byte: too long
    char buf [200];
    for (int i = 0; i < 64; i++)
        memcpy (buf + 2 * i, "\xc3\xa9", 2);
    buf [128] = 'x';
    s_entry_named (self, "s", 1, buf, 128);
    s_expect (self, ZB_OK, "");
    s_entry_named (self, "s", 1, buf, 129);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "detail-type is longer than 128 bytes");
}

static void
test_names_must_be_valid_utf8 (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    s_entry_named (self, "store\xff", 6, "t", 1);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "source is not valid UTF-8");
    s_entry_named (self, "s", 1, "sales\xc3", 6);        //  truncated sequence
    s_expect (self, ZB_E_INVALID_ARGUMENT, "detail-type is not valid UTF-8");
    s_entry_named (self, "s", 1, "\xed\xa0\x80", 3);     //  surrogate
    s_expect (self, ZB_E_INVALID_ARGUMENT, "detail-type is not valid UTF-8");
    s_entry_named (self, "\xe5\xba\x97", 3, "\xf0\x9f\x9b\x92-events", 11);
    s_expect (self, ZB_OK, "");
}

static void
test_names_with_control_characters_are_rejected (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    s_entry_named (self, "s", 1, "sales\0events", 12);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "detail-type contains a control character");
    s_entry_named (self, "s", 1, "sales\nevents", 12);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "detail-type contains a control character");
    s_entry_named (self, "s", 1, "sales\x7f", 6);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "detail-type contains a control character");
    s_entry_named (self, "s", 1, "sales\xc2\x85", 7);    //  U+0085, a C1 control
    s_expect (self, ZB_E_INVALID_ARGUMENT, "detail-type contains a control character");
    s_entry_named (self, "a\tb", 3, "t", 1);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "source contains a control character");
    s_entry_named (self, "\x1f", 1, "t", 1);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "source contains a control character");
    //  U+00A0 (no-break space) is not a control character
    s_entry_named (self, "a\xc2\xa0" "b", 4, "t", 1);
    s_expect (self, ZB_OK, "");
}

static void
test_detail_type_starting_with_dollar_is_reserved (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    s_entry_named (self, "s", 1, "$heartbeat", 10);
    s_expect (self, ZB_E_INVALID_ARGUMENT,
              "detail-type must not start with '$' (reserved for the bus)");
    s_entry_named (self, "s", 1, "$", 1);
    s_expect (self, ZB_E_INVALID_ARGUMENT,
              "detail-type must not start with '$' (reserved for the bus)");
    s_entry_named (self, "s", 1, "price$", 6);
    s_expect (self, ZB_OK, "");
    //  source may start with '$': it is not a topic
    s_entry_named (self, "$src", 4, "t", 1);
    s_expect (self, ZB_OK, "");
}

//  --------------------------------------------------------------------------
//  time and resources

static void
test_time_must_be_rfc3339 (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    const char *bad [] = { "2026-02-29T00:00:00Z", "yesterday", "", "2026-11-26T17:15:01" };
    for (size_t i = 0; i < 4; i++) {
        msgpack_packer *pk = s_entry (self, 2);
        s_str (pk, "detail");
        msgpack_pack_map (pk, 0);
        s_str (pk, "time");
        s_str (pk, bad [i]);
        s_expect (self, ZB_E_INVALID_ARGUMENT, "time: not an RFC 3339 date-time");
    }
    msgpack_packer *pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_str (pk, "time");
    msgpack_pack_int64 (pk, 1764177301);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "time is not a string (integer)");
    pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_str (pk, "time");
    s_str (pk, "2024-02-29t23:59:59.123456789-23:59");
    s_expect (self, ZB_OK, "");
}

static void
test_resources_must_be_array_of_utf8_strings (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_str (pk, "resources");
    s_str (pk, "arn:one");
    s_expect (self, ZB_E_INVALID_ARGUMENT, "resources is not an array (string)");

    pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_str (pk, "resources");
    msgpack_pack_array (pk, 3);
    s_str (pk, "a");
    s_str (pk, "b");
    msgpack_pack_nil (pk);
    s_expect (self, ZB_E_INVALID_ARGUMENT, "resources[2] is not a string (nil)");

    pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_str (pk, "resources");
    msgpack_pack_array (pk, 2);
    s_strn (pk, "\xc0\xaf", 2);          //  overlong '/'
    s_str (pk, "b");
    s_expect (self, ZB_E_INVALID_ARGUMENT, "resources[0] is not valid UTF-8");

    pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    s_str (pk, "resources");
    msgpack_pack_array (pk, 0);
    s_expect (self, ZB_OK, "");
    assert_non_null (self->entry.resources);
}

//  --------------------------------------------------------------------------
//  detail

static void
test_detail_is_required_and_must_be_a_map (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    s_entry (self, 0);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail is required");
    msgpack_packer *pk = s_entry (self, 1);
    s_str (pk, "detail");
    s_str (pk, "{\"sales\": 12.5}");        //  a JSON string, as in AWS PutEvents
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail is not a map (string)");
    pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_array (pk, 0);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail is not a map (array)");
    pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_nil (pk);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail is not a map (nil)");
}

static void
test_binary_in_detail_is_rejected_with_its_path (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 2);
    s_str (pk, "name");
    s_str (pk, "x");
    s_str (pk, "items");
    msgpack_pack_array (pk, 3);
    msgpack_pack_int (pk, 1);
    msgpack_pack_map (pk, 0);
    msgpack_pack_bin_with_body (pk, "\x00\x01", 2);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.items[2]: binary values are not allowed");
}

static void
test_ext_in_detail_is_rejected (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry_with_value (self);
    msgpack_pack_ext_with_body (pk, "\x00\x00\x00\x01", 4, -1);    //  timestamp ext
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.k: extension values are not allowed");
}

static void
test_nan_and_infinity_in_detail_are_rejected (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_pack_double (s_entry_with_value (self), NAN);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.k: NaN is not allowed");
    msgpack_pack_double (s_entry_with_value (self), INFINITY);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.k: Infinity is not allowed");
    msgpack_pack_double (s_entry_with_value (self), -INFINITY);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.k: Infinity is not allowed");
    msgpack_pack_float (s_entry_with_value (self), NAN);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.k: NaN is not allowed");
    msgpack_pack_double (s_entry_with_value (self), 1.7976931348623157e308);
    s_expect (self, ZB_OK, "");
}

static void
test_invalid_utf8_string_in_detail_is_rejected (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry_with_value (self);
    msgpack_pack_array (pk, 2);
    s_str (pk, "ok");
    s_strn (pk, "caf\xe9", 4);           //  Latin-1, not UTF-8
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.k[1]: string is not valid UTF-8");
}

static void
test_non_string_key_in_detail_is_rejected (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry_with_value (self);
    msgpack_pack_map (pk, 1);
    msgpack_pack_int (pk, 1);
    s_str (pk, "one");
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.k: map key is not a string (integer)");
    pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 1);
    msgpack_pack_nil (pk);
    msgpack_pack_nil (pk);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail: map key is not a string (nil)");
}

static void
test_invalid_utf8_key_is_rejected_with_escaped_path (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry_with_value (self);
    msgpack_pack_map (pk, 1);
    s_strn (pk, "a\xff", 2);
    msgpack_pack_nil (pk);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.k[\"a\\xff\"]: map key is not valid UTF-8");
    assert_true (zb_utf8_valid (self->err, strlen (self->err)));
}

static void
test_odd_keys_are_quoted_in_paths (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 1);
    s_str (pk, "a \"b\".c");
    msgpack_pack_map (pk, 1);
    s_str (pk, "\xc3\xa9t\xc3\xa9");
    msgpack_pack_bin (pk, 0);
    s_expect (self, ZB_E_MALFORMED_DETAIL,
              "detail[\"a \\\"b\\\".c\"][\"\xc3\xa9t\xc3\xa9\"]: binary values are not allowed");
    //  A long key is shortened
    char key [100];
    memset (key, 'k', sizeof (key));
    key [0] = ' ';
    pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 1);
    s_strn (pk, key, sizeof (key));
    msgpack_pack_bin (pk, 0);
    s_expect (self, ZB_E_MALFORMED_DETAIL,
              "detail[\" kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...\"]: binary values are not allowed");
}

static void
test_duplicate_keys_in_small_map_are_rejected (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 3);
    s_str (pk, "a");
    msgpack_pack_int (pk, 1);
    s_str (pk, "b");
    msgpack_pack_int (pk, 2);
    s_str (pk, "a");
    msgpack_pack_int (pk, 3);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.a: duplicate key");

    //  Nested, and "" twice
    pk = s_entry_with_value (self);
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 2);
    s_str (pk, "");
    msgpack_pack_nil (pk);
    s_str (pk, "");
    msgpack_pack_nil (pk);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.k[0][\"\"]: duplicate key");

    //  Same bytes in a different encoding are the same key
    pk = s_entry_with_value (self);
    msgpack_pack_map (pk, 2);
    s_str (pk, "x");
    msgpack_pack_nil (pk);
    msgpack_pack_v4raw (pk, 1);          //  old "raw" encoding of a str
    msgpack_pack_v4raw_body (pk, "x", 1);
    msgpack_pack_nil (pk);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.k.x: duplicate key");

    //  Keys that differ only in length or by one byte are distinct
    pk = s_entry_with_value (self);
    msgpack_pack_map (pk, 4);
    s_str (pk, "ab");  msgpack_pack_nil (pk);
    s_str (pk, "a");   msgpack_pack_nil (pk);
    s_str (pk, "ac");  msgpack_pack_nil (pk);
    s_str (pk, "abc"); msgpack_pack_nil (pk);
    s_expect (self, ZB_OK, "");
}

//  A detail map of n keys "key-<i>", with key j (if >= 0) repeated at the end.
static void
s_big_map_entry (fixture_t *self, uint32_t n, int dup_of)
{
    msgpack_packer *pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, n + (dup_of >= 0));
    char key [32];
    for (uint32_t i = 0; i < n; i++) {
        snprintf (key, sizeof (key), "key-%u", (unsigned) ((i * 7919u) % n));
        s_str (pk, key);
        msgpack_pack_uint32 (pk, i);
    }
    if (dup_of >= 0) {
        snprintf (key, sizeof (key), "key-%d", dup_of);
        s_str (pk, key);
        msgpack_pack_nil (pk);
    }
}

static void
test_duplicate_keys_in_large_map_are_rejected (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    //  Just above the pairwise threshold, and a big map (sorted path)
    s_big_map_entry (self, 17, -1);
    s_expect (self, ZB_OK, "");
    s_big_map_entry (self, 17, 0);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.key-0: duplicate key");
    s_big_map_entry (self, 100000, -1);
    s_expect (self, ZB_OK, "");
    s_big_map_entry (self, 100000, 4242);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.key-4242: duplicate key");
    //  The scratch buffer is reused: a small map after a big one still works
    s_big_map_entry (self, 40, 39);
    s_expect (self, ZB_E_MALFORMED_DETAIL, "detail.key-39: duplicate key");
    s_big_map_entry (self, 40, -1);
    s_expect (self, ZB_OK, "");
}

//  An entry whose nesting is exactly `levels` deep: the entry map is level 1,
//  detail level 2, then maps {"a": ...} (or arrays when use_arrays) inside.
static void
s_deep_entry (fixture_t *self, int levels, bool use_arrays)
{
    msgpack_packer *pk = s_entry (self, 1);
    s_str (pk, "detail");
    int containers = levels - 1;         //  detail and everything below it
    msgpack_pack_map (pk, containers > 1);
    for (int level = 3; level <= levels; level++) {
        if (level == 3)
            s_str (pk, "a");
        bool last = level == levels;
        if (use_arrays)
            msgpack_pack_array (pk, !last);
        else {
            msgpack_pack_map (pk, !last);
            if (!last)
                s_str (pk, "a");
        }
    }
}

static void
test_depth_32_is_accepted (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    s_deep_entry (self, ZB_MAX_DEPTH, false);
    s_expect (self, ZB_OK, "");
    s_deep_entry (self, ZB_MAX_DEPTH, true);
    s_expect (self, ZB_OK, "");
    s_deep_entry (self, 2, false);
    s_expect (self, ZB_OK, "");
}

static void
test_msgpack_unpacker_itself_refuses_depth_33 (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    //  What actually happens on the wire: msgpack-c cannot unpack an entry
    //  nested 33 deep (MSGPACK_EMBED_STACK_SIZE is 32), so such an entry never
    //  reaches zb_entry_parse. A PUT body adds the array level: an entry nested
    //  32 deep inside a PUT is refused by the unpacker too.
    s_deep_entry (self, ZB_MAX_DEPTH + 1, false);
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t off = 0;
    assert_true (msgpack_unpack_next (&result, self->sbuf.data, self->sbuf.size, &off) < 0);
    msgpack_unpacked_destroy (&result);

    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 1);
    s_deep_entry (self, ZB_MAX_DEPTH, false);
    msgpack_sbuffer_write (&body, self->sbuf.data, self->sbuf.size);
    msgpack_unpacked_init (&result);
    off = 0;
    assert_true (msgpack_unpack_next (&result, body.data, body.size, &off) < 0);
    msgpack_unpacked_destroy (&result);
    //  ... and one level less fits
    msgpack_sbuffer_clear (&body);
    msgpack_pack_array (&pk, 1);
    s_deep_entry (self, ZB_MAX_DEPTH - 1, false);
    msgpack_sbuffer_write (&body, self->sbuf.data, self->sbuf.size);
    msgpack_unpacked_init (&result);
    off = 0;
    assert_int_equal (msgpack_unpack_next (&result, body.data, body.size, &off),
                      MSGPACK_UNPACK_SUCCESS);
    char err [256];
    zb_entry_t entry;
    assert_int_equal (zb_entry_parse (&result.data.via.array.ptr [0], &entry, err, sizeof (err)),
                      ZB_OK);
    msgpack_unpacked_destroy (&result);
    msgpack_sbuffer_destroy (&body);
}

//  Builds an entry object tree by hand (no unpacker limit): detail is a chain
//  of maps {"a": ...} so that the whole entry is `levels` deep.
static void
test_depth_33_built_by_hand_is_rejected (void **state)
{
    (void) state;
    enum { LEVELS = 40 };
    msgpack_object_kv chain [LEVELS];       //  chain [i].val is the map at level i + 3
    msgpack_object_kv fields [3];
    msgpack_object entry_obj;
    char err [256];
    zb_entry_t entry;
    for (int levels = ZB_MAX_DEPTH - 1; levels <= LEVELS; levels++) {
        //  detail (level 2) holds chain [0]; the map at level L is chain [L - 3].val
        int maps_below_detail = levels - 2;
        for (int i = 0; i < maps_below_detail; i++) {
            chain [i].key.type = MSGPACK_OBJECT_STR;
            chain [i].key.via.str.ptr = "a";
            chain [i].key.via.str.size = 1;
            chain [i].val.type = MSGPACK_OBJECT_MAP;
            bool last = i == maps_below_detail - 1;
            chain [i].val.via.map.size = last? 0: 1;
            chain [i].val.via.map.ptr = last? NULL: &chain [i + 1];
        }
        fields [0].key = (msgpack_object) { .type = MSGPACK_OBJECT_STR,
                                            .via.str = { 6, "source" } };
        fields [0].val = (msgpack_object) { .type = MSGPACK_OBJECT_STR, .via.str = { 1, "s" } };
        fields [1].key = (msgpack_object) { .type = MSGPACK_OBJECT_STR,
                                            .via.str = { 11, "detail-type" } };
        fields [1].val = (msgpack_object) { .type = MSGPACK_OBJECT_STR, .via.str = { 1, "t" } };
        fields [2].key = (msgpack_object) { .type = MSGPACK_OBJECT_STR,
                                            .via.str = { 6, "detail" } };
        fields [2].val = (msgpack_object) { .type = MSGPACK_OBJECT_MAP,
                                            .via.map = { 1, chain } };
        entry_obj = (msgpack_object) { .type = MSGPACK_OBJECT_MAP, .via.map = { 3, fields } };

        zb_code_t rc = zb_entry_parse (&entry_obj, &entry, err, sizeof (err));
        if (levels <= ZB_MAX_DEPTH)
            assert_int_equal (rc, ZB_OK);
        else {
            assert_int_equal (rc, ZB_E_MALFORMED_DETAIL);
            //  The path names the container at level 33: detail then 31 "a"
            char expected [256] = "detail";
            for (int i = 3; i <= ZB_MAX_DEPTH + 1; i++)
                strcat (expected, ".a");
            strcat (expected, ": nesting deeper than 32 levels");
            assert_string_equal (err, expected);
        }
    }
}

//  --------------------------------------------------------------------------
//  Messages

static void
test_messages_are_one_line_utf8_and_fit_the_buffer (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 1);
    s_str (pk, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\n");
    msgpack_pack_ext (pk, 0, 1);
    for (size_t size = 1; size < 40; size++) {
        char err [40];
        memset (err, 'Z', sizeof (err));
        zb_entry_t entry;
        assert_int_equal (zb_entry_parse (s_object (self), &entry, err, size),
                          ZB_E_MALFORMED_DETAIL);
        size_t len = strnlen (err, size);
        assert_true (len < size);                    //  terminated inside the buffer
        assert_int_equal (err [size], 'Z');          //  nothing written past it
        assert_null (memchr (err, '\n', len));
        assert_true (zb_utf8_valid (err, len));
    }
    //  No buffer at all is fine too
    zb_entry_t entry;
    assert_int_equal (zb_entry_parse (s_object (self), &entry, NULL, 0), ZB_E_MALFORMED_DETAIL);
}

static void
test_code_names_are_the_wire_names (void **state)
{
    (void) state;
    assert_string_equal (zb_code_name (ZB_OK), "OK");
    assert_string_equal (zb_code_name (ZB_E_INVALID_ARGUMENT), "InvalidArgument");
    assert_string_equal (zb_code_name (ZB_E_MALFORMED_DETAIL), "MalformedDetail");
    assert_string_equal (zb_code_name (ZB_E_ENTRY_TOO_LARGE), "EntryTooLarge");
    assert_string_equal (zb_code_name (ZB_E_LIMIT_EXCEEDED), "LimitExceeded");
    assert_string_equal (zb_code_name (ZB_E_INTERNAL), "InternalFailure");
}

//  --------------------------------------------------------------------------
//  Packing the envelope

static void
test_packed_event_has_nine_keys_in_order (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_map (pk, 5);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 2);
    s_str (pk, "sales");
    msgpack_pack_double (pk, 12.5);
    s_str (pk, "tags");
    msgpack_pack_array (pk, 1);
    s_str (pk, "x");
    s_str (pk, "time");
    s_str (pk, "2026-11-26T18:15:01+01:00");
    s_str (pk, "resources");
    msgpack_pack_array (pk, 1);
    s_str (pk, "arn:1");
    s_str (pk, "source");
    s_str (pk, "store-7");
    s_str (pk, "detail-type");
    s_str (pk, "sales-events");
    assert_int_equal (s_parse (self), ZB_OK);

    zb_stamp_t stamp = {
        ZB_STR ("5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21"),
        ZB_STR ("2026-11-26T17:15:01Z"),
        ZB_STR ("000000000000"),
        ZB_STR ("local")
    };
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    msgpack_packer opk;
    msgpack_packer_init (&opk, &out, msgpack_sbuffer_write);
    zb_event_pack (&opk, &self->entry, &stamp);

    msgpack_unpacked event;
    msgpack_unpacked_init (&event);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&event, out.data, out.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (off, out.size);
    const msgpack_object *ev = &event.data;
    assert_int_equal (ev->type, MSGPACK_OBJECT_MAP);
    assert_int_equal (ev->via.map.size, 9);
    const char *keys [9] = { "version", "id", "detail-type", "source", "account",
                             "time", "region", "resources", "detail" };
    const char *values [7] = { "0", "5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21", "sales-events",
                               "store-7", "000000000000", "2026-11-26T17:15:01Z", "local" };
    for (int i = 0; i < 9; i++) {
        assert_true (zb_str_eq (&ev->via.map.ptr [i].key, keys [i]));
        if (i < 7)
            assert_true (zb_str_eq (&ev->via.map.ptr [i].val, values [i]));
    }
    const msgpack_object *resources = &ev->via.map.ptr [7].val;
    assert_int_equal (resources->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal (resources->via.array.size, 1);
    assert_true (zb_str_eq (&resources->via.array.ptr [0], "arn:1"));
    //  detail is the entry's map, unchanged
    const msgpack_object *detail = &ev->via.map.ptr [8].val;
    assert_true (msgpack_object_equal (*detail, *self->entry.detail));
    assert_int_equal (zb_map_get (detail, "sales")->type, MSGPACK_OBJECT_FLOAT64);
    assert_true (zb_map_get (detail, "sales")->via.f64 == 12.5);

    msgpack_unpacked_destroy (&event);
    msgpack_sbuffer_destroy (&out);
}

//  zb_event_write (the broker's packer-less path) writes exactly what
//  zb_event_pack does, with and without resources, and with detail and
//  resources copied as bytes; zb_event_size is its exact size.
static void
s_write_matches_pack (fixture_t *self, const zb_stamp_t *stamp)
{
    //  The bytes as a client would have sent them
    msgpack_sbuffer raw;
    msgpack_sbuffer_init (&raw);
    msgpack_packer rpk;
    msgpack_packer_init (&rpk, &raw, msgpack_sbuffer_write);
    msgpack_pack_object (&rpk, *self->entry.detail);
    size_t detail_size = raw.size;
    if (self->entry.resources)
        msgpack_pack_object (&rpk, *self->entry.resources);
    self->entry.detail_bytes = (zb_str_t) { raw.data, detail_size };
    if (self->entry.resources)
        self->entry.resources_bytes = (zb_str_t) { raw.data + detail_size, raw.size - detail_size };

    msgpack_sbuffer packed;
    msgpack_sbuffer_init (&packed);
    msgpack_packer ppk;
    msgpack_packer_init (&ppk, &packed, msgpack_sbuffer_write);
    zb_event_pack (&ppk, &self->entry, stamp);

    size_t size = zb_event_size (&self->entry, stamp);
    assert_int_equal (size, packed.size);
    char *written = malloc (size);
    assert_non_null (written);
    zb_event_write (written, &self->entry, stamp);
    assert_memory_equal (written, packed.data, size);

    //  The trees packed again give the same bytes here (msgpack-c's own encodings)
    zb_str_t none = { NULL, 0 };
    self->entry.detail_bytes = none;
    self->entry.resources_bytes = none;
    msgpack_sbuffer_clear (&packed);
    zb_event_pack (&ppk, &self->entry, stamp);
    assert_int_equal (size, packed.size);
    assert_memory_equal (written, packed.data, size);
    free (written);
    msgpack_sbuffer_destroy (&packed);
    msgpack_sbuffer_destroy (&raw);
}

static void
test_event_write_matches_pack (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    zb_stamp_t stamp = {
        ZB_STR ("5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21"), ZB_STR ("2026-11-26T17:15:01.250Z"),
        ZB_STR ("000000000000"), ZB_STR ("local")
    };
    msgpack_packer *pk = s_entry (self, 2);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 2);
    s_str (pk, "sales");
    msgpack_pack_double (pk, 12.5);
    s_str (pk, "note");
    char long_text [300];
    memset (long_text, 'n', sizeof long_text);
    s_strn (pk, long_text, sizeof long_text);
    s_str (pk, "resources");
    msgpack_pack_array (pk, 2);
    s_str (pk, "arn:1");
    s_strn (pk, long_text, 40);
    assert_int_equal (s_parse (self), ZB_OK);
    s_write_matches_pack (self, &stamp);

    //  Without resources; a long source (str8) and a 64 KiB account (str32)
    char *big = malloc (70000);
    assert_non_null (big);
    memset (big, 'a', 70000);
    zb_stamp_t wide = { stamp.id, stamp.time, { big, 70000 }, { big, 300 } };
    pk = s_reset (self);
    msgpack_pack_map (pk, 3);
    s_str (pk, "source");
    s_strn (pk, long_text, 200);
    s_str (pk, "detail-type");
    s_str (pk, "sales-events");
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    assert_int_equal (s_parse (self), ZB_OK);
    s_write_matches_pack (self, &wide);
    free (big);
}

static void
test_packed_event_without_resources_has_empty_array (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_entry (self, 1);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 0);
    assert_int_equal (s_parse (self), ZB_OK);
    zb_stamp_t stamp = {
        ZB_STR ("00000000-0000-4000-8000-000000000000"), ZB_STR ("2026-11-26T17:15:01Z"),
        ZB_STR ("123456789012"), ZB_STR ("eu-west-1")
    };
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    msgpack_packer opk;
    msgpack_packer_init (&opk, &out, msgpack_sbuffer_write);
    zb_event_pack (&opk, &self->entry, &stamp);
    msgpack_unpacked event;
    msgpack_unpacked_init (&event);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&event, out.data, out.size, &off), MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *resources = zb_map_get (&event.data, "resources");
    assert_non_null (resources);
    assert_int_equal (resources->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal (resources->via.array.size, 0);
    assert_true (zb_str_eq (zb_map_get (&event.data, "account"), "123456789012"));
    assert_true (zb_str_eq (zb_map_get (&event.data, "region"), "eu-west-1"));
    assert_int_equal (zb_map_get (&event.data, "detail")->via.map.size, 0);
    msgpack_unpacked_destroy (&event);
    msgpack_sbuffer_destroy (&out);
}

static void
test_packed_event_of_deepest_entry_still_unpacks (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    //  The envelope puts detail at the same level as the entry did, so the
    //  deepest accepted entry gives an event every subscriber can unpack
    s_deep_entry (self, ZB_MAX_DEPTH, false);
    assert_int_equal (s_parse (self), ZB_OK);
    zb_stamp_t stamp = {
        ZB_STR ("00000000-0000-4000-8000-000000000000"), ZB_STR ("2026-11-26T17:15:01Z"),
        ZB_STR ("000000000000"), ZB_STR ("local")
    };
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    msgpack_packer opk;
    msgpack_packer_init (&opk, &out, msgpack_sbuffer_write);
    zb_event_pack (&opk, &self->entry, &stamp);
    msgpack_unpacked event;
    msgpack_unpacked_init (&event);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&event, out.data, out.size, &off), MSGPACK_UNPACK_SUCCESS);
    msgpack_unpacked_destroy (&event);
    msgpack_sbuffer_destroy (&out);
}

//  --------------------------------------------------------------------------
//  Helpers: zb_map_get, zb_str_eq, zb_utf8_valid

static void
test_map_get_and_str_eq (void **state)
{
    fixture_t *self = (fixture_t *) *state;
    msgpack_packer *pk = s_reset (self);
    msgpack_pack_map (pk, 3);
    s_str (pk, "a");
    msgpack_pack_int (pk, 1);
    msgpack_pack_int (pk, 5);            //  non-string key is skipped
    s_str (pk, "b");
    s_str (pk, "bc");
    s_str (pk, "x");
    const msgpack_object *obj = s_object (self);
    assert_int_equal (zb_map_get (obj, "a")->via.u64, 1);
    assert_true (zb_str_eq (zb_map_get (obj, "bc"), "x"));
    assert_null (zb_map_get (obj, "b"));
    assert_null (zb_map_get (obj, ""));
    assert_null (zb_map_get (NULL, "a"));
    assert_null (zb_map_get (zb_map_get (obj, "a"), "a"));     //  not a map
    assert_false (zb_str_eq (zb_map_get (obj, "bc"), "xy"));
    assert_false (zb_str_eq (zb_map_get (obj, "bc"), ""));
    assert_false (zb_str_eq (zb_map_get (obj, "a"), "1"));      //  not a string
    assert_false (zb_str_eq (NULL, "x"));
}

static void
test_utf8_validation (void **state)
{
    (void) state;
    struct { const char *s; size_t len; bool valid; } cases [] = {
        { "", 0, true },
        { "plain ascii", 11, true },
        { "\x00", 1, true },                        //  NUL is valid UTF-8
        { "\xc3\xa9", 2, true },                    //  U+00E9
        { "\xe2\x82\xac", 3, true },                //  U+20AC
        { "\xef\xbf\xbf", 3, true },                //  U+FFFF
        { "\xf0\x9f\x98\x80", 4, true },            //  U+1F600
        { "\xf4\x8f\xbf\xbf", 4, true },            //  U+10FFFF, the last code point
        { "\xc0\x80", 2, false },                   //  overlong NUL
        { "\xc1\xbf", 2, false },                   //  overlong
        { "\xe0\x80\xaf", 3, false },               //  overlong '/'
        { "\xf0\x80\x80\xaf", 4, false },           //  overlong
        { "\xed\xa0\x80", 3, false },               //  U+D800, a surrogate
        { "\xed\xbf\xbf", 3, false },               //  U+DFFF
        { "\xf4\x90\x80\x80", 4, false },           //  U+110000
        { "\xf5\x80\x80\x80", 4, false },
        { "\xff", 1, false },
        { "\x80", 1, false },                       //  lone continuation
        { "\xc3", 1, false },                       //  truncated
        { "\xe2\x82", 2, false },
        { "\xf0\x9f\x98", 3, false },
        { "\xc3\x28", 2, false },                   //  bad continuation
        { "\xe2\x28\xa1", 3, false },
        { "\xf0\x9f\x28\x80", 4, false },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++)
        if (zb_utf8_valid (cases [i].s, cases [i].len) != cases [i].valid)
            fail_msg ("case %zu: expected %s", i, cases [i].valid? "valid": "invalid");

    //  The 8-byte ASCII fast path: a bad byte at every position of a long string
    char buf [64];
    for (size_t pos = 0; pos < sizeof (buf); pos++) {
        memset (buf, 'a', sizeof (buf));
        assert_true (zb_utf8_valid (buf, sizeof (buf)));
        buf [pos] = (char) 0xff;
        assert_false (zb_utf8_valid (buf, sizeof (buf)));
        //  a valid 2-byte sequence at the same place
        if (pos + 1 < sizeof (buf)) {
            buf [pos] = (char) 0xc3;
            buf [pos + 1] = (char) 0xa9;
            assert_true (zb_utf8_valid (buf, sizeof (buf)));
            //  ... cut off by the length
            assert_false (zb_utf8_valid (buf, pos + 1));
        }
    }
}

static void
test_control_character_detection (void **state)
{
    (void) state;
    assert_false (zb_utf8_has_control ("sales-events", 12));
    assert_false (zb_utf8_has_control ("", 0));
    assert_true (zb_utf8_has_control ("a\0b", 3));
    assert_true (zb_utf8_has_control ("\x1b[0m", 4));
    assert_true (zb_utf8_has_control ("\x7f", 1));
    assert_true (zb_utf8_has_control ("\xc2\x80", 2));
    assert_true (zb_utf8_has_control ("\xc2\x9f", 2));
    assert_false (zb_utf8_has_control ("\xc2\xa0", 2));
    assert_false (zb_utf8_has_control ("\xe2\x80\x8b", 3));     //  U+200B is a format char, not Cc
    //  The 8-byte fast path: a control character at every position of a
    //  long name, and a C1 control straddling two words
    char buf [40];
    const unsigned char controls [] = { 0x00, 0x01, 0x1f, 0x7f };
    for (size_t pos = 0; pos < sizeof (buf); pos++) {
        memset (buf, 'a', sizeof (buf));
        assert_false (zb_utf8_has_control (buf, sizeof (buf)));
        for (size_t c = 0; c < sizeof (controls); c++) {
            buf [pos] = (char) controls [c];
            assert_true (zb_utf8_has_control (buf, sizeof (buf)));
            assert_false (zb_utf8_has_control (buf, pos));       //  just before it
        }
        buf [pos] = ' ';
        assert_false (zb_utf8_has_control (buf, sizeof (buf)));
        buf [pos] = '~';
        assert_false (zb_utf8_has_control (buf, sizeof (buf)));
        if (pos + 1 < sizeof (buf)) {
            buf [pos] = (char) 0xc2;
            buf [pos + 1] = (char) 0x85;
            assert_true (zb_utf8_has_control (buf, sizeof (buf)));
            buf [pos + 1] = (char) 0xa9;         //  U+00A9, printable
            assert_false (zb_utf8_has_control (buf, sizeof (buf)));
        }
    }
}

static void
test_paths_are_built_step_by_step (void **state)
{
    (void) state;
    char path [64] = "";
    zb_path_key (path, sizeof (path), "detail", 6);
    assert_string_equal (path, "detail");
    zb_path_key (path, sizeof (path), "items", 5);
    zb_path_index (path, sizeof (path), 2);
    assert_string_equal (path, "detail.items[2]");
    zb_path_key (path, sizeof (path), "a.b", 3);
    assert_string_equal (path, "detail.items[2][\"a.b\"]");
    zb_path_key (path, sizeof (path), "", 0);
    assert_string_equal (path, "detail.items[2][\"a.b\"][\"\"]");
    //  Never overflows: fill up a tiny buffer
    char small [10] = "";
    for (int i = 0; i < 10; i++)
        zb_path_key (small, sizeof (small), "abc", 3);
    assert_string_equal (small, "abc.abc.a");
    char tiny [8] = "";
    zb_path_key (tiny, sizeof (tiny), "\xe2\x82\xac\xe2\x82\xac", 6);   //  ["€€"] would not fit
    assert_true (strlen (tiny) < sizeof (tiny));
    assert_true (zb_utf8_valid (tiny, strlen (tiny)));
    assert_string_equal (tiny, "[\"\xe2\x82\xac");
}

//  zb_format_u64 against printf: the edges of every digit count, and a spread
static void
test_format_u64_matches_printf (void **state)
{
    (void) state;
    uint64_t values [200];
    size_t n = 0;
    values [n++] = 0;
    values [n++] = UINT64_MAX;
    for (uint64_t p = 1; p <= UINT64_MAX / 10; p *= 10) {
        values [n++] = p - 1;
        values [n++] = p;
    }
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    while (n < 200) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        values [n++] = x >> (x % 64);
    }
    for (size_t i = 0; i < n; i++) {
        char got [24], want [24];
        size_t len = zb_format_u64 (values [i], got);
        got [len] = 0;
        snprintf (want, sizeof want, "%llu", (unsigned long long) values [i]);
        assert_string_equal (got, want);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_minimal_entry_is_accepted_as_views, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_full_entry_with_time_and_resources, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_every_json_value_type_in_detail_is_accepted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_entry_that_is_not_a_map_is_invalid_argument, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_entry_key_that_is_not_a_string_is_invalid_argument, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_key_is_invalid_argument_naming_it, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_broker_set_keys_are_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_entry_key_given_twice_is_invalid_argument, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_source_is_required_non_empty_string, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_detail_type_is_required_non_empty_string, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_source_256_bytes_ok_257_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_detail_type_128_bytes_ok_129_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_limits_count_bytes_not_characters, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_names_must_be_valid_utf8, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_names_with_control_characters_are_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_detail_type_starting_with_dollar_is_reserved, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_time_must_be_rfc3339, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_resources_must_be_array_of_utf8_strings, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_detail_is_required_and_must_be_a_map, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_binary_in_detail_is_rejected_with_its_path, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_ext_in_detail_is_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_nan_and_infinity_in_detail_are_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_invalid_utf8_string_in_detail_is_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_non_string_key_in_detail_is_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_invalid_utf8_key_is_rejected_with_escaped_path, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_odd_keys_are_quoted_in_paths, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_duplicate_keys_in_small_map_are_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_duplicate_keys_in_large_map_are_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_depth_32_is_accepted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_msgpack_unpacker_itself_refuses_depth_33, s_setup, s_teardown),
        cmocka_unit_test (test_depth_33_built_by_hand_is_rejected),
        cmocka_unit_test_setup_teardown (test_messages_are_one_line_utf8_and_fit_the_buffer, s_setup, s_teardown),
        cmocka_unit_test (test_code_names_are_the_wire_names),
        cmocka_unit_test_setup_teardown (test_packed_event_has_nine_keys_in_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_packed_event_without_resources_has_empty_array, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_packed_event_of_deepest_entry_still_unpacks, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_map_get_and_str_eq, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_idempotency_key_is_optional_and_checked, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_event_write_matches_pack, s_setup, s_teardown),
        cmocka_unit_test (test_utf8_validation),
        cmocka_unit_test (test_format_u64_matches_printf),
        cmocka_unit_test (test_control_character_detection),
        cmocka_unit_test (test_paths_are_built_step_by_step),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
