/*  wake.c - wake a blocked zmq_poll at once on SIGINT and SIGTERM; see wake.h.

    The handler does only async-signal-safe things: it calls the handler it
    replaced (CZMQ's sets zsys_interrupted), then write()s one byte to a
    non-blocking pipe. A full pipe drops the byte: a wake-up is pending
    anyway. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

#include "wake.h"

static const int s_signals [] = { SIGINT, SIGTERM };
#define S_NSIGNALS  (sizeof s_signals / sizeof s_signals [0])

static struct sigaction s_previous [S_NSIGNALS];    //  the handlers we chain to
static volatile sig_atomic_t s_write_fd = -1;       //  -1: the handler writes nothing
static int s_read_fd = -1;
static int s_users;                                 //  nested installs

static void
s_handler (int signum)
{
    int saved_errno = errno;
    for (size_t i = 0; i < S_NSIGNALS; i++)
        if (s_signals [i] == signum)
            s_previous [i].sa_handler (signum);
    int fd = s_write_fd;
    if (fd != -1) {
        ssize_t rc = write (fd, "!", 1);
        (void) rc;                  //  EAGAIN: bytes are already waiting
    }
    errno = saved_errno;
}

int
zb_wake_install (void)
{
    if (s_users > 0) {
        s_users++;
        return s_read_fd;
    }
    //  Chain only to handler functions: with the default action or SIG_IGN
    //  in place, the process does not expect to handle these signals
    for (size_t i = 0; i < S_NSIGNALS; i++) {
        if (sigaction (s_signals [i], NULL, &s_previous [i]) == -1)
            return -1;
        if ((s_previous [i].sa_flags & SA_SIGINFO)
        ||  s_previous [i].sa_handler == SIG_DFL
        ||  s_previous [i].sa_handler == SIG_IGN) {
            errno = ENOENT;
            return -1;
        }
    }
    int fds [2];
    if (pipe2 (fds, O_NONBLOCK | O_CLOEXEC) == -1)
        return -1;
    s_read_fd = fds [0];
    s_write_fd = fds [1];
    for (size_t i = 0; i < S_NSIGNALS; i++) {
        //  Same mask and flags as the handler we chain to (CZMQ's: no
        //  SA_RESTART, so a blocking call returns EINTR)
        struct sigaction action = s_previous [i];
        action.sa_handler = s_handler;
        if (sigaction (s_signals [i], &action, NULL) == -1) {
            int saved_errno = errno;
            while (i-- > 0)
                sigaction (s_signals [i], &s_previous [i], NULL);
            s_write_fd = -1;
            close (fds [0]);
            close (fds [1]);
            s_read_fd = -1;
            errno = saved_errno;
            return -1;
        }
    }
    s_users = 1;
    return s_read_fd;
}

void
zb_wake_uninstall (void)
{
    if (s_users == 0 || --s_users > 0)
        return;
    for (size_t i = 0; i < S_NSIGNALS; i++) {
        struct sigaction current;
        //  Someone who replaced our handler meanwhile keeps theirs
        if (sigaction (s_signals [i], NULL, &current) == 0
        &&  !(current.sa_flags & SA_SIGINFO) && current.sa_handler == s_handler)
            sigaction (s_signals [i], &s_previous [i], NULL);
    }
    int write_fd = s_write_fd;
    s_write_fd = -1;                //  before the close: a late signal writes nothing
    close (write_fd);
    close (s_read_fd);
    s_read_fd = -1;
}

void
zb_wake_drain (void)
{
    if (s_read_fd == -1)
        return;
    char buf [64];
    while (read (s_read_fd, buf, sizeof buf) > 0)
        ;
}
