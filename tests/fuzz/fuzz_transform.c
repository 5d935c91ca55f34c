/*  fuzz_transform.c - input transformers (common/transform.h), as RULE-PUT's
    "transform" reaches them: the compiler, then rendering against events.

    Input: the transformer's JSON text, optionally followed by a NUL byte and
    an event: as JSON text, or, when its first byte is 0x01, as msgpack bytes
    (any value, JSON can express or not: float32, bin, ext, NaN, duplicate
    keys...). The event is rendered too when it parses.

    Fixed events: a JSON sales event, an empty one, and one packed by hand
    whose detail holds what JSON cannot (paths $.detail.f32, .bin, .ext,
    .nan, .dup, .intkey, .nulkey, .badutf8, .deep, .ctl, .big, .neg0).

    Invariants (a violation traps):
    - a refused transformer gives a one-line UTF-8 message;
    - an accepted one renders every fixed event, or fails with a message;
    - the output is exactly one msgpack value, a string when the template is
      not JSON;
    - rendering twice gives the same bytes (the scratch buffer is reused);
    - differential: zb_transform_render (the compiled skeleton) and
      zb_transform_render_reference (the original JSON text + json-c path)
      give the same result, bytes and message, and the compiled path never
      hands a render it should have made to the reference path
      (zb_transform_fallbacks stays 0). */

#include <json-c/json.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>

#include "codec.h"
#include "fuzz.h"
#include "transform.h"

#define FIXED_EVENTS 3

static const char *const s_event_text [2] = {
    ("{\"version\":\"0\",\"id\":\"5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21\",\"detail-type\":\"sales-events\","
     "\"source\":\"store-7\",\"account\":\"000000000000\",\"time\":\"2026-11-26T17:15:01Z\","
     "\"region\":\"local\",\"resources\":[\"arn:store:7\"],\"detail\":{\"sales\":12.5,\"qty\":3,"
     "\"items\":[{\"sku\":\"A-1\",\"qty\":3},{\"sku\":\"b\\\"2\\n\"}],\"n\":null,\"ok\":true,"
     "\"big\":18446744073709551615,\"name\":\"Stra\\u00dfe\"}}"),
    "{\"detail\":{}}",
};

static msgpack_sbuffer s_buf [FIXED_EVENTS + 1];
static msgpack_unpacked s_events [FIXED_EVENTS + 1];
static msgpack_sbuffer s_out, s_again, s_ref;

//  The hand-packed event (fixed event 2)
static void
s_pack_str (msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}
#define S_STR(pk, s) s_pack_str ((pk), (s), sizeof (s) - 1)

static void
s_pack_odd_event (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    S_STR (pk, "source");
    S_STR (pk, "store-7");
    S_STR (pk, "detail");
    msgpack_pack_map (pk, 13);
    S_STR (pk, "f32");
    msgpack_pack_float (pk, 0.1f);
    S_STR (pk, "bin");
    msgpack_pack_bin (pk, 1);
    msgpack_pack_bin_body (pk, "b", 1);
    S_STR (pk, "ext");
    msgpack_pack_ext (pk, 3, 1);
    msgpack_pack_ext_body (pk, "e", 1);
    S_STR (pk, "nan");
    msgpack_pack_double (pk, NAN);
    S_STR (pk, "dup");
    msgpack_pack_map (pk, 2);
    S_STR (pk, "a");
    msgpack_pack_int (pk, 1);
    S_STR (pk, "a");
    msgpack_pack_int (pk, 2);
    S_STR (pk, "intkey");
    msgpack_pack_map (pk, 1);
    msgpack_pack_int (pk, 1);
    msgpack_pack_true (pk);
    S_STR (pk, "nulkey");
    msgpack_pack_map (pk, 1);
    S_STR (pk, "a\0b");
    msgpack_pack_nil (pk);
    S_STR (pk, "badutf8");
    S_STR (pk, "x\xc3");
    S_STR (pk, "deep");
    for (int i = 0; i < 28; i++)
        msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 0);
    S_STR (pk, "ctl");
    msgpack_pack_array (pk, 2);
    S_STR (pk, "\x01\b\f\x1f\x7f\"\\/\xc2\x80");
    msgpack_pack_float (pk, 16777216.0f);
    S_STR (pk, "big");
    msgpack_pack_map (pk, 20);
    for (int i = 0; i < 20; i++) {
        char key [8];
        int n = snprintf (key, sizeof key, "k%d", i);
        s_pack_str (pk, key, (size_t) n);
        msgpack_pack_int (pk, -i);
    }
    S_STR (pk, "neg0");
    msgpack_pack_double (pk, -0.0);
    S_STR (pk, "u64");
    msgpack_pack_uint64 (pk, UINT64_MAX);
}

