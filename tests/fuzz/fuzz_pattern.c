/*  fuzz_pattern.c - event patterns (common/pattern.h): the compiler
    (zb_patterns_add of the input's pattern text) and the matcher
    (zb_patterns_match of fixed events, and of an event the input brings).

    Input: the pattern's JSON text, optionally followed by a NUL byte and an
    event as JSON text (matched too when it is an object: the fuzzer can
    shape events that reach deep into the matcher).

    Each input builds a set with a fixed pattern "fixed" ({"source":
    ["store-7"]}), adds the input as "fuzz", then as "fuzz2", then removes
    "fuzz". Invariants (a violation traps):
    - a refused pattern gives a one-line UTF-8 message and leaves the set as
      it was (size 1);
    - matching returns each name once, only names in the set;
    - another pattern never changes whether "fixed" matches an event;
    - the same text under two names matches the same events;
    - matching twice gives the same answer (the matcher keeps scratch state);
    - removing "fuzz" changes nothing for the others;
    - zb_patterns_match_packed on the packed event gives the same names as
      zb_patterns_match on the unpacked one; on the raw bytes after the NUL
      (whatever they are) it returns only names of the set, each once, and
      agrees with zb_patterns_match when msgpack_unpack takes those bytes. */

#include <json-c/json.h>
#include <msgpack.h>
#include <stdlib.h>

#include "codec.h"
#include "fuzz.h"
#include "pattern.h"

#define FIXED_EVENTS 4
#define streq(a, b) (strcmp ((a), (b)) == 0)
#define MAX_NAMES 8

static const char *const s_event_text [FIXED_EVENTS] = {
    ("{\"version\":\"0\",\"id\":\"5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21\",\"detail-type\":\"sales-events\","
    "\"source\":\"store-7\",\"account\":\"000000000000\",\"time\":\"2026-11-26T17:15:01Z\","
    "\"region\":\"local\",\"resources\":[\"arn:store:7\"],\"detail\":{\"sales\":12.5,\"qty\":3,"
    "\"items\":[{\"sku\":\"A-1\",\"qty\":3,\"price\":9.99},{\"sku\":\"b-2\",\"qty\":0,\"tags\":[]}],"
    "\"ip\":\"10.0.0.7\",\"ip6\":\"2001:db8::1\",\"path\":\"/usr/lib/app.jar\",\"n\":null,"
    "\"ok\":true,\"name\":\"Stra\\u00dfe \\u0130stanbul\",\"big\":18446744073709551615,\"neg\":-42}}"),

    ("{\"version\":\"0\",\"id\":\"00000000-0000-4000-8000-000000000002\",\"detail-type\":\"inventory-events\","
    "\"source\":\"warehouse-1\",\"account\":\"000000000000\",\"time\":\"2026-11-26T17:15:02Z\","
    "\"region\":\"eu-west-1\",\"resources\":[],\"detail\":{\"sku\":\"A-1\",\"level\":-3,"
    "\"location\":{\"aisle\":\"7\",\"bins\":[[1,2],[3]],\"empty\":{}},\"note\":\"\",\"f\":0.1}}"),

    "{\"source\":\"store-7\",\"detail-type\":\"x\",\"detail\":{}}",

    ("{\"source\":[\"store-7\",\"store-8\"],\"detail\":{\"items\":[{\"sku\":\"A-1\",\"qty\":0},"
    "{\"sku\":\"B-2\",\"qty\":3}],\"sales\":\"12.5\"}}"),
};

static msgpack_unpacked s_events [FIXED_EVENTS];
static msgpack_sbuffer s_event_buf [FIXED_EVENTS];
static bool s_fixed_matches [FIXED_EVENTS];
static msgpack_sbuffer s_input_buf;

//  JSON text -> packed msgpack in buf -> unpacked in result; false when the
//  text is not a JSON value zbridge takes.
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
    if (rc != 0)
        return false;
    size_t off = 0;
    return msgpack_unpack_next (result, buf->data, buf->size, &off) == MSGPACK_UNPACK_SUCCESS;
}

