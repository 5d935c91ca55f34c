/*  zbctl_global.c - what the zbctl subcommands in their own files share. */

#include <czmq.h>
#include <inttypes.h>

#include "cli.h"
#include "event.h"
#include "wire.h"
#include "zbctl.h"

int
zbctl_global_option (zbctl_global_t *global, int opt, const char *arg)
{
    switch (opt) {
        case ZBCTL_OPT_CONTROL: global->control = arg; return 1;
        case ZBCTL_OPT_INGEST:  global->ingest = arg; return 1;
        case ZBCTL_OPT_PUBLISH: global->publish = arg; return 1;
        case ZBCTL_OPT_TIMEOUT: {
            uint64_t value;
            if (!zb_cli_parse_range (arg, 1, 3600 * 1000, &value))
                return zb_cli_usage_error (ZBCTL_PROG, "--timeout wants milliseconds from 1 to "
                                           "3600000, not '%s'", arg);
            global->timeout_ms = (int) value;
            return 1;
        }
        case ZB_CURVE_OPT_SERVER:
        case ZB_CURVE_OPT_CERT:
        case ZB_CURVE_OPT_MAXMSG:
            if (opt == ZB_CURVE_OPT_SERVER)
                global->curve_server = arg;
            else
            if (opt == ZB_CURVE_OPT_CERT)
                global->curve_cert = arg;
            else
                global->max_msg_size = arg;
            return zb_curve_client_option (ZBCTL_PROG, opt, arg) == 0 ? 1 : 2;
        default:
            return 0;
    }
}

int
zbctl_curve_setup (void)
{
    return zb_curve_client_setup (ZBCTL_PROG);
}

int
zbctl_ping (const zbctl_global_t *global)
{
    msgpack_unpacked reply;
    char err [512];
    if (zb_wire_call (global->control, ZB_CMD_PING, NULL, 0, global->timeout_ms, &reply,
                      err, sizeof err) != 0)
        return zb_cli_error (ZBCTL_PROG, "%s", err);
    msgpack_unpacked_destroy (&reply);
    return 0;
}
