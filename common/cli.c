/*  cli.c - command-line messages and flag values; see cli.h. */

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined (__GLIBC__)
#   include <malloc.h>
#endif

#include "cli.h"

static void
s_vprint (const char *prog, const char *format, va_list args)
{
    fprintf (stderr, "%s: ", prog);
    vfprintf (stderr, format, args);
    fputc ('\n', stderr);
}

int
zb_cli_usage_error (const char *prog, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_vprint (prog, format, args);
    va_end (args);
    fprintf (stderr, "Try '%s --help' for more information.\n", prog);
    return 2;
}

int
zb_cli_error (const char *prog, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_vprint (prog, format, args);
    va_end (args);
    return 1;
}

int
zb_cli_option_error (const char *prog, int opt, char *const argv [])
{
    const char *arg = argv [optind - 1];
    if (opt == ':')
        return zb_cli_usage_error (prog, "option '%s' needs a value", arg);
    //  A long option (unknown, or given a value it does not take) is named
    //  as written; glibc sets optopt only for a short one
    if (strncmp (arg, "--", 2) == 0 || !optopt)
        return zb_cli_usage_error (prog, "unknown option '%s'", arg);
    return zb_cli_usage_error (prog, "unknown option '-%c'", optopt);
}

bool
zb_cli_parse_u64 (const char *text, uint64_t *value)
{
    if (!*text || strspn (text, "0123456789") != strlen (text))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno || *end)
        return false;
    *value = (uint64_t) v;
    return true;
}

bool
zb_cli_parse_range (const char *text, uint64_t low, uint64_t high, uint64_t *value)
{
    uint64_t v;
    if (!zb_cli_parse_u64 (text, &v) || v < low || v > high)
        return false;
    *value = v;
    return true;
}

bool
zb_cli_parse_double (const char *text, double *value)
{
    if (!*text)
        return false;
    errno = 0;
    char *end;
    double v = strtod (text, &end);
    if (errno || *end || !isfinite (v))
        return false;
    *value = v;
    return true;
}

int
zb_cli_curve_pair_error (const char *prog, bool server_given)
{
    return zb_cli_usage_error (prog, "%s needs %s as well (CURVE takes the broker's public "
                               "certificate and this client's secret one)",
                               server_given ? "--curve-server" : "--curve-cert",
                               server_given ? "--curve-cert" : "--curve-server");
}

void
zb_cli_tune_malloc (void)
{
#if defined (__GLIBC__)
    mallopt (M_TRIM_THRESHOLD, 64 << 20);
    mallopt (M_MMAP_THRESHOLD, 8 << 20);
#endif
}
