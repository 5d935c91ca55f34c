/*  rfc3339.h - event times: parse RFC 3339, normalize to UTC, format now. */
#ifndef ZB_RFC3339_H_INCLUDED
#define ZB_RFC3339_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ZB_TIME_MAX 40      //  buffer size that fits any normalized time

//  Parse "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" ('t', 'z', ' ' for 'T'
//  accepted), range-checked (month, day of month incl. leap years, 23:59:60 not
//  accepted). Writes the same instant in UTC as "YYYY-MM-DDTHH:MM:SS[.frac]Z"
//  into out (fraction digits kept as given, at most 9) and returns its length,
//  or -1 when the text is not a valid RFC 3339 date-time.
int zb_time_normalize (const char *text, size_t len, char out[ZB_TIME_MAX]);

//  Format a Unix time as "YYYY-MM-DDTHH:MM:SSZ"; returns the length (20).
int zb_time_format (time_t when, char out[ZB_TIME_MAX]);

//  Parse a normalized or any RFC 3339 time into Unix seconds; -1 on error.
int zb_time_parse (const char *text, size_t len, int64_t *seconds);

#endif
