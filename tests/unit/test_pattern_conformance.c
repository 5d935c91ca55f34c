/*  test_pattern_conformance.c - runs the EventBridge conformance table
    tests/data/pattern-conformance.tsv through the real API: each case's
    pattern is compiled with zb_patterns_add, its event parsed
    (zb_json_parse), packed (zb_json_to_msgpack) and unpacked, matched, and
    the outcome compared with the expectation (match, nomatch or
    error:<substring of the message>). Every failing case is reported by
    name; the test fails once, listing them all.

    tests/data/pattern-conformance-known-differences.tsv (same format; the
    expectation there is EventBridge's documented behaviour, which the
    matcher deliberately or knowingly does not follow) is run too, but only
    reported: a case there never fails the test, though one that now agrees
    with EventBridge is pointed out so it can move to the main table.

    The files are found through ZB_CONFORMANCE_DIR (environment) when set,
    else through the path of this source file as the compiler saw it
    (relative to the build directory, where meson runs the tests and which
    is also tried relative to the executable, two levels up). */

#include "pattern_helpers.h"

#include <limits.h>
#include <unistd.h>

#define CONF_FILE   "pattern-conformance.tsv"
#define KNOWN_FILE  "pattern-conformance-known-differences.tsv"
#define MIN_CASES   250

typedef struct {
    size_t cases;               //  cases run
    size_t failures;            //  cases that did not meet their expectation
    size_t bad_lines;           //  malformed lines
    char first [1024];          //  names of the first failures, for fail_msg
} tally_t;

