/*
 * admin.c - the `skiff` commands that inspect and manage the server: stats, app list, app stop,
 * container list, token new/list/revoke. Each sends one request and prints the reply as JSON.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "client/ops.h"
#include "common/mem.h"

static const char stats_usage[] =
    "usage: skiff stats APP FUNCTION [--param NAME=JSON ...] [--json]\n"
    "\n"
    "Prints APP's FUNCTION's backlog (inputs waiting), num_total_runners (containers),\n"
    "num_running_inputs, input_headroom (inputs the live containers could still take at\n"
    "once) and autoscaler {min_containers, max_containers, buffer_containers,\n"
    "scaledown_window}: one per line on a terminal, else (or with --json) as a JSON object.\n"
    "A method is FUNCTION Cls.method; --param NAME=JSON picks the pool of one parameter set.\n"
    "Exit status: 0 success; 1 the request failed (e.g. no such function); 2 usage.\n";

static const char app_usage[] =
    "usage: skiff app list [--json]\n"
    "       skiff app stop APP\n"
    "\n"
    "list prints the apps: a table on a terminal, else (or with --json) a JSON array of\n"
    "{app_id, name, state, version, created (unix seconds), functions}.\n"
    "stop stops APP: its functions can no longer be called until it is deployed again.\n"
    "Exit status: 0 success; 1 the request failed (e.g. no such app); 2 usage.\n";

static const char container_usage[] =
    "usage: skiff container list [--json]\n"
    "\n"
    "Prints the running containers: a table on a terminal, else (or with --json) a JSON array\n"
    "of {container_id, app, function, version, pid, state, inputs, started (unix seconds),\n"
    "sandboxed, params (a class pool's parameters, or null)}.\n"
    "Exit status: 0 success; 1 the request failed; 2 usage.\n";

static const char token_usage[] =
    "usage: skiff token new [--scope admin|deploy|call] [--expires DURATION]\n"
    "       skiff token list\n"
    "       skiff token revoke TOKEN_ID\n"
    "\n"
    "new makes an access token and prints {\"token_id\", \"token_secret\", \"scope\",\n"
    "\"expires\"}. Give it to a client as SKIFF_TOKEN_ID and SKIFF_TOKEN_SECRET, or token_id\n"
    "and token_secret in its ~/.skiff.toml. The server keeps only a hash of the secret: it\n"
    "cannot be shown again.\n"
    "  --scope SCOPE        what the token may do (default call):\n"
    "                       call: call, spawn, map, get, cancel and graph calls, stats;\n"
    "                       deploy: that, and deploy and stop apps, app and container list,\n"
    "                       logs, the autoscaler; admin: everything, tokens too\n"
    "  --expires DURATION   the token stops working after DURATION: a number and a unit,\n"
    "                       s, m, h or d (30s, 15m, 12h, 7d; a bare number is seconds);\n"
    "                       default never\n"
    "list prints a JSON array of the stored tokens: {token_id, scope, created, expires,\n"
    "expired, last_used} (unix seconds; expires and last_used null for never). Secrets are\n"
    "never shown.\n"
    "revoke deletes a token: it is refused from then on, and connections that presented it\n"
    "are closed. The last admin token cannot be revoked.\n"
    "Each needs an admin token.\n"
    "Exit status: 0 success; 1 the request failed; 2 usage.\n";

/* A request helper of ops.h that returns a reply. */
typedef int (*request_fn)(skiff_client *c, const char *a, const char *b, skiff_value **reply,
                          skiff_error *err);

/* The --param values of the stats command being run (a map, or NULL). */
static const skiff_value *stats_params;

static int do_stats(skiff_client *c, const char *a, const char *b, skiff_value **reply,
                    skiff_error *err)
{
    int rc = client_stats(c, a, b, stats_params, reply, err);
    skiff_value *sched = rc == SKIFF_OK ? skiff_map_get(*reply, "schedule") : NULL;
    const skiff_value *next = skiff_map_get(sched, "next_run");
    if (!cli_output_json() && skiff_value_type(next) == SKIFF_INT &&
        skiff_value_get_int(next) >= 0) {
        /* For people: "in 4m (2026-01-02 09:00:00 UTC)" instead of unix seconds. */
        time_t t = (time_t)skiff_value_get_int(next);
        struct tm tm;
        char ago[32], when[48], text[96];
        cli_format_ago((int64_t)t, (int64_t)time(NULL), ago, sizeof ago);
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
        snprintf(text, sizeof text, "%s (%s)", ago, when);
        skiff_map_set(sched, "next_run", skiff_value_string(text)); /* kept as is if no memory */
    }
    return rc;
}

