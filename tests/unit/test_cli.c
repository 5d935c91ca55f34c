/*  test_cli.c - the command-line helpers every program shares: strict flag
    values, and the exact text and exit status of usage and runtime errors. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli.h"

//  --------------------------------------------------------------------------
//  Helpers: what a call writes to stderr

static int s_saved_fd = -1;
static FILE *s_file;

static void
s_capture_begin (void)
{
    fflush (stderr);
    s_file = tmpfile ();
    assert_non_null (s_file);
    s_saved_fd = dup (STDERR_FILENO);
    assert_true (s_saved_fd >= 0);
    assert_true (dup2 (fileno (s_file), STDERR_FILENO) >= 0);
}

//  The text written since s_capture_begin; the caller frees it.
static char *
s_capture_end (void)
{
    fflush (stderr);
    assert_true (dup2 (s_saved_fd, STDERR_FILENO) >= 0);
    close (s_saved_fd);
    long size = ftell (s_file);
    assert_true (size >= 0);
    char *text = calloc (1, (size_t) size + 1);
    assert_non_null (text);
    rewind (s_file);
    assert_int_equal (fread (text, 1, (size_t) size, s_file), (size_t) size);
    fclose (s_file);
    return text;
}

//  Run getopt_long over argv as the programs do; return what it returned.
static int
s_getopt (int argc, char **argv)
{
    static const struct option options [] = {
        { "count", required_argument, NULL, 'n' },
        { "help",  no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    opterr = 0;
    optind = 0;
    return getopt_long (argc, argv, ":n:h", options, NULL);
}

static void
s_expect_option_error (const char *arg, int expect_opt, const char *expect)
{
    char *argv [] = { "prog", (char *) arg, NULL };
    int opt = s_getopt (2, argv);
    assert_int_equal (opt, expect_opt);
    s_capture_begin ();
    assert_int_equal (zb_cli_option_error ("zb-test", opt, argv), 2);
    char *text = s_capture_end ();
    assert_string_equal (text, expect);
    free (text);
}

//  --------------------------------------------------------------------------
//  Values

static void
test_u64_is_strict_decimal (void **state)
{
    (void) state;
    uint64_t v = 7;
    assert_true (zb_cli_parse_u64 ("0", &v));
    assert_int_equal (v, 0);
    assert_true (zb_cli_parse_u64 ("0042", &v));
    assert_int_equal (v, 42);
    assert_true (zb_cli_parse_u64 ("18446744073709551615", &v));
    assert_true (v == UINT64_MAX);
    const char *bad [] = { "", "-1", "+1", " 1", "1 ", "1x", "0x10", "1.0",
                           "18446744073709551616", "99999999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        v = 7;
        assert_false (zb_cli_parse_u64 (bad [i], &v));
        assert_int_equal (v, 7);            //  untouched
    }
}

static void
test_range_includes_both_ends (void **state)
{
    (void) state;
    uint64_t v = 7;
    assert_true (zb_cli_parse_range ("1", 1, 10, &v));
    assert_int_equal (v, 1);
    assert_true (zb_cli_parse_range ("10", 1, 10, &v));
    assert_int_equal (v, 10);
    v = 7;
    assert_false (zb_cli_parse_range ("0", 1, 10, &v));
    assert_false (zb_cli_parse_range ("11", 1, 10, &v));
    assert_false (zb_cli_parse_range ("x", 1, 10, &v));
    assert_int_equal (v, 7);
    assert_true (zb_cli_parse_range ("18446744073709551615", 0, UINT64_MAX, &v));
    assert_true (v == UINT64_MAX);
}

static void
test_double_is_finite_and_whole (void **state)
{
    (void) state;
    double v = 7;
    assert_true (zb_cli_parse_double ("0.25", &v));
    assert_true (v == 0.25);
    assert_true (zb_cli_parse_double ("1e3", &v));
    assert_true (v == 1000);
    assert_true (zb_cli_parse_double ("-2", &v));
    assert_true (v == -2);
    const char *bad [] = { "", "x", "1.5x", "inf", "-inf", "nan", "1e999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        v = 7;
        assert_false (zb_cli_parse_double (bad [i], &v));
        assert_true (v == 7);
    }
}

//  --------------------------------------------------------------------------
//  Messages

static void
test_usage_error_adds_the_help_hint (void **state)
{
    (void) state;
    s_capture_begin ();
    int rc = zb_cli_usage_error ("zb-test", "--count wants a number >= 0, not '%s'", "x");
    char *text = s_capture_end ();
    assert_int_equal (rc, 2);
    assert_string_equal (text, "zb-test: --count wants a number >= 0, not 'x'\n"
                               "Try 'zb-test --help' for more information.\n");
    free (text);
}

static void
test_error_is_one_line (void **state)
{
    (void) state;
    s_capture_begin ();
    int rc = zb_cli_error ("zb-test", "no reply from %s", "tcp://127.0.0.1:1");
    char *text = s_capture_end ();
    assert_int_equal (rc, 1);
    assert_string_equal (text, "zb-test: no reply from tcp://127.0.0.1:1\n");
    free (text);
}

static void
test_option_errors_name_the_option (void **state)
{
    (void) state;
    const char *hint = "Try 'zb-test --help' for more information.\n";
    char expect [256];
    snprintf (expect, sizeof expect, "zb-test: option '--count' needs a value\n%s", hint);
    s_expect_option_error ("--count", ':', expect);
    snprintf (expect, sizeof expect, "zb-test: option '-n' needs a value\n%s", hint);
    s_expect_option_error ("-n", ':', expect);
    snprintf (expect, sizeof expect, "zb-test: unknown option '--frob'\n%s", hint);
    s_expect_option_error ("--frob", '?', expect);
    snprintf (expect, sizeof expect, "zb-test: unknown option '-Z'\n%s", hint);
    s_expect_option_error ("-Z", '?', expect);
    //  A long option given a value it does not take is named as written
    snprintf (expect, sizeof expect, "zb-test: unknown option '--help=x'\n%s", hint);
    s_expect_option_error ("--help=x", '?', expect);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_u64_is_strict_decimal),
        cmocka_unit_test (test_range_includes_both_ends),
        cmocka_unit_test (test_double_is_finite_and_whole),
        cmocka_unit_test (test_usage_error_adds_the_help_hint),
        cmocka_unit_test (test_error_is_one_line),
        cmocka_unit_test (test_option_errors_name_the_option),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
