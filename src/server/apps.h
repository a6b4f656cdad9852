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

#include "common/id.h"
#include "common/list.h"

struct fn_config {
    char *signature; /* or NULL */
    double timeout;  /* seconds per input */
    int max_containers;
    int min_containers;
    double scaledown_window; /* idle seconds before a container stops */
    double cpu;              /* cores a container may use; 0: the server's default */
    int memory;              /* MiB a container may use; 0: the server's default */
};

struct app;

struct function {
    char id[ID_SIZE];
    char *name;
    struct app *app;
    bool live;   /* defined by the app's current deployment */
    int version; /* the deployment whose code new containers run */
    struct fn_config cfg;

    /* scheduling (sched.c) */
    struct list_node queue;      /* pending inputs (struct call.queue_link), FIFO */
    size_t backlog;              /* inputs in queue */
    struct list_node containers; /* struct container.fn_link */
    int n_containers;            /* alive (starting, idle, busy; not stopping) */
    int n_starting;
    int n_running; /* inputs running */
    struct list_node app_link;
};

struct app {
    char id[ID_SIZE];
    char *name;
    int version; /* 0 before the first deploy */
    bool stopped;
    int64_t created;            /* unix seconds */
    char *code_path;            /* the current version's shared object */
    struct list_node functions; /* struct function.app_link */
    struct list_node link;
};

#define APP_NAME_MAX 63
#define FUNCTION_NAME_MAX 63

/* Default configuration values (DESIGN.md, modal-semantics.md). */
#define FN_DEFAULT_TIMEOUT 300.0
#define FN_MIN_TIMEOUT 1.0
#define FN_MAX_TIMEOUT 86400.0
#define FN_DEFAULT_MAX_CONTAINERS 8
#define FN_DEFAULT_SCALEDOWN 60.0
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

/* True if name is a valid app / function name. */
bool apps_valid_app_name(const char *name);
bool apps_valid_function_name(const char *name);

/* One function of a deploy request. */
struct deploy_fn {
    const char *name;
    struct fn_config cfg;
};

/* Deploys code (n bytes) as the next version of app name with functions fns[0..nfns):
 * writes the code under the data directory, records everything in the store, updates the
 * registry and tells the scheduler (running inputs finish on the old code). On success returns
 * the app; on failure NULL with a message in errbuf. */
struct app *apps_deploy(const char *name, const void *code, size_t n, const struct deploy_fn *fns,
                        size_t nfns, char *errbuf, size_t errlen);
/* Stops app: no new calls; pending inputs are terminated; containers stop. 0, or -1 if unknown. */
int apps_stop(const char *name);

#endif
