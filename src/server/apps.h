/*
 * apps.h - deployed apps and their functions, in memory (the store holds the durable copy).
 *
 * An app has a name, a version that each deploy increments, and the path of the current
 * version's shared object. Functions keep their id across redeploys while they keep their name;
 * a function missing from the latest deploy stays known (old calls refer to it) but is no longer
 * live. A function also carries its scheduling state: the queue of pending inputs and its
 * containers (sched.c).
 */
#ifndef SKIFF_SERVER_APPS_H
#define SKIFF_SERVER_APPS_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "common/fn_defaults.h"
#include "common/hmap.h"
#include "common/id.h"
#include "common/list.h"

struct conn;

/* A retry policy (docs/protocol.md, DEPLOY): delay = initial_delay * backoff_coefficient^(n-1),
 * at most max_delay. max_retries 0: no retries. */
struct retry_policy {
    int max_retries;
    double backoff_coefficient;
    double initial_delay; /* seconds */
    double max_delay;     /* seconds */
};

struct fn_config {
    char *signature;         /* or NULL */
    bool generator;          /* yields items (kind "generator") */
    bool web;                /* a web endpoint (kind "web"): not callable through the protocol */
    char *web_method;        /* "GET", "POST", ...: web endpoints */
    char *web_label;         /* or NULL: <app>-<function> */
    bool web_requires_auth;  /* requests must carry a token */
    size_t web_max_body;     /* largest request body; 0: the server's default */
    double timeout;          /* seconds per attempt */
    int max_containers;      /* upper bound on containers at once */
    int min_containers;      /* kept even when idle */
    int buffer_containers;   /* idle containers kept ready while busy */
    double scaledown_window; /* idle seconds before a container stops */
    int max_inputs;          /* inputs a container runs at once */
    int target_inputs;       /* the autoscaler's aim per container */
    int max_batch_size;      /* 0: not batched */
    int wait_ms;             /* how long a batch is gathered */
    struct retry_policy retries;
    bool snapshot;   /* classes: some enter hooks run before a snapshot (template.c) */
    double cpu;      /* cores a container may use; 0: the server's default */
    int memory;      /* MiB a container may use; 0: the server's default */
    char *secrets;   /* the secrets it declares ("a,b", common/resources.h), or NULL */
    char *volumes;   /* the volumes it mounts ("/data=NAME,..."), or NULL */
    double period_s; /* runs on its own every period_s seconds (schedule.c); 0: not */
    char *cron;      /* ... or at the times of this cron spec (UTC); NULL: not */
};

struct app;
struct metrics_fn;

/*
 * Functions, classes and pools. A plain function is its own pool: its queue and containers are
 * below. A class (is_class) is not callable: it holds the configuration its methods share and
 * its pools, one per distinct set of parameter values, made on demand (apps_class_pool) and
 * carrying the scheduling state. A method ("Cls.method") is callable; its calls run in a pool
 * of its class.
 */
struct function {
    char id[ID_SIZE];
    char *name; /* "square", "Cls" or "Cls.method" */
    struct app *app;
    bool live;   /* defined by the app's current deployment */
    int version; /* the deployment whose code new containers run */
    struct fn_config cfg;
    bool is_class;        /* a class: its pools run its methods */
    struct function *cls; /* methods and pools: their class */
    const char *method;   /* methods: the part after the dot */
    char *params;         /* pools of a class: the canonical params payload */
    size_t params_len;
    char *params_key;  /* ... and its base64, the pool's key and the worker's --params */
    struct hmap pools; /* classes: params_key -> pool */

    struct fn_config deployed; /* the configuration as deployed (cfg's autoscaler may change) */

    /* scheduling (sched.c) */
    struct list_node queue;      /* pending inputs (struct input.link), FIFO */
    size_t backlog;              /* inputs in queue */
    struct list_node containers; /* struct container.fn_link */
    int n_containers;            /* alive (starting, idle, busy; not stopping) */
    int n_starting;              /* not ready yet */
    int n_running;               /* inputs held by containers */
    double avg_ms;               /* moving average of an input's time on a container */
    int start_failures;          /* container starts that failed in a row */
    uint64_t start_retry_at;     /* loop ms of the next start after a failure; 0: none due */
    struct template *tmpl;       /* pools of a snapshot class: its template, or NULL */
    int tmpl_broken;             /* the version whose template failed: its starts are plain */
    struct metrics_fn *mx;       /* its counters (metrics.c), or NULL before the first */
    struct list_node app_link;
};