static int do_app_list(skiff_client *c, const char *a, const char *b, skiff_value **reply,
                       skiff_error *err)
{
    (void)a;
    (void)b;
    return client_app_list(c, reply, err);
}

static int do_app_stop(skiff_client *c, const char *a, const char *b, skiff_value **reply,
                       skiff_error *err)
{
    (void)b;
    *reply = NULL;
    return client_app_stop(c, a, err);
}

static int do_container_list(skiff_client *c, const char *a, const char *b, skiff_value **reply,
                             skiff_error *err)
{
    (void)a;
    (void)b;
    return client_container_list(c, reply, err);
}

/* --scope and --expires of `token new`, for do_token_new. */
static const char *new_scope;
static int64_t new_expires_ms;

static int do_token_new(skiff_client *c, const char *a, const char *b, skiff_value **reply,
                        skiff_error *err)
{
    (void)a;
    (void)b;
    return client_token_new(c, new_scope, new_expires_ms, reply, err);
}

static int do_token_list(skiff_client *c, const char *a, const char *b, skiff_value **reply,
                         skiff_error *err)
{
    (void)a;
    (void)b;
    return client_token_list(c, reply, err);
}

static int do_token_revoke(skiff_client *c, const char *a, const char *b, skiff_value **reply,
                           skiff_error *err)
{
    (void)b;
    *reply = NULL;
    return client_token_revoke(c, a, err);
}

/* How a reply is shown: as rows of a table (cols), as fields (no cols), or as plain JSON (no
 * view). */
struct view {
    const struct cli_column *cols;
    size_t ncols;
};

static const struct cli_column app_cols[] = {
    {"name", "APP", CLI_COL_TEXT},
    {"state", "STATE", CLI_COL_TEXT},
    {"version", "VERSION", CLI_COL_TEXT},
    {"created", "DEPLOYED", CLI_COL_AGO},
    {"functions", "FUNCTIONS", CLI_COL_LIST},
    {"schedules", "SCHEDULES", CLI_COL_LIST},
    {"app_id", "ID", CLI_COL_TEXT},
};
static const struct view app_view = {app_cols, sizeof app_cols / sizeof app_cols[0]};

static const struct cli_column container_cols[] = {
    {"container_id", "CONTAINER", CLI_COL_TEXT},
    {"app", "APP", CLI_COL_TEXT},
    {"function", "FUNCTION", CLI_COL_TEXT},
    {"params", "PARAMS", CLI_COL_TEXT},
    {"state", "STATE", CLI_COL_TEXT},
    {"inputs", "INPUTS", CLI_COL_TEXT},
    {"started", "STARTED", CLI_COL_AGO},
    {"pid", "PID", CLI_COL_TEXT},
    {"sandboxed", "SANDBOXED", CLI_COL_TEXT},
};
static const struct view container_view = {container_cols,
                                           sizeof container_cols / sizeof container_cols[0]};

static const struct cli_column token_cols[] = {
    {"token_id", "TOKEN", CLI_COL_TEXT},     {"scope", "SCOPE", CLI_COL_TEXT},
    {"created", "CREATED", CLI_COL_AGO},     {"expires", "EXPIRES", CLI_COL_AGO},
    {"last_used", "LAST USED", CLI_COL_AGO},
};
static const struct view token_view = {token_cols, sizeof token_cols / sizeof token_cols[0]};

static const struct view fields_view = {NULL, 0};

/* The containers' class parameters arrive as JSON text: shown as the values they are. */
static void parse_params(skiff_value *rows)
{
    for (size_t i = 0; skiff_value_type(rows) == SKIFF_LIST && i < skiff_list_len(rows); i++) {
        skiff_value *row = skiff_list_get(rows, i);
        size_t n;
        const char *text = skiff_value_get_string(skiff_map_get(row, "params"), &n);
        skiff_value *v = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        if (text && skiff_value_from_json(text, n, &v, &err) == SKIFF_OK &&
            skiff_map_set(row, "params", v) != SKIFF_OK)
            skiff_value_free(v); /* out of memory: the text stays */
        skiff_error_clear(&err);
    }
}

/* Shows v as view says. */
static int show(skiff_value *v, const struct view *view)
{
    if (!view)
        return cli_print_json(v);
    if (view == &container_view)
        parse_params(v);
    return view->cols ? cli_print_rows(v, view->cols, view->ncols) : cli_print_fields(v);
}

