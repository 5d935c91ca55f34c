/*  fuzz_ingest.c - the PUT body, as the broker handles it (broker.c
    s_pass_put / s_pass_entry): zb_msgpack_decode with the broker's keep
    depth, zb_entry_parse on each entry (which normalizes its time), and for
    every valid entry the event as the broker writes it (zb_event_write with
    detail and resources copied from the body, zb_msgpack_value_bytes) and
    as zb_event_pack packs the trees.

    Invariants checked (a violation traps, so libFuzzer keeps the input):
    - differential: whenever msgpack-c's own unpacker accepts the body,
      zb_msgpack_decode accepts it too and builds the same tree; whenever the
      body is valid msgpack nested no deeper than msgpack-c allows,
      zb_msgpack_decode accepts it (msgpack-c only runs on bodies the
      validator passed: on others it could allocate gigabytes from one
      header, which is why the broker has its own decoder);
    - zb_msgpack_decode (one pass) gives zb_msgpack_validate's verdict and
      reason;
    - every error message is one line of valid UTF-8 (it goes to the client);
    - a valid entry has the documented field limits;
    - the published event is one msgpack value that msgpack-c (what
      consumers use) unpacks, and that zb_json_text_from_msgpack renders
      (what zb-consumer and zbctl print);
    - the event written from the body's bytes is the same value as the one
      packed from the trees;
    - differential, the broker's fast path (event.c zb_entry_parse_packed,
      broker.c s_pass_fast) against the reference above: on every entry of a
      valid body it accepts exactly when zb_entry_parse does, with the same
      fields, the same detail and resources bytes and the same written
      event; and when it reads an array of accepted entries that ends the
      body (what makes the broker skip zb_msgpack_validate), the body is
      valid. */

#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "../../broker/decode.h"
#include "event.h"
#include "fuzz.h"
#include "rfc3339.h"
#include "zb.h"

//  msgpack-c's unpacker stack: the deepest level of a container it accepts
#define MSGPACK_C_DEPTH 32

static msgpack_zone s_zone;
static msgpack_sbuffer s_buf;
static msgpack_packer s_pk;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    if (!msgpack_zone_init (&s_zone, 4096))
        abort ();
    msgpack_sbuffer_init (&s_buf);
    msgpack_packer_init (&s_pk, &s_buf, msgpack_sbuffer_write);
    return 0;
}

//  Same value, same type, same bytes (floats compared bit for bit).
static bool
s_same (const msgpack_object *a, const msgpack_object *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
        case MSGPACK_OBJECT_NIL:
            return true;
        case MSGPACK_OBJECT_BOOLEAN:
            return a->via.boolean == b->via.boolean;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            return a->via.u64 == b->via.u64;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return a->via.i64 == b->via.i64;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            return memcmp (&a->via.f64, &b->via.f64, sizeof (double)) == 0;
        case MSGPACK_OBJECT_STR:
            return a->via.str.size == b->via.str.size
                && (a->via.str.size == 0
                    || memcmp (a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0);
        case MSGPACK_OBJECT_BIN:
            return a->via.bin.size == b->via.bin.size
                && (a->via.bin.size == 0
                    || memcmp (a->via.bin.ptr, b->via.bin.ptr, a->via.bin.size) == 0);
        case MSGPACK_OBJECT_EXT:
            return a->via.ext.type == b->via.ext.type && a->via.ext.size == b->via.ext.size
                && (a->via.ext.size == 0
                    || memcmp (a->via.ext.ptr, b->via.ext.ptr, a->via.ext.size) == 0);
        case MSGPACK_OBJECT_ARRAY:
            if (a->via.array.size != b->via.array.size)
                return false;
            for (uint32_t i = 0; i < a->via.array.size; i++)
                if (!s_same (&a->via.array.ptr [i], &b->via.array.ptr [i]))
                    return false;
            return true;
        case MSGPACK_OBJECT_MAP:
            if (a->via.map.size != b->via.map.size)
                return false;
            for (uint32_t i = 0; i < a->via.map.size; i++)
                if (!s_same (&a->via.map.ptr [i].key, &b->via.map.ptr [i].key)
                ||  !s_same (&a->via.map.ptr [i].val, &b->via.map.ptr [i].val))
                    return false;
            return true;
    }
    return false;
}

