/*
 * main.c - the `skiff` command: global options, the command table, and the output and error
 * helpers every command shares (cli.h).
 *
 * Results go to stdout as JSON (one value per line) so scripts can read them; errors go to
 * stderr as "TYPE: message" with the remote traceback, if any. Exit statuses are fixed by
 * DESIGN.md: 0 ok, 1 failed, 2 usage, 124 `get` timed out.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/suggest.h"

static const char usage_text[] =
    "usage: skiff [--server ADDR] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  deploy APP.c|DIR|APP.py [--name-check]\n"
    "                                       build an app (C or Python) and deploy it\n"
    "  run APP.c|DIR FUNCTION [ARG ...]     deploy a C app for one call, print the\n"
    "                                       result, remove the app (also on Ctrl-C)\n"
    "  run APP.py [--entrypoint NAME] [--ARG VALUE ...]\n"
    "                                       deploy a Python app for the run, run its\n"
    "                                       local entrypoint here, stop the app after\n"
    "  call APP FUNCTION [ARG ...] [--kwarg NAME=JSON ...]\n"
    "                                       call a function and print its result as JSON\n"
    "  spawn APP FUNCTION [ARG ...] [--kwarg NAME=JSON ...]\n"
    "                                       queue a call and print its fc- id\n"
    "  get FC_ID [--timeout SECONDS] [--index I]\n"
    "                                       wait for a call's result and print it\n"
    "  cancel FC_ID [--terminate-containers]\n"
    "                                       cancel a call\n"
    "  map APP FUNCTION [--unordered] [--return-exceptions]\n"
    "                                       call once per stdin line (a JSON array of\n"
    "                                       arguments), one JSON result per stdout line,\n"
    "                                       streamed as results arrive\n"
    "  stats APP FUNCTION                   backlog, containers, running inputs, headroom\n"
    "  graph FC_ID [--json]                 draw a call's call graph\n"
    "  logs APP [FUNCTION] [--follow]       the containers' output\n"
    "  url APP FUNCTION [--json]            a web endpoint's URL\n"
    "  app list                             the deployed apps\n"
    "  app stop APP                         stop an app\n"
    "  container list                       the running containers\n"
    "  token new [--scope S] [--expires D]  make a new access token (scope admin, deploy or\n"
    "                                       call; default call)\n"
    "  token list                           list the tokens (never their secrets)\n"
    "  token revoke TOKEN_ID                revoke a token, closing its connections\n"
    "  secret create NAME KEY=VALUE... [--from-env KEY] [--force]\n"
    "                                       store a secret (env vars for functions)\n"
    "  secret list                          the secrets: names and keys, never values\n"
    "  secret delete NAME                   delete a secret\n"
    "  volume create NAME                   make a volume (a directory functions mount)\n"
    "  volume list                          the volumes, their sizes\n"
    "  volume delete NAME                   delete a volume and its files\n"
    "  volume put NAME LOCAL_FILE REMOTE_PATH\n"
    "                                       copy a file into a volume\n"
    "  volume get NAME REMOTE_PATH LOCAL_FILE|-\n"
    "                                       copy a file out of a volume\n"
    "  volume ls NAME [PATH]                list a volume's directory\n"
    "  dashboard [--url]                    print (and open) a one-time dashboard login URL\n"
    "  completion bash                      a bash completion script\n"
    "\n"
    "A class method is FUNCTION Cls.method, with --param NAME=JSON for its parameters.\n"
    "Each ARG is one JSON value (quote strings: '\"text\"'); bytes are {\"$bytes\": "
    "\"<base64>\"}.\n"
    "The server is --server, else $SKIFF_SERVER, else ~/.skiff.toml, else 127.0.0.1:7878\n"
    "(HOST:PORT or unix:PATH); the token is $SKIFF_TOKEN_ID and $SKIFF_TOKEN_SECRET, else\n"
    "~/.skiff.toml, which skiffd writes on its first start.\n"
    "Exit status: 0 success, 1 the call or request failed, 2 usage, 124 `get` timed out.\n"
    "Run 'skiff COMMAND --help' for more on a command.\n";

struct command {
    const char *name;
    int (*run)(struct cli *cli, int argc, char **argv);
};

static const struct command commands[] = {
    {"deploy", cmd_deploy},
    {"call", cmd_call},
    {"spawn", cmd_spawn},
    {"get", cmd_get},
    {"cancel", cmd_cancel},
    {"map", cmd_map},
    {"stats", cmd_stats},
    {"app", cmd_app},
    {"container", cmd_container},
    {"token", cmd_token},
    {"secret", cmd_secret},
    {"volume", cmd_volume},
    {"graph", cmd_graph},
    {"logs", cmd_logs},
    {"url", cmd_url},
    {"dashboard", cmd_dashboard},
    {"completion", cmd_completion},
    {"run", cmd_run},
};

int cli_connect(const struct cli *cli, skiff_client **out)
{
    skiff_client_options o = {0};
    o.server = cli->server;
    skiff_error err = SKIFF_ERROR_INIT;
    if (skiff_client_connect(&o, out, &err) == SKIFF_OK)
        return CLI_OK;
    cli_fail(&err);
    skiff_error_clear(&err);
    return CLI_FAILED;
}

int cli_fail(const skiff_error *err)
{
    const char *type = err->type ? err->type : skiff_code_name(err->code);
    fprintf(stderr, "%s: %s\n", type, err->message ? err->message : "(no message)");
    if (err->code == SKIFF_ERR_CONNECTION)
        fputs("hint: is skiffd running? Start it with `skiffd &` (it listens on 127.0.0.1:7878 "
              "and writes ~/.skiff.toml), or name another server with --server or "
              "$SKIFF_SERVER.\n",
              stderr);
    if (err->traceback && *err->traceback) {
        fputs("Traceback (most recent call last):\n", stderr);
        const char *p = err->traceback;
        while (*p) {
            size_t n = strcspn(p, "\n");
            fprintf(stderr, "  %.*s\n", (int)n, p);
            p += n;
            if (*p == '\n')
                p++;
        }
    }
    return CLI_FAILED;
}

int cli_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    fputs("skiff: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    /* The usage's first line, then where the rest is: "usage: skiff CMD ..." names CMD. */
    size_t first = strcspn(usage, "\n");
    const char *cmd = usage + strlen("usage: skiff ");
    size_t cmdlen = strncmp(usage, "usage: skiff ", strlen("usage: skiff ")) || *cmd == '['
                        ? 0
                        : strcspn(cmd, " \n");
    fprintf(stderr, "\n%.*s\nsee 'skiff %.*s%s--help'\n", (int)first, usage, (int)cmdlen, cmd,
            cmdlen ? " " : "");
    return CLI_USAGE;
}

