/*
 * calls.c - the `skiff` commands that make and follow function calls: call, spawn, get, cancel
 * and map; and opening the function a command names (a class method with --param values).
 *
 * map streams: stdin is the map's input source, read one line at a time as the map's window
 * makes room (a pipe with nothing to read yet does not hold results back: the source answers
 * SKIFF_AGAIN), and each result is written as soon as skiff_map_next hands it over (in input
 * order, or completion order with --unordered), so a map over millions of lines runs in memory
 * bounded by the window. When stderr is a terminal a progress line (done/read so far, rate,
 * failures) is redrawn there at most every PROGRESS_EVERY seconds; stdout carries only results.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client/fn.h"
#include "client/ops.h"
#include "common/id.h"
#include "common/mem.h"

/* Seconds between redraws of map's progress line. */
#define PROGRESS_EVERY 0.1

static const char call_usage[] =
    "usage: skiff call APP FUNCTION [ARG ...] [--kwarg NAME=JSON ...] [--param NAME=JSON ...]\n"
    "\n"
    "Calls APP's FUNCTION, waits for it, and prints the result as one line of JSON (a\n"
    "generator's items: one line each, as they are yielded).\n"
    "Each ARG is one JSON value: 42, 1.5, true, null, '\"text\"', '[1,2]', '{\"k\": 1}',\n"
    "'{\"$bytes\": \"<base64>\"}'. --kwarg NAME=JSON passes a keyword argument (repeatable).\n"
    "A method is FUNCTION Cls.method; --param NAME=JSON sets a parameter of the class's\n"
    "instance (int, string, bytes or bool; repeatable).\n"
    "Use -- before positional arguments that start with --.\n"
    "Exit status: 0 success; 1 the call failed (error type, message and traceback on stderr);\n"
    "2 usage or bad JSON.\n";

static const char spawn_usage[] =
    "usage: skiff spawn APP FUNCTION [ARG ...] [--kwarg NAME=JSON ...] [--param NAME=JSON ...]\n"
    "\n"
    "Queues a call of APP's FUNCTION and prints its function call id (fc-...) once the input\n"
    "is stored durably by the server. Arguments as for `skiff call`; collect the result (a\n"
    "generator's items) with `skiff get FC_ID`.\n"
    "Exit status: 0 success; 1 the request failed; 2 usage or bad JSON.\n";

static const char get_usage[] =
    "usage: skiff get FC_ID [--timeout SECONDS] [--index I]\n"
    "\n"
    "Waits for the call's result and prints it as one line of JSON. --timeout 0 polls once;\n"
    "without --timeout it waits as long as the call runs. For a spawn_map call, --index I\n"
    "prints input I's result; without it every result is printed, one line each, in input\n"
    "order (a failed input as {\"error\": {\"type\": ..., \"message\": ...}}). For a spawned\n"
    "generator every item is printed, one line each; with --timeout, those that arrive in\n"
    "time (0: those stored so far), then exit 124 if the generator has not finished.\n"
    "Exit status: 0 success; 1 the call failed (or is unknown, cancelled, expired);\n"
    "2 usage; 124 the timeout passed while the call still runs.\n";

static const char cancel_usage[] =
    "usage: skiff cancel FC_ID [--terminate-containers]\n"
    "\n"
    "Cancels the call: a pending input never runs, a running one is stopped, waiters get\n"
    "CancelledError. --terminate-containers also kills the containers running its inputs.\n"
    "Cancelling a finished call changes nothing.\n"
    "Exit status: 0 success; 1 the request failed; 2 usage.\n";