//  Nesting depth of obj, every container counted (the top value is level 1):
//  msgpack-c refuses a container, even an empty one, at a level above
//  MSGPACK_EMBED_STACK_SIZE (unpack_template.h start_container).
static size_t
s_depth (const msgpack_object *obj)
{
    size_t deepest = 0;
    if (obj->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < obj->via.array.size; i++) {
            size_t d = s_depth (&obj->via.array.ptr [i]);
            if (d > deepest)
                deepest = d;
        }
        return deepest + 1;
    }
    if (obj->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < obj->via.map.size; i++) {
            size_t k = s_depth (&obj->via.map.ptr [i].key);
            size_t v = s_depth (&obj->via.map.ptr [i].val);
            if (k > deepest)
                deepest = k;
            if (v > deepest)
                deepest = v;
        }
        return deepest + 1;
    }
    return 0;
}

//  The decoder against msgpack-c, on a body the validator accepted.
static void
s_differential (const uint8_t *data, size_t size, int rc, const msgpack_object *root)
{
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next (&result, (const char *) data, size, &off);
    bool theirs = ret == MSGPACK_UNPACK_SUCCESS && off == size;
    if (theirs) {
        FUZZ_CHECK (rc == 0, "msgpack-c unpacks the body, zb_msgpack_decode says %d", rc);
        FUZZ_CHECK (s_same (&result.data, root), "zb_msgpack_decode built another tree than msgpack-c");
    }
    else
    if (rc == 0 && s_depth (root) <= MSGPACK_C_DEPTH)
        FUZZ_CHECK (false, "zb_msgpack_decode accepts a body msgpack-c refuses "
                    "(unpack %d, %zu of %zu bytes)", (int) ret, off, size);
    msgpack_unpacked_destroy (&result);
}

//  A published event: one value, unpacked by msgpack-c, printable as JSON.
static void
s_check_event (const char *data, size_t size)
{
    char err [256] = "";
    FUZZ_CHECK (zb_msgpack_validate (data, size, err, sizeof err) == 0,
                "published event is not one msgpack value: %s", err);
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next (&result, data, size, &off);
    FUZZ_CHECK (ret == MSGPACK_UNPACK_SUCCESS && off == size,
                "msgpack-c cannot unpack a published event (%d, %zu of %zu bytes)",
                (int) ret, off, size);
    FUZZ_CHECK (result.data.type == MSGPACK_OBJECT_MAP && result.data.via.map.size == 9,
                "published event is not a map of 9 keys");
    char *text = zb_json_text_from_msgpack (&result.data, err, sizeof err);
    FUZZ_CHECK (text || (fuzz_known ("detail-nul-key") && strstr (err, "NUL character")),
                "a published event cannot be printed as JSON: %s", err);
    free (text);
    msgpack_unpacked_destroy (&result);
}

