/*
 * test_client_addr.c - unit tests of server address parsing and connecting (src/client/addr.c):
 * HOST:PORT, [IPv6]:PORT and unix:PATH, every malformed form with its reason, and connects that
 * succeed or fail with a reason (refused, missing socket, unknown host).
 */
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "client/addr.h"
#include "unit.h"

static struct addr parse_ok(const char *s)
{
    struct addr a;
    char why[256] = "";
    if (addr_parse(s, &a, why, sizeof why) != 0)
        FAIL("addr_parse(\"%s\") failed: %s", s, why);
    return a;
}

static void parse_bad(const char *s, const char *reason)
{
    struct addr a;
    memset(&a, 0x5a, sizeof a);
    char why[256] = "";
    ASSERT_EQ_INT(addr_parse(s, &a, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, reason);
    ASSERT_EQ_INT(((unsigned char *)&a)[0], 0x5a); /* untouched on failure */
}

TEST(parse_host_port)
{
    struct addr a = parse_ok("127.0.0.1:7878");
    ASSERT_FALSE(a.is_unix);
    ASSERT_EQ_STR(a.host, "127.0.0.1");
    ASSERT_EQ_STR(a.port, "7878");
    a = parse_ok("localhost:1");
    ASSERT_EQ_STR(a.host, "localhost");
    ASSERT_EQ_STR(a.port, "1");
    a = parse_ok("skiff.example.com:65535");
    ASSERT_EQ_STR(a.port, "65535");
}

TEST(parse_ipv6)
{
    struct addr a = parse_ok("[::1]:7878");
    ASSERT_FALSE(a.is_unix);
    ASSERT_EQ_STR(a.host, "::1");
    ASSERT_EQ_STR(a.port, "7878");
    parse_bad("::1:7878", "brackets");
    parse_bad("[::1]7878", "[IPV6]:PORT");
    parse_bad("[::1", "[IPV6]:PORT");
    parse_bad("[]:7878", "empty host");
}

TEST(parse_unix)
{
    struct addr a = parse_ok("unix:/run/skiff.sock");
    ASSERT_TRUE(a.is_unix);
    ASSERT_EQ_STR(a.path, "/run/skiff.sock");
    a = parse_ok("unix:relative/s");
    ASSERT_EQ_STR(a.path, "relative/s");
    parse_bad("unix:", "path is empty");
    char longpath[200] = "unix:/";
    memset(longpath + 6, 'p', 150);
    longpath[156] = '\0';
    parse_bad(longpath, "longer than 107");
}

TEST(parse_malformed)
{
    parse_bad("", "empty");
    parse_bad("localhost", "has no port");
    parse_bad(":7878", "empty host");
    parse_bad("host:", "port must be a number");
    parse_bad("host:0", "port must be a number from 1 to 65535");
    parse_bad("host:65536", "1 to 65535");
    parse_bad("host:12a", "port must be a number");
    parse_bad("host:-1", "port must be a number");
    parse_bad("host:123456", "port must be a number");
    parse_bad("a:b:1", "brackets");
    struct addr a;
    char why[64];
    ASSERT_EQ_INT(addr_parse(NULL, &a, why, sizeof why), -1);
}

/* A listening TCP socket on 127.0.0.1 and an ephemeral port (written to port). */
static int listen_tcp(char port[8])
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ_INT(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    ASSERT_EQ_INT(listen(fd, 4), 0);
    socklen_t len = sizeof sin;
    ASSERT_EQ_INT(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    snprintf(port, 8, "%u", ntohs(sin.sin_port));
    return fd;
}

TEST(connect_tcp_and_refused)
{
    char port[8], text[64], why[256] = "";
    int l = listen_tcp(port);
    snprintf(text, sizeof text, "127.0.0.1:%s", port);
    struct addr a = parse_ok(text);
    int fd = addr_connect(&a, 2.0, why, sizeof why);
    if (fd < 0)
        FAIL("connect to %s: %s", text, why);
    close(fd);
    close(l); /* nobody listens there now */
    ASSERT_EQ_INT(addr_connect(&a, 2.0, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "refused");
}

TEST(connect_unix)
{
    const char *tmp = getenv("TMPDIR");
    char path[100], text[120], why[256] = "";
    snprintf(path, sizeof path, "%s/addr-%d.sock", tmp && strlen(tmp) < 60 ? tmp : "/tmp",
             (int)getpid());
    unlink(path);
    snprintf(text, sizeof text, "unix:%s", path);
    struct addr a = parse_ok(text);
    ASSERT_EQ_INT(addr_connect(&a, 1.0, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "No such file");

    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {0};
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    ASSERT_EQ_INT(bind(l, (struct sockaddr *)&sun, sizeof sun), 0);
    ASSERT_EQ_INT(listen(l, 4), 0);
    int fd = addr_connect(&a, 1.0, why, sizeof why);
    if (fd < 0)
        FAIL("connect to %s: %s", text, why);
    close(fd);
    close(l);
    unlink(path);
}

TEST(connect_unknown_host)
{
    struct addr a = parse_ok("no-such-host.invalid:7878");
    char why[256] = "";
    ASSERT_EQ_INT(addr_connect(&a, 1.0, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "cannot resolve");
}
