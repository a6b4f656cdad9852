/*
 * inspect.c - the `skiff` commands that look at calls and functions rather than make calls:
 * graph (a call's call graph, drawn as a tree), logs (a function's or app's container output,
 * optionally followed) and url (a web endpoint's URL).
 *
 * graph and logs print for people by default and, with --json, one JSON value per line for
 * scripts; url prints a JSON string either way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "client/ops.h"
#include "common/id.h"
#include "common/mem.h"

static const char graph_usage[] =
    "usage: skiff graph FC_ID [--json]\n"
    "\n"
    "Draws the call graph of the call: its inputs, and under each the inputs of the calls\n"
    "made while it ran (across apps), with function, status and container:\n"
    "  in-... app.function SUCCESS ta-...\n"
    "  `- in-... other.function PENDING\n"
    "--json prints the tree as JSON instead: an array of {input_id, call_id, index,\n"
    "container_id, status, function, children}.\n"
    "Exit status: 0 success; 1 the request failed (e.g. no such call); 2 usage.\n";

static const char logs_usage[] =
    "usage: skiff logs APP [FUNCTION] [--param NAME=JSON ...] [--follow] [--tail N] [--json]\n"
    "\n"
    "Prints the lines the app's containers (or only FUNCTION's) wrote on stdout and stderr:\n"
    "  2026-01-02T03:04:05.678Z ta-... square in-... stdout| text\n"
    "(the input's id, or - when the container held several inputs at once). FUNCTION may be\n"
    "a class (all its lines) or Cls.method, with --param for one parameter set's containers.\n"
    "Lines are kept across restarts of the server: the last 1 MiB per app, for 7 days.\n"
    "--tail N prints only the last N lines kept; --follow keeps printing new lines until\n"
    "interrupted. --json prints one array per line instead: [ts_ms, container_id, input_id or\n"
    "null, stream, text, function].\n"
    "Exit status: 0 success; 1 the request failed (e.g. no such app or function); 2 usage.\n";

static const char url_usage[] =
    "usage: skiff url APP FUNCTION [--json]\n"
    "\n"
    "Prints the URL of APP's web endpoint FUNCTION, bare (curl \"$(skiff url APP FN)?x=1\"),\n"
    "or with --json as a JSON string.\n"
    "Exit status: 0 success; 1 the request failed or FUNCTION is not a web endpoint; 2 usage.\n";

/* Parses options and exactly min..max positional arguments into pos. CLI_OK with *help false
 * (pos filled, *npos set), CLI_OK with *help true after printing usage, or an exit status. */
static int parse(struct cli *cli, int argc, char **argv, struct cli_opt *opts, size_t nopts,
                 const char *usage, const char *cmd, int min, int max, const char **pos, int *npos,
                 bool *help)
{
    const char **all = mem_calloc((size_t)argc + 1, sizeof *all);
    if (!all) {
        fputs("skiff: out of memory\n", stderr);
        return CLI_FAILED;
    }
    int rc = CLI_OK;
    char why[512];
    if (cli_getopt(argc, argv, opts, nopts, help, &cli->server, all, npos, why, sizeof why) < 0)
        rc = cli_usage_error(usage, "%s", why);
    else if (*help)
        fputs(usage, stdout);
    else if (*npos < min || *npos > max)
        rc = cli_usage_error(usage, "%s takes %s", cmd,
                             min == max ? (min == 1 ? "one argument" : "two arguments")
                                        : "one or two arguments");
    else
        memcpy(pos, all, (size_t)*npos * sizeof *pos);
    mem_free(all);
    return rc;
}

/* --- graph ------------------------------------------------------------------------------------ */

