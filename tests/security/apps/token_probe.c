/*
 * token_probe.c - the app tests/security/tokens_container.sh deploys (app "sec-token-probe"):
 * functions that try, with the token their container was given (SKIFF_TOKEN_ID and
 * SKIFF_TOKEN_SECRET in its environment), what a function must not do: mint or list tokens,
 * list, deploy or stop apps, read another app's calls and logs. Each attempt's outcome is
 * reported ("ok ..." or "ErrorType: message"), so the test can check that every forbidden one is
 * refused while calling a function and reading back the function's own spawned call work.
 *
 * The operations that libskiff has no public function for are sent as raw protocol frames
 * (docs/protocol.md): a 4-byte big-endian length and one msgpack map, written and read by the
 * few lines of msgpack below (enough for these requests and their replies).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <skiff/app.h>

SKIFF_APP("sec-token-probe");

/* --- a little msgpack ------------------------------------------------------------------------ */

struct pk {
    unsigned char b[4096];
    size_t n;
};

static void put(struct pk *p, const void *d, size_t n)
{
    if (p->n + n <= sizeof p->b)
        memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void put1(struct pk *p, unsigned c)
{
    unsigned char x = (unsigned char)c;
    put(p, &x, 1);
}

static void pk_str(struct pk *p, const char *s)
{
    size_t n = strlen(s);
    if (n < 32) {
        put1(p, 0xa0 | (unsigned)n);
    } else {
        put1(p, 0xd9);
        put1(p, (unsigned)n);
    }
    put(p, s, n);
}

static void pk_int(struct pk *p, int64_t v)
{
    if (v >= 0 && v < 128) {
        put1(p, (unsigned)v);
        return;
    }
    put1(p, 0xd3);
    for (int i = 7; i >= 0; i--)
        put1(p, (unsigned)((uint64_t)v >> (8 * i)) & 0xff);
}

/* A frame of op with nfields more key-value pairs to follow. */
static void begin(struct pk *p, int op, int rid, int nfields)
{
    p->n = 4;
    put1(p, 0x80 | (unsigned)(2 + nfields));
    pk_str(p, "op");
    pk_int(p, op);
    pk_str(p, "rid");
    pk_int(p, rid);
}

static int send_frame(int fd, struct pk *p)
{
    uint32_t len = htonl((uint32_t)(p->n - 4));
    memcpy(p->b, &len, 4);
    return p->n <= sizeof p->b && send(fd, p->b, p->n, MSG_NOSIGNAL) == (ssize_t)p->n ? 0 : -1;
}

/* Skips one msgpack value at *q (bounded by end). 0 or -1. */
static int skip(const unsigned char **q, const unsigned char *end, int depth)
{
    const unsigned char *p = *q;
    if (p >= end || depth > 16)
        return -1;
    unsigned c = *p++;
    size_t n = 0, items = 0;
    if (c < 0x80 || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
    } else if ((c & 0xf0) == 0x80) {
        items = 2 * (c & 0x0f);
    } else if ((c & 0xf0) == 0x90) {
        items = c & 0x0f;
    } else if ((c & 0xe0) == 0xa0) {
        n = c & 0x1f;
    } else if (c == 0xcc || c == 0xd0) {
        n = 1;
    } else if (c == 0xcd || c == 0xd1) {
        n = 2;
    } else if (c == 0xce || c == 0xd2 || c == 0xca) {
        n = 4;
    } else if (c == 0xcf || c == 0xd3 || c == 0xcb) {
        n = 8;
    } else if (c == 0xd9 || c == 0xc4) {
        if (p + 1 > end)
            return -1;
        n = p[0];
        p += 1;
    } else if (c == 0xda || c == 0xc5 || c == 0xdc || c == 0xde) {
        if (p + 2 > end)
            return -1;
        size_t v = (size_t)p[0] << 8 | p[1];
        p += 2;
        if (c == 0xdc)
            items = v;
        else if (c == 0xde)
            items = 2 * v;
        else
            n = v;
    } else if (c == 0xdb || c == 0xc6 || c == 0xdd || c == 0xdf) {
        if (p + 4 > end)
            return -1;
        size_t v = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        p += 4;
        if (c == 0xdd)
            items = v;
        else if (c == 0xdf)
            items = 2 * v;
        else
            n = v;
    } else {
        return -1;
    }
    if ((size_t)(end - p) < n)
        return -1;
    p += n;
    for (size_t i = 0; i < items; i++)
        if (skip(&p, end, depth + 1) < 0)
            return -1;
    *q = p;
    return 0;
}

/* A str at *q into out (size bytes), advancing *q. 0 or -1. */
static int get_str(const unsigned char **q, const unsigned char *end, char *out, size_t size)
{
    const unsigned char *p = *q;
    if (p >= end)
        return -1;
    size_t n;
    if ((*p & 0xe0) == 0xa0) {
        n = *p & 0x1f;
        p++;
    } else if (*p == 0xd9 && p + 1 < end) {
        n = p[1];
        p += 2;
    } else if (*p == 0xda && p + 2 < end) {
        n = (size_t)p[1] << 8 | p[2];
        p += 3;
    } else {
        return -1;
    }
    if ((size_t)(end - p) < n)
        return -1;
    snprintf(out, size, "%.*s", (int)n, (const char *)p);
    *q = p + n;
    return 0;
}

/* Reads frames until the final reply (OK or ERROR) of rid; its outcome into out: "ok" or
 * "Type: message". 0, or -1 when the connection failed. */
static int read_reply(int fd, int rid, char *out, size_t size)
{
    static unsigned char body[1 << 20];
    for (;;) {
        unsigned char h[4];
        size_t got = 0;
        while (got < 4) {
            ssize_t k = recv(fd, h + got, 4 - got, 0);
            if (k <= 0) {
                snprintf(out, size, "ConnectionError: the server closed the connection");
                return -1;
            }
            got += (size_t)k;
        }
        uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (len > sizeof body) {
            snprintf(out, size, "ProbeError: a reply of %u bytes", (unsigned)len);
            return -1;
        }
        for (got = 0; got < len;) {
            ssize_t k = recv(fd, body + got, len - got, 0);
            if (k <= 0) {
                snprintf(out, size, "ConnectionError: the server closed the connection");
                return -1;
            }
            got += (size_t)k;
        }
        const unsigned char *p = body, *end = body + len;
        if (p >= end || (*p & 0xf0) != 0x80) {
            snprintf(out, size, "ProbeError: a reply that is not a small map");
            return -1;
        }
        int fields = *p++ & 0x0f, op = -1, r = -1;
        char type[128] = "", message[1024] = "";
        for (int i = 0; i < fields; i++) {
            char key[32];
            if (get_str(&p, end, key, sizeof key) < 0)
                return -1;
            if ((!strcmp(key, "op") || !strcmp(key, "rid")) && p < end && *p < 0x80) {
                *(!strcmp(key, "op") ? &op : &r) = *p++;
            } else if (!strcmp(key, "type") && get_str(&p, end, type, sizeof type) == 0) {
            } else if (!strcmp(key, "message") && get_str(&p, end, message, sizeof message) == 0) {
            } else if (skip(&p, end, 0) < 0) {
                return -1;
            }
        }
        if (r != rid || (op != 1 && op != 2))
            continue; /* STREAM frames, or another request's reply */
        if (op == 1)
            snprintf(out, size, "ok");
        else
            snprintf(out, size, "%s: %s", type, message);
        return 0;
    }
}

/* Connects to SKIFF_SERVER (HOST:PORT with a numeric IPv4 host, or unix:PATH). fd or -1. */
static int dial(const char *addr)
{
    if (!strncmp(addr, "unix:", 5)) {
        struct sockaddr_un u = {.sun_family = AF_UNIX};
        snprintf(u.sun_path, sizeof u.sun_path, "%s", addr + 5);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&u, sizeof u) == 0)
            return fd;
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char host[64];
    int port;
    if (sscanf(addr, "%63[^:]:%d", host, &port) != 2)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static void report(skiff_value *m, const char *what, const char *outcome)
{
    skiff_map_set(m, what, skiff_value_string(outcome));
}

static void report_err(skiff_value *m, const char *what, const skiff_error *err)
{
    char s[1200];
    snprintf(s, sizeof s, "%s: %s", err->type ? err->type : skiff_code_name(err->code),
             err->message ? err->message : "");
    report(m, what, s);
}

/* The raw protocol attempts, with the container's own token. */
static void raw_attempts(skiff_value *m, const char *victim, const char *app, const char *own)
{
    const char *server = getenv("SKIFF_SERVER"), *id = getenv("SKIFF_TOKEN_ID"),
               *secret = getenv("SKIFF_TOKEN_SECRET");
    int fd = server ? dial(server) : -1;
    if (fd < 0 || !id || !secret) {
        report(m, "hello", "ProbeError: no server or no token in the environment");
        if (fd >= 0)
            close(fd);
        return;
    }
    struct pk p;
    char out[1400];
    int rid = 1;
    begin(&p, 10, rid, 2); /* HELLO */
    pk_str(&p, "token_id");
    pk_str(&p, id);
    pk_str(&p, "token_secret");
    pk_str(&p, secret);
    if (send_frame(fd, &p) < 0 || read_reply(fd, rid, out, sizeof out) < 0) {
        report(m, "hello", out);
        close(fd);
        return;
    }
    report(m, "hello", out);
    /* Each: name, op, then its fields as key/value string pairs (values "#N" are ints, "?b"
     * bools, "!bin" a small bin, "[]" an empty array). */
    const char *tries[][10] = {
        {"token_new", "20", NULL},
        {"token_new_admin", "20", "scope", "admin", NULL},
        {"token_list", "29", NULL},
        {"token_revoke", "30", "token_id", id, NULL},
        {"app_list", "16", NULL},
        {"container_list", "18", NULL},
        {"deploy", "15", "app", app, "code", "!bin", "functions", "[]", NULL},
        {"app_stop", "17", "app", app, NULL},
        {"logs", "27", "app", app, "follow", "?f", NULL},
        {"autoscaler", "26", "app", app, "function", "square", "max_containers", "#1", NULL},
        {"get_other", "13", "call_id", victim, "timeout_ms", "#0", NULL},
        {"info_other", "21", "call_id", victim, NULL},
        {"graph_other", "25", "call_id", victim, NULL},
        {"outputs_other", "24", "call_id", victim, NULL},
        {"cancel_other", "14", "call_id", victim, "terminate_containers", "?f", NULL},
        {"get_own_raw", "13", "call_id", own, "timeout_ms", "#10000", NULL},
    };
    for (size_t t = 0; t < sizeof tries / sizeof tries[0]; t++) {
        int nf = 0;
        while (tries[t][2 + 2 * nf])
            nf++;
        begin(&p, atoi(tries[t][1]), ++rid, nf);
        for (int f = 0; f < nf; f++) {
            const char *k = tries[t][2 + 2 * f], *v = tries[t][3 + 2 * f];
            pk_str(&p, k);
            if (v[0] == '#') {
                pk_int(&p, atoll(v + 1));
            } else if (v[0] == '?') {
                put1(&p, v[1] == 't' ? 0xc3 : 0xc2);
            } else if (!strcmp(v, "!bin")) {
                put1(&p, 0xc4);
                put1(&p, 4);
                put(&p,
                    "\x7f"
                    "ELF",
                    4);
            } else if (!strcmp(v, "[]")) {
                put1(&p, 0x90);
            } else {
                pk_str(&p, v);
            }
        }
        int rc = send_frame(fd, &p) < 0 ? -1 : read_reply(fd, rid, out, sizeof out);
        report(m, tries[t][0], rc < 0 && !out[0] ? "ConnectionError: cannot send" : out);
        if (rc < 0)
            break; /* the connection is gone: the attempts left are missing from the report */
    }
    close(fd);
}

/* One HTTP/1.1 request to the server's HTTP port with the container's token: "STATUS BODY". */
static void http_try(skiff_value *m, const char *what, int port, const char *method,
                     const char *path, const char *body, char *out, size_t size)
{
    snprintf(out, size, "ProbeError: no answer");
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int fd = dial(addr);
    if (fd < 0) {
        snprintf(out, size, "ProbeError: cannot connect to %s: %s", addr, strerror(errno));
        report(m, what, out);
        return;
    }
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nX-Skiff-Token-Id: %s\r\n"
                     "X-Skiff-Token-Secret: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     method, path, addr, getenv("SKIFF_TOKEN_ID"), getenv("SKIFF_TOKEN_SECRET"),
                     strlen(body), body);
    char resp[8192];
    size_t got = 0;
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
        ssize_t k;
        while (got < sizeof resp - 1 && (k = recv(fd, resp + got, sizeof resp - 1 - got, 0)) > 0)
            got += (size_t)k;
    }
    close(fd);
    resp[got] = '\0';
    int status = 0;
    const char *b = strstr(resp, "\r\n\r\n");
    if (sscanf(resp, "HTTP/1.%*d %d", &status) == 1)
        snprintf(out, size, "%d %s", status, b ? b + 4 : "");
    report(m, what, out);
}

