/*
 * metrics.c - the counters and histograms behind GET /metrics and the dashboard's charts.
 *
 * Each function (a plain function, a method, or a class for its pools' containers) gets a
 * struct metrics_fn on first use, hung on its struct function (fn->mx) so that a hook is a
 * pointer load and an increment. Histograms have fixed bucket bounds; an observation adds one
 * to the first bucket it fits (cumulated only when written out). The series live until
 * shutdown (functions are never freed before that either).
 *
 * Every METRICS_SAMPLE_S seconds a timer appends a point to each function's last hour (a ring
 * of 360): inputs and failures in the interval, backlog and containers at the end of it. That is
 * what the dashboard's chart shows; the scrape itself keeps no history.
 */
#include "metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apps.h"
#include "calls.h"
#include "common/list.h"
#include "common/mem.h"
#include "common/prom.h"
#include "container.h"
#include "store.h"

#define N_STATUS 8 /* enum call_status */
#define N_STATES 4 /* enum container_state */
#define HISTORY 360
#define MAX_BUCKETS 20

struct hist {
    const double *le; /* upper bounds, ascending; n of them (+Inf implied) */
    int n;
    uint64_t count[MAX_BUCKETS + 1]; /* per bucket, not cumulated; [n]: above the last bound */
    double sum;
    uint64_t total;
};

struct point {
    int64_t t; /* unix s */
    uint32_t inputs, failures, backlog, containers;
};

struct metrics_fn {
    const struct function *fn; /* its label source: app name and function name */
    uint64_t inputs[N_STATUS];
    uint64_t starts[3]; /* process, sandbox, fork */
    struct hist duration;
    struct hist cold;
    /* filled by a scrape or a sample */
    uint64_t backlog;
    uint64_t states[N_STATES];
    uint64_t running;
    /* the last hour */
    struct point history[HISTORY];
    int n_history, next_history;
    uint64_t last_inputs, last_failures;
    struct list_node link;
};

static const double duration_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                     0.5,   1,      2.5,   5,    10,    30,   60,  300};
static const double cold_le[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,   1,     2.5,  5,     10};
static const double commit_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                   0.025,  0.05,    0.1,    0.25,  0.5,    1,     5};
static const char *const kinds[3] = {"process", "sandbox", "fork"};

static struct list_node all = {&all, &all};
static uint64_t http_codes[600];
static struct hist commits;
static double start_time; /* unix s */
static uv_timer_t sampler;
static bool sampler_on;
static bool off; /* skiffd --no-metrics: the hooks do nothing */

void metrics_disable(void)
{
    off = true;
}

bool metrics_enabled(void)
{
    return !off;
}

static void hist_init(struct hist *h, const double *le, int n)
{
    h->le = le;
    h->n = n;
}

static void hist_observe(struct hist *h, double v)
{
    int i = 0;
    while (i < h->n && v > h->le[i])
        i++;
    h->count[i]++;
    h->sum += v;
    h->total++;
}

/* The value below which a fraction q of the observations fall (a bucket's upper bound), or -1
 * with none. */
static double hist_quantile(const struct hist *h, double q)
{
    if (!h->total)
        return -1;
    uint64_t want = (uint64_t)(q * (double)h->total + 0.999999), seen = 0;
    for (int i = 0; i <= h->n; i++) {
        seen += h->count[i];
        if (seen >= want && seen)
            return i < h->n ? h->le[i] : h->le[h->n - 1];
    }
    return h->le[h->n - 1];
}

static struct metrics_fn *mx_of(struct function *f)
{
    struct function *owner = (struct function *)apps_owner(f);
    if (owner->mx)
        return owner->mx;
    struct metrics_fn *m = mem_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->fn = owner;
    hist_init(&m->duration, duration_le, sizeof duration_le / sizeof duration_le[0]);
    hist_init(&m->cold, cold_le, sizeof cold_le / sizeof cold_le[0]);
    list_push(&all, &m->link);
    owner->mx = m;
    return m;
}

/* --- hooks ------------------------------------------------------------------------------------ */

void metrics_input_done(struct function *fn, int st)
{
    if (off)
        return;
    struct metrics_fn *m = mx_of(fn);
    if (m && (unsigned)st < N_STATUS)
        m->inputs[st]++;
}

void metrics_input_ran(struct function *fn, uint64_t ms)
{
    if (off)
        return;
    struct metrics_fn *m = mx_of(fn);
    if (m)
        hist_observe(&m->duration, (double)ms / 1000);
}