static const char map_usage[] =
    "usage: skiff map APP FUNCTION [--unordered] [--return-exceptions] [--window N]\n"
    "                 [--kwarg NAME=JSON ...] [--param NAME=JSON ...]\n"
    "\n"
    "Reads one JSON array of positional arguments per line on stdin (blank lines are skipped),\n"
    "calls APP's FUNCTION once per line as one map, and writes one JSON result per line on\n"
    "stdout as results arrive: in input order, or with --unordered in completion order.\n"
    "--return-exceptions writes {\"error\": {\"type\": ..., \"message\": ...}} in place of a\n"
    "failed input's result instead of stopping at the first failure. --window N bounds the\n"
    "inputs in flight (default 1000); input is read only as fast as results come back, so\n"
    "memory stays flat on any number of lines. --kwarg goes to every call; --param as for\n"
    "`skiff call`. A progress line is shown on stderr when it is a terminal.\n"
    "Exit status: 0 success; 1 a call failed; 2 usage or a bad input line.\n";

/* Prints usage to stdout for --help. */
static int help(const char *usage)
{
    fputs(usage, stdout);
    return CLI_OK;
}

int cli_target_open(skiff_client *c, const char *app, const char *name, const skiff_value *params,
                    struct cli_target *t, skiff_error *err)
{
    memset(t, 0, sizeof *t);
    if (skiff_map_len(params) == 0)
        return skiff_function_from_name(c, app, name, &t->fn, err);
    const char *dot = strchr(name, '.');
    if (!dot || dot == name || !dot[1])
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "--param applies to a class method (Cls.method), not to '%s'", name);
    char cls[128];
    snprintf(cls, sizeof cls, "%.*s", (int)(dot - name), name);
    int rc = skiff_cls_from_name(c, app, cls, &t->cls, err);
    if (rc == SKIFF_OK)
        rc = skiff_cls_instantiate(t->cls, params, &t->obj, err);
    if (rc == SKIFF_OK)
        rc = skiff_obj_method(t->obj, dot + 1, &t->fn, err);
    if (rc != SKIFF_OK)
        cli_target_close(t);
    return rc;
}

void cli_target_close(struct cli_target *t)
{
    skiff_function_free(t->fn);
    skiff_obj_free(t->obj);
    skiff_cls_free(t->cls);
    memset(t, 0, sizeof *t);
}

/* Drains a generator stream to stdout, one JSON line per item as it comes. */
static int drain_gen(skiff_gen *g, skiff_error *err)
{
    skiff_value *item = NULL;
    int rc = CLI_OK, code;
    while (rc == CLI_OK && (code = skiff_gen_next(g, &item, err)) == SKIFF_OK) {
        rc = cli_print_json(item);
        fflush(stdout);
        skiff_value_free(item);
    }
    if (rc == CLI_OK && code != SKIFF_DONE)
        rc = cli_fail(err);
    skiff_gen_free(g);
    return rc;
}

/* Calls generator fn and prints its items. */
static int print_items(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                       skiff_error *err)
{
    skiff_gen *g = NULL;
    if (skiff_function_remote_gen(fn, args, kwargs, &g, err) != SKIFF_OK)
        return cli_fail(err);
    return drain_gen(g, err);
}

int cli_call_print(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs)
{
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *result = NULL;
    int rc;
    if (skiff_function_get_kind(fn) == SKIFF_FUNCTION_GENERATOR)
        rc = print_items(fn, args, kwargs, &err);
    else if (skiff_function_remote(fn, args, kwargs, &result, &err) != SKIFF_OK)
        rc = cli_fail(&err);
    else
        rc = cli_print_json(result);
    skiff_value_free(result);
    skiff_error_clear(&err);
    return rc;
}

