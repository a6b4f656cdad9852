/*
 * calls.c - the `skiff` commands that make and follow function calls: call, spawn, get, cancel
 * and map.
 *
 * map is, for now, spawn + get per input with a window of calls in flight: inputs are spawned
 * as lines arrive, and results are written in input order as soon as the oldest call finishes,
 * so a long stream needs memory only for the window.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/id.h"
#include "common/mem.h"

/* Calls `skiff map` keeps in flight: enough to keep a pool of containers busy, small enough
 * that an aborted map leaves little work behind. */
#define MAP_WINDOW 256

static const char call_usage[] =
    "usage: skiff call APP FUNCTION [ARG ...] [--kwarg NAME=JSON ...]\n"
    "\n"
    "Calls APP's FUNCTION, waits for it, and prints the result as one line of JSON.\n"
    "Each ARG is one JSON value: 42, 1.5, true, null, '\"text\"', '[1,2]', '{\"k\": 1}',\n"
    "'{\"$bytes\": \"<base64>\"}'. --kwarg NAME=JSON passes a keyword argument (repeatable).\n"
    "Use -- before positional arguments that start with --.\n"
    "Exit status: 0 success; 1 the call failed (error type, message and traceback on stderr);\n"
    "2 usage or bad JSON.\n";

static const char spawn_usage[] =
    "usage: skiff spawn APP FUNCTION [ARG ...] [--kwarg NAME=JSON ...]\n"
    "\n"
    "Queues a call of APP's FUNCTION and prints its function call id (fc-...) once the input\n"
    "is stored durably by the server. Arguments as for `skiff call`; collect the result with\n"
    "`skiff get FC_ID`.\n"
    "Exit status: 0 success; 1 the request failed; 2 usage or bad JSON.\n";

static const char get_usage[] =
    "usage: skiff get FC_ID [--timeout SECONDS]\n"
    "\n"
    "Waits for the call's result and prints it as one line of JSON. --timeout 0 polls once;\n"
    "without --timeout it waits as long as the call runs.\n"
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
    "usage: skiff map APP FUNCTION [--unordered] [--return-exceptions]\n"
    "\n"
    "Reads one JSON array of positional arguments per line on stdin (blank lines are skipped),\n"
    "calls APP's FUNCTION once per line, and writes one JSON result per line on stdout, in\n"
    "input order. --unordered allows results in completion order (currently they still come in\n"
    "input order). --return-exceptions writes {\"error\": {\"type\": ..., \"message\": ...}} in\n"
    "place of a failed input's result instead of stopping at the first failure.\n"
    "Exit status: 0 success; 1 a call failed; 2 usage or a bad input line.\n";

/* Prints usage to stdout for --help. */
static int help(const char *usage)
{
    fputs(usage, stdout);
    return CLI_OK;
}

