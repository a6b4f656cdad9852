/*
 * addr.c - parsing server addresses and connecting to them (see addr.h).
 *
 * TCP connects are non-blocking with poll() so that a black-holed address fails after the
 * caller's timeout rather than the kernel's (minutes); every address a name resolves to is tried
 * in turn within the same overall deadline. The socket is switched back to blocking mode: the
 * client does plain blocking I/O from its callers' threads.
 */
#include "addr.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* True if port is 1-65535 written in plain decimal digits. */
static bool valid_port(const char *p, size_t n)
{
    if (n == 0 || n > 5)
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

int addr_parse(const char *s, struct addr *a, char *why, size_t size)
{
    if (!s || !*s)
        return fail(why, size, "%s", "the server address is empty");
    struct addr r;
    memset(&r, 0, sizeof r);
    if (!strncmp(s, "unix:", 5)) {
        const char *path = s + 5;
        if (!*path)
            return fail(why, size, "'%s': the unix socket path is empty", s);
        if (strlen(path) >= sizeof r.path)
            return fail(why, size, "'%s': the unix socket path is longer than 107 bytes", s);
        r.is_unix = true;
        strcpy(r.path, path);
        *a = r;
        return 0;
    }
    const char *host = s, *host_end, *port;
    if (*s == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':')
            return fail(why, size, "'%s' is not [IPV6]:PORT", s);
        port = host_end + 2;
    } else {
        host_end = strrchr(s, ':');
        if (!host_end)
            return fail(why, size, "'%s' has no port: expected HOST:PORT or unix:PATH", s);
        if (memchr(s, ':', (size_t)(host_end - s)))
            return fail(why, size, "'%s': write an IPv6 address in brackets, as [::1]:7878", s);
        port = host_end + 1;
    }
    size_t hn = (size_t)(host_end - host);
    if (hn == 0)
        return fail(why, size, "'%s' has an empty host: expected HOST:PORT or unix:PATH", s);
    if (hn >= sizeof r.host)
        return fail(why, size, "'%s': the host name is too long", s);
    if (!valid_port(port, strlen(port)))
        return fail(why, size, "'%s': the port must be a number from 1 to 65535", s);
    memcpy(r.host, host, hn);
    r.host[hn] = '\0';
    strcpy(r.port, port);
    *a = r;
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_unix(const struct addr *a, char *why, size_t size)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(why, size, "socket: %s", strerror(errno));
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, a->path, strlen(a->path) + 1);
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&sun, sizeof sun);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        int e = errno;
        close(fd);
        return fail(why, size, "%s", strerror(e));
    }
    return fd;
}

/* Connects fd (non-blocking) to ai before deadline. 0, or an errno value. */
static int connect_one(int fd, const struct addrinfo *ai, double deadline)
{
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return errno;
    for (;;) {
        double left = deadline - now();
        if (left <= 0)
            return ETIMEDOUT;
        struct pollfd p = {fd, POLLOUT, 0};
        int n = poll(&p, 1, (int)(left * 1000) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return ETIMEDOUT;
        int e = 0;
        socklen_t len = sizeof e;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
            return errno;
        return e;
    }
}

static int connect_tcp(const struct addr *a, double timeout, char *why, size_t size)
{
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int g = getaddrinfo(a->host, a->port, &hints, &res);
    if (g != 0)
        return fail(why, size, "cannot resolve the host: %s", gai_strerror(g));
    double deadline = now() + timeout;
    int err = ECONNREFUSED, fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        err = connect_one(fd, ai, deadline);
        if (err != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return fail(why, size, "%s",
                    err == ETIMEDOUT ? "no answer within the connect timeout" : strerror(err));
    int flags = fcntl(fd, F_GETFL);
    int one = 1;
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0) {
        int e = errno;
        close(fd);
        return fail(why, size, "cannot set up the socket: %s", strerror(e));
    }
    return fd;
}

int addr_connect(const struct addr *a, double timeout, char *why, size_t size)
{
    return a->is_unix ? connect_unix(a, why, size) : connect_tcp(a, timeout, why, size);
}