/* Runs call (spawn false) or spawn. */
static int call_or_spawn(struct cli *cli, int argc, char **argv, bool spawn)
{
    const char *usage = spawn ? spawn_usage : call_usage;
    const char **pos = mem_calloc((size_t)argc + 1, sizeof *pos);
    const char **kws = mem_calloc((size_t)argc + 1, sizeof *kws);
    const char **prs = mem_calloc((size_t)argc + 1, sizeof *prs);
    skiff_value *args = NULL, *kwargs = NULL, *params = NULL, *result = NULL;
    skiff_client *client = NULL;
    struct cli_target t = {NULL, NULL, NULL};
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc, npos;
    bool want_help;
    char why[512];
    struct cli_opt opts[] = {{.name = "--kwarg", .has_value = true, .values = kws},
                             {.name = "--param", .has_value = true, .values = prs}};
    if (!pos || !kws || !prs) {
        fputs("skiff: out of memory\n", stderr);
        rc = CLI_FAILED;
        goto out;
    }
    if (cli_getopt(argc, argv, opts, 2, &want_help, &cli->server, pos, &npos, why, sizeof why) <
        0) {
        rc = cli_usage_error(usage, "%s", why);
        goto out;
    }
    if (want_help) {
        rc = help(usage);
        goto out;
    }
    if (npos < 2) {
        rc = cli_usage_error(usage, "%s needs APP and FUNCTION", spawn ? "spawn" : "call");
        goto out;
    }
    if (cli_parse_call_args(pos + 2, npos - 2, kws, opts[0].count, &args, &kwargs, why,
                            sizeof why) < 0 ||
        cli_parse_params(prs, opts[1].count, &params, why, sizeof why) < 0) {
        rc = cli_usage_error(usage, "%s", why);
        goto out;
    }
    rc = cli_connect(cli, &client);
    if (rc != CLI_OK)
        goto out;
    /* Looked up first, so a generator is called as one (its items stream out, one per line). */
    if (cli_target_open(client, pos[0], pos[1], params, &t, &err) != SKIFF_OK ||
        skiff_function_hydrate(t.fn, &err) != SKIFF_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    bool gen = skiff_function_get_kind(t.fn) == SKIFF_FUNCTION_GENERATOR;
    if (!spawn) {
        /* Ctrl-C ends the process; its connection closing cancels the call, even running. */
        client_cancel_on_close(t.fn);
        cli_on_interrupt("the call is cancelled");
    }
    if (spawn) {
        if ((gen ? skiff_function_spawn_gen(t.fn, args, kwargs, &call, &err)
                 : skiff_function_spawn(t.fn, args, kwargs, &call, &err)) != SKIFF_OK) {
            rc = cli_fail(&err);
            goto out;
        }
        puts(skiff_call_id(call));
        rc = CLI_OK;
    } else {
        rc = cli_call_print(t.fn, args, kwargs);
    }
out:
    skiff_error_clear(&err);
    skiff_value_free(result);
    skiff_value_free(args);
    skiff_value_free(kwargs);
    skiff_value_free(params);
    skiff_call_free(call);
    cli_target_close(&t);
    skiff_client_close(client);
    mem_free(pos);
    mem_free(kws);
    mem_free(prs);
    return rc;
}

int cmd_call(struct cli *cli, int argc, char **argv)
{
    return call_or_spawn(cli, argc, argv, false);
}

int cmd_spawn(struct cli *cli, int argc, char **argv)
{
    return call_or_spawn(cli, argc, argv, true);
}

/* Parses the FC_ID command line of get and cancel. CLI_OK with *id set; CLI_OK with *id left
 * NULL after printing --help; or the exit status of a usage error. */
static int parse_fc(struct cli *cli, int argc, char **argv, struct cli_opt *opts, size_t nopts,
                    const char *usage, const char *cmd, const char **id)
{
    const char **pos = mem_calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) {
        fputs("skiff: out of memory\n", stderr);
        return CLI_FAILED;
    }
    int npos, rc = CLI_OK;
    bool want_help;
    char why[512];
    if (cli_getopt(argc, argv, opts, nopts, &want_help, &cli->server, pos, &npos, why, sizeof why) <
        0)
        rc = cli_usage_error(usage, "%s", why);
    else if (want_help)
        rc = help(usage);
    else if (npos != 1)
        rc = cli_usage_error(usage, npos ? "%s takes exactly one FC_ID" : "%s needs an FC_ID", cmd);
    else if (!id_valid(pos[0], "fc")) { /* a failed request (1), like an unknown id */
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_error_set(&err, SKIFF_ERR_INVALID, NULL,
                        "'%s' is not a function call id (fc- followed by 26 characters)", pos[0]);
        rc = cli_fail(&err);
        skiff_error_clear(&err);
    } else
        *id = pos[0];
    mem_free(pos);
    return rc;
}

