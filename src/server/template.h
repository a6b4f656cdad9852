/*
 * template.h - snapshot templates: a class's enter_snap state, built once and forked into its
 * pool's containers.
 *
 * A class whose DEPLOY entry has `snapshot` true marks enter hooks to run before a snapshot.
 * For each pool of such a class (one parameter set) and code version the server starts one
 * template process, `skiff-worker --template` (docs/protocol.md, "Snapshot templates"), which
 * loads the app, binds the parameters, allocates the state and runs the enter_snap hooks once.
 * A container of the pool is then not started but forked from the template: container.c makes
 * its socket pair and output pipes and template_fork passes the worker's ends in a T_FORK
 * order; the child runs the remaining enter hooks and is a normal container from W_READY on.
 * Since the child is the template's child, the template reports its pid (T_PID) and its exit
 * status (T_EXITED), which go to the container as if the server had seen them itself.
 *
 * Failures: a template whose enter_snap hook fails (W_INIT_FAILED, or its death before it was
 * ready) fails its containers as an init failure, as a failing enter would; a template that dies
 * later ends its containers (they die with it: PR_SET_PDEATHSIG) and its pool falls back to
 * normal starts for that code version. A redeploy or a stop of the app retires the template
 * (W_STOP: it forks no more and exits once its containers have ended); at shutdown its socket is
 * closed, which makes it kill its containers and exit (killed if it lingers). Where the server
 * sandboxes, a template runs in a sandbox like a container's (sandbox.h) and the containers it
 * forks inherit it: the same user, pid, mount, ipc and uts namespaces, root, capabilities (none),
 * no_new_privs and seccomp filter. They share the template's cgroup, whose limits are the pool's
 * (a container's limits times max_containers + 1): what holds per forked container is the
 * sandbox, not a cgroup of its own.
 */
#ifndef SKIFF_SERVER_TEMPLATE_H
#define SKIFF_SERVER_TEMPLATE_H

#include <stdbool.h>
#include <uv.h>

struct container;
struct container_env;
struct function;

/* True if new containers of fn are forked from a template: fn is a pool of a class with
 * snapshot hooks whose template has not failed for the current version. */
bool template_wanted(const struct function *fn);
/* Has the template of ct's pool (started now for the pool's current version when there is
 * none; an older one is retired) fork ct's worker with fds[0] as its socket and fds[1], fds[2]
 * as its stdout and stderr (borrowed: the caller closes its copies). ct then belongs to the
 * template until template_forget. 0, or -1 (logged) when the template could not be started;
 * the pool then falls back to normal starts. An order that cannot be sent kills the template,
 * whose end then ends ct (as every container still waiting for it). */
int template_fork(uv_loop_t *loop, const struct container_env *env, struct container *ct,
                  const char *code_path, const int fds[3]);
/* ct's process has ended: the template no longer reports on it. No-op for other containers. */
void template_forget(struct container *ct);
/* fn's code, liveness or app changed: a template of an old version, or of a pool no longer
 * served, is retired. */
void template_pool_changed(struct function *fn);
/* Server shutdown: every template's socket closes; each kills its containers and exits (killed
 * after a grace period otherwise). Nothing is started afterwards. */
void template_shutdown(void);

#endif
