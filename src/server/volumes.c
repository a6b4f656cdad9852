/*
 * volumes.c - volumes: their rows, their directories, and moving files in and out (see
 * volumes.h).
 *
 * Every path inside a volume is walked from the volume's directory descriptor with openat2 and
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: containers write these
 * directories, and the server (root) must never follow what they made out of them. Deleting
 * and measuring a volume walk it by descriptors too (unlinkat, fdopendir), never by path.
 *
 * A put writes a hidden part file ".NAME.skiff-part" next to the target, chunk after chunk (each
 * must start where the file ends), and renames it over the target with the last chunk: a
 * container reading the file sees the old or the new one, never half of it.
 */
#include "volumes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sqlite3.h>

#include "auth.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/resources.h"
#include "common/wire.h"
#include "store.h"

/* Longest path inside a volume a request may name. */
#define VPATH_MAX 1024
/* Most entries VOLUME_LS returns (the reply says when there were more). */
#define LS_MAX 10000

static char root[PATH_MAX - RES_NAME_MAX - 2]; /* <data>/volumes (room for /NAME) */
static unsigned owner;                         /* the containers' host uid and gid */

int volumes_init(const char *data_dir, unsigned uid)
{
    owner = uid ? uid : SANDBOX_DEFAULT_UID;
    if ((size_t)snprintf(root, sizeof root, "%s/volumes", data_dir) >= sizeof root) {
        log_error("volumes: the data directory's path is too long");
        return -1;
    }
    if (mkdir(root, 0700) < 0 && errno != EEXIST) {
        log_error("volumes: cannot create %s: %s", root, strerror(errno));
        return -1;
    }
    if (sqlite3_exec(store_db(),
                     "CREATE TABLE IF NOT EXISTS volumes(name TEXT PRIMARY KEY,"
                     " created INTEGER NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK) {
        log_error("volumes: cannot create their table: %s", sqlite3_errmsg(store_db()));
        return -1;
    }
    return 0;
}

/* openat2 beneath dfd, following no symbolic link. A descriptor or -1 (errno). */
static int open_beneath(int dfd, const char *path, int flags, mode_t mode)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .mode = (flags & O_CREAT) ? mode : 0,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
    return (int)syscall(SYS_openat2, dfd, path, &how, sizeof how);
}

/* 1 when volume name is in the store, 0 when not, -1 when the store fails. */
static int exists(const char *name)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(), "SELECT 1 FROM volumes WHERE name = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* The volume's directory, O_PATH. -1 (errno). */
static int open_volume(const char *name)
{
    int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return -1;
    int fd = open_beneath(rfd, name, O_PATH | O_DIRECTORY, 0);
    int e = errno;
    close(rfd);
    errno = e;
    return fd;
}

/* Reads field "name" as a volume name that exists, opening its directory into *fd. false
 * after replying with an error. */
static bool need_volume(struct conn *c, struct wire_msg *m, char *name, int *fd)
{
    if (!wire_copy_str(m, "name", name, RES_NAME_MAX + 2) || !res_valid_name(name)) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "field 'name' is not a volume name (1-63 letters, digits, '.', '_', '-')");
        return false;
    }
    int rc = exists(name);
    if (rc == 0) {
        conn_error(c, m->rid, SKIFF_ERR_NOT_FOUND,
                   "there is no volume %s (create it with `skiff volume create %s`)", name, name);
        return false;
    }
    if (rc < 0 || (fd && (*fd = open_volume(name)) < 0)) {
        conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "the server could not open volume %s: %s", name,
                   rc < 0 ? "the store failed" : strerror(errno));
        return false;
    }
    return true;
}

/* Reads field "path" (a path inside a volume, '/' or "" its top) into out without its leading
 * slashes. NULL, or what is wrong with it. */
static const char *volume_path(struct wire_msg *m, char *out, bool top_ok)
{
    char p[VPATH_MAX + 2];
    if (!wire_get(m, "path") || wire_get(m, "path")->type == MSGPACK_OBJECT_NIL)
        p[0] = '\0';
    else if (!wire_copy_str(m, "path", p, sizeof p))
        return "field 'path' is not a string of at most 1024 bytes";
    const char *s = p;
    while (*s == '/')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    if (n == 0) {
        if (!top_ok)
            return "the path names the volume's top directory, not a file";
        out[0] = '\0';
        return NULL;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    for (const char *q = out; *q;) {
        size_t len = strcspn(q, "/");
        if (len == 0 || (len == 1 && q[0] == '.') || (len == 2 && q[0] == '.' && q[1] == '.'))
            return "the path has an empty, '.' or '..' component";
        q += len + (q[len] == '/');
    }
    return NULL;
}

/* --- walking a tree by descriptors ------------------------------------------------------------ */

struct usage {
    int64_t bytes;
    int64_t files;
};

/* Adds up the regular files under dfd (depth bounded: a tree deeper than 256 stops there). */
static void measure(int dfd, struct usage *u, int depth)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            u->bytes += st.st_size;
            u->files++;
        } else if (S_ISDIR(st.st_mode) && depth < 256) {
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                measure(sub, u, depth + 1);
                close(sub);
            }
        }
    }
    closedir(d);
}