/* Connects, runs fn and prints field of its reply (NULL: the whole reply; a NULL reply prints
 * nothing) as view says (NULL: JSON). */
static int run(struct cli *cli, request_fn fn, const char *a, const char *b, const char *field,
               const struct view *view)
{
    skiff_client *client;
    int rc = cli_connect(cli, &client);
    if (rc != CLI_OK)
        return rc;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *reply = NULL;
    if (fn(client, a, b, &reply, &err) != SKIFF_OK) {
        rc = cli_fail(&err);
    } else if (reply) {
        skiff_value *v = field ? skiff_map_get(reply, field) : reply;
        if (v) {
            rc = show(v, view);
        } else {
            fprintf(stderr, "skiff: the server's reply has no '%s'\n", field);
            rc = CLI_FAILED;
        }
    }
    skiff_value_free(reply);
    skiff_error_clear(&err);
    skiff_client_close(client);
    return rc;
}

/* Parses a command line of exactly `words` fixed words plus nargs positional arguments into
 * pos. CLI_OK (pos filled, *help false), CLI_OK with *help true after printing usage, or
 * CLI_USAGE. */
static int parse(struct cli *cli, int argc, char **argv, const char *usage, const char *what,
                 int nargs, const char **pos, bool *help)
{
    const char **all = mem_calloc((size_t)argc + 1, sizeof *all);
    if (!all) {
        fputs("skiff: out of memory\n", stderr);
        return CLI_FAILED;
    }
    int npos, rc = CLI_OK;
    char why[512];
    if (cli_getopt(argc, argv, NULL, 0, help, &cli->server, all, &npos, why, sizeof why) < 0)
        rc = cli_usage_error(usage, "%s", why);
    else if (*help)
        fputs(usage, stdout);
    else if (npos != nargs)
        rc = cli_usage_error(usage, "%s takes %d argument%s, not %d", what, nargs,
                             nargs == 1 ? "" : "s", npos);
    else
        memcpy(pos, all, (size_t)nargs * sizeof *pos);
    mem_free(all);
    return rc;
}

int cmd_stats(struct cli *cli, int argc, char **argv)
{
    const char **all = mem_calloc((size_t)argc + 1, sizeof *all);
    const char **prs = mem_calloc((size_t)argc + 1, sizeof *prs);
    struct cli_opt opts[] = {{.name = "--param", .has_value = true, .values = prs}};
    int npos, rc = CLI_OK;
    bool help = false;
    char why[512];
    skiff_value *params = NULL;
    if (!all || !prs) {
        fputs("skiff: out of memory\n", stderr);
        rc = CLI_FAILED;
    } else if (cli_getopt(argc, argv, opts, 1, &help, &cli->server, all, &npos, why, sizeof why) <
               0) {
        rc = cli_usage_error(stats_usage, "%s", why);
    } else if (help) {
        fputs(stats_usage, stdout);
    } else if (npos != 2) {
        rc = cli_usage_error(stats_usage, "stats takes 2 arguments, not %d", npos);
    } else if (cli_parse_params(prs, opts[0].count, &params, why, sizeof why) < 0) {
        rc = cli_usage_error(stats_usage, "%s", why);
    } else {
        stats_params = params;
        rc = run(cli, do_stats, all[0], all[1], NULL, &fields_view);
        stats_params = NULL;
    }
    skiff_value_free(params);
    mem_free(all);
    mem_free(prs);
    return rc;
}

/* Commands of the form `skiff NOUN VERB [ARG]`: finds the verb, then parses its arguments. */
static int noun_verb(struct cli *cli, int argc, char **argv, const char *usage, const char *noun,
                     const char *verb, int nargs, request_fn fn, const char *field,
                     const struct view *view)
{
    const char *pos[1] = {NULL};
    bool help;
    char what[64];
    snprintf(what, sizeof what, "%s %s", noun, verb);
    int rc = parse(cli, argc - 1, argv + 1, usage, what, nargs, pos, &help);
    if (rc != CLI_OK || help)
        return rc;
    return run(cli, fn, pos[0], NULL, field, view);
}

