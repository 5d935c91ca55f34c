/*  rfc3339.c - event times: parse RFC 3339, normalize to UTC, format now.

    Accepted: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)", with 't' or ' '
    for 'T' and 'z' for 'Z' (RFC 3339 section 5.6 and its note on case).
    Ranges: year 0000..9999, month 01..12, day 01..28/29/30/31 by month and
    leap year, hour 00..23, minute 00..59, second 00..59 (a leap second,
    :60, is not accepted: POSIX time cannot represent it), fraction 1..9
    digits (kept as given, never rounded), offset hours 00..23 and minutes
    00..59 ("-00:00" means UTC). The normalized UTC instant must still have a
    four-digit year. */

#include "rfc3339.h"

#include <stdbool.h>
#include <string.h>

typedef struct {
    struct tm tm;           //  the fields as written (local to the offset)
    int offset;             //  seconds east of UTC
    const char *frac;       //  the fraction digits (no '.'), or NULL
    int fraclen;
} zb_time_t;

static bool
s_digits (const char *p, int n, int *value)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p [i] < '0' || p [i] > '9')
            return false;
        v = v * 10 + (p [i] - '0');
    }
    *value = v;
    return true;
}

static bool
s_leap (int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int
s_days_in_month (int year, int month)
{
    static const int days [12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return month == 2 && s_leap (year)? 29: days [month - 1];
}

//  The one parser behind every public function. 0 on success, -1 otherwise.
static int
s_parse (const char *text, size_t len, zb_time_t *t)
{
    //  "YYYY-MM-DDTHH:MM:SS" is 19 bytes, the shortest zone ("Z") one more
    if (!text || len < 20)
        return -1;
    const char *p = text;
    int year, month, day, hour, minute, second;
    if (!s_digits (p, 4, &year) || p [4] != '-'
    ||  !s_digits (p + 5, 2, &month) || p [7] != '-'
    ||  !s_digits (p + 8, 2, &day))
        return -1;
    if (p [10] != 'T' && p [10] != 't' && p [10] != ' ')
        return -1;
    if (!s_digits (p + 11, 2, &hour) || p [13] != ':'
    ||  !s_digits (p + 14, 2, &minute) || p [16] != ':'
    ||  !s_digits (p + 17, 2, &second))
        return -1;
    if (month < 1 || month > 12 || day < 1 || day > s_days_in_month (year, month)
    ||  hour > 23 || minute > 59 || second > 59)
        return -1;

    size_t pos = 19;
    t->frac = NULL;
    t->fraclen = 0;
    if (text [pos] == '.') {
        pos++;
        size_t start = pos;
        while (pos < len && text [pos] >= '0' && text [pos] <= '9')
            pos++;
        size_t n = pos - start;
        if (n < 1 || n > 9)
            return -1;
        t->frac = text + start;
        t->fraclen = (int) n;
    }
    if (pos >= len)
        return -1;              //  no zone

    int offset = 0;             //  seconds east of UTC
    if (text [pos] == 'Z' || text [pos] == 'z') {
        pos++;
    }
    else
    if (text [pos] == '+' || text [pos] == '-') {
        int sign = text [pos] == '-'? -1: 1;
        int oh, om;
        if (len - pos < 6
        ||  !s_digits (text + pos + 1, 2, &oh) || text [pos + 3] != ':'
        ||  !s_digits (text + pos + 4, 2, &om)
        ||  oh > 23 || om > 59)
            return -1;
        offset = sign * (oh * 3600 + om * 60);
        pos += 6;
    }
    else
        return -1;
    if (pos != len)
        return -1;              //  trailing bytes

    t->tm = (struct tm) {
        .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
        .tm_hour = hour, .tm_min = minute, .tm_sec = second
    };
    t->offset = offset;
    return 0;
}

//  Unix seconds of a parsed time
static int64_t
s_seconds (zb_time_t *t)
{
    struct tm tm = t->tm;
    return (int64_t) timegm (&tm) - t->offset;
}

//  Writes n decimal digits of value
static char *
s_put (char *p, int value, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p [i] = (char) ('0' + value % 10);
        value /= 10;
    }
    return p + n;
}

//  "YYYY-MM-DDTHH:MM:SS[.frac]Z" from UTC fields; returns the length.
static int
s_write (const struct tm *tm, const char *frac, int fraclen, char out [ZB_TIME_MAX])
{
    char *p = out;
    p = s_put (p, tm->tm_year + 1900, 4);
    *p++ = '-';
    p = s_put (p, tm->tm_mon + 1, 2);
    *p++ = '-';
    p = s_put (p, tm->tm_mday, 2);
    *p++ = 'T';
    p = s_put (p, tm->tm_hour, 2);
    *p++ = ':';
    p = s_put (p, tm->tm_min, 2);
    *p++ = ':';
    p = s_put (p, tm->tm_sec, 2);
    if (frac) {
        *p++ = '.';
        memcpy (p, frac, (size_t) fraclen);
        p += fraclen;
    }
    *p++ = 'Z';
    *p = 0;
    return (int) (p - out);
}

int
zb_time_normalize (const char *text, size_t len, char out [ZB_TIME_MAX])
{
    zb_time_t t;
    if (s_parse (text, len, &t))
        return -1;
    if (t.offset == 0)          //  already UTC: the fields are the answer
        return s_write (&t.tm, t.frac, t.fraclen, out);

    time_t when = (time_t) s_seconds (&t);
    struct tm tm;
    if (!gmtime_r (&when, &tm))
        return -1;
    if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return -1;              //  the offset pushed it out of four digits
    return s_write (&tm, t.frac, t.fraclen, out);
}

int
zb_time_format (time_t when, char out [ZB_TIME_MAX])
{
    struct tm tm;
    if (!gmtime_r (&when, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
        out [0] = 0;
        return -1;
    }
    return s_write (&tm, NULL, 0, out);
}

int
zb_time_parse (const char *text, size_t len, int64_t *seconds)
{
    zb_time_t t;
    if (s_parse (text, len, &t))
        return -1;
    if (seconds)
        *seconds = s_seconds (&t);
    return 0;
}