void metrics_container_started(struct container *ct)
{
    if (off)
        return;
    struct metrics_fn *m = mx_of(ct->fn);
    if (m)
        m->starts[ct->forked ? 2 : ct->sandboxed ? 1 : 0]++;
}

void metrics_container_ready(struct container *ct)
{
    if (off)
        return;
    struct metrics_fn *m = mx_of(ct->fn);
    if (m && ct->start_ns) {
        hist_observe(&m->cold, (double)(uv_hrtime() - ct->start_ns) / 1e9);
        ct->start_ns = 0;
    }
}

void metrics_http(int status)
{
    if (off)
        return;
    if (status >= 100 && status < 600)
        http_codes[status]++;
}

void metrics_store_commit(double seconds)
{
    if (off)
        return;
    hist_observe(&commits, seconds);
}

/* --- gauges ----------------------------------------------------------------------------------- */

/* Counts backlog, running inputs and containers by state into every series (making the series
 * of every live function that has none yet, so that idle ones show too). */
static void count_gauges(void)
{
    struct list_node *n, *tn;
    list_for_each_safe(n, tn, &all)
    {
        struct metrics_fn *m = container_of(n, struct metrics_fn, link);
        m->backlog = m->running = 0;
        memset(m->states, 0, sizeof m->states);
    }
    for (struct app *a = apps_next(NULL); a; a = apps_next(a)) {
        struct list_node *fnode, *tf;
        list_for_each_safe(fnode, tf, &a->functions)
        {
            struct function *f = container_of(fnode, struct function, app_link);
            if (!f->live && !f->mx)
                continue;
            struct metrics_fn *m = mx_of(f);
            if (!m)
                continue;
            m->backlog += f->backlog;
            m->running += (uint64_t)f->n_running;
            for (size_t i = 0; i < f->pools.cap; i++) {
                struct function *p = f->pools.slots[i].val;
                if (p) {
                    m->backlog += p->backlog;
                    m->running += (uint64_t)p->n_running;
                }
            }
        }
    }
    for (struct container *ct = container_next(NULL); ct; ct = container_next(ct)) {
        struct metrics_fn *m = mx_of(ct->fn);
        if (m && (unsigned)ct->state < N_STATES)
            m->states[ct->state]++;
    }
}

/* --- the exposition --------------------------------------------------------------------------- */

static int labels(struct buf *b, const struct metrics_fn *m)
{
    int rc = buf_append(b, "app=\"", 5);
    rc = rc ? rc : prom_escape_label(b, m->fn->app->name);
    rc = rc ? rc : buf_append(b, "\",function=\"", 12);
    rc = rc ? rc : prom_escape_label(b, m->fn->name);
    return rc ? rc : buf_append(b, "\"", 1);
}