/* Removes everything under dfd. 0 or -1 (errno). */
static int empty_dir(int dfd, int depth)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            continue;
        int sub = depth < 4096
                      ? openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                      : -1;
        if (sub < 0 || empty_dir(sub, depth + 1) < 0 ||
            unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0)
            rc = -1;
        if (sub >= 0)
            close(sub);
    }
    closedir(d);
    return rc;
}

/* --- requests --------------------------------------------------------------------------------- */

static void create(struct conn *c, struct wire_msg *m)
{
    char name[RES_NAME_MAX + 2], dir[PATH_MAX + 80];
    if (!wire_copy_str(m, "name", name, sizeof name) || !res_valid_name(name)) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "field 'name' is not a volume name (1-63 letters, digits, '.', '_', '-')");
        return;
    }
    int64_t now = store_now_ms() / 1000;
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(store_db(), "INSERT INTO volumes(name, created) VALUES(?1, ?2)", -1,
                                &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (rc == SQLITE_CONSTRAINT) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "volume %s already exists", name);
        return;
    }
    /* A directory left by a volume deleted while its files could not all be removed is
     * emptied first: a new volume starts empty. */
    int fd = -1;
    if (rc == SQLITE_DONE && (mkdir(dir, 0700) == 0 || errno == EEXIST) &&
        (fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0 &&
        empty_dir(fd, 0) == 0 && (fchown(fd, owner, owner) == 0 || errno == EPERM)) {
        close(fd);
        log_info("%s: token %s created volume %s", c->peer, auth_id(c->token), name);
        struct wire_writer w;
        wire_begin(&w, conn_out(c), OP_OK, m->rid, 2);
        wire_str(&w, "name", name);
        wire_int(&w, "created", now);
        wire_end(&w);
        return;
    }
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (rc == SQLITE_DONE) {
        sqlite3_stmt *del;
        if (sqlite3_prepare_v2(store_db(), "DELETE FROM volumes WHERE name = ?1", -1, &del, NULL) ==
            SQLITE_OK) {
            sqlite3_bind_text(del, 1, name, -1, SQLITE_STATIC);
            sqlite3_step(del);
            sqlite3_finalize(del);
        }
    }
    conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "the server could not create volume %s: %s", name,
               rc == SQLITE_DONE ? strerror(e) : sqlite3_errmsg(store_db()));
}

static void list(struct conn *c, struct wire_msg *m)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(), "SELECT name, created FROM volumes ORDER BY name", -1, &st,
                           NULL) != SQLITE_OK) {
        conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "the server could not list volumes");
        return;
    }
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        n++;
    sqlite3_reset(st);
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 1);
    wire_key(&w, "volumes");
    wire_pack_array(&w, n);
    for (size_t i = 0; i < n && sqlite3_step(st) == SQLITE_ROW; i++) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        struct usage u = {0, 0};
        int fd = open_volume(name);
        if (fd >= 0) {
            int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                measure(dfd, &u, 0);
                close(dfd);
            }
            close(fd);
        }
        wire_pack_map(&w, 4);
        wire_pack_str(&w, "name");
        wire_pack_str(&w, name);
        wire_pack_str(&w, "size");
        wire_pack_int(&w, u.bytes);
        wire_pack_str(&w, "files");
        wire_pack_int(&w, u.files);
        wire_pack_str(&w, "created");
        wire_pack_int(&w, sqlite3_column_int64(st, 1));
    }
    sqlite3_finalize(st);
    if (wire_end(&w) != SKIFF_OK)
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory listing volumes");
}

