/*  fuzz_transform.c - input transformers (common/transform.h), as RULE-PUT's
    "transform" reaches them: the compiler, then rendering against events.

    Input: the transformer's JSON text, optionally followed by a NUL byte and
    an event as JSON text (rendered too when it parses).

    Invariants (a violation traps):
    - a refused transformer gives a one-line UTF-8 message;
    - an accepted one renders every fixed event, or fails with a message;
    - the output is exactly one msgpack value, a string when the template is
      not JSON;
    - rendering twice gives the same bytes (the scratch buffer is reused). */

#include <json-c/json.h>
#include <msgpack.h>
#include <stdlib.h>

#include "codec.h"
#include "fuzz.h"
#include "transform.h"

#define FIXED_EVENTS 2

static const char *const s_event_text [FIXED_EVENTS] = {
    ("{\"version\":\"0\",\"id\":\"5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21\",\"detail-type\":\"sales-events\","
     "\"source\":\"store-7\",\"account\":\"000000000000\",\"time\":\"2026-11-26T17:15:01Z\","
     "\"region\":\"local\",\"resources\":[\"arn:store:7\"],\"detail\":{\"sales\":12.5,\"qty\":3,"
     "\"items\":[{\"sku\":\"A-1\",\"qty\":3},{\"sku\":\"b\\\"2\\n\"}],\"n\":null,\"ok\":true,"
     "\"big\":18446744073709551615,\"name\":\"Stra\\u00dfe\"}}"),
    "{\"detail\":{}}",
};

static msgpack_sbuffer s_buf [FIXED_EVENTS + 1];
static msgpack_unpacked s_events [FIXED_EVENTS + 1];
static msgpack_sbuffer s_out, s_again;

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
    for (int e = 0; e < FIXED_EVENTS; e++)
        if (!s_event_from_json (s_event_text [e], strlen (s_event_text [e]), &s_buf [e], &s_events [e])) {
            fprintf (stderr, "fuzz_transform: fixed event %d does not parse\n", e);
            abort ();
        }
    msgpack_sbuffer_init (&s_out);
    msgpack_sbuffer_init (&s_again);
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
    char err [256] = "";
    msgpack_packer pk;
    msgpack_sbuffer_clear (&s_out);
    msgpack_packer_init (&pk, &s_out, msgpack_sbuffer_write);
    if (zb_transform_render (t, event, &context, &pk, err, sizeof err) != 0) {
        FUZZ_CHECK (fuzz_message_ok (err, sizeof err), "render error is not one line: %s", err);
        return;
    }
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
    }
    return 0;
}
