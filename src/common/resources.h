/*
 * resources.h - the secrets and volumes a function declares (`.secrets = "a,b"`,
 * `.volumes = "/data=NAME,/cache=OTHER"`), parsed the same way by `skiff deploy` (the worker's
 * checks) and by the server (DEPLOY, and again at each container start).
 *
 * A secret or volume name is 1-63 letters, digits, '.', '_' and '-' (as an app's name). A
 * secret's key is an environment variable name: a letter or '_', then letters, digits and '_',
 * at most 127 characters, and never SKIFF_* (the runtime's own variables). A volume's mount path
 * is absolute and plain (no '.', '..' or empty components, no trailing '/'; letters, digits and
 * "._-" in each part), at most 255 bytes, and outside the container root's system directories
 * (RES_RESERVED): a volume can never hide /usr, /proc or the runtime.
 */
#ifndef SKIFF_COMMON_RESOURCES_H
#define SKIFF_COMMON_RESOURCES_H

#include <stdbool.h>
#include <stddef.h>

#define RES_NAME_MAX 63    /* a secret's or volume's name */
#define RES_KEY_MAX 127    /* a secret's key */
#define RES_PATH_MAX 255   /* a volume's mount path */
#define RES_MAX_SECRETS 16 /* secrets one function may use: a handful is the norm */
#define RES_MAX_VOLUMES 8  /* volumes one function may mount */

/* The first path components a volume may not be mounted at or under: what a container's root
 * holds (the system, /proc, /dev, a private /tmp) or what the system needs. */
#define RES_RESERVED                                                                               \
    "bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run", "sbin", "sys",  \
        "tmp", "usr", "var"

struct res_volume {
    char path[RES_PATH_MAX + 1]; /* where it is mounted in the container */
    char name[RES_NAME_MAX + 1]; /* the volume */
};

/* True when name is a valid secret or volume name. */
bool res_valid_name(const char *name);
/* True when key is a valid secret key (an environment variable name, not SKIFF_*). */
bool res_valid_key(const char *key);
/* NULL when path is a valid volume mount path, else what is wrong with it. */
const char *res_path_problem(const char *path);

/* Parses a `.secrets` list ("a,b"; spaces around names ignored; NULL or "": none) into
 * names[0..max). The count, or -1 with the reason in why. */
int res_parse_secrets(const char *s, char (*names)[RES_NAME_MAX + 1], size_t max, char *why,
                      size_t whylen);
/* Parses a `.volumes` list ("/data=NAME,/b=OTHER"; NULL or "": none) into out[0..max): two
 * entries may not share a path, nor may one's path hold another's. The count, or -1 with the
 * reason in why. */
int res_parse_volumes(const char *s, struct res_volume *out, size_t max, char *why, size_t whylen);

#endif
