/*
 * volumes.h - persistent directories that functions mount (`skiff volume`).
 *
 * A volume is a name in the store's `volumes` table and a directory `volumes/NAME` in the data
 * directory, owned by the containers' uid (--container-uid) so that a sandboxed container,
 * whose root is that uid, can write it. A function declares `.volumes = "/data=NAME"`; its
 * sandbox binds the directory read-write at /data (and nothing else of the data directory).
 * Plain (unsandboxed) containers cannot mount: DEPLOY and container starts refuse volumes then.
 * No quota, no locking: files live on the data directory's file system, and several containers
 * writing the same file at once interleave as POSIX says (last writer wins).
 *
 * VOLUME_PUT and VOLUME_GET move one file in chunks of at most VOLUMES_CHUNK bytes; the server
 * walks a volume's paths with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so a symbolic
 * link a container made never leads the server out of the volume.
 */
#ifndef SKIFF_SERVER_VOLUMES_H
#define SKIFF_SERVER_VOLUMES_H

#include <stddef.h>

#include "apps.h"
#include "conn.h"
#include "sandbox.h"

/* The largest chunk of a file VOLUME_PUT carries or VOLUME_GET returns: well within the
 * smallest payload limit an operator would set, and small enough to stream. */
#define VOLUMES_CHUNK (4u << 20)

/* Makes the store's volumes table and the volumes directory; uid is the containers' host uid
 * (their files' owner). 0, or -1 (logged). */
int volumes_init(const char *data_dir, unsigned uid);
/* Answers the VOLUME_* operations (docs/protocol.md). */
void volumes_request(struct conn *c, struct wire_msg *m);
/* Checks the volumes each of fns[0..n) declares: they exist, containers are sandboxed, and no
 * path overlaps what a container's root takes from the host. 0, or -1 with why set. */
int volumes_check_deploy(const struct deploy_fn *fns, size_t n, char *why, size_t whylen);
/* The same check at a container start of cfg. 0, or -1 with why set. */
int volumes_check_start(const struct fn_config *cfg, char *why, size_t whylen);

/* The mounts of a container: host directories and paths, for struct sandbox_spawn. */
struct volume_mounts {
    int n;
    struct sandbox_volume *v; /* n entries, pointing into the arrays below */
    char *space;              /* their strings */
};
/* Fills m with cfg's volumes (m->n 0: none). 0, or -1 with why set. Free with
 * volumes_mounts_free. */
int volumes_mounts(const struct fn_config *cfg, struct volume_mounts *m, char *why, size_t whylen);
void volumes_mounts_free(struct volume_mounts *m);

#endif