/* The node and its children as a skiff_value map (NULL: out of memory). */
static skiff_value *node_value(const skiff_input_info *n)
{
    skiff_value *m = skiff_value_map(), *ch = skiff_value_list();
    bool ok = m && ch;
    ok = ok && skiff_map_set(m, "input_id", skiff_value_string(n->input_id)) == SKIFF_OK;
    ok = ok && skiff_map_set(m, "call_id", skiff_value_string(n->call_id)) == SKIFF_OK;
    ok = ok && skiff_map_set(m, "index", skiff_value_int((int64_t)n->index)) == SKIFF_OK;
    ok = ok && skiff_map_set(m, "container_id",
                             n->container_id ? skiff_value_string(n->container_id)
                                             : skiff_value_nil()) == SKIFF_OK;
    ok = ok && skiff_map_set(m, "status", skiff_value_string(skiff_input_status_name(n->status))) ==
                   SKIFF_OK;
    ok = ok && skiff_map_set(m, "function", skiff_value_string(n->function)) == SKIFF_OK;
    for (size_t i = 0; ok && i < n->nchildren; i++)
        ok = skiff_list_append(ch, node_value(&n->children[i])) == SKIFF_OK;
    if (ok) {
        ok = skiff_map_set(m, "children", ch) == SKIFF_OK;
        ch = NULL;
    }
    skiff_value_free(ch);
    if (!ok) {
        skiff_value_free(m);
        return NULL;
    }
    return m;
}

/* Draws node at depth with the tree's branch lines; prefix holds the columns above. */
static void draw(const skiff_input_info *n, char *prefix, size_t plen, bool last, bool root)
{
    printf("%s%s%s %s %s%s%s\n", prefix, root ? "" : (last ? "`- " : "|- "), n->input_id,
           n->function, skiff_input_status_name(n->status), n->container_id ? " " : "",
           n->container_id ? n->container_id : "");
    size_t add = root ? 0 : 3;
    if (plen + add + 1 >= 256) { /* deeper than a terminal can show: summarise */
        if (n->nchildren)
            printf("%s   ... %zu more calls below\n", prefix, n->nchildren);
        return;
    }
    if (!root)
        memcpy(prefix + plen, last ? "   " : "|  ", 4);
    for (size_t i = 0; i < n->nchildren; i++)
        draw(&n->children[i], prefix, plen + add, i + 1 == n->nchildren, false);
    prefix[plen] = '\0';
}