static FILE *
s_open_data (const char *file)
{
    char path [PATH_MAX * 2];
    const char *dir = getenv ("ZB_CONFORMANCE_DIR");
    if (dir && *dir) {
        snprintf (path, sizeof (path), "%s/%s", dir, file);
        return fopen (path, "r");
    }
    //  __FILE__ is tests/unit/test_pattern_conformance.c as given to the
    //  compiler; the data is in ../data next to it
    char src_dir [PATH_MAX];
    snprintf (src_dir, sizeof (src_dir), "%s", __FILE__);
    char *slash = strrchr (src_dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy (src_dir, ".");
    snprintf (path, sizeof (path), "%s/../data/%s", src_dir, file);
    FILE *f = fopen (path, "r");
    if (f || src_dir [0] == '/')
        return f;
    //  A relative __FILE__ from elsewhere than the build directory: the
    //  executable is in <build>/tests/unit
    char exe [PATH_MAX];
    ssize_t len = readlink ("/proc/self/exe", exe, sizeof (exe) - 1);
    if (len <= 0)
        return NULL;
    exe [len] = 0;
    slash = strrchr (exe, '/');
    if (slash)
        *slash = 0;
    snprintf (path, sizeof (path), "%s/../../%s/../data/%s", exe, src_dir, file);
    return fopen (path, "r");
}

//  Runs one case; returns NULL when it met the expectation, else a static
//  description of what happened instead.
static const char *
s_run_case (const char *pattern, const char *event, const char *expect)
{
    static char what [1200];
    bool want_error = strncmp (expect, "error:", 6) == 0;
    if (!want_error && strcmp (expect, "match") && strcmp (expect, "nomatch")) {
        snprintf (what, sizeof (what), "unknown expectation \"%s\"", expect);
        return what;
    }
    zb_patterns_t *set = zb_patterns_new ();
    assert_non_null (set);
    char err [1024] = "";
    int rc = zb_patterns_add (set, "p", pattern, strlen (pattern), err, sizeof (err));
    const char *result = NULL;
    if (want_error) {
        if (rc == 0)
            result = "pattern was accepted";
        else
        if (!strstr (err, expect + 6)) {
            snprintf (what, sizeof (what), "rejected with \"%s\"", err);
            result = what;
        }
    }
    else
    if (rc) {
        snprintf (what, sizeof (what), "pattern rejected: %s", err);
        result = what;
    }
    else {
        char jerr [256];
        json_object *obj = zb_json_parse (event, strlen (event), jerr, sizeof (jerr));
        if (!obj) {
            snprintf (what, sizeof (what), "bad test event: %s", jerr);
            zb_patterns_destroy (&set);
            return what;
        }
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        if (zb_json_to_msgpack (obj, &pk, jerr, sizeof (jerr))) {
            snprintf (what, sizeof (what), "cannot pack test event: %s", jerr);
            result = what;
        }
        else {
            msgpack_unpacked unpacked;
            msgpack_unpacked_init (&unpacked);
            size_t off = 0;
            assert_int_equal (msgpack_unpack_next (&unpacked, sbuf.data, sbuf.size, &off),
                              MSGPACK_UNPACK_SUCCESS);
            const char *names [4];
            size_t n = zb_patterns_match (set, &unpacked.data, names, 4);
            bool matched = n == 1 && strcmp (names [0], "p") == 0;
            if (n > 1 || (n == 1 && !matched))
                result = "matcher returned an unexpected set of names";
            else
            if (zb_patterns_match_packed (set, sbuf.data, sbuf.size, names, 4) != n)
                result = "zb_patterns_match_packed disagrees with zb_patterns_match";
            else
            if (matched != (strcmp (expect, "match") == 0))
                result = matched? "matched": "did not match";
            msgpack_unpacked_destroy (&unpacked);
        }
        msgpack_sbuffer_destroy (&sbuf);
        json_object_put (obj);
    }
    zb_patterns_destroy (&set);
    return result;
}

//  Runs every case of file; known: report only (a known difference).
static void
s_run_file (const char *file, bool known, tally_t *tally)
{
    memset (tally, 0, sizeof (*tally));
    FILE *f = s_open_data (file);
    if (!f)
        fail_msg ("cannot open %s (set ZB_CONFORMANCE_DIR to the tests/data directory)", file);
    size_t cap = 0;
    char *line = NULL;
    ssize_t len;
    size_t lineno = 0;
    while ((len = getline (&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line [len - 1] == '\n' || line [len - 1] == '\r'))
            line [--len] = 0;
        if (len == 0 || line [0] == '#')
            continue;
        char *field [4];
        int nfields = 0;
        char *cursor = line;
        while (nfields < 4) {
            field [nfields++] = cursor;
            char *tab = strchr (cursor, '\t');
            if (!tab)
                break;
            *tab = 0;
            cursor = tab + 1;
        }
        if (nfields != 4 || strchr (field [3], '\t') || !*field [0]) {
            fprintf (stderr, "%s:%zu: malformed line (want 4 tab-separated columns)\n", file, lineno);
            tally->bad_lines++;
            continue;
        }
        tally->cases++;
        const char *outcome = s_run_case (field [1], field [2], field [3]);
        if (known) {
            if (outcome)
                fprintf (stderr, "known difference %s (EventBridge: %s): %s\n",
                         field [0], field [3], outcome);
            else
                fprintf (stderr, "known difference %s now agrees with EventBridge (%s): "
                         "move it to %s\n", field [0], field [3], CONF_FILE);
            continue;
        }
        if (outcome) {
            tally->failures++;
            fprintf (stderr, "FAIL %s (%s:%zu): expected %s, %s\n  pattern %s\n  event   %s\n",
                     field [0], file, lineno, field [3], outcome, field [1], field [2]);
            size_t used = strlen (tally->first);
            if (used + strlen (field [0]) + 8 < sizeof (tally->first))
                snprintf (tally->first + used, sizeof (tally->first) - used, "%s%s",
                          used? ", ": "", field [0]);
        }
    }
    free (line);
    fclose (f);
}

static void
test_conformance_table (void **state)
{
    (void) state;
    tally_t tally;
    s_run_file (CONF_FILE, false, &tally);
    print_message ("%s: %zu cases, %zu failing\n", CONF_FILE, tally.cases, tally.failures);
    if (tally.bad_lines)
        fail_msg ("%s: %zu malformed lines", CONF_FILE, tally.bad_lines);
    if (tally.cases < MIN_CASES)
        fail_msg ("%s: only %zu cases (want at least %d)", CONF_FILE, tally.cases, MIN_CASES);
    if (tally.failures)
        fail_msg ("%zu of %zu conformance cases failed (details above): %s",
                  tally.failures, tally.cases, tally.first);
}

static void
test_known_differences (void **state)
{
    (void) state;
    tally_t tally;
    s_run_file (KNOWN_FILE, true, &tally);
    print_message ("%s: %zu known differences reported (not failures)\n", KNOWN_FILE, tally.cases);
    if (tally.bad_lines)
        fail_msg ("%s: %zu malformed lines", KNOWN_FILE, tally.bad_lines);
}

//  The runner itself: each kind of expectation is checked, not just accepted
static void
test_runner_checks_expectations (void **state)
{
    (void) state;
    assert_null (s_run_case ("{\"a\": [1]}", "{\"a\": 1}", "match"));
    assert_non_null (s_run_case ("{\"a\": [1]}", "{\"a\": 1}", "nomatch"));
    assert_null (s_run_case ("{\"a\": [1]}", "{\"a\": 2}", "nomatch"));
    assert_non_null (s_run_case ("{\"a\": [1]}", "{\"a\": 2}", "match"));
    assert_null (s_run_case ("{\"a\": []}", "{}", "error:a: empty array"));
    assert_non_null (s_run_case ("{\"a\": []}", "{}", "error:something else"));
    assert_non_null (s_run_case ("{\"a\": [1]}", "{}", "error:a"));
    assert_non_null (s_run_case ("{\"a\": []}", "{}", "match"));
    assert_non_null (s_run_case ("{\"a\": [1]}", "{}", "maybe"));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_runner_checks_expectations),
        cmocka_unit_test (test_conformance_table),
        cmocka_unit_test (test_known_differences),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