/* probe(victim, app, http_port): the attempts above, then what a function may do: call app's
 * square, spawn it and read its own call back (libskiff, the raw protocol, HTTP). */
static int probe(skiff_ctx *ctx, skiff_value **out)
{
    const char *victim = skiff_arg_string(ctx, "victim"), *app = skiff_arg_string(ctx, "app");
    int port = (int)skiff_arg_int(ctx, "http_port");
    skiff_value *m = skiff_value_map();
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_client *c = skiff_ctx_client(ctx, &err);
    skiff_function *fn = NULL;
    if (!c || skiff_function_from_name(c, app, "square", &fn, &err) != SKIFF_OK) {
        report_err(m, "client", &err);
        *out = m;
        return 0;
    }
    /* A call. */
    skiff_value *args = skiff_value_list_of(1, skiff_value_int(4)), *r = NULL;
    if (skiff_function_remote(fn, args, NULL, &r, &err) == SKIFF_OK) {
        char s[64];
        snprintf(s, sizeof s, "ok %lld", (long long)skiff_value_get_int(r));
        report(m, "call", s);
    } else {
        report_err(m, "call", &err);
    }
    skiff_value_free(r);
    skiff_value_free(args);
    skiff_error_clear(&err);
    /* A spawn, read back. */
    char own[64] = "fc-none";
    skiff_call *call = NULL;
    args = skiff_value_list_of(1, skiff_value_int(5));
    r = NULL;
    if (skiff_function_spawn(fn, args, NULL, &call, &err) == SKIFF_OK) {
        snprintf(own, sizeof own, "%s", skiff_call_id(call));
        if (skiff_call_get(call, 30, &r, &err) == SKIFF_OK) {
            char s[64];
            snprintf(s, sizeof s, "ok %lld", (long long)skiff_value_get_int(r));
            report(m, "spawn_get_own", s);
        } else {
            report_err(m, "spawn_get_own", &err);
        }
        skiff_call_free(call);
    } else {
        report_err(m, "spawn_get_own", &err);
    }
    skiff_value_free(r);
    skiff_value_free(args);
    skiff_error_clear(&err);
    /* Another app's call, through libskiff. */
    call = NULL;
    if (skiff_call_from_id(c, victim, &call, &err) == SKIFF_OK) {
        r = NULL;
        if (skiff_call_get(call, 0, &r, &err) == SKIFF_OK)
            report(m, "from_id_other", "ok: read another app's call");
        else
            report_err(m, "from_id_other", &err);
        skiff_value_free(r);
        skiff_call_free(call);
    } else {
        report_err(m, "from_id_other", &err);
    }
    skiff_error_clear(&err);
    skiff_function_free(fn);
    raw_attempts(m, victim, app, own);
    /* HTTP: another app's call refused; a spawn of its own read back. */
    char path[256], text[8192];
    snprintf(path, sizeof path, "/api/v1/calls/%s?timeout=0", victim);
    http_try(m, "http_get_other", port, "GET", path, "", text, sizeof text);
    snprintf(path, sizeof path, "/api/v1/apps/%s/square/spawn", app);
    http_try(m, "http_spawn", port, "POST", path, "{\"args\": [6]}", text, sizeof text);
    const char *id = strstr(text, "\"call_id\":\"");
    if (id) {
        snprintf(path, sizeof path, "/api/v1/calls/%.29s?timeout=30", id + 11);
        http_try(m, "http_get_own", port, "GET", path, "", text, sizeof text);
    }
    *out = m;
    return 0;
}
SKIFF_FUNCTION(probe, .signature = "victim:str, app:str, http_port:int");

