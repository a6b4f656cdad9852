/*
 * build.h - building a C app for `skiff deploy` and `skiff run`: from one .c file or every .c file
 * of a directory to one shared object, with the libraries the app names.
 *
 *   1. sources: APP.c, or every *.c in DIR (sorted; DIR is also on the include path, so the
 *      app's own headers are found);
 *   2. scan: the one SKIFF_APP among them is found in the text (outside comments), and its
 *      `.pkgs = "zlib libcurl"` read, before anything is compiled, so that the compiler gets
 *      the libraries' flags (as cgo reads its #cgo lines): a package pkg-config does not know is
 *      an error naming it and the line that asks for it;
 *   3. compile each source to an object with C mistakes that would only fail at load time made
 *      errors (implicit declarations, int conversions, incompatible pointers), then link them
 *      with -Wl,--no-undefined against libskiff and the packages' --libs, so a misspelt or
 *      missing symbol is a link error naming the source file and line.
 * Every message the tools print is passed on with the temporary directory's paths replaced by
 * the user's own file names.
 */
#ifndef SKIFF_CLI_BUILD_H
#define SKIFF_CLI_BUILD_H

#include <limits.h>
#include <stddef.h>

/* An app being built. */
struct app_build {
    const char *path; /* what the user named (APP.c or DIR), borrowed */
    char **sources;   /* the .c files, as paths the user would recognise */
    size_t nsources;
    char incdir[PATH_MAX];      /* the app's directory: on the include path */
    char *pkgs;                 /* SKIFF_APP's .pkgs, or NULL */
    char app_at[PATH_MAX + 32]; /* "file:line" of SKIFF_APP */
    char workdir[PATH_MAX];     /* private temporary directory, "" until made */
    char so[PATH_MAX + 16];     /* the linked shared object, in workdir */
};

/* Finds the sources of path (a .c file or a directory) and scans them for SKIFF_APP and its
 * .pkgs. 0, or -1 with the reason printed on stderr (no sources, unreadable, no SKIFF_APP, more
 * than one, a malformed .pkgs). */
int build_prepare(struct app_build *b, const char *path);

/* Makes b's private temporary directory and names b->so in it (for code built otherwise, such
 * as a Python bundle). 0, or -1 with the reason on stderr. */
int build_workdir(struct app_build *b);

/* Compiles and links the app into b->so, against the headers and libskiff under prefix, in a
 * new private temporary directory. 0, or -1 with the compiler's messages and the reason on
 * stderr. */
int build_compile(struct app_build *b, const char *prefix);

/* Rewrites text (NUL-terminated, mem_alloc'd; replaced) so that paths inside b's temporary
 * directory read as the user's files. Leaves text as it is when out of memory. */
void build_tidy(const struct app_build *b, char **text);

/* Runs argv[0] (from $PATH) with stdout into out_file and stderr into err_file (each NULL: the
 * user's own) and waits. Returns its exit status (0-255), or -1 when it could not run or died
 * of a signal (said on stderr). */
int build_run(char *const *argv, const char *out_file, const char *err_file);

/* Reads the file at path, at most max bytes, into *out (mem_alloc'd, NUL-terminated; the NUL
 * is not counted in *len, which may be NULL). 0, or -1 with errno (EFBIG: over max). */
int build_read_file(const char *path, size_t max, char **out, size_t *len);

/* Removes the temporary directory and frees b's memory. Safe on a zeroed or failed b. */
void build_free(struct app_build *b);

#endif
