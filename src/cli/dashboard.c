/*
 * dashboard.c - `skiff dashboard [--url]`: a one-time login URL for the web dashboard.
 *
 * Asks the server for a login code (DASHBOARD_LOGIN, a deploy or admin token) and prints
 * http://HOST:PORT/login?code=...; without --url it also opens it with xdg-open when there is a
 * display. The server's HTTP address comes back with the code; an any-address host (0.0.0.0)
 * is replaced by the host this command reached the server at (127.0.0.1 for a unix socket).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client/ops.h"
#include "common/mem.h"

static const char usage[] = "usage: skiff dashboard [--url] [--json]\n"
                            "Print a one-time login URL for the web dashboard (good for five "
                            "minutes, used once)\nand open it in a browser when one can be "
                            "opened; --url only prints it.\nNeeds a deploy or admin token; the "
                            "session acts with that token's scope. --json prints the URL as a\n"
                            "JSON string.\n";

/* The host part of the server address the client used (HOST:PORT), into out. */
static void server_host(const struct cli *cli, char *out, size_t size)
{
    const char *s = cli->server ? cli->server : getenv("SKIFF_SERVER");
    snprintf(out, size, "127.0.0.1");
    if (!s || !*s || !strncmp(s, "unix:", 5) || s[0] == '/')
        return;
    size_t n = strcspn(s, ",");
    const char *colon = memrchr(s, ':', n);
    if (colon && colon > s && (size_t)(colon - s) < size) {
        memcpy(out, s, (size_t)(colon - s));
        out[colon - s] = '\0';
    }
}

int cmd_dashboard(struct cli *cli, int argc, char **argv)
{
    struct cli_opt opts[] = {{"--url", false, NULL, 0, NULL}};
    const char *pos[8];
    int npos;
    bool help;
    char why[256];
    if (argc > 8)
        return cli_usage_error(usage, "dashboard takes no arguments");
    if (cli_getopt(argc, argv, opts, 1, &help, &cli->server, pos, &npos, why, sizeof why) < 0)
        return cli_usage_error(usage, "%s", why);
    if (help) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (npos)
        return cli_usage_error(usage, "dashboard takes no arguments, not '%s'", pos[0]);
    skiff_client *client;
    int rc = cli_connect(cli, &client);
    if (rc != CLI_OK)
        return rc;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *reply = NULL;
    if (client_dashboard_login(client, &reply, &err) != SKIFF_OK) {
        rc = cli_fail(&err);
        skiff_error_clear(&err);
        skiff_client_close(client);
        return rc;
    }
    const char *code = skiff_value_get_string(skiff_map_get(reply, "code"), NULL);
    const char *http = skiff_value_get_string(skiff_map_get(reply, "http"), NULL);
    if (!code || !http) {
        fputs("skiff: the server's reply has no login code\n", stderr);
        skiff_value_free(reply);
        skiff_client_close(client);
        return CLI_FAILED;
    }
    char host[256], url[512];
    const char *colon = strrchr(http, ':');
    if (colon && !strncmp(http, "0.0.0.0:", 8)) {
        server_host(cli, host, sizeof host);
        snprintf(url, sizeof url, "http://%s%s/login?code=%s", host, colon, code);
    } else {
        snprintf(url, sizeof url, "http://%s/login?code=%s", http, code);
    }
    if (cli_json_requested) { /* --json: a JSON string, as `skiff url --json` prints */
        skiff_value *v = skiff_value_string(url);
        rc = v ? cli_print_json(v) : CLI_FAILED;
        skiff_value_free(v);
    } else {
        printf("%s\n", url);
    }
    fflush(stdout);
    if (!opts[0].count && getenv("DISPLAY") && *getenv("DISPLAY") &&
        access("/usr/bin/xdg-open", X_OK) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/usr/bin/xdg-open", "xdg-open", url, (char *)NULL);
            _exit(127);
        }
    }
    skiff_value_free(reply);
    skiff_client_close(client);
    return rc;
}
