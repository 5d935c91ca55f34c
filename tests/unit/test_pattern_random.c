/*  test_pattern_random.c - property test: for random patterns and random
    events, the compiled matcher (all patterns in one set, so they share the
    index) agrees with the slow reference matcher of tests/support/
    pattern_ref.c, written separately from the definitions (the benchmark
    bench/zb-pattern-bench.c checks its match sets against it too).

    Strings are ASCII here (case folding beyond ASCII: test_pattern_ops.c).
    The seed is fixed (the run is the same every time) and printed;
    ZB_PATTERN_SEED=n runs another. */

#include "pattern_helpers.h"
#include "../support/pattern_ref.h"

//  --------------------------------------------------------------------------
//  Random text

static uint64_t s_rng;

static uint32_t
s_rand (uint32_t n)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (uint32_t) (s_rng % n);
}

typedef struct {
    char *text;
    size_t len, cap;
} s_buf_t;

static void
s_put (s_buf_t *b, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char tmp [256];
    int n = vsnprintf (tmp, sizeof (tmp), format, args);
    va_end (args);
    assert_true (n >= 0 && (size_t) n < sizeof (tmp));
    if (b->len + (size_t) n + 1 > b->cap) {
        b->cap = (b->len + (size_t) n + 1) * 2;
        b->text = realloc (b->text, b->cap);
        assert_non_null (b->text);
    }
    memcpy (b->text + b->len, tmp, (size_t) n + 1);
    b->len += (size_t) n;
}

static const char *s_keys [] = { "a", "b", "c" };
static const char *s_strings [] = { "", "a", "ab", "abc", "b", "ba", "A", "AB", "aB", "x*y", "10.0.0.1", "10.1.2.3", "10.0.0.255" };
static const char *s_numbers [] = { "0", "1", "1.5", "2", "-1", "300", "3e2", "2.0", "-0.5" };
#define N_OF(a) (sizeof (a) / sizeof ((a) [0]))

static void
s_scalar (s_buf_t *b)
{
    uint32_t r = s_rand (10);
    if (r < 5)
        s_put (b, "\"%s\"", s_strings [s_rand (N_OF (s_strings))]);
    else
    if (r < 8)
        s_put (b, "%s", s_numbers [s_rand (N_OF (s_numbers))]);
    else
        s_put (b, "%s", (const char *[]) { "true", "false", "null" } [s_rand (3)]);
}

static void s_event_object (s_buf_t *b, int depth);

static void
s_event_value (s_buf_t *b, int depth)
{
    uint32_t r = s_rand (10);
    if (depth < 3 && r < 3)
        s_event_object (b, depth + 1);
    else
    if (depth < 3 && r < 5) {
        uint32_t n = s_rand (4);
        s_put (b, "[");
        for (uint32_t i = 0; i < n; i++) {
            if (i)
                s_put (b, ", ");
            if (s_rand (2))
                s_event_object (b, depth + 1);
            else
            if (s_rand (4) == 0)
                s_event_value (b, depth + 1);
            else
                s_scalar (b);
        }
        s_put (b, "]");
    }
    else
        s_scalar (b);
}

static void
s_event_object (s_buf_t *b, int depth)
{
    s_put (b, "{");
    bool first = true;
    for (size_t k = 0; k < N_OF (s_keys); k++) {
        if (s_rand (3) == 0)
            continue;
        s_put (b, "%s\"%s\": ", first? "": ", ", s_keys [k]);
        first = false;
        s_event_value (b, depth);
    }
    s_put (b, "}");
}