struct app {
    char id[ID_SIZE];
    char *name;
    int version; /* 0 before the first deploy */
    bool stopped;
    int64_t created;            /* unix seconds */
    bool ephemeral;             /* deployed for one client's run: stopped when it leaves, and
                                   removed (from the list and the store) once stopped */
    bool removed;               /* an ephemeral app after its stop: out of every listing */
    struct conn *owner;         /* ephemeral: the connection that deployed it, while open */
    char *code_path;            /* the current version's shared object */
    struct list_node functions; /* struct function.app_link */
    struct list_node link;
};

#define APP_NAME_MAX 63
#define FUNCTION_NAME_MAX 63

/* Limits of configuration values (defaults: common/fn_defaults.h). */
#define FN_MIN_TIMEOUT 1.0
#define FN_MAX_TIMEOUT 86400.0
#define FN_MAX_INPUTS 1000
#define FN_MAX_BATCH 1000
#define FN_MAX_WAIT_MS 600000
#define FN_MAX_CPU 1024.0                /* cores: beyond any one host */
#define FN_MAX_MEMORY (16 * 1024 * 1024) /* MiB: 16 TiB, beyond any one host */

/* Loads apps and functions from the store. 0 or -1. */
int apps_init(const char *data_dir);
void apps_deinit(void);
/* Tells the scheduler about every function (starts min_containers after a restart). */
void apps_start_all(void);

struct app *apps_find(const char *name);
struct function *apps_function(const char *id);
/* The live function NAME of the running (not stopped) app APP, or NULL. */
struct function *apps_lookup(const char *app, const char *name);
/* The first app, or the one after prev (NULL: done), in creation order. */
struct app *apps_next(struct app *prev);

/* The pool of class cls for the canonical params payload (n bytes; made on first use). NULL when
 * out of memory. */
struct function *apps_class_pool(struct function *cls, const char *params, size_t n);
/* The class pool_or_fn belongs to, or itself: where liveness and the code version are kept. */
static inline const struct function *apps_owner(const struct function *f)
{
    return f->cls && !f->is_class && f->params_key ? f->cls : f;
}
/* The class named name of the running app, or NULL. */
struct function *apps_lookup_class(const char *app, const char *name);

/* Why apps_lookup (is_class false) or apps_lookup_class (true) found nothing, as the whole
 * NotFoundError message: "Lookup failed for Function 'f' from the 'app' app: the app has no
 * such function (did you mean 'g'?)", written into out (truncated to size). */
void apps_lookup_failure(const char *app, const char *name, bool is_class, char *out, size_t size);

/* True if name is a valid app / function name. */
bool apps_valid_app_name(const char *name);
bool apps_valid_function_name(const char *name);

/* One function of a deploy request. */
struct deploy_fn {
    const char *name;
    bool is_class; /* a `classes` entry */
    struct fn_config cfg;
    const char *entry; /* the DEPLOY entry as msgpack (stored, and parsed again at start-up) */
    size_t entry_len;
};

/* Reads a DEPLOY function entry (a msgpack map) into cfg: strings are copied (free with
 * apps_config_clear), absent fields are 0. Returns NULL, or a message naming what is wrong. */
const char *apps_parse_config(const msgpack_object *entry, struct fn_config *cfg);
void apps_config_clear(struct fn_config *cfg);

/* Deploys code (n bytes) as the next version of app name with functions fns[0..nfns):
 * writes the code under the data directory, records everything in the store, updates the
 * registry and tells the scheduler (running inputs finish on the old code). owner non-NULL
 * makes a new, ephemeral app owned by that client connection: it is stopped and removed when
 * the connection closes (apps_conn_closed) or, failing that, when the server next starts (the
 * caller makes sure no app of that name is deployed). On success returns the app; on failure
 * NULL with a message in errbuf. */
struct app *apps_deploy(const char *name, const void *code, size_t n, const struct deploy_fn *fns,
                        size_t nfns, struct conn *owner, char *errbuf, size_t errlen);
/* Stops app: no new calls; pending inputs are terminated; containers stop; its schedules end.
 * An ephemeral app is removed as well: its rows and code leave the store and the data
 * directory, its name is free again, and listings no longer show it (calls made to it keep
 * their results). 0, or -1 if unknown. */
int apps_stop(const char *name);
/* True when connection c owns a running ephemeral app: it is in progress for the idle timeout
 * (conn.c), since closing it would remove the app. */
bool apps_owns(const struct conn *c);
/* Connection c is closing: the ephemeral apps it deployed are stopped and removed. */
void apps_conn_closed(struct conn *c);

#endif