/* The first word that is not an option (the verb), or NULL; *help if --help/-h comes first. */
static const char *verb_of(int argc, char **argv, bool *help)
{
    *help = false;
    if (argc > 0 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")))
        *help = true;
    return argc > 0 && argv[0][0] != '-' ? argv[0] : NULL;
}

int cmd_app(struct cli *cli, int argc, char **argv)
{
    bool help;
    const char *verb = verb_of(argc, argv, &help);
    if (help) {
        fputs(app_usage, stdout);
        return CLI_OK;
    }
    if (!verb)
        return cli_usage_error(app_usage, "app needs a subcommand: list or stop");
    if (!strcmp(verb, "list"))
        return noun_verb(cli, argc, argv, app_usage, "app", "list", 0, do_app_list, "apps",
                         &app_view);
    if (!strcmp(verb, "stop"))
        return noun_verb(cli, argc, argv, app_usage, "app", "stop", 1, do_app_stop, NULL, NULL);
    return cli_usage_error(app_usage, "unknown subcommand 'app %s'", verb);
}

int cmd_container(struct cli *cli, int argc, char **argv)
{
    bool help;
    const char *verb = verb_of(argc, argv, &help);
    if (help) {
        fputs(container_usage, stdout);
        return CLI_OK;
    }
    if (!verb)
        return cli_usage_error(container_usage, "container needs a subcommand: list");
    if (!strcmp(verb, "list"))
        return noun_verb(cli, argc, argv, container_usage, "container", "list", 0,
                         do_container_list, "containers", &container_view);
    return cli_usage_error(container_usage, "unknown subcommand 'container %s'", verb);
}

/* A --expires DURATION (digits, then s, m, h or d; none: seconds) in ms, from 1 s to ten
 * years. 0 or -1. */
static int parse_duration(const char *s, int64_t *ms)
{
    uint64_t n = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (uint64_t)(*p - '0');
        if (n > 10ull * 366 * 86400)
            return -1;
    }
    if (p == s)
        return -1;
    uint64_t unit = !*p         ? 1
                    : p[1]      ? 0
                    : *p == 's' ? 1
                    : *p == 'm' ? 60
                    : *p == 'h' ? 3600
                    : *p == 'd' ? 86400
                                : 0;
    if (!unit || n == 0 || n * unit > 10ull * 366 * 86400)
        return -1;
    *ms = (int64_t)(n * unit * 1000);
    return 0;
}

/* skiff token new [--scope SCOPE] [--expires DURATION] */
static int token_new(struct cli *cli, int argc, char **argv)
{
    const char **pos = mem_calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) {
        fputs("skiff: out of memory\n", stderr);
        return CLI_FAILED;
    }
    struct cli_opt opts[] = {{.name = "--scope", .has_value = true},
                             {.name = "--expires", .has_value = true}};
    bool help;
    int npos, rc = CLI_OK;
    char why[512];
    new_scope = NULL;
    new_expires_ms = 0;
    if (cli_getopt(argc, argv, opts, 2, &help, &cli->server, pos, &npos, why, sizeof why) < 0)
        rc = cli_usage_error(token_usage, "%s", why);
    else if (help)
        fputs(token_usage, stdout);
    else if (npos != 0)
        rc = cli_usage_error(token_usage, "token new takes no arguments, not %d", npos);
    else if (opts[0].value && strcmp(opts[0].value, "admin") && strcmp(opts[0].value, "deploy") &&
             strcmp(opts[0].value, "call"))
        rc = cli_usage_error(token_usage, "--scope is admin, deploy or call, not '%s'",
                             opts[0].value);
    else if (opts[1].value && parse_duration(opts[1].value, &new_expires_ms) < 0)
        rc = cli_usage_error(token_usage,
                             "--expires wants a duration such as 30s, 15m, 12h or 7d (at most "
                             "ten years), not '%s'",
                             opts[1].value);
    mem_free(pos);
    if (rc != CLI_OK || help)
        return rc;
    new_scope = opts[0].value;
    return run(cli, do_token_new, NULL, NULL, NULL, &fields_view);
}

int cmd_token(struct cli *cli, int argc, char **argv)
{
    bool help;
    const char *verb = verb_of(argc, argv, &help);
    if (help) {
        fputs(token_usage, stdout);
        return CLI_OK;
    }
    if (!verb)
        return cli_usage_error(token_usage, "token needs a subcommand: new, list or revoke");
    if (!strcmp(verb, "new"))
        return token_new(cli, argc - 1, argv + 1);
    if (!strcmp(verb, "list"))
        return noun_verb(cli, argc, argv, token_usage, "token", "list", 0, do_token_list, "tokens",
                         &token_view);
    if (!strcmp(verb, "revoke"))
        return noun_verb(cli, argc, argv, token_usage, "token", "revoke", 1, do_token_revoke, NULL,
                         NULL);
    return cli_usage_error(token_usage, "unknown subcommand 'token %s'", verb);
}