/* Writes {"error": {"type": ..., "message": ...}} for a failed input. */
static int print_error_value(const skiff_error *err)
{
    skiff_value *e = skiff_value_map(), *inner = skiff_value_map();
    int ok =
        e && inner &&
        skiff_map_set(inner, "type",
                      skiff_value_string(err->type ? err->type : skiff_code_name(err->code))) ==
            0 &&
        skiff_map_set(inner, "message", skiff_value_string(err->message ? err->message : "")) == 0;
    if (ok) {
        ok = skiff_map_set(e, "error", inner) == 0;
        inner = NULL;
    }
    int rc = ok ? cli_print_json(e) : CLI_FAILED;
    if (!ok)
        fputs("skiff: out of memory\n", stderr);
    skiff_value_free(inner);
    skiff_value_free(e);
    return rc;
}

/* Prints every result of a multi-input call, one line each, failures in place. */
static int print_all_outputs(skiff_call *call, skiff_error *err)
{
    skiff_map_options o = {.return_exceptions = true};
    skiff_map *m = NULL;
    if (skiff_call_iter(call, &o, &m, err) != SKIFF_OK)
        return cli_fail(err);
    skiff_map_output out = {0};
    int rc = CLI_OK, code;
    while (rc == CLI_OK && (code = skiff_map_next(m, &out, err)) == SKIFF_OK) {
        rc = out.error.code != SKIFF_OK ? print_error_value(&out.error) : cli_print_json(out.value);
        skiff_map_output_clear(&out);
    }
    if (rc == CLI_OK && code != SKIFF_DONE)
        rc = cli_fail(err);
    skiff_map_free(m);
    return rc;
}

/* How long `get --timeout S` on a generator waits for the server's first answer beyond S: it
 * comes at once (the items stored so far), so this only bounds a server that is stuck. */
#define GEN_FIRST_FRAME_MS 30000

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Prints the items of a spawned generator, one line each: every one (timeout < 0), or those
 * that arrive within timeout seconds (0: those stored already), then CLI_TIMEOUT if it has not
 * finished. */
static int print_gen_items(skiff_call *call, double timeout, skiff_error *err)
{
    skiff_gen *g = NULL;
    if (skiff_call_get_gen(call, &g, err) != SKIFF_OK)
        return cli_fail(err);
    if (timeout < 0)
        return drain_gen(g, err);
    double deadline = mono_now() + timeout;
    skiff_value *item = NULL;
    int rc = CLI_OK, code;
    for (;;) {
        double left = deadline - mono_now();
        int ms = left > 0 ? (int)(left * 1000 + 0.5) : 0;
        if (gen_frames(g) == 0 && ms < GEN_FIRST_FRAME_MS)
            ms = GEN_FIRST_FRAME_MS; /* what was stored comes first, whatever the timeout */
        code = gen_next_wait(g, ms, &item, err);
        if (code != SKIFF_OK)
            break;
        rc = cli_print_json(item);
        fflush(stdout);
        skiff_value_free(item);
        if (rc != CLI_OK)
            break;
    }
    if (rc == CLI_OK && code == SKIFF_AGAIN) {
        fprintf(stderr,
                "TimeoutError: generator call %s has not finished after %g s (%zu items so far)\n",
                skiff_call_id(call), timeout, skiff_gen_count(g));
        rc = CLI_TIMEOUT;
    } else if (rc == CLI_OK && code != SKIFF_DONE) {
        rc = cli_fail(err);
    }
    skiff_gen_free(g);
    return rc;
}