int cmd_graph(struct cli *cli, int argc, char **argv)
{
    struct cli_opt opts[] = {{.name = "--json"}};
    const char *pos[1];
    int npos;
    bool help;
    int rc = parse(cli, argc, argv, opts, 1, graph_usage, "graph", 1, 1, pos, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    skiff_client *client;
    if ((rc = cli_connect(cli, &client)) != CLI_OK)
        return rc;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_call *call = NULL;
    skiff_input_info *roots = NULL;
    size_t n = 0;
    if (skiff_call_from_id(client, pos[0], &call, &err) != SKIFF_OK ||
        skiff_call_get_call_graph(call, &roots, &n, &err) != SKIFF_OK) {
        rc = cli_fail(&err);
    } else if (opts[0].count) {
        skiff_value *list = skiff_value_list();
        bool ok = list != NULL;
        for (size_t i = 0; ok && i < n; i++)
            ok = skiff_list_append(list, node_value(&roots[i])) == SKIFF_OK;
        rc = ok ? cli_print_json(list) : CLI_FAILED;
        if (!ok)
            fputs("skiff: out of memory\n", stderr);
        skiff_value_free(list);
    } else {
        char prefix[256] = "";
        printf("%s\n", pos[0]);
        for (size_t i = 0; i < n; i++)
            draw(&roots[i], prefix, 0, i + 1 == n, false);
    }
    skiff_call_graph_free(roots, n);
    skiff_error_clear(&err);
    skiff_call_free(call);
    skiff_client_close(client);
    return rc;
}

/* --- logs ------------------------------------------------------------------------------------- */

static int print_log_json(void *ctx, const skiff_value *line)
{
    (void)ctx;
    cli_print_json(line);
    fflush(stdout); /* followed logs reach a pipe as they come */
    return 0;
}

static int print_log_text(void *ctx, const skiff_value *line)
{
    (void)ctx;
    int64_t ms = skiff_value_get_int(skiff_list_get(line, 0));
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char when[32] = "?";
    if (gmtime_r(&secs, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    const char *input = skiff_value_get_string(skiff_list_get(line, 2), NULL);
    const char *text = skiff_value_get_string(skiff_list_get(line, 4), NULL);
    const char *fn = skiff_value_get_string(skiff_list_get(line, 5), NULL);
    size_t tn = text ? strlen(text) : 0;
    printf("%s.%03dZ %s %s %s %s| %.*s\n", when, (int)(ms % 1000),
           skiff_value_get_string(skiff_list_get(line, 1), NULL), fn ? fn : "?",
           input ? input : "-", skiff_value_get_string(skiff_list_get(line, 3), NULL),
           (int)(tn && text[tn - 1] == '\n' ? tn - 1 : tn), text ? text : "");
    fflush(stdout);
    return 0;
}

int cmd_logs(struct cli *cli, int argc, char **argv)
{
    const char **prs = mem_calloc((size_t)argc + 1, sizeof *prs);
    if (!prs) {
        fputs("skiff: out of memory\n", stderr);
        return CLI_FAILED;
    }
    struct cli_opt opts[] = {{.name = "--follow"},
                             {.name = "--tail", .has_value = true},
                             {.name = "--json"},
                             {.name = "--param", .has_value = true, .values = prs}};
    const char *pos[2] = {NULL, NULL};
    int npos;
    bool help;
    uint64_t tail = 0;
    char why[512];
    skiff_value *params = NULL;
    skiff_client *client = NULL;
    int rc = parse(cli, argc, argv, opts, 4, logs_usage, "logs", 1, 2, pos, &npos, &help);
    if (rc != CLI_OK || help)
        goto out;
    if (opts[1].count && cli_parse_count(opts[1].value, &tail) < 0) {
        rc = cli_usage_error(logs_usage, "--tail '%s' is not a count of lines", opts[1].value);
        goto out;
    }
    if (cli_parse_params(prs, opts[3].count, &params, why, sizeof why) < 0) {
        rc = cli_usage_error(logs_usage, "%s", why);
        goto out;
    }
    if ((rc = cli_connect(cli, &client)) != CLI_OK)
        goto out;
    skiff_error err = SKIFF_ERROR_INIT;
    if (client_logs(client, pos[0], npos > 1 ? pos[1] : NULL, params, opts[0].count > 0,
                    opts[1].count ? (int64_t)tail : -1,
                    opts[2].count ? print_log_json : print_log_text, NULL, &err) != SKIFF_OK)
        rc = cli_fail(&err);
    skiff_error_clear(&err);
out:
    skiff_client_close(client);
    skiff_value_free(params);
    mem_free(prs);
    return rc;
}

/* --- url -------------------------------------------------------------------------------------- */

int cmd_url(struct cli *cli, int argc, char **argv)
{
    const char *pos[2];
    int npos;
    bool help;
    struct cli_opt opts[] = {{.name = "--json"}};
    int rc = parse(cli, argc, argv, opts, 1, url_usage, "url", 2, 2, pos, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    bool json = opts[0].count > 0;
    skiff_client *client;
    if ((rc = cli_connect(cli, &client)) != CLI_OK)
        return rc;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_function *fn = NULL;
    char *url = NULL;
    if (skiff_function_from_name(client, pos[0], pos[1], &fn, &err) != SKIFF_OK ||
        skiff_function_get_web_url(fn, &url, &err) != SKIFF_OK) {
        rc = cli_fail(&err);
    } else if (!url) {
        skiff_error_set(&err, SKIFF_ERR_INVALID, NULL, "%s.%s is not a web endpoint: it has no URL",
                        pos[0], pos[1]);
        rc = cli_fail(&err);
    } else {
        /* Bare, so that curl "$(skiff url APP FN)?x=1" works; --json for a JSON string. */
        skiff_value *v = json ? skiff_value_string(url) : NULL;
        rc = json ? (v ? cli_print_json(v) : CLI_FAILED) : (puts(url) >= 0 ? CLI_OK : CLI_FAILED);
        skiff_value_free(v);
    }
    free(url); /* skiff_function_get_web_url's copy is malloc'd */
    skiff_error_clear(&err);
    skiff_function_free(fn);
    skiff_client_close(client);
    return rc;
}
