/*  cli.h - what every zbridge program's command line shares: the messages
    for a usage error and a runtime error, and strict parsers of flag values.

    Messages go to stderr as one line "<prog>: <message>"; a usage error adds
    the line "Try '<prog> --help' for more information." The helpers return
    the exit status that goes with them (2 usage, 1 runtime), so that a parser
    can `return zb_cli_usage_error (...)`. Nothing here allocates. */
#ifndef ZB_CLI_H_INCLUDED
#define ZB_CLI_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#if defined (__GNUC__)
#   define ZB_CLI_PRINTF(f, a) __attribute__ ((format (printf, f, a)))
#else
#   define ZB_CLI_PRINTF(f, a)
#endif

//  "<prog>: <message>" and the --help hint on stderr. Returns 2.
int zb_cli_usage_error (const char *prog, const char *format, ...) ZB_CLI_PRINTF (2, 3);

//  "<prog>: <message>" on stderr. Returns 1.
int zb_cli_error (const char *prog, const char *format, ...) ZB_CLI_PRINTF (2, 3);

//  The usage error for what getopt_long returned as opt (':' or '?'), after
//  opterr = 0 and an optstring that starts with ':' (or "+:"): "option '-n'
//  needs a value", "unknown option '--frob'" or "unknown option '-Z'".
//  Returns 2.
int zb_cli_option_error (const char *prog, int opt, char *const argv []);

//  Strict unsigned decimal: digits only (no sign, no space, not empty), no
//  overflow. false, *value untouched, when text is not one.
bool zb_cli_parse_u64 (const char *text, uint64_t *value);

//  zb_cli_parse_u64 of a value within [low, high].
bool zb_cli_parse_range (const char *text, uint64_t low, uint64_t high, uint64_t *value);

//  A finite number in strtod's syntax, the whole text. false, *value
//  untouched, when text is not one.
bool zb_cli_parse_double (const char *text, double *value);

//  The usage error of --curve-server without --curve-cert (server_given) or
//  the other way round; returns 2.
int zb_cli_curve_pair_error (const char *prog, bool server_given);

//  Malloc settings for a process that moves messages between its own thread
//  and ZeroMQ's I/O thread: memory freed by one thread is kept in glibc's
//  arenas (up to 64 MiB of free top) instead of being handed back to the
//  kernel and faulted in again on the next message, and blocks up to 8 MiB
//  come from the heap instead of a fresh mmap each. Call once at the start of
//  main, before any thread exists. Without glibc it does nothing.
void zb_cli_tune_malloc (void);

#endif
