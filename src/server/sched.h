/*
 * sched.h - the scheduler: puts pending inputs on containers and sizes each function's pool.
 *
 * Every function has a FIFO queue of pending inputs and a set of containers running its code.
 * A container of the current version takes inputs while it holds fewer than its capacity:
 * max_inputs x max(1, max_batch_size), plus a prefetch of PREFETCH inputs for functions whose
 * inputs take well under a millisecond (so a stream of tiny inputs travels in batches and the
 * worker never waits for the next one). The pool grows while the queue is longer than its
 * containers can take (up to max_containers, counting those still starting), keeps
 * min_containers, and buffer_containers spare while busy; a container that holds nothing for
 * scaledown_window seconds stops. Containers of an older version finish what they hold and stop.
 *
 * Failures: an input past its deadline fails with FunctionTimeoutError and its container is
 * killed; a container's death fails the input it blames (W_CRASH, or the only input it held when
 * it died of its own accord) and puts the others back at the head of the queue, up to 3 times.
 * A container that sends garbage is killed and every input it held fails (RemoteError). A
 * container that cannot start is tried again with backoff (START_RETRY_MS doubling); after
 * START_ATTEMPTS failures in a row the queue of a function with no container fails with the
 * cause. Failed inputs are retried as the function's retry policy says; cancelled ones never.
 */
#ifndef SKIFF_SERVER_SCHED_H
#define SKIFF_SERVER_SCHED_H

#include <skiff/skiff.h>
#include <stdbool.h>
#include <uv.h>

struct container;
struct function;
struct input;

/* 0 or -1. worker: path of skiff-worker; server_addr and payload_max go into the containers'
 * environment (with each container's own token, container.c); max_frame bounds frames from
 * containers. */
int sched_init(uv_loop_t *loop, const char *worker, const char *server_addr, size_t payload_max,
               size_t max_frame);
/* Stops every container (the loop's teardown reaps them); nothing starts afterwards. */
void sched_shutdown(void);

/* Queues in (PENDING) on its function and dispatches what it can. */
void sched_enqueue(struct input *in);
/* Takes a pending input out of its queue, or tells the container running it (killing the
 * container, with terminate_containers, or if it does not return within the cancel grace). */
void sched_cancel(struct input *in, bool terminate_containers);
/* Terminates every pending input of fn with why (app stopped, function removed). */
void sched_terminate_queued(struct function *fn, const char *why);
/* The function's code or settings changed (deploy, autoscaler) or it stopped: retire old
 * containers, start what the autoscaler asks for. */
void sched_function_changed(struct function *fn);

/* Container events (container.c). */
void sched_container_ready(struct container *ct);
/* An output entry for slot: kind 0 a result (value), 1 a failure (err), 2 a generator item
 * (value), 3 a generator's end (count). */
void sched_container_output(struct container *ct, uint32_t slot, int kind, const char *value,
                            size_t len, const skiff_error *err, uint64_t count);
void sched_container_init_failed(struct container *ct, const skiff_error *err);
/* The container sent what no worker may (what: a frame that is not a message, an unexpected
 * message, an output for an input it does not hold): it is killed at once and every input it
 * held fails with a RemoteError naming it and what (retried as the function's policy says). */
void sched_container_broken(struct container *ct, const char *what);
/* The container's socket closed: it takes no more inputs (its exit follows). */
void sched_container_lost(struct container *ct);
/* The process ended: why says how; sig is the signal that killed it when we did not. */
void sched_container_exited(struct container *ct, const char *why, int sig);

#endif
