/*
 * logs.c - captured container output (see logs.h).
 *
 * Per app, the lines live in a FIFO list and are counted in bytes; adding a line drops the oldest
 * while the app holds more than LOGS_KEEP_BYTES. A container's unfinished line waits in the
 * container (log_part) until its newline arrives. Followers are LOGS streams; each new line is
 * packed into every matching follower's stream (stream.c batches them into frames).
 */
#include "logs.h"

#include <stdio.h>
#include <string.h>

#include "apps.h"
#include "calls.h"
#include "common/hmap.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/value.h"
#include "conn.h"
#include "container.h"
#include "store.h"
#include "stream.h"

struct line {
    struct list_node link;
    int64_t ts; /* unix ms */
    char container_id[ID_SIZE];
    char input_id[ID_SIZE]; /* "" when not one input */
    char *function;         /* points into text's allocation */
    uint8_t stream;         /* 1 stdout, 2 stderr */
    size_t len;
    char text[]; /* len bytes, NUL, then the function name */
};

struct app_logs {
    char *app;
    struct list_node lines; /* oldest first */
    size_t bytes;
};

struct follower {
    struct stream *s;
    char *app;
    char *function; /* or NULL */
    struct list_node link;
};

static struct hmap by_app;
static struct list_node followers = {&followers, &followers};

void logs_init(void)
{
    hmap_init(&by_app);
}

void logs_deinit(void)
{
    for (size_t i = 0; i < by_app.cap; i++) {
        struct app_logs *a = by_app.slots[i].val;
        if (!a)
            continue;
        while (!list_empty(&a->lines)) {
            struct line *l = container_of(a->lines.next, struct line, link);
            list_remove(&l->link);
            mem_free(l);
        }
        mem_free(a->app);
        mem_free(a);
    }
    hmap_deinit(&by_app);
}

static void pack_line(struct stream *s, const struct line *l)
{
    msgpack_packer *pk = stream_item(s);
    msgpack_pack_array(pk, 6);
    msgpack_pack_int64(pk, l->ts);
    msgpack_pack_str_with_body(pk, l->container_id, strlen(l->container_id));
    if (l->input_id[0])
        msgpack_pack_str_with_body(pk, l->input_id, strlen(l->input_id));
    else
        msgpack_pack_nil(pk);
    const char *name = l->stream == 2 ? "stderr" : "stdout";
    msgpack_pack_str_with_body(pk, name, strlen(name));
    msgpack_pack_str_with_body(pk, l->text, l->len);
    msgpack_pack_str_with_body(pk, l->function, strlen(l->function));
    stream_item_done(s);
}

static bool matches(const char *want_fn, const struct line *l)
{
    return !want_fn || !strcmp(want_fn, l->function);
}