int cmd_get(struct cli *cli, int argc, char **argv)
{
    struct cli_opt opts[] = {{.name = "--timeout", .has_value = true},
                             {.name = "--index", .has_value = true}};
    const char *id = NULL;
    int rc = parse_fc(cli, argc, argv, opts, 2, get_usage, "get", &id);
    if (rc != CLI_OK)
        return rc;
    if (!id)
        return CLI_OK; /* --help */
    double timeout = SKIFF_WAIT_FOREVER;
    if (opts[0].count && cli_parse_seconds(opts[0].value, &timeout) < 0)
        return cli_usage_error(get_usage, "--timeout '%s' is not a number of seconds >= 0",
                               opts[0].value);
    uint64_t index = 0;
    if (opts[1].count && cli_parse_count(opts[1].value, &index) < 0)
        return cli_usage_error(get_usage, "--index '%s' is not an input index (0, 1, ...)",
                               opts[1].value);
    skiff_client *client;
    rc = cli_connect(cli, &client);
    if (rc != CLI_OK)
        return rc;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_call *call = NULL;
    skiff_value *result = NULL;
    int code = skiff_call_from_id(client, id, &call, &err);
    skiff_call_kind kind = skiff_call_get_kind(call);
    /* get started nothing: Ctrl-C stops the waiting and says how to stop the call. */
    char goes_on[200];
    snprintf(goes_on, sizeof goes_on, "%s goes on; `skiff cancel %s` stops it", id, id);
    cli_on_interrupt(goes_on);
    if (code != SKIFF_OK) {
        rc = cli_fail(&err);
    } else if (kind == SKIFF_CALL_GENERATOR && !opts[1].count) {
        rc = print_gen_items(call, timeout, &err);
    } else if (kind == SKIFF_CALL_SPAWN_MAP && !opts[1].count) {
        rc = print_all_outputs(call, &err);
    } else {
        code = opts[1].count ? skiff_call_get_index(call, (size_t)index, timeout, &result, &err)
                             : skiff_call_get(call, timeout, &result, &err);
        rc = code == SKIFF_OK ? cli_print_json(result) : cli_fail(&err);
        if (code == SKIFF_ERR_TIMEOUT)
            rc = CLI_TIMEOUT; /* still running: the error went to stderr, the status says which */
    }
    skiff_value_free(result);
    skiff_error_clear(&err);
    skiff_call_free(call);
    skiff_client_close(client);
    return rc;
}

int cmd_cancel(struct cli *cli, int argc, char **argv)
{
    struct cli_opt opts[] = {{.name = "--terminate-containers"}};
    const char *id = NULL;
    int rc = parse_fc(cli, argc, argv, opts, 1, cancel_usage, "cancel", &id);
    if (rc != CLI_OK)
        return rc;
    if (!id)
        return CLI_OK; /* --help */
    skiff_client *client;
    rc = cli_connect(cli, &client);
    if (rc != CLI_OK)
        return rc;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_call *call = NULL;
    int code = skiff_call_from_id(client, id, &call, &err);
    if (code == SKIFF_OK)
        code = skiff_call_cancel(call, opts[0].count > 0, &err);
    rc = code == SKIFF_OK ? CLI_OK : cli_fail(&err);
    skiff_error_clear(&err);
    skiff_call_free(call);
    skiff_client_close(client);
    return rc;
}

/* --- map -------------------------------------------------------------------------------------- */

/* stdin as the map's input source, read with read(2) into our own buffer so the source can tell
 * "no complete line yet" (SKIFF_AGAIN: the map goes on delivering results) from "blocked". */
struct map_input {
    char *buf; /* bytes read; lines are taken from off */
    size_t len, cap, off;
    bool eof;        /* stdin has ended */
    long no;         /* lines taken */
    bool bad;        /* a line was not a JSON array: exit 2 */
    uint64_t inputs; /* inputs read */
};

/* The longest input line accepted (a JSON text for one input's arguments: the payload limit
 * with room for JSON's larger spelling). */
#define LINE_MAX_BYTES (256u << 20)