/* What SIGINT says, prepared in advance: the handler may only write(2) and _exit. */
static char interrupt_text[400];
static size_t interrupt_len;

static void on_sigint(int sig)
{
    (void)sig;
    ssize_t w = write(STDERR_FILENO, interrupt_text, interrupt_len);
    (void)w;
    _exit(130); /* 128 + SIGINT, as a shell reports it */
}

void cli_on_interrupt(const char *what)
{
    int n = snprintf(interrupt_text, sizeof interrupt_text, "\nskiff: interrupted: %.300s\n", what);
    interrupt_len = n > 0 && (size_t)n < sizeof interrupt_text ? (size_t)n : 0;
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

int cli_print_json(const skiff_value *v)
{
    char *s = skiff_value_to_json(v);
    if (!s) {
        fputs("skiff: out of memory printing the result\n", stderr);
        return CLI_FAILED;
    }
    puts(s);
    free(s); /* skiff_value_to_json's text is malloc'd (skiff.h) */
    return CLI_OK;
}

/* An unknown command: one line, with the nearest command when one is close. */
static int unknown_command(const char *name)
{
    struct suggest s;
    suggest_init(&s, name);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        suggest_offer(&s, commands[i].name);
    if (s.best)
        return cli_usage_error(usage_text, "unknown command '%s': did you mean '%s'?", name,
                               s.best);
    return cli_usage_error(usage_text, "unknown command '%s'", name);
}

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    struct cli cli = {NULL};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return CLI_OK;
        }
        if (!strcmp(a, "--version")) {
            printf("skiff %s\n", SKIFF_VERSION);
            return CLI_OK;
        }
        if (!strcmp(a, "--server") && i + 1 < argc) {
            cli.server = argv[++i];
        } else if (!strncmp(a, "--server=", 9)) {
            cli.server = a + 9;
        } else if (!strcmp(a, "--server")) {
            return cli_usage_error(usage_text, "--server needs a value: HOST:PORT or unix:PATH");
        } else {
            return cli_usage_error(usage_text, "unknown option %s", a);
        }
    }
    if (i >= argc) {
        fputs(usage_text, stderr);
        return CLI_USAGE;
    }
    const char *name = argv[i];
    if (!strcmp(name, "help")) {
        if (i + 1 >= argc) {
            fputs(usage_text, stdout);
            return CLI_OK;
        }
        const struct command *c = find(argv[i + 1]);
        if (!c)
            return unknown_command(argv[i + 1]);
        char help[] = "--help";
        char *hv[] = {help, NULL};
        return c->run(&cli, 1, hv);
    }
    const struct command *c = find(name);
    if (!c)
        return unknown_command(name);
    return c->run(&cli, argc - i - 1, argv + i + 1);
}