static void
s_entry (const msgpack_object *obj, const uint8_t *data, size_t size)
{
    char err [256] = "";                //  the broker's ZB_ERRLEN
    zb_entry_t entry;
    zb_code_t code = zb_entry_parse (obj, &entry, err, sizeof err);
    if (code != ZB_OK) {
        FUZZ_CHECK (fuzz_message_ok (err, sizeof err),
                    "entry error (%s) is not one line of UTF-8", zb_code_name (code));
        return;
    }
    zb_str_t when = ZB_STR ("2026-11-26T17:15:01Z");
    if (entry.time.ptr) {
        char time_text [ZB_TIME_MAX];
        int len = zb_time_normalize (entry.time.ptr, entry.time.len, time_text);
        FUZZ_CHECK (len > 0 && (size_t) len == entry.time_utc_len
                    && memcmp (time_text, entry.time_utc, entry.time_utc_len) == 0,
                    "zb_entry_parse normalized the time otherwise than zb_time_normalize");
        when = (zb_str_t) { entry.time_utc, entry.time_utc_len };
    }
    FUZZ_CHECK (entry.source.len >= 1 && entry.source.len <= ZB_MAX_SOURCE
                && zb_utf8_valid (entry.source.ptr, entry.source.len)
                && !zb_utf8_has_control (entry.source.ptr, entry.source.len),
                "accepted source breaks its rules (%zu bytes)", entry.source.len);
    FUZZ_CHECK (entry.detail_type.len >= 1 && entry.detail_type.len <= ZB_MAX_DETAIL_TYPE
                && entry.detail_type.ptr [0] != ZB_RESERVED_PREFIX
                && zb_utf8_valid (entry.detail_type.ptr, entry.detail_type.len)
                && !zb_utf8_has_control (entry.detail_type.ptr, entry.detail_type.len),
                "accepted detail-type breaks its rules (%zu bytes)", entry.detail_type.len);
    FUZZ_CHECK (entry.detail && entry.detail->type == MSGPACK_OBJECT_MAP,
                "accepted detail is not a map");
    FUZZ_CHECK (!entry.idem_key.ptr
                || (entry.idem_key.len >= 1 && entry.idem_key.len <= ZB_MAX_IDEM_KEY),
                "accepted idempotency-key of %zu bytes", entry.idem_key.len);

    zb_stamp_t stamp = {
        .id = ZB_STR ("5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21"),
        .time = when,
        .account = ZB_STR (ZB_DEFAULT_ACCOUNT),
        .region = ZB_STR (ZB_DEFAULT_REGION),
    };
    //  The broker's way (broker.c s_pass_entry): detail and resources copied
    //  as the body holds them, the envelope written without a packer
    entry.detail_bytes.ptr = zb_msgpack_value_bytes (entry.detail, data, size,
                                                     &entry.detail_bytes.len);
    if (entry.resources)
        entry.resources_bytes.ptr = zb_msgpack_value_bytes (entry.resources, data, size,
                                                            &entry.resources_bytes.len);
    size_t event_size = zb_event_size (&entry, &stamp);
    char *event = (char *) malloc (event_size);
    FUZZ_CHECK (event, "out of memory");
    zb_event_write (event, &entry, &stamp);
    s_check_event (event, event_size);
    //  ... the same event as packing the trees again
    msgpack_sbuffer_clear (&s_buf);
    entry.detail_bytes = (zb_str_t) { NULL, 0 };
    entry.resources_bytes = (zb_str_t) { NULL, 0 };
    zb_event_pack (&s_pk, &entry, &stamp);
    s_check_event (s_buf.data, s_buf.size);
    msgpack_unpacked a, b;
    msgpack_unpacked_init (&a);
    msgpack_unpacked_init (&b);
    size_t off_a = 0, off_b = 0;
    FUZZ_CHECK (msgpack_unpack_next (&a, event, event_size, &off_a) == MSGPACK_UNPACK_SUCCESS
                && msgpack_unpack_next (&b, s_buf.data, s_buf.size, &off_b) == MSGPACK_UNPACK_SUCCESS
                && s_same (&a.data, &b.data),
                "the event written from the body's bytes differs from the packed one");
    msgpack_unpacked_destroy (&a);
    msgpack_unpacked_destroy (&b);
    free (event);
}

static bool
s_same_str (zb_str_t a, zb_str_t b)
{
    return a.ptr == b.ptr && a.len == b.len;
}