/* Reads what stdin has now (without waiting) into in->buf. 1 if bytes or the end came, 0 if
 * nothing is ready, -1 with err set on a read error or an over-long line. */
static int stdin_fill(struct map_input *in, skiff_error *err)
{
    if (in->off > 0) { /* keep only the unread part */
        memmove(in->buf, in->buf + in->off, in->len - in->off);
        in->len -= in->off;
        in->off = 0;
    }
    if (in->len == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 65536;
        if (cap > LINE_MAX_BYTES) {
            skiff_error_set(err, SKIFF_ERR_REQUEST_SIZE, NULL,
                            "stdin line %ld is longer than %u bytes", in->no + 1, LINE_MAX_BYTES);
            return -1;
        }
        char *b = mem_realloc(in->buf, cap);
        if (!b) {
            skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory reading stdin");
            return -1;
        }
        in->buf = b;
        in->cap = cap;
    }
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, 0) == 0)
        return 0;
    ssize_t k = read(STDIN_FILENO, in->buf + in->len, in->cap - in->len);
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (k < 0) {
        skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "reading stdin: %s", strerror(errno));
        return -1;
    }
    if (k == 0)
        in->eof = true;
    in->len += (size_t)k;
    return 1;
}

static int stdin_next(void *ctx, skiff_value **args, skiff_error *err)
{
    struct map_input *in = ctx;
    for (;;) {
        char *start = in->buf + in->off;
        size_t avail = in->len - in->off;
        char *nl = avail ? memchr(start, '\n', avail) : NULL;
        if (nl || (in->eof && avail > 0)) {
            size_t n = nl ? (size_t)(nl - start) + 1 : avail;
            in->off += n;
            in->no++;
            size_t blank = 0;
            while (blank < n && strchr(" \t\r\n", start[blank]))
                blank++;
            if (blank == n)
                continue;
            char why[512];
            if (cli_parse_map_line(start, n, args, why, sizeof why) < 0) {
                in->bad = true;
                return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "stdin line %ld: %s", in->no,
                                       why);
            }
            in->inputs++;
            return SKIFF_OK;
        }
        if (in->eof)
            return SKIFF_OK; /* the end: *args stays NULL */
        int r = stdin_fill(in, err);
        if (r < 0)
            return err ? err->code : SKIFF_ERR_INVALID;
        if (r == 0)
            return SKIFF_AGAIN; /* nothing to read now: results keep flowing meanwhile */
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Redraws the progress line on stderr: results written / inputs read so far, rate, failures. */
static void progress(const skiff_map *m, double started, bool final)
{
    skiff_map_stats st;
    skiff_map_get_stats(m, &st);
    double secs = now_s() - started;
    /* "+" while stdin has more: the total is what has been read so far */
    fprintf(stderr, "\r\033[K%llu/%llu%s done  %.0f/s  %llu failed%s",
            (unsigned long long)st.delivered, (unsigned long long)st.sent,
            st.inputs_done ? "" : "+", secs > 0 ? (double)st.delivered / secs : 0.0,
            (unsigned long long)st.failures, final ? "\n" : "");
}

/* Streams the map's results to stdout. */
static int map_stream(skiff_function *fn, const skiff_map_options *o)
{
    struct map_input in = {NULL, 0, 0, 0, false, 0, false, 0};
    skiff_map_source src = {stdin_next, &in};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    bool show = isatty(STDERR_FILENO);
    double started = now_s(), last = started;
    int rc = CLI_OK, code = skiff_function_map_source(fn, &src, o, &m, &err);
    skiff_map_output out = {0};
    while (code == SKIFF_OK && rc == CLI_OK && (code = skiff_map_next(m, &out, &err)) == SKIFF_OK) {
        rc = out.error.code != SKIFF_OK ? print_error_value(&out.error) : cli_print_json(out.value);
        skiff_map_output_clear(&out);
        skiff_map_stats st;
        skiff_map_get_stats(m, &st);
        if (!st.output_ready)
            fflush(stdout); /* the map is about to wait: results so far reach the reader */
        double t = now_s();
        if (show && t - last >= PROGRESS_EVERY) {
            progress(m, started, false);
            last = t;
        }
    }
    fflush(stdout);
    if (show && m)
        progress(m, started, true);
    if (rc == CLI_OK && code != SKIFF_DONE) {
        if (in.bad) {
            fprintf(stderr, "skiff map: %s\n", err.message);
            rc = CLI_USAGE;
        } else {
            rc = cli_fail(&err);
        }
    }
    skiff_error_clear(&err);
    skiff_map_free(m);
    mem_free(in.buf);
    return rc;
}

int cmd_map(struct cli *cli, int argc, char **argv)
{
    const char **pos = mem_calloc((size_t)argc + 1, sizeof *pos);
    const char **kws = mem_calloc((size_t)argc + 1, sizeof *kws);
    const char **prs = mem_calloc((size_t)argc + 1, sizeof *prs);
    struct cli_opt opts[] = {{.name = "--unordered"},
                             {.name = "--return-exceptions"},
                             {.name = "--window", .has_value = true},
                             {.name = "--kwarg", .has_value = true, .values = kws},
                             {.name = "--param", .has_value = true, .values = prs}};
    skiff_value *args = NULL, *kwargs = NULL, *params = NULL;
    skiff_client *client = NULL;
    struct cli_target t = {NULL, NULL, NULL};
    skiff_error err = SKIFF_ERROR_INIT;
    int npos, rc = CLI_OK;
    bool want_help;
    uint64_t window = SKIFF_MAP_WINDOW_DEFAULT;
    char why[512];
    if (!pos || !kws || !prs) {
        fputs("skiff: out of memory\n", stderr);
        rc = CLI_FAILED;
    } else if (cli_getopt(argc, argv, opts, 5, &want_help, &cli->server, pos, &npos, why,
                          sizeof why) < 0) {
        rc = cli_usage_error(map_usage, "%s", why);
    } else if (want_help) {
        rc = help(map_usage);
    } else if (npos != 2) {
        rc = cli_usage_error(map_usage, "map needs exactly APP and FUNCTION");
    } else if (opts[2].count && (cli_parse_count(opts[2].value, &window) < 0 || window == 0 ||
                                 window > SKIFF_MAP_WINDOW_MAX)) {
        rc = cli_usage_error(map_usage, "--window '%s' is not a count from 1 to %d", opts[2].value,
                             SKIFF_MAP_WINDOW_MAX);
    } else if (cli_parse_call_args(NULL, 0, kws, opts[3].count, &args, &kwargs, why, sizeof why) <
                   0 ||
               cli_parse_params(prs, opts[4].count, &params, why, sizeof why) < 0) {
        rc = cli_usage_error(map_usage, "%s", why);
    } else if ((rc = cli_connect(cli, &client)) == CLI_OK) {
        /* Looked up first: an unknown function fails even on empty input, and a generator
         * is refused before any input is read. */
        if (cli_target_open(client, pos[0], pos[1], params, &t, &err) != SKIFF_OK ||
            skiff_function_hydrate(t.fn, &err) != SKIFF_OK) {
            rc = cli_fail(&err);
        } else {
            cli_on_interrupt("the map is cancelled"); /* its connection closing cancels it */
            skiff_map_options o = {.kwargs = skiff_map_len(kwargs) ? kwargs : NULL,
                                   .unordered = opts[0].count > 0,
                                   .return_exceptions = opts[1].count > 0,
                                   .max_outstanding = (size_t)window};
            rc = map_stream(t.fn, &o);
        }
    }
    skiff_error_clear(&err);
    cli_target_close(&t);
    skiff_client_close(client);
    skiff_value_free(args);
    skiff_value_free(kwargs);
    skiff_value_free(params);
    mem_free(pos);
    mem_free(kws);
    mem_free(prs);
    return rc;
}
