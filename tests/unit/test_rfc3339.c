/*  test_rfc3339.c - parsing, range checks and UTC normalization of event times. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rfc3339.h"

//  Normalizes text and checks the result (NULL: must be rejected).
static void
s_expect (const char *text, const char *expected)
{
    char out [ZB_TIME_MAX];
    memset (out, 0x55, sizeof (out));
    int rc = zb_time_normalize (text, strlen (text), out);
    if (expected) {
        if (rc < 0)
            fail_msg ("'%s' was rejected, expected '%s'", text, expected);
        assert_int_equal (rc, (int) strlen (expected));
        assert_string_equal (out, expected);
    }
    else
    if (rc >= 0)
        fail_msg ("'%s' was accepted as '%s', expected an error", text, out);
}

static void
test_utc_time_is_kept (void **state)
{
    (void) state;
    s_expect ("2026-11-26T17:15:01Z", "2026-11-26T17:15:01Z");
    s_expect ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z");
    s_expect ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z");
    s_expect ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z");
}

static void
test_lowercase_t_z_and_space_separator_are_accepted (void **state)
{
    (void) state;
    s_expect ("2026-11-26t17:15:01z", "2026-11-26T17:15:01Z");
    s_expect ("2026-11-26 17:15:01Z", "2026-11-26T17:15:01Z");
}

static void
test_offsets_are_converted_to_utc (void **state)
{
    (void) state;
    s_expect ("2026-11-26T18:15:01.250+01:00", "2026-11-26T17:15:01.250Z");
    s_expect ("2026-11-26T12:15:01-05:00", "2026-11-26T17:15:01Z");
    s_expect ("2026-11-26T17:15:01+00:00", "2026-11-26T17:15:01Z");
    s_expect ("2026-11-26T17:15:01-00:00", "2026-11-26T17:15:01Z");
    s_expect ("2026-11-26T22:45:01+05:30", "2026-11-26T17:15:01Z");
    //  Offsets that cross a day, a month, a year boundary
    s_expect ("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00Z");
    s_expect ("2025-12-31T23:30:00-01:00", "2026-01-01T00:30:00Z");
    s_expect ("2024-03-01T00:00:00+23:59", "2024-02-29T00:01:00Z");
    s_expect ("2023-02-28T23:00:00-23:59", "2023-03-01T22:59:00Z");
}

static void
test_offset_limits (void **state)
{
    (void) state;
    s_expect ("2026-11-26T17:15:01+23:59", "2026-11-25T17:16:01Z");
    s_expect ("2026-11-26T17:15:01-23:59", "2026-11-27T17:14:01Z");
    s_expect ("2026-11-26T17:15:01+24:00", NULL);
    s_expect ("2026-11-26T17:15:01+01:60", NULL);
    s_expect ("2026-11-26T17:15:01+0100", NULL);
    s_expect ("2026-11-26T17:15:01+1:00", NULL);
    s_expect ("2026-11-26T17:15:01+01", NULL);
    s_expect ("2026-11-26T17:15:01+01:0", NULL);
}

static void
test_fraction_digits_are_kept_as_given (void **state)
{
    (void) state;
    s_expect ("2026-11-26T17:15:01.1Z", "2026-11-26T17:15:01.1Z");
    s_expect ("2026-11-26T17:15:01.250Z", "2026-11-26T17:15:01.250Z");
    s_expect ("2026-11-26T17:15:01.000Z", "2026-11-26T17:15:01.000Z");
    s_expect ("2026-11-26T17:15:01.123456789Z", "2026-11-26T17:15:01.123456789Z");
    s_expect ("2026-11-26T17:15:01.999999999-01:00", "2026-11-26T18:15:01.999999999Z");
}

static void
test_fraction_of_more_than_nine_digits_or_none_is_rejected (void **state)
{
    (void) state;
    s_expect ("2026-11-26T17:15:01.1234567890Z", NULL);
    s_expect ("2026-11-26T17:15:01.Z", NULL);
    s_expect ("2026-11-26T17:15:01.12a3Z", NULL);
    s_expect ("2026-11-26T17:15:01,5Z", NULL);
}

static void
test_february_29_only_in_leap_years (void **state)
{
    (void) state;
    s_expect ("2024-02-29T12:00:00Z", "2024-02-29T12:00:00Z");   //  divisible by 4
    s_expect ("2000-02-29T12:00:00Z", "2000-02-29T12:00:00Z");   //  divisible by 400
    s_expect ("2026-02-29T12:00:00Z", NULL);
    s_expect ("1900-02-29T12:00:00Z", NULL);                     //  divisible by 100
    s_expect ("2100-02-29T12:00:00Z", NULL);
    s_expect ("2024-02-30T12:00:00Z", NULL);
    s_expect ("2026-02-28T12:00:00Z", "2026-02-28T12:00:00Z");
}

static void
test_days_per_month_are_checked (void **state)
{
    (void) state;
    static const int days [12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    for (int month = 1; month <= 12; month++) {
        char text [40], expected [40];
        snprintf (text, sizeof (text), "2026-%02d-%02dT00:00:00Z", month, days [month - 1]);
        snprintf (expected, sizeof (expected), "%s", text);
        s_expect (text, expected);
        snprintf (text, sizeof (text), "2026-%02d-%02dT00:00:00Z", month, days [month - 1] + 1);
        s_expect (text, NULL);
    }
    s_expect ("2026-00-10T00:00:00Z", NULL);
    s_expect ("2026-13-10T00:00:00Z", NULL);
    s_expect ("2026-01-00T00:00:00Z", NULL);
}

static void
test_time_of_day_ranges_are_checked (void **state)
{
    (void) state;
    s_expect ("2026-11-26T23:59:59Z", "2026-11-26T23:59:59Z");
    s_expect ("2026-11-26T24:00:00Z", NULL);
    s_expect ("2026-11-26T12:60:00Z", NULL);
    s_expect ("2026-12-31T23:59:60Z", NULL);       //  leap seconds are not accepted
}

static void
test_malformed_texts_are_rejected (void **state)
{
    (void) state;
    const char *bad [] = {
        "", "2026", "2026-11-26", "2026-11-26T17:15:01", "2026-11-26T17:15Z",
        "26-11-26T17:15:01Z", "2026/11/26T17:15:01Z", "2026-11-26X17:15:01Z",
        "2026-11-26T17:15:01ZZ", "2026-11-26T17:15:01Z ", " 2026-11-26T17:15:01Z",
        "2026-1-26T17:15:01Z", "2026-11-26T7:15:01Z", "+2026-11-26T17:15:01Z",
        "2026-11-26T17:15:01UTC", "2026-11-26T17:15:01+01:00x", "abcd-ef-ghTij:kl:mnZ",
        "2026-11-26T17:15:01.5", "2026-11-26T17:1a:01Z",
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++)
        s_expect (bad [i], NULL);
}

static void
test_embedded_nul_and_length_are_respected (void **state)
{
    (void) state;
    char out [ZB_TIME_MAX];
    const char text [] = "2026-11-26T17:15:01Z\0garbage";
    assert_int_equal (zb_time_normalize (text, 20, out), 20);
    assert_int_equal (zb_time_normalize (text, sizeof (text) - 1, out), -1);
    //  Not NUL-terminated: only len bytes are read
    char raw [20];
    memcpy (raw, "2026-11-26T17:15:01Z", 20);
    assert_int_equal (zb_time_normalize (raw, 20, out), 20);
    assert_string_equal (out, "2026-11-26T17:15:01Z");
    assert_int_equal (zb_time_normalize (raw, 19, out), -1);
    assert_int_equal (zb_time_normalize (NULL, 0, out), -1);
}

static void
test_result_outside_four_digit_years_is_rejected (void **state)
{
    (void) state;
    s_expect ("0000-01-01T00:00:00+00:01", NULL);
    s_expect ("9999-12-31T23:59:59-00:01", NULL);
    s_expect ("0000-01-01T00:01:00+00:01", "0000-01-01T00:00:00Z");
}

static void
test_parse_returns_unix_seconds (void **state)
{
    (void) state;
    int64_t s = 0;
    assert_int_equal (zb_time_parse ("1970-01-01T00:00:00Z", 20, &s), 0);
    assert_int_equal (s, 0);
    assert_int_equal (zb_time_parse ("2001-09-09T01:46:40Z", 20, &s), 0);
    assert_int_equal (s, 1000000000);
    const char *t = "2001-09-09T03:46:40.75+02:00";
    assert_int_equal (zb_time_parse (t, strlen (t), &s), 0);
    assert_int_equal (s, 1000000000);
    assert_int_equal (zb_time_parse ("1969-12-31T23:59:59Z", 20, &s), 0);
    assert_int_equal (s, -1);
    assert_int_equal (zb_time_parse ("2026-02-29T00:00:00Z", 20, &s), -1);
}

static void
test_format_gives_utc_seconds (void **state)
{
    (void) state;
    char out [ZB_TIME_MAX];
    assert_int_equal (zb_time_format (0, out), 20);
    assert_string_equal (out, "1970-01-01T00:00:00Z");
    assert_int_equal (zb_time_format (1000000000, out), 20);
    assert_string_equal (out, "2001-09-09T01:46:40Z");
    assert_int_equal (zb_time_format (951782400, out), 20);          //  2000-02-29
    assert_string_equal (out, "2000-02-29T00:00:00Z");
}

static void
test_format_of_now_reads_back (void **state)
{
    (void) state;
    char out [ZB_TIME_MAX], normal [ZB_TIME_MAX];
    time_t now = time (NULL);
    int len = zb_time_format (now, out);
    assert_int_equal (len, 20);
    assert_int_equal (zb_time_normalize (out, (size_t) len, normal), len);
    assert_string_equal (normal, out);
    int64_t seconds;
    assert_int_equal (zb_time_parse (out, (size_t) len, &seconds), 0);
    assert_int_equal (seconds, (int64_t) now);
}

static void
test_normalized_time_is_the_same_instant (void **state)
{
    (void) state;
    //  Sweep 1999..2101 in steps of 37 h 13 min with offsets east and west:
    //  the normalized text names the same second as the original, and
    //  formatting that second gives the normalized text back
    const char *offsets [] = { "Z", "+01:00", "-05:00", "+05:30", "-09:45", "+14:00", "-23:59" };
    for (int64_t t = 915148800; t < 4134067200LL; t += 37 * 3600 + 13 * 60) {
        time_t when = (time_t) t;
        struct tm tm;
        assert_non_null (gmtime_r (&when, &tm));
        for (size_t k = 0; k < sizeof (offsets) / sizeof (offsets [0]); k++) {
            int offset = 0;
            if (offsets [k][0] != 'Z') {
                int sign = offsets [k][0] == '-'? -1: 1;
                offset = sign * (atoi (offsets [k] + 1) * 3600 + atoi (offsets [k] + 4) * 60);
            }
            time_t local_when = when + offset;
            struct tm local;
            gmtime_r (&local_when, &local);
            char text [64], normal [ZB_TIME_MAX], formatted [ZB_TIME_MAX];
            snprintf (text, sizeof (text), "%04d-%02d-%02dT%02d:%02d:%02d%s",
                      local.tm_year + 1900, local.tm_mon + 1, local.tm_mday,
                      local.tm_hour, local.tm_min, local.tm_sec, offsets [k]);
            int len = zb_time_normalize (text, strlen (text), normal);
            assert_int_equal (len, 20);
            int64_t seconds = 0;
            assert_int_equal (zb_time_parse (text, strlen (text), &seconds), 0);
            assert_int_equal (seconds, t);
            zb_time_format (when, formatted);
            assert_string_equal (normal, formatted);
        }
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_utc_time_is_kept),
        cmocka_unit_test (test_lowercase_t_z_and_space_separator_are_accepted),
        cmocka_unit_test (test_offsets_are_converted_to_utc),
        cmocka_unit_test (test_offset_limits),
        cmocka_unit_test (test_fraction_digits_are_kept_as_given),
        cmocka_unit_test (test_fraction_of_more_than_nine_digits_or_none_is_rejected),
        cmocka_unit_test (test_february_29_only_in_leap_years),
        cmocka_unit_test (test_days_per_month_are_checked),
        cmocka_unit_test (test_time_of_day_ranges_are_checked),
        cmocka_unit_test (test_malformed_texts_are_rejected),
        cmocka_unit_test (test_embedded_nul_and_length_are_respected),
        cmocka_unit_test (test_result_outside_four_digit_years_is_rejected),
        cmocka_unit_test (test_parse_returns_unix_seconds),
        cmocka_unit_test (test_format_gives_utc_seconds),
        cmocka_unit_test (test_format_of_now_reads_back),
        cmocka_unit_test (test_normalized_time_is_the_same_instant),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
