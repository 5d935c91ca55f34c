/*  zbctl.h - the zbctl subcommands that live in their own files.

    zbctl.c parses the global options given before the command and hands the
    command's arguments (argv [0] is the command) to these; each parses its own
    options, and the global ones again (they may follow the command). */
#ifndef ZBCTL_H_INCLUDED
#define ZBCTL_H_INCLUDED

#include <getopt.h>
#include <stdbool.h>
#include "curve.h"

#define ZBCTL_PROG "zbctl"

typedef struct {
    const char *control;
    const char *ingest;
    const char *publish;
    int timeout_ms;
    const char *curve_server;       //  as given, for zbctl tail's consumer
    const char *curve_cert;
    const char *max_msg_size;
} zbctl_global_t;

//  The global options, for a subcommand's getopt table.
enum { ZBCTL_OPT_CONTROL = 512, ZBCTL_OPT_INGEST, ZBCTL_OPT_PUBLISH, ZBCTL_OPT_TIMEOUT };
#define ZBCTL_GLOBAL_OPTIONS \
    { "control", required_argument, NULL, ZBCTL_OPT_CONTROL }, \
    { "ingest",  required_argument, NULL, ZBCTL_OPT_INGEST }, \
    { "publish", required_argument, NULL, ZBCTL_OPT_PUBLISH }, \
    { "timeout", required_argument, NULL, ZBCTL_OPT_TIMEOUT }, \
    ZB_CURVE_CLIENT_OPTIONS

//  A global option met by a subcommand's getopt loop: 1 taken, 0 not a
//  global option, or 2 after a usage error message.
int zbctl_global_option (zbctl_global_t *global, int opt, const char *arg);

//  Load the CURVE certificates given (--curve-server, --curve-cert) before any
//  socket is made: 0, or the exit code after a message.
int zbctl_curve_setup (void);

//  PING the control socket within the timeout: 0, or 1 after the error
//  ("zbctl: no reply from EP within N ms").
int zbctl_ping (const zbctl_global_t *global);

//  zbctl tail TOPIC... | --rule NAME | --pattern JSON [--from WHERE] [--json] [-n N]
int zbctl_tail (zbctl_global_t *global, int argc, char **argv);

//  zbctl replay --from WHERE [--to N] [--topic T]... [--into TOPIC]
int zbctl_replay (zbctl_global_t *global, int argc, char **argv);

#endif
