/*
 * http.h - skiffd's HTTP side: web endpoints and the JSON API (docs/http-api.md).
 *
 * One listener on the server's event loop (skiffd --http). http.c owns the connections (parsing
 * with libhttp-parser, keep-alive, pipelining in order, limits and timeouts); http_web.c serves
 * web endpoints under /web/<label>; http_api.c the JSON API under /api/v1/. This header is what
 * the rest of the server sees: start and stop, and the URL and label rules that DEPLOY and
 * LOOKUP use.
 */
#ifndef SKIFF_SERVER_HTTP_H
#define SKIFF_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "apps.h"

struct auth_token;

/* A label is at most 63 characters (a DNS label): longer defaults are cut to 56 + "-" + 6 hex. */
#define HTTP_LABEL_MAX 63

struct http_options {
    const char *addr;       /* "HOST:PORT" */
    double request_timeout; /* seconds a request's headers and body may take; also the idle
                               keep-alive limit */
    double web_limit;       /* seconds a web request waits for its call before the 303 */
    size_t body_max;        /* largest request body of a web endpoint that sets none, and of a
                               JSON API request without a valid token (413 beyond) */
    size_t payload_max;     /* the protocol's payload limit: a JSON API request with a valid
                               token may send a body of twice this (JSON's own overhead) */
    size_t max_conns;       /* connections at once; past it the oldest one with no request
                               queued is closed for a new one (or the new one refused) */
};

/* Starts listening. 0, or a negative libuv error (logged). opts is copied (addr too). */
int http_start(uv_loop_t *loop, const struct http_options *opts);
/* Shutdown: closes the listener and every connection (their calls are left to finish). */
void http_close(void);

/* The label of web endpoint fn (its own, or the default <app>-<function>) into out
 * (HTTP_LABEL_MAX + 1 bytes). */
void http_label(const char *app, const char *function, const char *label,
                char out[HTTP_LABEL_MAX + 1]);
/* The URL of fn into out when fn is a web endpoint and HTTP is on: true; false otherwise. */
/* A one-time dashboard login code (hex, into code of size >= 65) for token t, whose reference
 * it takes (http_dash.c). 0 or -1. */
int http_dash_new_code(struct auth_token *t, char *code, size_t size);
/* How long a dashboard login code stays good (seconds; default 300). */
void http_dash_set_code_ttl(double seconds);
/* The HTTP address HOST:PORT being served, or NULL (http.c). */
const char *http_addr(void);
/* Drops the dashboard's codes and sessions (shutdown, before the tokens are freed). */
void http_dash_close(void);
bool http_web_url(const struct function *fn, char *out, size_t size);
/* Checks the web endpoints among a deploy of app (fns[0..n)): every label well formed and not
 * claimed twice, within the deploy or by a live endpoint of another app. NULL when fine, else
 * a message in err. */
const char *http_check_labels(const char *app, const struct deploy_fn *fns, size_t n, char *err,
                              size_t errlen);

#endif
