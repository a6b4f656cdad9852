/*
 * admin.c - the `skiff` commands that inspect and manage the server: stats, app list, app stop,
 * container list, token new. Each sends one request and prints the reply as JSON.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "client/ops.h"
#include "common/mem.h"

static const char stats_usage[] =
    "usage: skiff stats APP FUNCTION [--json]\n"
    "\n"
    "Prints APP's FUNCTION's backlog (inputs waiting), num_total_runners (containers),\n"
    "num_running_inputs, input_headroom (inputs the live containers could still take at\n"
    "once) and autoscaler {min_containers, max_containers, buffer_containers,\n"
    "scaledown_window}: one per line on a terminal, else (or with --json) as a JSON object.\n"
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
    "usage: skiff token new\n"
    "\n"
    "Makes a new access token and prints {\"token_id\": ..., \"token_secret\": ...}. Give it to a\n"
    "client as SKIFF_TOKEN_ID and SKIFF_TOKEN_SECRET, or token_id and token_secret in its\n"
    "~/.skiff.toml. The server keeps only a hash of the secret: it cannot be shown again.\n"
    "Exit status: 0 success; 1 the request failed; 2 usage.\n";

/* A request helper of ops.h that returns a reply. */
typedef int (*request_fn)(skiff_client *c, const char *a, const char *b, skiff_value **reply,
                          skiff_error *err);

static int do_stats(skiff_client *c, const char *a, const char *b, skiff_value **reply,
                    skiff_error *err)
{
    return client_stats(c, a, b, reply, err);
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

static int do_token_new(skiff_client *c, const char *a, const char *b, skiff_value **reply,
                        skiff_error *err)
{
    (void)a;
    (void)b;
    return client_token_new(c, reply, err);
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
    const char *pos[2];
    bool help;
    int rc = parse(cli, argc, argv, stats_usage, "stats", 2, pos, &help);
    if (rc != CLI_OK || help)
        return rc;
    return run(cli, do_stats, pos[0], pos[1], NULL, &fields_view);
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

int cmd_token(struct cli *cli, int argc, char **argv)
{
    bool help;
    const char *verb = verb_of(argc, argv, &help);
    if (help) {
        fputs(token_usage, stdout);
        return CLI_OK;
    }
    if (!verb)
        return cli_usage_error(token_usage, "token needs a subcommand: new");
    if (!strcmp(verb, "new"))
        return noun_verb(cli, argc, argv, token_usage, "token", "new", 0, do_token_new, NULL,
                         &fields_view);
    return cli_usage_error(token_usage, "unknown subcommand 'token %s'", verb);
}