static bool
s_event_from_json (const char *text, size_t len, msgpack_sbuffer *buf, msgpack_unpacked *result)
{
    char err [256];
    json_object *json = zb_json_parse (text, len, err, sizeof err);
    if (!json)
        return false;
    msgpack_sbuffer_clear (buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buf, msgpack_sbuffer_write);
    int rc = zb_json_to_msgpack (json, &pk, err, sizeof err);
    json_object_put (json);
    size_t off = 0;
    return rc == 0
        && msgpack_unpack_next (result, buf->data, buf->size, &off) == MSGPACK_UNPACK_SUCCESS;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    for (int e = 0; e <= FIXED_EVENTS; e++) {
        msgpack_sbuffer_init (&s_buf [e]);
        msgpack_unpacked_init (&s_events [e]);
    }
    msgpack_packer pk;
    msgpack_packer_init (&pk, &s_buf [2], msgpack_sbuffer_write);
    s_pack_odd_event (&pk);
    size_t off = 0;
    if (msgpack_unpack_next (&s_events [2], s_buf [2].data, s_buf [2].size, &off)
        != MSGPACK_UNPACK_SUCCESS) {
        fprintf (stderr, "fuzz_transform: fixed event 2 does not unpack\n");
        abort ();
    }
    for (int e = 0; e < 2; e++)
        if (!s_event_from_json (s_event_text [e], strlen (s_event_text [e]), &s_buf [e], &s_events [e])) {
            fprintf (stderr, "fuzz_transform: fixed event %d does not parse\n", e);
            abort ();
        }
    msgpack_sbuffer_init (&s_out);
    msgpack_sbuffer_init (&s_again);
    msgpack_sbuffer_init (&s_ref);
    return 0;
}

static void
s_render (zb_transform_t *t, const msgpack_object *event)
{
    static const zb_transform_context_t context = {
        .rule_name = { "fuzz", 4 },
        .rule_arn = { "arn:zbridge:events:local:0:rule/fuzz", 36 },
        .ingestion_time = { "2026-11-26T17:15:02Z", 20 },
    };
    char err [256] = "", rerr [256] = "";
    msgpack_packer pk;
    msgpack_sbuffer_clear (&s_out);
    msgpack_packer_init (&pk, &s_out, msgpack_sbuffer_write);
    int rc = zb_transform_render (t, event, &context, &pk, err, sizeof err);
    //  Differential: the reference renderer agrees on everything
    msgpack_sbuffer_clear (&s_ref);
    msgpack_packer_init (&pk, &s_ref, msgpack_sbuffer_write);
    int rrc = zb_transform_render_reference (t, event, &context, &pk, rerr, sizeof rerr);
    FUZZ_CHECK (rc == rrc, "render %d, reference %d (%s / %s)", rc, rrc, err, rerr);
    FUZZ_CHECK (zb_transform_fallbacks (t) == 0, "the compiled path gave up a render (%s)",
                zb_transform_is_json (t) ? "skeleton" : "string template");
    if (rc != 0) {
        FUZZ_CHECK (fuzz_message_ok (err, sizeof err), "render error is not one line: %s", err);
        FUZZ_CHECK (strcmp (err, rerr) == 0, "messages differ: %s / %s", err, rerr);
        FUZZ_CHECK (s_out.size == 0, "a failed render packed %zu bytes", s_out.size);
        return;
    }
    FUZZ_CHECK (s_ref.size == s_out.size && memcmp (s_ref.data, s_out.data, s_out.size) == 0,
                "render and reference differ (%zu / %zu bytes)", s_out.size, s_ref.size);
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object out;
    size_t off = 0;
    FUZZ_CHECK (msgpack_unpack (s_out.data, s_out.size, &off, &zone, &out) == MSGPACK_UNPACK_SUCCESS
                && off == s_out.size, "the output is not exactly one msgpack value");
    FUZZ_CHECK (zb_transform_is_json (t) || out.type == MSGPACK_OBJECT_STR,
                "a string template gave a %d", (int) out.type);
    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_clear (&s_again);
    msgpack_packer_init (&pk, &s_again, msgpack_sbuffer_write);
    FUZZ_CHECK (zb_transform_render (t, event, &context, &pk, err, sizeof err) == 0
                && s_again.size == s_out.size && memcmp (s_again.data, s_out.data, s_out.size) == 0,
                "a second render differs");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const uint8_t *nul = (const uint8_t *) memchr (data, 0, size);
    size_t len = nul ? (size_t) (nul - data) : size;
    char err [256] = "";
    zb_transform_t *t = zb_transform_new ((const char *) data, len, err, sizeof err);
    if (!t) {
        FUZZ_CHECK (fuzz_message_ok (err, sizeof err), "refusal is not one line of UTF-8: %s", err);
        return 0;
    }
    for (int e = 0; e < FIXED_EVENTS; e++)
        s_render (t, &s_events [e].data);
    if (nul && size - len > 1 && nul [1] == 0x01) {
        //  A msgpack event (the zone is reused: unpack_next clears it).
        //  msgpack-c allocates what an array 32 or map 32 header claims
        //  before reading it (up to 4G entries): not with those bytes
        size_t off = 0;
        if (!memchr (nul + 2, 0xdd, size - len - 2) && !memchr (nul + 2, 0xdf, size - len - 2)
        &&  msgpack_unpack_next (&s_events [FIXED_EVENTS], (const char *) nul + 2, size - len - 2, &off)
            == MSGPACK_UNPACK_SUCCESS)
            s_render (t, &s_events [FIXED_EVENTS].data);
    }
    else
    if (nul && s_event_from_json ((const char *) nul + 1, size - len - 1,
                                  &s_buf [FIXED_EVENTS], &s_events [FIXED_EVENTS]))
        s_render (t, &s_events [FIXED_EVENTS].data);
    zb_transform_destroy (&t);
    FUZZ_CHECK (t == NULL, "destroy left the pointer set");
    if (s_out.alloc > 1 << 20) {
        msgpack_sbuffer_destroy (&s_out);
        msgpack_sbuffer_init (&s_out);
        msgpack_sbuffer_destroy (&s_again);
        msgpack_sbuffer_init (&s_again);
        msgpack_sbuffer_destroy (&s_ref);
        msgpack_sbuffer_init (&s_ref);
    }
    return 0;
}
