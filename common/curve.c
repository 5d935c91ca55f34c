/*  curve.c - the client side of transport security; see curve.h and
    docs/SECURITY.md. Certificates are CZMQ's (zcert_load reads what
    zcert_save and `zbctl keygen` write). */

#include <czmq.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "curve.h"

#define Z85_KEY_LEN     40
#define ZERO_KEY        "0000000000000000000000000000000000000000"
#define MAXMSG_MIN      1024
#define MAXMSG_MAX      (1ULL << 40)

static const char *s_server_path;
static const char *s_cert_path;
static int64_t s_maxmsg = ZB_CLIENT_MAXMSG_DEFAULT;
static bool s_enabled;
static char s_server_public [Z85_KEY_LEN + 1];
static char s_client_public [Z85_KEY_LEN + 1];
static char s_client_secret [Z85_KEY_LEN + 1];

int
zb_curve_load (const char *path, bool want_secret, char public_txt [41],
               char secret_txt [41], char *err, size_t errlen)
{
    assert (path);
    struct stat st;
    if (stat (path, &st) == -1) {
        snprintf (err, errlen, "cannot read certificate %s: %s", path, strerror (errno));
        return -1;
    }
    if (!S_ISREG (st.st_mode)) {
        snprintf (err, errlen, "certificate %s is not a regular file", path);
        return -1;
    }
    //  zcert_load reads PATH_secret instead when it exists (both keys)
    zcert_t *cert = zcert_load (path);
    if (!cert) {
        snprintf (err, errlen, "%s is not a certificate (zbctl keygen writes them)", path);
        return -1;
    }
    const char *pub = zcert_public_txt (cert);
    const char *sec = zcert_secret_txt (cert);
    int rc = 0;
    if (!pub || strlen (pub) != Z85_KEY_LEN || streq (pub, ZERO_KEY)) {
        snprintf (err, errlen, "%s has no valid public key", path);
        rc = -1;
    }
    else
    if (want_secret && (!sec || strlen (sec) != Z85_KEY_LEN || streq (sec, ZERO_KEY))) {
        snprintf (err, errlen, "%s has no secret key: give the NAME_secret file "
                  "(zbctl keygen NAME writes NAME and NAME_secret)", path);
        rc = -1;
    }
    else {
        memcpy (public_txt, pub, Z85_KEY_LEN + 1);
        if (want_secret && secret_txt)
            memcpy (secret_txt, sec, Z85_KEY_LEN + 1);
    }
    zcert_destroy (&cert);
    return rc;
}

int
zb_curve_client_option (const char *prog, int opt, const char *value)
{
    uint64_t number;
    switch (opt) {
        case ZB_CURVE_OPT_SERVER:
            if (!*value)
                return zb_cli_usage_error (prog, "--curve-server wants a certificate file");
            s_server_path = value;
            return 0;
        case ZB_CURVE_OPT_CERT:
            if (!*value)
                return zb_cli_usage_error (prog, "--curve-cert wants a certificate file");
            s_cert_path = value;
            return 0;
        case ZB_CURVE_OPT_MAXMSG:
            if (!zb_cli_parse_range (value, MAXMSG_MIN, MAXMSG_MAX, &number))
                return zb_cli_usage_error (prog, "--max-msg-size wants a number of bytes from "
                                           "%d to %llu, not '%s'", MAXMSG_MIN,
                                           (unsigned long long) MAXMSG_MAX, value);
            s_maxmsg = (int64_t) number;
            return 0;
        default:
            return zb_cli_usage_error (prog, "unknown security option");
    }
}

int
zb_curve_client_setup (const char *prog)
{
    s_enabled = false;
    if (!s_server_path && !s_cert_path)
        return 0;
    if (!s_server_path || !s_cert_path)
        return zb_cli_usage_error (prog, "%s needs %s as well (CURVE takes the broker's "
                                   "public certificate and this client's secret one)",
                                   s_server_path ? "--curve-server" : "--curve-cert",
                                   s_server_path ? "--curve-cert" : "--curve-server");
    char err [512];
    if (zb_curve_load (s_server_path, false, s_server_public, NULL, err, sizeof err) == -1
    ||  zb_curve_load (s_cert_path, true, s_client_public, s_client_secret, err, sizeof err) == -1)
        return zb_cli_error (prog, "%s", err);
    s_enabled = true;
    return 0;
}

int
zb_curve_client_configure (const char *server_path, const char *cert_path, int64_t maxmsg,
                           char *err, size_t errlen)
{
    if (maxmsg < 0) {
        snprintf (err, errlen, "max_msg_size must be >= 0 (0: the default)");
        return -1;
    }
    if (!server_path != !cert_path) {
        snprintf (err, errlen, "curve_server and curve_cert go together (CURVE takes the "
                  "broker's public certificate and this client's secret one)");
        return -1;
    }
    char server_public [Z85_KEY_LEN + 1], client_public [Z85_KEY_LEN + 1];
    char client_secret [Z85_KEY_LEN + 1];
    if (server_path
    &&  (zb_curve_load (server_path, false, server_public, NULL, err, errlen) == -1
         || zb_curve_load (cert_path, true, client_public, client_secret, err, errlen) == -1))
        return -1;
    s_maxmsg = maxmsg ? maxmsg : ZB_CLIENT_MAXMSG_DEFAULT;
    s_enabled = server_path != NULL;
    if (s_enabled) {
        memcpy (s_server_public, server_public, sizeof s_server_public);
        memcpy (s_client_public, client_public, sizeof s_client_public);
        memcpy (s_client_secret, client_secret, sizeof s_client_secret);
    }
    return 0;
}

void
zb_curve_client_apply (zsock_t *sock)
{
    assert (sock);
    void *handle = zsock_resolve (sock);
    zmq_setsockopt (handle, ZMQ_MAXMSGSIZE, &s_maxmsg, sizeof s_maxmsg);
    if (!s_enabled)
        return;
    zsock_set_curve_serverkey (sock, s_server_public);
    zsock_set_curve_publickey (sock, s_client_public);
    zsock_set_curve_secretkey (sock, s_client_secret);
}

bool
zb_curve_client_enabled (void)
{
    return s_enabled;
}

void
zb_curve_client_reset (void)
{
    s_server_path = NULL;
    s_cert_path = NULL;
    s_maxmsg = ZB_CLIENT_MAXMSG_DEFAULT;
    s_enabled = false;
    memset (s_client_secret, 0, sizeof s_client_secret);
}