static struct app_logs *app_logs(const char *app)
{
    struct app_logs *a = hmap_get(&by_app, app);
    if (a)
        return a;
    a = mem_calloc(1, sizeof *a);
    if (!a || !(a->app = mem_strdup(app))) {
        mem_free(a);
        return NULL;
    }
    list_init(&a->lines);
    if (hmap_put(&by_app, a->app, a) < 0) {
        mem_free(a->app);
        mem_free(a);
        return NULL;
    }
    return a;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    size_t k = p[0] < 0x80             ? 1
               : (p[0] & 0xe0) == 0xc0 ? 2
               : (p[0] & 0xf0) == 0xe0 ? 3
               : (p[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (k == 0 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return utf8_valid((const char *)p, k) ? k : 0;
}

/* Copies n bytes, replacing each byte that does not start valid UTF-8 with '?': lines travel as
 * msgpack strings, which must be UTF-8, and a function may print anything. */
static void copy_utf8(char *dst, const char *src, size_t n)
{
    const unsigned char *p = (const unsigned char *)src;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0) {
            dst[i++] = '?';
            continue;
        }
        memcpy(dst + i, p + i, k);
        i += k;
    }
}

/* Keeps one line of ct's output (text[0..len), no newline); dropped bytes of it were not kept
 * already. A line over LOGS_LINE_MAX keeps its first LOGS_LINE_MAX bytes and says how many
 * more it had. */
static void add_line(struct container *ct, int stream, const char *text, size_t len, size_t dropped)
{
    if (len > LOGS_LINE_MAX) {
        dropped += len - LOGS_LINE_MAX;
        len = LOGS_LINE_MAX;
    }
    char more[64] = "";
    if (dropped)
        snprintf(more, sizeof more, "... [line cut: %zu bytes]", dropped);
    size_t extra = strlen(more);
    const char *fn = ct->fn->name;
    size_t fnlen = strlen(fn);
    struct line *l = mem_alloc(sizeof *l + len + extra + 1 + fnlen + 1);
    if (!l)
        return; /* logs are best effort */
    memset(l, 0, sizeof *l);
    l->ts = store_now_ms();
    snprintf(l->container_id, sizeof l->container_id, "%s", ct->id);
    if (ct->n_held == 1) {
        const struct input *in = container_of(ct->held.next, struct input, link);
        snprintf(l->input_id, sizeof l->input_id, "%s", in->id);
    }
    l->stream = (uint8_t)stream;
    copy_utf8(l->text, text, len);
    memcpy(l->text + len, more, extra);
    l->len = len + extra;
    l->text[l->len] = '\0';
    l->function = l->text + l->len + 1;
    memcpy(l->function, fn, fnlen + 1);

    struct list_node *n, *t;
    list_for_each_safe(n, t, &followers)
    {
        struct follower *f = container_of(n, struct follower, link);
        if (!strcmp(f->app, ct->fn->app->name) && matches(f->function, l))
            pack_line(f->s, l);
    }
    struct app_logs *a = app_logs(ct->fn->app->name);
    if (!a) {
        mem_free(l);
        return;
    }
    list_push(&a->lines, &l->link);
    a->bytes += sizeof *l + l->len;
    while (a->bytes > LOGS_KEEP_BYTES && a->lines.next != &l->link) {
        struct line *old = container_of(a->lines.next, struct line, link);
        list_remove(&old->link);
        a->bytes -= sizeof *old + old->len;
        mem_free(old);
    }
}

void logs_output(struct container *ct, int stream, const char *p, size_t len)
{
    int i = stream == 2;
    struct buf *part = &ct->log_part[i];
    while (len > 0) {
        const char *nl = memchr(p, '\n', len);
        size_t take = nl ? (size_t)(nl - p) : len;
        /* What fits of the line is kept; the rest is only counted (the line is cut). */
        size_t room = part->len < LOGS_LINE_MAX ? LOGS_LINE_MAX - part->len : 0;
        size_t keep = take < room ? take : room;
        if (!nl) {
            if (keep && buf_append(part, p, keep) != 0)
                keep = 0; /* out of memory: the line is cut here */
            ct->log_cut[i] += take - keep;
            return;
        }
        if (part->len || ct->log_cut[i]) {
            if (keep && buf_append(part, p, keep) != 0)
                keep = 0;
            add_line(ct, stream, part->data ? part->data : "", part->len,
                     ct->log_cut[i] + take - keep);
            part->len = 0;
            ct->log_cut[i] = 0;
            buf_shrink(part);
        } else {
            add_line(ct, stream, p, take, 0);
        }
        p += take + 1;
        len -= take + 1;
    }
}

void logs_stream_ended(struct container *ct, int stream)
{
    int i = stream == 2;
    struct buf *part = &ct->log_part[i];
    if (part->len || ct->log_cut[i])
        add_line(ct, stream, part->data ? part->data : "", part->len, ct->log_cut[i]);
    ct->log_cut[i] = 0;
    buf_deinit(part);
}

static void follower_gone(struct stream *s, void *owner)
{
    (void)s;
    struct follower *f = owner;
    list_remove(&f->link);
    mem_free(f->app);
    mem_free(f->function);
    mem_free(f);
}

void logs_request(struct conn *c, uint64_t rid, const char *app, const char *function, bool follow,
                  int64_t tail)
{
    if (!apps_find(app)) {
        conn_error(c, rid, SKIFF_ERR_NOT_FOUND, "app '%s' is not deployed", app);
        return;
    }
    struct follower *f = mem_calloc(1, sizeof *f);
    struct stream *s = f ? stream_new(c, rid, f, follow ? follower_gone : NULL) : NULL;
    if (!s) {
        mem_free(f);
        conn_error(c, rid, SKIFF_ERR_NOMEM, "out of memory");
        return;
    }
    f->s = s;
    struct app_logs *a = hmap_get(&by_app, app);
    if (a) {
        /* The last `tail` matching lines: count back from the newest. */
        struct list_node *start = a->lines.next;
        if (tail >= 0) {
            int64_t k = 0;
            start = &a->lines;
            while (start->prev != &a->lines && k < tail) {
                start = start->prev;
                if (matches(function, container_of(start, struct line, link)))
                    k++;
            }
        }
        for (struct list_node *n = start; n != &a->lines; n = n->next) {
            const struct line *l = container_of(n, struct line, link);
            if (matches(function, l))
                pack_line(s, l);
        }
    }
    if (!follow) {
        stream_flush(s);
        conn_ok(c, rid);
        stream_free(s);
        mem_free(f);
        return;
    }
    f->app = mem_strdup(app);
    f->function = function ? mem_strdup(function) : NULL;
    if (!f->app || (function && !f->function)) {
        stream_free(s);
        mem_free(f->app);
        mem_free(f->function);
        mem_free(f);
        conn_error(c, rid, SKIFF_ERR_NOMEM, "out of memory");
        return;
    }
    list_push(&followers, &f->link);
}