/* The first live function of a running app that mounts volume name, or NULL. */
static const struct function *user_of(const char *name)
{
    for (struct app *a = apps_next(NULL); a; a = apps_next(a)) {
        if (a->stopped)
            continue;
        struct list_node *node, *t;
        list_for_each_safe(node, t, &a->functions)
        {
            const struct function *f = container_of(node, struct function, app_link);
            struct res_volume v[RES_MAX_VOLUMES];
            char why[300];
            int k = f->live ? res_parse_volumes(f->cfg.volumes, v, RES_MAX_VOLUMES, why, sizeof why)
                            : 0;
            for (int i = 0; i < k; i++)
                if (!strcmp(v[i].name, name))
                    return f;
        }
    }
    return NULL;
}

static void delete (struct conn *c, struct wire_msg *m)
{
    char name[RES_NAME_MAX + 2];
    int fd;
    if (!need_volume(c, m, name, &fd))
        return;
    const struct function *f = user_of(name);
    if (f) {
        close(fd);
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "volume %s is mounted by %s.%s: stop the app (skiff app stop %s) or deploy it "
                   "without the volume first",
                   name, f->app->name, f->name, f->app->name);
        return;
    }
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(fd);
    char dir[PATH_MAX + 80];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    bool emptied = dfd >= 0 && empty_dir(dfd, 0) == 0;
    if (dfd >= 0)
        close(dfd);
    if (!emptied || rmdir(dir) < 0)
        log_warn("volume %s: some of its files could not be removed from %s", name, dir);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(store_db(), "DELETE FROM volumes WHERE name = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_DONE) {
        conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "the server could not delete volume %s", name);
        return;
    }
    log_info("%s: token %s deleted volume %s", c->peer, auth_id(c->token), name);
    conn_ok(c, m->rid);
}

/* Opens (making them as needed, owned by the containers' uid) the directories of path's parent
 * inside the volume dfd; the last component's name is left in *base. A descriptor or -1. */
static int open_parent(int vfd, char *path, const char **base)
{
    char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    int dfd = open_beneath(vfd, ".", O_PATH | O_DIRECTORY, 0);
    for (char *p = path; slash && dfd >= 0 && p <= slash;) {
        char *end = strchr(p, '/');
        *end = '\0';
        if (mkdirat(dfd, p, 0755) == 0 && fchownat(dfd, p, owner, owner, AT_SYMLINK_NOFOLLOW) < 0 &&
            errno != EPERM) {
            *end = '/';
            close(dfd);
            return -1;
        }
        int next = open_beneath(dfd, p, O_PATH | O_DIRECTORY, 0);
        int e = errno;
        *end = '/';
        close(dfd);
        errno = e;
        dfd = next;
        p = end + 1;
    }
    return dfd;
}

static void put(struct conn *c, struct wire_msg *m)
{
    char name[RES_NAME_MAX + 2], path[VPATH_MAX + 2];
    const char *problem = volume_path(m, path, false);
    if (problem) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "%s", problem);
        return;
    }
    const char *data;
    size_t len;
    int64_t offset = 0;
    bool last = true;
    if (!wire_get_bin(m, "data", &data, &len) || len > VOLUMES_CHUNK ||
        (wire_get(m, "offset") && (!wire_get_int(m, "offset", &offset) || offset < 0))) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "fields 'data' (bytes, at most %u a chunk) and 'offset' (a count) are needed",
                   VOLUMES_CHUNK);
        return;
    }
    wire_get_bool(m, "last", &last);
    int vfd;
    if (!need_volume(c, m, name, &vfd))
        return;
    const char *base;
    int dfd = open_parent(vfd, path, &base);
    close(vfd);
    char part[300];
    snprintf(part, sizeof part, ".%.250s.skiff-part", base);
    int fd = -1;
    struct stat st;
    const char *step = "cannot open";
    if (dfd >= 0) {
        int dir = open_beneath(dfd, ".", O_RDONLY | O_DIRECTORY, 0);
        close(dfd);
        dfd = dir;
    }
    if (dfd >= 0)
        fd = offset == 0 ? open_beneath(dfd, part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644)
                         : open_beneath(dfd, part, O_WRONLY | O_NOFOLLOW, 0);
    if (fd >= 0 && offset == 0 && fchown(fd, owner, owner) < 0 && errno != EPERM)
        fd = (close(fd), -1);
    if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_size != offset)) {
        close(fd);
        fd = -1;
        errno = EINVAL;
        step = "out of order: the chunk does not start where the part file ends";
    }
    bool ok = fd >= 0;
    for (size_t done = 0; ok && done < len;) {
        ssize_t w = pwrite(fd, data + done, len - done, offset + (off_t)done);
        if (w <= 0)
            ok = false, step = "cannot write";
        else
            done += (size_t)w;
    }
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (ok && last && renameat(dfd, part, dfd, base) < 0)
        ok = false, step = "cannot rename the part file over", e = errno;
    if (dfd >= 0)
        close(dfd);
    if (!ok) {
        conn_error(c, m->rid,
                   e == ENOENT || e == ENOTDIR || e == ELOOP || e == EXDEV ? SKIFF_ERR_NOT_FOUND
                                                                           : SKIFF_ERR_INVALID,
                   "volume %s: %s %s: %s", name, step, path, strerror(e));
        return;
    }
    if (last)
        log_info("%s: token %s put %s into volume %s (%lld bytes)", c->peer, auth_id(c->token),
                 path, name, (long long)(offset + (int64_t)len));
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 1);
    wire_int(&w, "size", offset + (int64_t)len);
    wire_end(&w);
}

