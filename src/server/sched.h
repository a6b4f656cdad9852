/*
 * sched.h - the scheduler: puts pending inputs on containers and sizes each function's pool.
 *
 * Every function has a FIFO queue of pending calls and a set of containers running its code.
 * An input goes to an idle container of the current version at once; if there is none and the
 * pool is below max_containers (counting containers still starting), a new container starts and
 * takes the head of the queue when it is ready. A container that finishes an input takes the
 * next one; with none left it waits scaledown_window seconds (min_containers stay), then stops.
 * Containers of an older version finish their input and stop.
 */
#ifndef SKIFF_SERVER_SCHED_H
#define SKIFF_SERVER_SCHED_H

#include <skiff/skiff.h>
#include <stdbool.h>
#include <uv.h>

struct call;
struct container;
struct function;

/* 0 or -1. worker: path of skiff-worker; server_addr, the container token and payload_max go
 * into the containers' environment; max_frame bounds frames from containers. */
int sched_init(uv_loop_t *loop, const char *worker, const char *server_addr, const char *token_id,
               const char *token_secret, size_t payload_max, size_t max_frame);
/* Stops every container (SIGTERM, then the loop's teardown). */
void sched_shutdown(void);

/* Queues call (PENDING) on its function and dispatches what it can. */
void sched_enqueue(struct call *call);
/* Removes a pending call from its queue, or stops the container running it (SIGKILL). */
void sched_cancel(struct call *call, bool terminate_containers);
/* The function's code or settings changed (deploy) or it stopped: retire old containers, start
 * what min_containers asks for. */
void sched_function_changed(struct function *fn);

/* Container events (container.c). */
void sched_container_ready(struct container *ct);
void sched_container_output(struct container *ct, const char *input_id, const char *value,
                            size_t len, const skiff_error *err);
void sched_container_init_failed(struct container *ct, const skiff_error *err);
/* The container's socket closed: it takes no more inputs (its exit follows). */
void sched_container_lost(struct container *ct);
void sched_container_exited(struct container *ct, const char *why);

#endif