static zb_patterns_t *
s_fixed_set (void)
{
    zb_patterns_t *set = zb_patterns_new ();
    FUZZ_CHECK (set, "zb_patterns_new");
    static const char fixed [] = "{\"source\": [\"store-7\"]}";
    char err [256];
    FUZZ_CHECK (zb_patterns_add (set, "fixed", fixed, sizeof fixed - 1, err, sizeof err) == 0,
                "the fixed pattern is refused: %s", err);
    return set;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    zb_patterns_t *set = s_fixed_set ();
    for (int e = 0; e < FIXED_EVENTS; e++) {
        msgpack_sbuffer_init (&s_event_buf [e]);
        msgpack_unpacked_init (&s_events [e]);
        if (!s_event_from_json (s_event_text [e], strlen (s_event_text [e]),
                                &s_event_buf [e], &s_events [e])) {
            fprintf (stderr, "fuzz_pattern: fixed event %d does not parse\n", e);
            abort ();
        }
        const char *names [MAX_NAMES];
        s_fixed_matches [e] = zb_patterns_match (set, &s_events [e].data, names, MAX_NAMES) == 1;
    }
    zb_patterns_destroy (&set);
    //  {"source": ["store-7"]} matches events 0, 2 and 3 (an array is crossed)
    if (!s_fixed_matches [0] || s_fixed_matches [1] || !s_fixed_matches [2] || !s_fixed_matches [3]) {
        fprintf (stderr, "fuzz_pattern: the fixed pattern does not match as expected\n");
        abort ();
    }
    msgpack_sbuffer_init (&s_input_buf);
    return 0;
}

//  Which of "fixed", "fuzz", "fuzz2" matched; traps on anything else.
enum { FIXED = 1, FUZZ = 2, FUZZ2 = 4 };

static unsigned s_match (zb_patterns_t *set, const msgpack_object *event);

//  The names zb_patterns_match_packed gives for the packed bytes, as bits
static unsigned
s_match_packed (zb_patterns_t *set, const void *data, size_t size)
{
    const char *names [MAX_NAMES];
    size_t n = zb_patterns_match_packed (set, data, size, names, MAX_NAMES);
    FUZZ_CHECK (n <= zb_patterns_size (set), "packed: %zu matches from %zu patterns", n,
                zb_patterns_size (set));
    unsigned seen = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned bit = streq (names [i], "fixed") ? FIXED
                     : streq (names [i], "fuzz") ? FUZZ
                     : streq (names [i], "fuzz2") ? FUZZ2 : 0;
        FUZZ_CHECK (bit, "packed: matched a name not in the set: %s", names [i]);
        FUZZ_CHECK (!(seen & bit), "packed: %s matched twice", names [i]);
        seen |= bit;
    }
    return seen;
}

//  Raw bytes: never a crash; the same answer as unpacked when they unpack
static void
s_match_raw (zb_patterns_t *set, const uint8_t *data, size_t size)
{
    unsigned packed = s_match_packed (set, data, size);
    //  msgpack-c allocates what an array 32 or map 32 header claims before
    //  reading it (up to 4G entries): compare only without those bytes
    if (memchr (data, 0xdd, size) || memchr (data, 0xdf, size))
        return;
    msgpack_unpacked raw;
    msgpack_unpacked_init (&raw);
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (&raw, (const char *) data, size, &off);
    if ((rc == MSGPACK_UNPACK_SUCCESS || rc == MSGPACK_UNPACK_EXTRA_BYTES)
    &&  raw.data.type == MSGPACK_OBJECT_MAP)
        FUZZ_CHECK (s_match (set, &raw.data) == packed,
                    "zb_patterns_match_packed differs from zb_patterns_match on raw bytes");
    msgpack_unpacked_destroy (&raw);
}