static void get(struct conn *c, struct wire_msg *m)
{
    char name[RES_NAME_MAX + 2], path[VPATH_MAX + 2];
    const char *problem = volume_path(m, path, false);
    int64_t offset = 0, length = VOLUMES_CHUNK;
    if (!problem &&
        ((wire_get(m, "offset") && (!wire_get_int(m, "offset", &offset) || offset < 0)) ||
         (wire_get(m, "length") && (!wire_get_int(m, "length", &length) || length < 0))))
        problem = "fields 'offset' and 'length' are counts of bytes";
    if (problem) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "%s", problem);
        return;
    }
    if (length > VOLUMES_CHUNK)
        length = VOLUMES_CHUNK;
    int vfd;
    if (!need_volume(c, m, name, &vfd))
        return;
    int fd = open_beneath(vfd, path, O_RDONLY | O_NOFOLLOW, 0);
    int e = errno;
    close(vfd);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
        e = EISDIR;
    }
    if (fd < 0) {
        conn_error(c, m->rid, SKIFF_ERR_NOT_FOUND, "volume %s has no file %s: %s", name, path,
                   e == EISDIR ? "it is not a regular file" : strerror(e));
        return;
    }
    char *buf = mem_alloc(length ? (size_t)length : 1);
    ssize_t n = buf ? pread(fd, buf, (size_t)length, offset) : -1;
    e = errno;
    close(fd);
    if (n < 0) {
        mem_free(buf);
        conn_error(c, m->rid, buf ? SKIFF_ERR_INTERNAL : SKIFF_ERR_NOMEM,
                   "volume %s: cannot read %s: %s", name, path, buf ? strerror(e) : "no memory");
        return;
    }
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 2);
    wire_bin(&w, "data", buf, (size_t)n);
    wire_int(&w, "size", st.st_size);
    mem_free(buf);
    if (wire_end(&w) != SKIFF_OK)
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory");
}

static const char *type_of(mode_t mode)
{
    return S_ISREG(mode) ? "file" : S_ISDIR(mode) ? "dir" : S_ISLNK(mode) ? "link" : "other";
}

/* One VOLUME_LS entry. */
static void pack_entry(struct wire_writer *w, const char *name, const struct stat *st)
{
    wire_pack_map(w, 4);
    wire_pack_str(w, "name");
    wire_pack_str(w, name);
    wire_pack_str(w, "type");
    wire_pack_str(w, type_of(st->st_mode));
    wire_pack_str(w, "size");
    wire_pack_int(w, S_ISREG(st->st_mode) ? st->st_size : 0);
    wire_pack_str(w, "mtime");
    wire_pack_int(w, st->st_mtim.tv_sec);
}