/* [SKIFF_TOKEN_ID, SKIFF_TOKEN_SECRET, container id]: the token this container was given. */
static int whoami(skiff_ctx *ctx, skiff_value **out)
{
    const char *id = getenv("SKIFF_TOKEN_ID"), *secret = getenv("SKIFF_TOKEN_SECRET");
    *out = skiff_value_list_of(3, skiff_value_string(id ? id : ""),
                               skiff_value_string(secret ? secret : ""),
                               skiff_value_string(skiff_ctx_container_id(ctx)));
    return 0;
}
SKIFF_FUNCTION(whoami, .signature = "");

/* A snapshot class: its template's enter_snap hook keeps the template's token, and each
 * container forked from it reports its own beside it. */
struct snap {
    char template_token[64];
};

static int remember(skiff_ctx *ctx)
{
    struct snap *self = skiff_self(ctx);
    const char *id = getenv("SKIFF_TOKEN_ID");
    snprintf(self->template_token, sizeof self->template_token, "%s", id ? id : "");
    return 0;
}
SKIFF_CLASS(Snap, struct snap, .enter_snap = {remember});

/* [the template's token id, SKIFF_TOKEN_ID, SKIFF_TOKEN_SECRET, container id]. */
static int snap_whoami(skiff_ctx *ctx, skiff_value **out)
{
    struct snap *self = skiff_self(ctx);
    const char *id = getenv("SKIFF_TOKEN_ID"), *secret = getenv("SKIFF_TOKEN_SECRET");
    *out = skiff_value_list_of(
        4, skiff_value_string(self->template_token), skiff_value_string(id ? id : ""),
        skiff_value_string(secret ? secret : ""), skiff_value_string(skiff_ctx_container_id(ctx)));
    return 0;
}
SKIFF_METHOD(Snap, snap_whoami, .signature = "");

/* The probe, from a container forked from the snapshot template. */
static int snap_probe(skiff_ctx *ctx, skiff_value **out)
{
    return probe(ctx, out);
}
SKIFF_METHOD(Snap, snap_probe, .signature = "victim:str, app:str, http_port:int");