//  The fast path against zb_entry_parse on one entry of a valid body:
//  [data, data+size) from the entry on, obj its tree.
static void
s_fast_entry (const msgpack_object *obj, const uint8_t *data, size_t size)
{
    char err [256] = "";
    zb_entry_t ref, fast;
    zb_code_t code = zb_entry_parse (obj, &ref, err, sizeof err);
    size_t used = 0;
    bool ok = zb_entry_parse_packed ((const char *) data, size, &fast, &used);
    FUZZ_CHECK (ok == (code == ZB_OK), "fast path says %d, zb_entry_parse %s (%s)", (int) ok,
                zb_code_name (code), err);
    if (!ok)
        return;
    FUZZ_CHECK (used == zb_msgpack_value_size (data, size), "fast path entry size %zu", used);
    ref.detail_bytes.ptr = zb_msgpack_value_bytes (ref.detail, data, used, &ref.detail_bytes.len);
    if (ref.resources)
        ref.resources_bytes.ptr = zb_msgpack_value_bytes (ref.resources, data, used,
                                                          &ref.resources_bytes.len);
    FUZZ_CHECK (s_same_str (ref.source, fast.source) && s_same_str (ref.detail_type, fast.detail_type)
                && s_same_str (ref.time, fast.time) && s_same_str (ref.idem_key, fast.idem_key)
                && ref.time_utc_len == fast.time_utc_len
                && memcmp (ref.time_utc, fast.time_utc, ref.time_utc_len) == 0
                && s_same_str (ref.detail_bytes, fast.detail_bytes)
                && s_same_str (ref.resources_bytes, fast.resources_bytes)
                && !fast.detail && !fast.resources,
                "fast path fields differ from zb_entry_parse's");
    zb_stamp_t stamp = {
        .id = ZB_STR ("5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21"),
        .time = ZB_STR ("2026-11-26T17:15:01Z"),
        .account = ZB_STR (ZB_DEFAULT_ACCOUNT),
        .region = ZB_STR (ZB_DEFAULT_REGION),
    };
    size_t n = zb_event_size (&ref, &stamp);
    FUZZ_CHECK (n == zb_event_size (&fast, &stamp), "fast path event size differs");
    char *a = (char *) malloc (n), *b = (char *) malloc (n);
    FUZZ_CHECK (a && b, "out of memory");
    zb_event_write (a, &ref, &stamp);
    zb_event_write (b, &fast, &stamp);
    FUZZ_CHECK (memcmp (a, b, n) == 0, "fast path event bytes differ");
    free (a);
    free (b);
}

//  As broker.c s_pass_fast: an array of entries all accepted by the fast
//  path, ending the body. True when it is.
static bool
s_fast_body (const uint8_t *data, size_t size)
{
    uint32_t count;
    size_t pos;
    if (!zb_entries_header_packed ((const char *) data, size, &count, &pos))
        return false;
    for (uint32_t i = 0; i < count; i++) {
        zb_entry_t entry;
        size_t used;
        if (!zb_entry_parse_packed ((const char *) data + pos, size - pos, &entry, &used))
            return false;
        pos += used;
    }
    return pos == size;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err [256] = "";
    msgpack_object root;
    //  As broker.c s_decode_body: an entry may nest ZB_MAX_DEPTH levels, the
    //  body's array is one more; deeper containers are never looked at
    int rc = zb_msgpack_decode (data, size, ZB_MAX_DEPTH + 2, &s_zone, &root, err, sizeof err);
    if (rc != 0)
        FUZZ_CHECK (fuzz_message_ok (err, sizeof err), "decode error is not one line of UTF-8");
    //  The decoder checks as it builds: the validator's verdict and reason
    char verr [256] = "";
    int vrc = zb_msgpack_validate (data, size, verr, sizeof verr);
    FUZZ_CHECK (vrc == (rc == 0 ? 0 : -1), "zb_msgpack_validate says %d, zb_msgpack_decode %d",
                vrc, rc);
    if (rc == -1)
        FUZZ_CHECK (strcmp (err, verr) == 0, "decode and validate give other reasons");
    //  Only a body every count of which is backed by bytes is safe for msgpack-c
    if (rc == 0 || vrc == 0)
        s_differential (data, size, rc, &root);
    if (rc == 0 && root.type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < root.via.array.size; i++)
            s_entry (&root.via.array.ptr [i], data, size);
    //  The fast path
    if (s_fast_body (data, size))
        FUZZ_CHECK (vrc == 0, "the fast path reads a body zb_msgpack_validate refuses: %s", verr);
    if (rc == 0 && root.type == MSGPACK_OBJECT_ARRAY) {
        msgpack_object_type type;
        uint32_t count;
        size_t pos = zb_msgpack_peek (data, size, &type, &count);
        FUZZ_CHECK (type == MSGPACK_OBJECT_ARRAY && count == root.via.array.size, "peek");
        for (uint32_t i = 0; i < count; i++) {
            s_fast_entry (&root.via.array.ptr [i], data + pos, size - pos);
            pos += zb_msgpack_value_size (data + pos, size - pos);
        }
        FUZZ_CHECK (pos == size, "entries end at %zu of %zu", pos, size);
    }
    msgpack_zone_clear (&s_zone);
    //  Do not keep a huge buffer from one input to the next
    if (s_buf.alloc > 1 << 20) {
        msgpack_sbuffer_destroy (&s_buf);
        msgpack_sbuffer_init (&s_buf);
    }
    return 0;
}
