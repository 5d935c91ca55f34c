/*  curve.h - the client side of the bus's transport security: every program
    that connects to the broker (zb-producer, the consumers, zbctl) takes
        --curve-server PATH   the broker's public certificate (zbctl keygen)
        --curve-cert PATH     the client's own secret certificate (NAME_secret)
        --max-msg-size BYTES  the largest frame it accepts from the broker
    and applies them to every socket it connects with zb_curve_client_apply.

    The settings are the process's (one identity per program, like its
    endpoints): the keys are kept as Z85 text in static storage, nothing is
    allocated, so there is nothing to free. docs/SECURITY.md explains them.

    Usage, in a getopt_long loop:
        static const struct option options [] = { ..., ZB_CURVE_CLIENT_OPTIONS, ... };
        case ZB_CURVE_OPT_SERVER: case ZB_CURVE_OPT_CERT: case ZB_CURVE_OPT_MAXMSG:
            if ((rc = zb_curve_client_option (PROG, opt, optarg)) != 0) return rc;
            break;
        ...after the loop:
        if ((rc = zb_curve_client_setup (PROG)) != 0) return rc;
        ...for every socket, before connecting it:
        zb_curve_client_apply (sock); */
#ifndef ZB_CURVE_H_INCLUDED
#define ZB_CURVE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

//  getopt_long values of the three options (above every program's own)
#define ZB_CURVE_OPT_SERVER     0x5a00
#define ZB_CURVE_OPT_CERT       0x5a01
#define ZB_CURVE_OPT_MAXMSG     0x5a02

#define ZB_CURVE_CLIENT_OPTIONS \
    { "curve-server", required_argument, NULL, ZB_CURVE_OPT_SERVER }, \
    { "curve-cert",   required_argument, NULL, ZB_CURVE_OPT_CERT }, \
    { "max-msg-size", required_argument, NULL, ZB_CURVE_OPT_MAXMSG }

//  The --help lines of the three options.
#define ZB_CURVE_CLIENT_HELP \
"Security (docs/SECURITY.md):\n" \
"      --curve-server PATH  the broker's public certificate: talk CURVE\n" \
"                           (encrypted, authenticated); needs --curve-cert\n" \
"      --curve-cert PATH    this client's secret certificate (NAME_secret from\n" \
"                           zbctl keygen NAME); its public part must be in the\n" \
"                           broker's --curve-allow directory\n" \
"      --max-msg-size B     largest frame accepted from the broker, 1024..2^40\n" \
"                           (default 268435456: 256 MiB)\n"

//  Default maximum frame size a client accepts (ZMQ_MAXMSGSIZE): above any
//  event the broker can publish (max-event-size is at most 64 MiB) and any
//  reply it sends.
#define ZB_CLIENT_MAXMSG_DEFAULT    (256LL * 1024 * 1024)

//  One of the options above. 0, or 2 after a usage message on stderr.
int zb_curve_client_option (const char *prog, int opt, const char *value);

//  After the options: load the certificates given. 0; 2 after a usage
//  message (one of the two flags without the other); 1 after a message
//  naming the file that cannot be loaded or has no secret key.
int zb_curve_client_setup (const char *prog);

//  The same settings from code (libzbridge's options): the two certificate
//  files (both or neither) and the frame size (0: the default). Process-wide,
//  like the flags: the last call wins. 0, or -1 with err.
int zb_curve_client_configure (const char *server_path, const char *cert_path, int64_t maxmsg,
                               char *err, size_t errlen);

//  Set ZMQ_MAXMSGSIZE, and the CURVE keys when configured, on a socket that is
//  not connected yet.
void zb_curve_client_apply (zsock_t *sock);

//  True when --curve-server and --curve-cert were given and loaded.
bool zb_curve_client_enabled (void);

//  Forget every setting (tests).
void zb_curve_client_reset (void);

//  Load a certificate file. want_secret: it must hold a secret key (a
//  NAME_secret file, or NAME with NAME_secret beside it). On success copies
//  the Z85 public (and, when wanted, secret) key, 40 characters + NUL, and
//  returns 0; otherwise -1 with the reason in err.
int zb_curve_load (const char *path, bool want_secret, char public_txt [41],
                   char secret_txt [41], char *err, size_t errlen);

#endif
