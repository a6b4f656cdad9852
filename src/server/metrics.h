/*
 * metrics.h - skiffd's counters and histograms, written as Prometheus text at GET /metrics
 * (docs/observability.md), and the per-function history the dashboard draws.
 *
 * Other modules call the metrics_* hooks below on the loop thread; each is a few increments (a
 * histogram observation is a scan of a short fixed bucket list), so the hot paths stay cheap.
 * Gauges (backlog, containers by state) are not tracked as they change: the scrape counts them
 * from the scheduler's own structures.
 */
#ifndef SKIFF_SERVER_METRICS_H
#define SKIFF_SERVER_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"

struct function;
struct container;

/* skiffd --no-metrics (before metrics_init): every hook does nothing, GET /metrics answers 404
 * and the dashboard shows no figures (for measuring what collecting costs). */
void metrics_disable(void);
bool metrics_enabled(void);
/* Starts the module (loop: for the history sampling timer). 0 or -1. */
int metrics_init(uv_loop_t *loop);
/* Shutdown: closes the timer (before the loop's last run); metrics_deinit frees. */
void metrics_shutdown(void);
void metrics_deinit(void);

/* An input of fn (a function or method) reached final status st (enum call_status). */
void metrics_input_done(struct function *fn, int st);
/* An input of fn ran on a container for ms milliseconds (loop clock). */
void metrics_input_ran(struct function *fn, uint64_t ms);
/* Container ct was started (process, sandbox or fork: from its fields). */
void metrics_container_started(struct container *ct);
/* Container ct said it is ready: its cold start ends. */
void metrics_container_ready(struct container *ct);
/* The HTTP server answered with status. */
void metrics_http(int status);
/* A store commit (group of writes) took seconds. */
void metrics_store_commit(double seconds);

struct call;
/* A call was made: the dashboard's list of recent calls keeps it. */
void metrics_call_new(struct call *call);
/* Appends {"calls": [...]} of the recent calls, newest first, to b, those of app, function,
 * status and call_id only where those are not "". 0 or a buf error. */
int metrics_calls_json(struct buf *b, const char *app, const char *function, const char *status,
                       const char *call_id);

/* Appends a compact JSON summary that changes whenever anything the dashboard shows does:
 * {"calls", "inputs", "containers", "backlog", "running"}. 0 or a buf error. */
int metrics_summary_json(struct buf *b);

/* Appends the whole exposition (text format 0.0.4) to b. 0 or a buf error. */
int metrics_render(struct buf *b);
/* Appends a JSON object of fn's live figures and its last hour (one point per
 * METRICS_SAMPLE_S seconds) to b: {"backlog", "containers", "running", "inputs", "failures",
 * "p50", "p99", "history": [[unix_s, inputs, failures, backlog, containers], ...]}. 0 or a buf
 * error. */
int metrics_function_json(struct function *fn, struct buf *b);
#define METRICS_SAMPLE_S 10

#endif
