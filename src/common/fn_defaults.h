/*
 * fn_defaults.h - the defaults of a function's configuration, where one was not declared (0).
 *
 * The server applies them when an app is deployed (src/server/apps.c); `skiff deploy
 * --name-check` shows them in place of the 0 that an app's description carries for "not set".
 */
#ifndef SKIFF_COMMON_FN_DEFAULTS_H
#define SKIFF_COMMON_FN_DEFAULTS_H

#define FN_DEFAULT_TIMEOUT 300.0    /* seconds per attempt (the reference's default) */
#define FN_DEFAULT_MAX_CONTAINERS 8 /* a burst cannot take the whole host */
#define FN_DEFAULT_SCALEDOWN 60.0   /* idle seconds before a container stops */
#define FN_DEFAULT_MAX_INPUTS 1     /* one input at a time per container */

#endif