static int head(struct buf *b, const char *name, const char *type, const char *help)
{
    return prom_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's lines (m: its function labels, or NULL). */
static int hist_lines(struct buf *b, const char *name, const struct hist *h,
                      const struct metrics_fn *m)
{
    int rc = 0;
    uint64_t cum = 0;
    for (int i = 0; i <= h->n && !rc; i++) {
        cum += h->count[i];
        rc = prom_printf(b, "%s_bucket{", name);
        if (m && !rc) {
            rc = labels(b, m);
            rc = rc ? rc : buf_append(b, ",", 1);
        }
        if (!rc && i < h->n)
            rc = prom_printf(b, "le=\"%g\"} %llu\n", h->le[i], (unsigned long long)cum);
        else if (!rc)
            rc = prom_printf(b, "le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    const char *suffix[2] = {"_sum", "_count"};
    for (int k = 0; k < 2 && !rc; k++) {
        rc = prom_printf(b, "%s%s", name, suffix[k]);
        if (m && !rc) {
            rc = buf_append(b, "{", 1);
            rc = rc ? rc : labels(b, m);
            rc = rc ? rc : buf_append(b, "}", 1);
        }
        if (!rc)
            rc = k ? prom_printf(b, " %llu\n", (unsigned long long)h->total)
                   : prom_printf(b, " %.9g\n", h->sum);
    }
    return rc;
}

/* A labelled sample: name{app,function[,extra="value"]} value. */
static int sample(struct buf *b, const char *name, const struct metrics_fn *m, const char *extra,
                  const char *value, uint64_t v)
{
    int rc = prom_printf(b, "%s{", name);
    rc = rc ? rc : labels(b, m);
    if (extra && !rc) {
        rc = prom_printf(b, ",%s=\"", extra);
        rc = rc ? rc : prom_escape_label(b, value);
        rc = rc ? rc : buf_append(b, "\"", 1);
    }
    return rc ? rc : prom_printf(b, "} %llu\n", (unsigned long long)v);
}

static int process_metrics(struct buf *b)
{
    long page = sysconf(_SC_PAGESIZE), tck = sysconf(_SC_CLK_TCK);
    unsigned long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &resident) != 2)
            size = resident = 0;
        fclose(f);
    }
    unsigned long long ut = 0, st = 0;
    f = fopen("/proc/self/stat", "r");
    if (f) {
        char line[1024];
        if (fgets(line, sizeof line, f)) {
            const char *p = strrchr(line, ')'); /* past the command name */
            if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                             &st) != 2)
                ut = st = 0;
        }
        fclose(f);
    }
    long fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            fds += e->d_name[0] != '.';
        closedir(d);
        fds--; /* the directory's own */
    }
    long max_fds = sysconf(_SC_OPEN_MAX);
    int rc = head(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    rc = rc ? rc
            : prom_printf(b, "process_resident_memory_bytes %llu\n",
                          resident * (unsigned long long)page);
    rc =
        rc ? rc : head(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    rc =
        rc ? rc
           : prom_printf(b, "process_virtual_memory_bytes %llu\n", size * (unsigned long long)page);
    rc = rc ? rc : head(b, "process_open_fds", "gauge", "Number of open file descriptors.");
    rc = rc ? rc : prom_printf(b, "process_open_fds %ld\n", fds);
    rc = rc ? rc : head(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    rc = rc ? rc : prom_printf(b, "process_max_fds %ld\n", max_fds);
    rc = rc ? rc
            : head(b, "process_cpu_seconds_total", "counter",
                   "Total user and system CPU time spent in seconds.");
    rc = rc ? rc
            : prom_printf(b, "process_cpu_seconds_total %.2f\n",
                          (double)(ut + st) / (double)(tck > 0 ? tck : 100));
    rc = rc ? rc
            : head(b, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
    rc = rc ? rc : prom_printf(b, "process_start_time_seconds %.3f\n", start_time);
    return rc;
}

/* The families with a series per function, in the order written. */
enum family { F_INPUTS, F_DURATION, F_BACKLOG, F_RUNNING, F_CONTAINERS, F_STARTS, F_COLD, N_FAM };

static const struct {
    const char *name, *type, *help;
} families[N_FAM] = {
    [F_INPUTS] = {"skiff_inputs_total", "counter",
                  "Inputs that reached a final status, by app, function and status."},
    [F_DURATION] = {"skiff_input_duration_seconds", "histogram",
                    "Time an input ran on a container (the server's loop clock, millisecond "
                    "resolution)."},
    [F_BACKLOG] = {"skiff_backlog", "gauge", "Inputs waiting for a container."},
    [F_RUNNING] = {"skiff_running_inputs", "gauge", "Inputs running on containers."},
    [F_CONTAINERS] = {"skiff_containers", "gauge", "Containers by state."},
    [F_STARTS] = {"skiff_container_starts_total", "counter",
                  "Containers started, by kind: a plain process, a sandbox, or a fork of a "
                  "snapshot template."},
    [F_COLD] = {"skiff_cold_start_seconds", "histogram",
                "Time from a container's start to its worker being ready."},
};

/* The lines of family f for function m. */
static int family_lines(struct buf *b, enum family f, const struct metrics_fn *m)
{
    const char *name = families[f].name;
    int rc = 0;
    switch (f) {
    case F_INPUTS:
        for (int s = ST_SUCCESS; s < N_STATUS && !rc; s++)
            if (s != ST_EXPIRED)
                rc = sample(b, name, m, "status", calls_status_name((enum call_status)s),
                            m->inputs[s]);
        return rc;
    case F_DURATION:
        return m->duration.total ? hist_lines(b, name, &m->duration, m) : 0;
    case F_BACKLOG:
        return sample(b, name, m, NULL, NULL, m->backlog);
    case F_RUNNING:
        return sample(b, name, m, NULL, NULL, m->running);
    case F_CONTAINERS:
        for (int s = 0; s < N_STATES && !rc; s++)
            rc = sample(b, name, m, "state", container_state_name((enum container_state)s),
                        m->states[s]);
        return rc;
    case F_STARTS:
        for (int k = 0; k < 3 && !rc; k++)
            rc = sample(b, name, m, "kind", kinds[k], m->starts[k]);
        return rc;
    case F_COLD:
        return m->cold.total ? hist_lines(b, name, &m->cold, m) : 0;
    default:
        return 0;
    }
}

int metrics_render(struct buf *b)
{
    count_gauges();
    int rc = 0;
    for (int f = 0; f < N_FAM && !rc; f++) {
        rc = head(b, families[f].name, families[f].type, families[f].help);
        struct list_node *n, *tn;
        list_for_each_safe(n, tn, &all)
        {
            if (!rc)
                rc = family_lines(b, (enum family)f, container_of(n, struct metrics_fn, link));
        }
    }
    rc = rc ? rc
            : head(b, "skiff_http_requests_total", "counter",
                   "HTTP requests answered, by status code.");
    for (int c = 100; c < 600 && !rc; c++)
        if (http_codes[c])
            rc = prom_printf(b, "skiff_http_requests_total{code=\"%d\"} %llu\n", c,
                             (unsigned long long)http_codes[c]);
    rc = rc ? rc
            : head(b, "skiff_store_commit_seconds", "histogram",
                   "Time of one group commit of the store.");
    rc = rc ? rc : hist_lines(b, "skiff_store_commit_seconds", &commits, NULL);
    return rc ? rc : process_metrics(b);
}

/* --- the dashboard's figures ------------------------------------------------------------------ */

/* Inputs of m that ended, and those of them that did not succeed. */
static void totals(const struct metrics_fn *m, uint64_t *done, uint64_t *failed)
{
    *done = *failed = 0;
    for (int s = ST_SUCCESS; s < N_STATUS; s++) {
        *done += m->inputs[s];
        *failed += s != ST_SUCCESS ? m->inputs[s] : 0;
    }
}

static void take_sample(uv_timer_t *t)
{
    (void)t;
    count_gauges();
    int64_t now = store_now_ms() / 1000;
    struct list_node *n, *tn;
    list_for_each_safe(n, tn, &all)
    {
        struct metrics_fn *m = container_of(n, struct metrics_fn, link);
        uint64_t done, failed;
        totals(m, &done, &failed);
        struct point *p = &m->history[m->next_history];
        p->t = now;
        p->inputs = (uint32_t)(done - m->last_inputs);
        p->failures = (uint32_t)(failed - m->last_failures);
        p->backlog = (uint32_t)m->backlog;
        p->containers = (uint32_t)(m->states[0] + m->states[1] + m->states[2]);
        m->last_inputs = done;
        m->last_failures = failed;
        m->next_history = (m->next_history + 1) % HISTORY;
        if (m->n_history < HISTORY)
            m->n_history++;
    }
}

int metrics_function_json(struct function *fn, struct buf *b)
{
    count_gauges();
    struct metrics_fn *m = mx_of(fn);
    if (!m)
        return BUF_NOMEM;
    uint64_t done, failed;
    totals(m, &done, &failed);
    int rc = prom_printf(b,
                         "{\"backlog\":%llu,\"containers\":%llu,\"running\":%llu,\"inputs\":%llu,"
                         "\"failures\":%llu,\"p50\":%g,\"p99\":%g,\"sample_s\":%d,\"history\":[",
                         (unsigned long long)m->backlog,
                         (unsigned long long)(m->states[0] + m->states[1] + m->states[2]),
                         (unsigned long long)m->running, (unsigned long long)done,
                         (unsigned long long)failed, hist_quantile(&m->duration, 0.5),
                         hist_quantile(&m->duration, 0.99), METRICS_SAMPLE_S);
    for (int i = 0; i < m->n_history && !rc; i++) {
        const struct point *p =
            &m->history[(m->next_history - m->n_history + i + HISTORY) % HISTORY];
        rc = prom_printf(b, "%s[%lld,%u,%u,%u,%u]", i ? "," : "", (long long)p->t, p->inputs,
                         p->failures, p->backlog, p->containers);
    }
    return rc ? rc : buf_append(b, "]}", 2);
}

/* --- module ----------------------------------------------------------------------------------- */

int metrics_init(uv_loop_t *loop)
{
    if (off)
        return 0;
    hist_init(&commits, commit_le, sizeof commit_le / sizeof commit_le[0]);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (uv_timer_init(loop, &sampler) < 0)
        return -1;
    sampler_on = true;
    uv_timer_start(&sampler, take_sample, METRICS_SAMPLE_S * 1000, METRICS_SAMPLE_S * 1000);
    uv_unref((uv_handle_t *)&sampler);
    return 0;
}

void metrics_shutdown(void)
{
    if (sampler_on) {
        sampler_on = false;
        uv_close((uv_handle_t *)&sampler, NULL);
    }
}

void metrics_deinit(void)
{
    while (!list_empty(&all)) {
        struct metrics_fn *m = container_of(all.next, struct metrics_fn, link);
        list_remove(&m->link);
        mem_free(m);
    }
}

/* --- recent calls (the dashboard) ------------------------------------------------------------- */

#define RECENT 500

struct recent {
    char id[ID_SIZE];
    struct function *fn;
    int64_t created; /* unix ms */
    int kind;
};

static struct recent recent[RECENT];
static size_t n_recent, next_recent;
static uint64_t calls_made;

void metrics_call_new(struct call *call)
{
    if (off)
        return;
    calls_made++;
    struct recent *e = &recent[next_recent];
    memcpy(e->id, call->id, sizeof e->id);
    e->fn = call->fn;
    e->created = call->created;
    e->kind = call->kind;
    next_recent = (next_recent + 1) % RECENT;
    if (n_recent < RECENT)
        n_recent++;
}

/* Appends s as a JSON string. */
static int json_str(struct buf *b, const char *s)
{
    return prom_json_string(b, s, strlen(s));
}

int metrics_calls_json(struct buf *b, const char *app, const char *function, const char *status,
                       const char *call_id)
{
    int rc = buf_append(b, "{\"calls\":[", 10);
    bool first = true;
    for (size_t i = 0; i < n_recent && !rc; i++) {
        const struct recent *e = &recent[(next_recent + RECENT - 1 - i) % RECENT];
        if ((app[0] && strcmp(app, e->fn->app->name)) ||
            (function[0] && strcmp(function, e->fn->name)))
            continue;
        if (call_id[0] && strcmp(call_id, e->id))
            continue;
        const char *st = "finished";
        struct call *call = calls_find(e->id);
        uint32_t n_inputs = 0, n_failed = 0;
        if (call) {
            st = calls_status_name(calls_status_of(call));
            n_inputs = call->n_inputs;
            n_failed = call->n_failed;
        } else {
            struct stored_call sc;
            if (store_get_call(e->id, &sc) > 0) {
                st = calls_status_name((enum call_status)sc.outcome.status);
                n_inputs = sc.n_inputs;
                store_call_clear(&sc);
            }
        }
        if (status[0] && strcmp(status, st))
            continue;
        rc = prom_printf(b, "%s{\"call_id\":\"%s\",\"app\":", first ? "" : ",", e->id);
        first = false;
        rc = rc ? rc : json_str(b, e->fn->app->name);
        rc = rc ? rc : buf_append(b, ",\"function\":", 12);
        rc = rc ? rc : json_str(b, e->fn->name);
        rc = rc ? rc
                : prom_printf(b,
                              ",\"status\":\"%s\",\"kind\":\"%s\",\"created\":%.3f,\"inputs\":%u,"
                              "\"failed\":%u}",
                              st, calls_kind_name((enum call_kind)e->kind),
                              (double)e->created / 1000, n_inputs, n_failed);
    }
    return rc ? rc : buf_append(b, "]}", 2);
}

int metrics_summary_json(struct buf *b)
{
    count_gauges();
    uint64_t inputs = 0, containers = 0, backlog = 0, running = 0;
    struct list_node *n, *tn;
    list_for_each_safe(n, tn, &all)
    {
        struct metrics_fn *m = container_of(n, struct metrics_fn, link);
        uint64_t done, failed;
        totals(m, &done, &failed);
        inputs += done;
        backlog += m->backlog;
        running += m->running;
        for (int s = 0; s < N_STATES; s++)
            containers += m->states[s] * (uint64_t)(s + 1); /* a state change shows too */
    }
    return prom_printf(b,
                       "{\"calls\":%llu,\"inputs\":%llu,\"containers\":%llu,\"backlog\":%llu,"
                       "\"running\":%llu}",
                       (unsigned long long)calls_made, (unsigned long long)inputs,
                       (unsigned long long)containers, (unsigned long long)backlog,
                       (unsigned long long)running);
}