static void ls(struct conn *c, struct wire_msg *m)
{
    char name[RES_NAME_MAX + 2], path[VPATH_MAX + 2];
    const char *problem = volume_path(m, path, true);
    if (problem) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "%s", problem);
        return;
    }
    int vfd;
    if (!need_volume(c, m, name, &vfd))
        return;
    int fd = open_beneath(vfd, path[0] ? path : ".", O_RDONLY | O_NOFOLLOW, 0);
    int e = errno;
    close(vfd);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        conn_error(c, m->rid, SKIFF_ERR_NOT_FOUND, "volume %s has no %s: %s", name,
                   path[0] ? path : "top directory", strerror(e));
        return;
    }
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 2);
    if (!S_ISDIR(st.st_mode)) {
        const char *slash = strrchr(path, '/');
        wire_key(&w, "entries");
        wire_pack_array(&w, 1);
        pack_entry(&w, slash ? slash + 1 : path, &st);
        wire_bool(&w, "truncated", false);
        close(fd);
        wire_end(&w);
        return;
    }
    DIR *d = fdopendir(fd);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
             strstr(de->d_name, ".skiff-part") == NULL;
    bool truncated = n > LS_MAX;
    if (truncated)
        n = LS_MAX;
    if (d)
        rewinddir(d);
    wire_key(&w, "entries");
    wire_pack_array(&w, n);
    size_t k = 0;
    while (d && k < n && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            strstr(de->d_name, ".skiff-part"))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            memset(&st, 0, sizeof st);
        pack_entry(&w, de->d_name, &st);
        k++;
    }
    /* Entries that vanished meanwhile: placeholders keep the array's announced length. */
    for (; k < n; k++) {
        memset(&st, 0, sizeof st);
        pack_entry(&w, "", &st);
    }
    wire_bool(&w, "truncated", truncated);
    if (d)
        closedir(d);
    else
        close(fd);
    if (wire_end(&w) != SKIFF_OK)
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory listing volume %s", name);
}

void volumes_request(struct conn *c, struct wire_msg *m)
{
    switch (m->op) {
    case OP_VOLUME_CREATE:
        create(c, m);
        return;
    case OP_VOLUME_LIST:
        list(c, m);
        return;
    case OP_VOLUME_DELETE:
        delete (c, m);
        return;
    case OP_VOLUME_PUT:
        put(c, m);
        return;
    case OP_VOLUME_GET:
        get(c, m);
        return;
    default:
        ls(c, m);
    }
}

/* Checks one function's volumes: they exist and may be mounted here. 0, or -1 with why set
 * (not naming the function: the caller does). */
static int check(const char *volumes, char *why, size_t whylen)
{
    struct res_volume v[RES_MAX_VOLUMES];
    int k = res_parse_volumes(volumes, v, RES_MAX_VOLUMES, why, whylen);
    if (k > 0 && !sandbox_enabled()) {
        snprintf(why, whylen,
                 "it mounts volumes, which need sandboxed containers, and this server runs plain "
                 "processes (its log's first lines say why)");
        return -1;
    }
    for (int i = 0; i < k; i++) {
        char problem[PATH_MAX + 100];
        int rc = exists(v[i].name);
        if (rc < 0) {
            snprintf(why, whylen, "the server could not read volume %s", v[i].name);
            return -1;
        }
        if (rc == 0) {
            snprintf(why, whylen,
                     "volume %s does not exist (create it with `skiff volume create %s`)",
                     v[i].name, v[i].name);
            return -1;
        }
        if (sandbox_volume_problem(v[i].path, problem, sizeof problem)) {
            snprintf(why, whylen, "%s", problem);
            return -1;
        }
    }
    return k < 0 ? -1 : 0;
}

int volumes_check_deploy(const struct deploy_fn *fns, size_t n, char *why, size_t whylen)
{
    char problem[400];
    for (size_t i = 0; i < n; i++)
        if (check(fns[i].cfg.volumes, problem, sizeof problem) < 0) {
            snprintf(why, whylen, "function '%s': %s", fns[i].name, problem);
            return -1;
        }
    return 0;
}

int volumes_check_start(const struct fn_config *cfg, char *why, size_t whylen)
{
    return cfg->volumes ? check(cfg->volumes, why, whylen) : 0;
}

int volumes_mounts(const struct fn_config *cfg, struct volume_mounts *m, char *why, size_t whylen)
{
    memset(m, 0, sizeof *m);
    struct res_volume v[RES_MAX_VOLUMES];
    int k = res_parse_volumes(cfg->volumes, v, RES_MAX_VOLUMES, why, whylen);
    if (k <= 0)
        return k;
    size_t each = 2 * PATH_MAX;
    m->v = mem_calloc((size_t)k, sizeof *m->v);
    m->space = mem_alloc((size_t)k * each);
    if (!m->v || !m->space) {
        volumes_mounts_free(m);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    for (int i = 0; i < k; i++) {
        char *src = m->space + (size_t)i * each, *dst = src + PATH_MAX;
        snprintf(src, PATH_MAX, "%s/%s", root, v[i].name);
        snprintf(dst, PATH_MAX, "%s", v[i].path);
        m->v[i] = (struct sandbox_volume){src, dst};
    }
    m->n = k;
    return 0;
}

void volumes_mounts_free(struct volume_mounts *m)
{
    mem_free(m->v);
    mem_free(m->space);
    memset(m, 0, sizeof *m);
}