static unsigned
s_match (zb_patterns_t *set, const msgpack_object *event)
{
    const char *names [MAX_NAMES];
    size_t n = zb_patterns_match (set, event, names, MAX_NAMES);
    FUZZ_CHECK (n <= zb_patterns_size (set), "%zu matches from %zu patterns", n,
                zb_patterns_size (set));
    unsigned seen = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned bit = streq (names [i], "fixed") ? FIXED
                     : streq (names [i], "fuzz") ? FUZZ
                     : streq (names [i], "fuzz2") ? FUZZ2 : 0;
        FUZZ_CHECK (bit, "matched a name not in the set: %s", names [i]);
        FUZZ_CHECK (!(seen & bit), "%s matched twice", names [i]);
        seen |= bit;
    }
    unsigned again = 0;
    n = zb_patterns_match (set, event, names, MAX_NAMES);
    for (size_t i = 0; i < n; i++)
        again |= streq (names [i], "fixed") ? FIXED : streq (names [i], "fuzz") ? FUZZ : FUZZ2;
    FUZZ_CHECK (again == seen, "a second match differs: %x then %x", seen, again);
    return seen;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    const uint8_t *nul = (const uint8_t *) memchr (data, 0, size);
    size_t pattern_len = nul ? (size_t) (nul - data) : size;

    //  Events: the fixed ones, and the input's when it brings one
    const msgpack_object *events [FIXED_EVENTS + 1];
    const msgpack_sbuffer *packed [FIXED_EVENTS + 1];
    int expected [FIXED_EVENTS + 1];        //  "fixed" matches: 1, 0, or -1 unknown
    int count = 0;
    for (int e = 0; e < FIXED_EVENTS; e++) {
        events [count] = &s_events [e].data;
        packed [count] = &s_event_buf [e];
        expected [count++] = s_fixed_matches [e];
    }
    msgpack_unpacked input_event;
    msgpack_unpacked_init (&input_event);
    if (nul && s_event_from_json ((const char *) nul + 1, size - pattern_len - 1,
                                  &s_input_buf, &input_event)
    &&  input_event.data.type == MSGPACK_OBJECT_MAP) {
        events [count] = &input_event.data;
        packed [count] = &s_input_buf;
        expected [count++] = -1;
    }

    zb_patterns_t *set = s_fixed_set ();
    unsigned before [FIXED_EVENTS + 1];
    for (int e = 0; e < count; e++) {
        before [e] = s_match (set, events [e]);
        if (expected [e] == -1)
            expected [e] = before [e] == FIXED;
    }
    char err [256] = "";
    int rc = zb_patterns_add (set, "fuzz", text, pattern_len, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK (rc == -1, "zb_patterns_add returned %d", rc);
        bool terminated = memchr (err, 0, sizeof err) != NULL;
        FUZZ_CHECK (fuzz_message_ok (err, sizeof err)
                    || (fuzz_known ("pattern-message-control")
                        && terminated && zb_utf8_valid (err, strlen (err)))
                    || (fuzz_known ("pattern-message-utf8")
                        && terminated && strstr (err, "invalid escape \"\\")),
                    "pattern error is not one line of UTF-8: %s", err);
        FUZZ_CHECK (zb_patterns_size (set) == 1, "a refused pattern changed the set");
        for (int e = 0; e < count; e++)
            FUZZ_CHECK (s_match (set, events [e]) == before [e],
                        "a refused pattern changed event %d's matches", e);
    }
    else {
        FUZZ_CHECK (zb_patterns_size (set) == 2, "size %zu after one add", zb_patterns_size (set));
        unsigned with_fuzz [FIXED_EVENTS + 1];
        for (int e = 0; e < count; e++) {
            with_fuzz [e] = s_match (set, events [e]);
            FUZZ_CHECK (!!(with_fuzz [e] & FIXED) == expected [e],
                        "adding a pattern changed whether \"fixed\" matches event %d", e);
        }
        err [0] = 0;
        FUZZ_CHECK (zb_patterns_add (set, "fuzz2", text, pattern_len, err, sizeof err) == 0,
                    "the same text refused under a second name: %s", err);
        for (int e = 0; e < count; e++) {
            unsigned m = s_match (set, events [e]);
            FUZZ_CHECK (s_match_packed (set, packed [e]->data, packed [e]->size) == m,
                        "zb_patterns_match_packed differs from zb_patterns_match on event %d", e);
            FUZZ_CHECK (!!(m & FUZZ) == !!(m & FUZZ2),
                        "the same pattern under two names: fuzz %d, fuzz2 %d on event %d",
                        !!(m & FUZZ), !!(m & FUZZ2), e);
            FUZZ_CHECK ((m & (FIXED | FUZZ)) == with_fuzz [e],
                        "a second copy changed the others' matches on event %d", e);
        }
        if (nul)
            s_match_raw (set, nul + 1, size - pattern_len - 1);
        FUZZ_CHECK (zb_patterns_remove (set, "fuzz") == 0, "remove of an added pattern");
        FUZZ_CHECK (zb_patterns_remove (set, "fuzz") == -1, "second remove");
        for (int e = 0; e < count; e++) {
            unsigned m = s_match (set, events [e]);
            FUZZ_CHECK (!(m & FUZZ), "a removed pattern still matches");
            FUZZ_CHECK (!!(m & FUZZ2) == !!(with_fuzz [e] & FUZZ)
                        && !!(m & FIXED) == expected [e],
                        "removing a pattern changed the others' matches on event %d", e);
        }
    }
    zb_patterns_destroy (&set);
    FUZZ_CHECK (set == NULL, "zb_patterns_destroy left the pointer set");
    msgpack_unpacked_destroy (&input_event);
    if (s_input_buf.alloc > 1 << 20) {
        msgpack_sbuffer_destroy (&s_input_buf);
        msgpack_sbuffer_init (&s_input_buf);
    }
    return 0;
}