/* Runs call (spawn false) or spawn. */
static int call_or_spawn(struct cli *cli, int argc, char **argv, bool spawn)
{
    const char *usage = spawn ? spawn_usage : call_usage;
    const char **pos = mem_calloc((size_t)argc + 1, sizeof *pos);
    const char **kws = mem_calloc((size_t)argc + 1, sizeof *kws);
    skiff_value *args = NULL, *kwargs = NULL, *result = NULL;
    skiff_client *client = NULL;
    skiff_function *fn = NULL;
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc, npos;
    bool want_help;
    char why[512];
    struct cli_opt opts[] = {{.name = "--kwarg", .has_value = true, .values = kws}};
    if (!pos || !kws) {
        fputs("skiff: out of memory\n", stderr);
        rc = CLI_FAILED;
        goto out;
    }
    if (cli_getopt(argc, argv, opts, 1, &want_help, &cli->server, pos, &npos, why, sizeof why) <
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
                            sizeof why) < 0) {
        rc = cli_usage_error(usage, "%s", why);
        goto out;
    }
    rc = cli_connect(cli, &client);
    if (rc != CLI_OK)
        goto out;
    if (skiff_function_from_name(client, pos[0], pos[1], &fn, &err) != SKIFF_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    if (spawn) {
        if (skiff_function_spawn(fn, args, kwargs, &call, &err) != SKIFF_OK) {
            rc = cli_fail(&err);
            goto out;
        }
        puts(skiff_call_id(call));
        rc = CLI_OK;
    } else {
        if (skiff_function_remote(fn, args, kwargs, &result, &err) != SKIFF_OK) {
            rc = cli_fail(&err);
            goto out;
        }
        rc = cli_print_json(result);
    }
out:
    skiff_error_clear(&err);
    skiff_value_free(result);
    skiff_value_free(args);
    skiff_value_free(kwargs);
    skiff_call_free(call);
    skiff_function_free(fn);
    skiff_client_close(client);
    mem_free(pos);
    mem_free(kws);
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

int cmd_get(struct cli *cli, int argc, char **argv)
{
    struct cli_opt opts[] = {{.name = "--timeout", .has_value = true}};
    const char *id = NULL;
    int rc = parse_fc(cli, argc, argv, opts, 1, get_usage, "get", &id);
    if (rc != CLI_OK)
        return rc;
    if (!id)
        return CLI_OK; /* --help */
    double timeout = SKIFF_WAIT_FOREVER;
    if (opts[0].count && cli_parse_seconds(opts[0].value, &timeout) < 0)
        return cli_usage_error(get_usage, "--timeout '%s' is not a number of seconds >= 0",
                               opts[0].value);
    skiff_client *client;
    rc = cli_connect(cli, &client);
    if (rc != CLI_OK)
        return rc;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_call *call = NULL;
    skiff_value *result = NULL;
    int code = skiff_call_from_id(client, id, &call, &err);
    if (code == SKIFF_OK)
        code = skiff_call_get(call, timeout, &result, &err);
    if (code == SKIFF_OK)
        rc = cli_print_json(result);
    else
        rc = cli_fail(&err);
    if (code == SKIFF_ERR_TIMEOUT)
        rc = CLI_TIMEOUT; /* still running: the error went to stderr, the status says which */
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

/* --- map ---------------------------------------------------------------------------------- */

struct map_run {
    skiff_function *fn;
    bool return_exceptions;
    skiff_call *window[MAP_WINDOW]; /* ring of calls in flight, oldest at head */
    size_t head, n;
};

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

/* Waits for the oldest call in flight and writes its result. CLI_OK or CLI_FAILED. */
static int map_collect(struct map_run *m)
{
    skiff_call *call = m->window[m->head];
    m->head = (m->head + 1) % MAP_WINDOW;
    m->n--;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *v = NULL;
    int rc;
    fflush(stdout); /* results so far reach the reader before we block */
    if (skiff_call_get(call, SKIFF_WAIT_FOREVER, &v, &err) == SKIFF_OK)
        rc = cli_print_json(v);
    else if (m->return_exceptions)
        rc = print_error_value(&err);
    else
        rc = cli_fail(&err);
    skiff_value_free(v);
    skiff_error_clear(&err);
    skiff_call_free(call);
    return rc;
}

/* Cancels and frees the calls still in flight after a failure, so an aborted map leaves no work
 * queued. Cancelling is best effort: its errors are not reported. */
static void map_abandon(struct map_run *m)
{
    while (m->n > 0) {
        skiff_call *call = m->window[m->head];
        m->head = (m->head + 1) % MAP_WINDOW;
        m->n--;
        skiff_call_cancel(call, false, NULL);
        skiff_call_free(call);
    }
}

/* Reads stdin and spawns one call per line. */
static int map_lines(struct map_run *m)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long no = 0;
    int rc = CLI_OK;
    while (rc == CLI_OK && (len = getline(&line, &cap, stdin)) >= 0) {
        no++;
        if (strspn(line, " \t\r\n") == (size_t)len)
            continue;
        skiff_value *args;
        char why[512];
        if (cli_parse_map_line(line, (size_t)len, &args, why, sizeof why) < 0) {
            fprintf(stderr, "skiff map: stdin line %ld: %s\n", no, why);
            rc = CLI_USAGE;
            break;
        }
        if (m->n == MAP_WINDOW)
            rc = map_collect(m);
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_call *call = NULL;
        if (rc == CLI_OK && skiff_function_spawn(m->fn, args, NULL, &call, &err) != SKIFF_OK)
            rc = cli_fail(&err);
        skiff_error_clear(&err);
        skiff_value_free(args);
        if (call) {
            m->window[(m->head + m->n) % MAP_WINDOW] = call;
            m->n++;
        }
    }
    free(line); /* getline's buffer comes from malloc */
    if (rc == CLI_OK && ferror(stdin)) {
        perror("skiff map: reading stdin");
        rc = CLI_FAILED;
    }
    while (rc == CLI_OK && m->n > 0)
        rc = map_collect(m);
    map_abandon(m);
    return rc;
}

int cmd_map(struct cli *cli, int argc, char **argv)
{
    struct cli_opt opts[] = {{.name = "--unordered"}, {.name = "--return-exceptions"}};
    const char **pos = mem_calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) {
        fputs("skiff: out of memory\n", stderr);
        return CLI_FAILED;
    }
    int npos;
    bool want_help;
    char why[512];
    int rc = CLI_OK;
    if (cli_getopt(argc, argv, opts, 2, &want_help, &cli->server, pos, &npos, why, sizeof why) < 0)
        rc = cli_usage_error(map_usage, "%s", why);
    else if (want_help)
        rc = help(map_usage);
    else if (npos != 2)
        rc = cli_usage_error(map_usage, "map needs exactly APP and FUNCTION");
    if (rc != CLI_OK || want_help) {
        mem_free(pos);
        return rc;
    }
    skiff_client *client;
    rc = cli_connect(cli, &client);
    if (rc == CLI_OK) {
        struct map_run *m = mem_calloc(1, sizeof *m);
        skiff_error err = SKIFF_ERROR_INIT;
        if (!m) {
            fputs("skiff: out of memory\n", stderr);
            rc = CLI_FAILED;
        } else if (skiff_function_lookup(client, pos[0], pos[1], &m->fn, &err) != SKIFF_OK) {
            rc = cli_fail(&err);
        } else {
            m->return_exceptions = opts[1].count > 0;
            rc = map_lines(m);
        }
        skiff_error_clear(&err);
        if (m)
            skiff_function_free(m->fn);
        mem_free(m);
        skiff_client_close(client);
    }
    mem_free(pos);
    return rc;
}