static void
s_pattern_alt (s_buf_t *b)
{
    const char *s = s_strings [s_rand (N_OF (s_strings))];
    const char *t = s_strings [s_rand (N_OF (s_strings))];
    switch (s_rand (17)) {
        case 0: case 1: s_scalar (b); break;
        case 2: s_put (b, "{\"prefix\": \"%s\"}", s); break;
        case 3: s_put (b, "{\"suffix\": \"%s\"}", s); break;
        case 4: s_put (b, "{\"equals-ignore-case\": \"%s\"}", s); break;
        case 5: s_put (b, "{\"prefix\": {\"equals-ignore-case\": \"%s\"}}", s); break;
        case 6: s_put (b, "{\"suffix\": {\"equals-ignore-case\": \"%s\"}}", s); break;
        case 7: s_put (b, "{\"wildcard\": \"%s\"}",
                       (const char *[]) { "*", "a*", "*b", "a*b", "*a*", "a*a", "x\\\\*y", "ab", "*B*" } [s_rand (9)]);
                break;
        case 8: s_put (b, "{\"anything-but\": \"%s\"}", s); break;
        case 9: s_put (b, "{\"anything-but\": [%s, %s]}", s_numbers [s_rand (N_OF (s_numbers))],
                       s_numbers [s_rand (N_OF (s_numbers))]);
                break;
        case 10: s_put (b, "{\"anything-but\": {\"%s\": [\"%s\", \"%s\"]}}",
                        (const char *[]) { "prefix", "suffix", "equals-ignore-case" } [s_rand (3)], s, t);
                 break;
        case 11: s_put (b, "{\"anything-but\": {\"wildcard\": \"%s\"}}",
                        (const char *[]) { "*", "a*", "*b", "*a*" } [s_rand (4)]);
                 break;
        case 12: {
            int lo = (int) s_rand (5) - 2;
            int hi = lo + 1 + (int) s_rand (4);
            if (s_rand (2))
                s_put (b, "{\"numeric\": [\"%s\", %d, \"%s\", %d.5]}",
                       s_rand (2)? ">": ">=", lo, s_rand (2)? "<": "<=", hi);
            else
                s_put (b, "{\"numeric\": [\"%s\", %s]}", (const char *[]) { "=", "<", "<=", ">", ">=" } [s_rand (5)],
                       s_numbers [s_rand (N_OF (s_numbers))]);
            break;
        }
        case 13: s_put (b, "{\"cidr\": \"%s\"}",
                        (const char *[]) { "10.0.0.0/24", "10.0.0.0/8", "10.1.0.0/16", "10.0.0.1/32" } [s_rand (4)]);
                 break;
        case 14: s_put (b, "{\"exists\": true}"); break;
        case 15: s_put (b, "{\"exists\": false}"); break;
        default: s_put (b, "\"%s\"", s); break;
    }
}

static void s_pattern_object (s_buf_t *b, int depth);

static void
s_pattern_fields (s_buf_t *b, int depth)
{
    bool first = true;
    uint32_t start = s_rand (N_OF (s_keys));
    uint32_t n = 1 + s_rand (2);
    for (uint32_t i = 0; i < n; i++) {
        const char *key = s_keys [(start + i) % N_OF (s_keys)];
        s_put (b, "%s\"%s\": ", first? "": ", ", key);
        first = false;
        if (depth < 3 && s_rand (3) == 0)
            s_pattern_object (b, depth + 1);
        else {
            uint32_t alts = 1 + s_rand (3);
            s_put (b, "[");
            for (uint32_t a = 0; a < alts; a++) {
                if (a)
                    s_put (b, ", ");
                s_pattern_alt (b);
            }
            s_put (b, "]");
        }
    }
    if (depth < 3 && s_rand (5) == 0) {
        uint32_t alts = 2 + s_rand (2);
        s_put (b, ", \"$or\": [");
        for (uint32_t a = 0; a < alts; a++) {
            s_put (b, "%s{", a? ", ": "");
            s_pattern_fields (b, depth + 1);
            s_put (b, "}");
        }
        s_put (b, "]");
    }
}

static void
s_pattern_object (s_buf_t *b, int depth)
{
    s_put (b, "{");
    s_pattern_fields (b, depth);
    s_put (b, "}");
}

//  --------------------------------------------------------------------------

#define N_PATTERNS 60
#define N_EVENTS 400
#define N_ROUNDS 12

static void
test_random_patterns_agree_with_the_reference (void **state)
{
    (void) state;
    const char *seed_env = getenv ("ZB_PATTERN_SEED");
    uint64_t seed = seed_env? strtoull (seed_env, NULL, 10): 20261126;
    printf ("test_pattern_random: seed %llu (ZB_PATTERN_SEED to repeat)\n", (unsigned long long) seed);
    size_t checks = 0, matches = 0;
    pattern_ref_event_t *ev = pattern_ref_event_new ();
    assert_non_null (ev);
    for (int round = 0; round < N_ROUNDS; round++) {
        s_rng = (seed + (uint64_t) round) * 0x9E3779B97F4A7C15ULL | 1;
        zb_patterns_t *set = zb_patterns_new ();
        zb_patterns_set_max_size (set, 0);
        char *texts [N_PATTERNS];
        pattern_ref_t *patterns [N_PATTERNS];
        for (int p = 0; p < N_PATTERNS; p++) {
            s_buf_t b = { NULL, 0, 0 };
            s_pattern_object (&b, 0);
            texts [p] = b.text;
            char name [16], err [512];
            snprintf (name, sizeof (name), "%d", p);
            if (zb_patterns_add (set, name, b.text, b.len, err, sizeof (err)))
                fail_msg ("random pattern rejected: %s\n  %s", err, b.text);
            patterns [p] = pattern_ref_new (b.text, b.len, err, sizeof (err));
            if (!patterns [p])
                fail_msg ("%s\n  %s", err, b.text);
        }
        for (int e = 0; e < N_EVENTS; e++) {
            s_buf_t b = { NULL, 0, 0 };
            s_event_object (&b, 0);
            t_event_t packed;
            t_event_init (&packed, b.text);
            assert_int_equal (pattern_ref_event_load (ev, &packed.result.data), 0);
            const char *names [N_PATTERNS];
            size_t n = zb_patterns_match (set, &packed.result.data, names, N_PATTERNS);
            assert_true (n <= N_PATTERNS);
            bool got [N_PATTERNS] = { false };
            for (size_t i = 0; i < n; i++) {
                int p = atoi (names [i]);
                assert_false (got [p]);         //  each name once
                got [p] = true;
            }
            //  The packed walk agrees
            size_t n_packed = zb_patterns_match_packed (set, packed.sbuf.data, packed.sbuf.size,
                                                        names, N_PATTERNS);
            if (n_packed != n)
                fail_msg ("seed %llu round %d: %zu matches, %zu packed\n  event %s",
                          (unsigned long long) seed, round, n, n_packed, b.text);
            for (size_t i = 0; i < n_packed; i++)
                if (!got [atoi (names [i])])
                    fail_msg ("seed %llu round %d: packed matched %s, not matched unpacked\n  event %s",
                              (unsigned long long) seed, round, names [i], b.text);
            for (int p = 0; p < N_PATTERNS; p++) {
                bool expected = pattern_ref_match (patterns [p], ev);
                if (got [p] != expected)
                    fail_msg ("seed %llu round %d: matcher says %s, reference says %s\n  pattern %s\n  event   %s",
                              (unsigned long long) seed, round, got [p]? "match": "no match",
                              expected? "match": "no match", texts [p], b.text);
                checks++;
                matches += expected;
            }
            t_event_fini (&packed);
            free (b.text);
        }
        for (int p = 0; p < N_PATTERNS; p++) {
            free (texts [p]);
            pattern_ref_destroy (&patterns [p]);
        }
        zb_patterns_destroy (&set);
    }
    pattern_ref_event_destroy (&ev);
    printf ("test_pattern_random: %zu pattern/event pairs agree (%zu matches)\n", checks, matches);
    assert_true (matches > checks / 50);        //  the generator is not degenerate
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_random_patterns_agree_with_the_reference),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
