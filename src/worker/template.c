/*
 * template.c - a class's snapshot template: the state its enter_snap hooks built, forked into
 * containers on the server's order (docs/protocol.md, "Snapshot templates").
 *
 * run.c loads the app, opens the class instance and runs the enter_snap hooks, then hands the
 * socket to worker_template_serve. The template answers W_TEMPLATE_READY and waits. Each T_FORK
 * frame names a container id and arrives with three descriptors passed by SCM_RIGHTS (the
 * container's socket, its stdout and its stderr pipes), which the kernel queues in the order
 * they were sent: they are kept in a FIFO and each T_FORK takes the next three. The template
 * forks; the child puts them on the template's socket fd, 1 and 2, closes everything else of the
 * template's, asks the kernel to kill it when the template dies (PR_SET_PDEATHSIG: no orphan
 * outlives a dead template), and returns to run.c as a new container whose memory starts as a
 * copy of the template's. The template answers T_PID, reaps its children (SIGCHLD through a
 * signalfd) and answers T_EXITED with each one's exit status or signal, since only the parent of
 * a process can learn that.
 *
 * W_STOP retires the template: it forks no more and exits once its last child has ended (the
 * server stops those itself). End of file on the socket means the server is gone: the template
 * kills its children and exits. The template is single-threaded; a thread an enter_snap hook
 * started does not exist in the children (fork copies the calling thread only).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/id.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/wire.h"
#include "worker.h"

/* Template frames are small (ids and numbers); a larger one is not the server speaking. */
#define TEMPLATE_FRAME_MAX 4096
/* Descriptors one recvmsg may carry: a few T_FORK orders' worth. */
#define FDS_PER_READ 48

/* A forked child still running. */
struct kid {
    pid_t pid;
    char id[ID_SIZE];
};

struct tmpl {
    int fd;        /* the socket to the server */
    int sigfd;     /* SIGCHLD, read as a signalfd */
    struct buf in; /* bytes received */
    struct wire_msg msg;
    int *fds; /* descriptors received and not yet taken by a T_FORK, oldest first */
    size_t nfds, capfds;
    struct kid *kids;
    size_t nkids, capkids;
    bool stopping; /* W_STOP: fork no more, exit after the last child */
};

/* The container id of a forked child (it outlives the template's state). */
static char child_id[ID_SIZE];
static char child_log_name[64];

/* Writes one frame built in b. 0, or -1 (logged) when the server is gone. */
static int send_buf(struct tmpl *t, struct buf *b)
{
    const char *p = b->data;
    size_t n = b->len;
    while (n > 0) {
        ssize_t k = send(t->fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET)
                log_debug("template: the server is gone"); /* it is stopping: no news */
            else
                log_error("template: cannot write to the server: %s", strerror(errno));
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Sends T_PID (status < 0) or T_EXITED for the child id. 0 or -1. */
static int report(struct tmpl *t, int op, const char *id, pid_t pid, int status, int sig)
{
    struct buf b;
    buf_init(&b, 0);
    struct wire_writer w;
    wire_begin(&w, &b, op, 0, op == OP_T_PID ? 2 : 4);
    wire_str(&w, "container_id", id);
    wire_int(&w, "pid", pid);
    if (op == OP_T_EXITED) {
        wire_int(&w, "status", status);
        wire_int(&w, "signal", sig);
    }
    int rc = wire_end(&w) == SKIFF_OK ? send_buf(t, &b) : -1;
    buf_deinit(&b);
    return rc;
}

static int send_ready(struct tmpl *t)
{
    struct buf b;
    buf_init(&b, 0);
    struct wire_writer w;
    wire_begin(&w, &b, OP_W_TEMPLATE_READY, 0, 1);
    wire_int(&w, "pid", (int64_t)getpid());
    int rc = wire_end(&w) == SKIFF_OK ? send_buf(t, &b) : -1;
    buf_deinit(&b);
    return rc;
}

/* Reaps every child that ended and reports it. 0 or -1 (the server is gone). */
static int reap(struct tmpl *t)
{
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return 0;
        for (size_t i = 0; i < t->nkids; i++) {
            if (t->kids[i].pid != pid)
                continue;
            int rc =
                report(t, OP_T_EXITED, t->kids[i].id, pid, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                       WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            t->kids[i] = t->kids[--t->nkids];
            if (rc < 0)
                return -1;
            break;
        }
    }
}

/* The server is gone or broke the protocol: no child may outlive us. */
static void kill_kids(struct tmpl *t)
{
    for (size_t i = 0; i < t->nkids; i++)
        kill(t->kids[i].pid, SIGKILL);
    while (t->nkids > 0) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0)
            break;
        for (size_t i = 0; i < t->nkids; i++)
            if (t->kids[i].pid == pid)
                t->kids[i] = t->kids[--t->nkids];
    }
}

/* Reads what the socket has, keeping the descriptors that came with it. Returns the bytes read,
 * 0 at end of file, -1 on an error (logged). */
static long read_frames(struct tmpl *t)
{
    if (buf_reserve(&t->in, TEMPLATE_FRAME_MAX) < 0) {
        log_error("template: out of memory");
        return -1;
    }
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(FDS_PER_READ * sizeof(int))];
    } control;
    struct iovec iov = {t->in.data + t->in.len, t->in.cap - t->in.len};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.space,
                        .msg_controllen = sizeof control.space};
    ssize_t k;
    do
        k = recvmsg(t->fd, &mh, MSG_CMSG_CLOEXEC);
    while (k < 0 && errno == EINTR);
    if (k < 0) {
        if (errno == ECONNRESET)
            return 0;
        log_error("template: cannot read from the server: %s", strerror(errno));
        return -1;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        if (t->nfds + n > t->capfds) {
            size_t cap = (t->nfds + n) * 2;
            int *p = mem_realloc(t->fds, cap * sizeof *p);
            if (!p) {
                log_error("template: out of memory");
                return -1;
            }
            t->fds = p;
            t->capfds = cap;
        }
        memcpy(t->fds + t->nfds, CMSG_DATA(c), n * sizeof(int));
        t->nfds += n;
    }
    if (mh.msg_flags & MSG_CTRUNC) {
        log_error("template: the server sent more descriptors than one read can hold");
        return -1;
    }
    t->in.len += (size_t)k;
    return (long)k;
}

/* In the forked child: puts the three descriptors in place and drops the template's own. */
static void become_child(struct tmpl *t, const int fds[3], pid_t parent, const char *id,
                         const char *token_id, const char *token_secret)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &mask, NULL);
    /* Dies with the template, so that nothing it forked is ever left behind. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(1);
    close(t->sigfd);
    if (dup2(fds[0], t->fd) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[2], 2) < 0)
        _exit(1);
    for (int i = 0; i < 3; i++)
        if (fds[i] > 2 && fds[i] != t->fd)
            close(fds[i]);
    for (size_t i = 0; i < t->nfds; i++)
        close(t->fds[i]);
    snprintf(child_id, sizeof child_id, "%s", id);
    setenv("SKIFF_CONTAINER_ID", child_id, 1);
    /* The container's own token, not the template's: calls from its functions are its own. */
    if (token_id[0] && token_secret[0] &&
        (setenv("SKIFF_TOKEN_ID", token_id, 1) < 0 ||
         setenv("SKIFF_TOKEN_SECRET", token_secret, 1) < 0))
        _exit(1);
    snprintf(child_log_name, sizeof child_log_name, "worker %s", child_id);
    log_set_name(child_log_name);
}

/* Handles one T_FORK. 1 in the forked child, 0 in the template, -1 on a fatal error. */
static int fork_one(struct tmpl *t)
{
    char id[ID_SIZE];
    if (!wire_copy_str(&t->msg, "container_id", id, sizeof id) || t->nfds < 3) {
        log_error("template: T_FORK without a container id or its three descriptors");
        return -1;
    }
    /* Absent from an older server: the child keeps the template's token. */
    char token_id[ID_SIZE] = "", token_secret[128] = "";
    if (!wire_copy_str(&t->msg, "token_id", token_id, sizeof token_id) ||
        !wire_copy_str(&t->msg, "token_secret", token_secret, sizeof token_secret))
        token_id[0] = token_secret[0] = '\0';
    int fds[3] = {t->fds[0], t->fds[1], t->fds[2]};
    memmove(t->fds, t->fds + 3, (t->nfds - 3) * sizeof *t->fds);
    t->nfds -= 3;
    if (t->stopping) {
        /* Retired meanwhile: the server already counts this container as gone. */
        for (int i = 0; i < 3; i++)
            close(fds[i]);
        return report(t, OP_T_EXITED, id, 0, 1, 0) < 0 ? -1 : 0;
    }
    if (t->nkids == t->capkids) {
        size_t cap = t->capkids ? t->capkids * 2 : 8;
        struct kid *k = mem_realloc(t->kids, cap * sizeof *k);
        if (!k) {
            log_error("template: out of memory");
            return -1;
        }
        t->kids = k;
        t->capkids = cap;
    }
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t parent = getpid();
    worker_fork_before();
    pid_t pid = fork();
    worker_fork_after(pid == 0);
    if (pid == 0) {
        become_child(t, fds, parent, id, token_id, token_secret);
        return 1;
    }
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    if (pid < 0) {
        log_error("template: cannot fork container %s: %s", id, strerror(errno));
        return report(t, OP_T_EXITED, id, 0, 1, 0) < 0 ? -1 : 0;
    }
    struct kid *k = &t->kids[t->nkids++];
    k->pid = pid;
    snprintf(k->id, sizeof k->id, "%s", id);
    log_debug("template: forked container %s (pid %d)", id, (int)pid);
    return report(t, OP_T_PID, id, pid, -1, 0) < 0 ? -1 : 0;
}

/* Handles the whole frames in t->in. 1 in a forked child, 0 to go on, -1 on a fatal error. */
static int handle_frames(struct tmpl *t)
{
    size_t off = 0;
    int rc = 0;
    while (rc == 0) {
        long n = wire_frame_len(t->in.data + off, t->in.len - off, TEMPLATE_FRAME_MAX);
        if (n == 0)
            break;
        if (n < 0 || wire_msg_parse(&t->msg, t->in.data + off + WIRE_HEADER, (size_t)n) < 0) {
            log_error("template: the server sent a frame that is not a protocol frame");
            return -1;
        }
        off += WIRE_HEADER + (size_t)n;
        if (t->msg.op == OP_W_STOP) {
            t->stopping = true;
        } else if (t->msg.op == OP_T_FORK) {
            rc = fork_one(t);
        } else {
            log_error("template: unexpected message (op %d)", t->msg.op);
            return -1;
        }
    }
    if (rc == 1)
        return 1; /* the child drops the template's buffer whole */
    memmove(t->in.data, t->in.data + off, t->in.len - off);
    t->in.len -= off;
    return rc;
}

/* Frees the template's state (in the template at exit, and in each child). */
static void tmpl_deinit(struct tmpl *t)
{
    buf_deinit(&t->in);
    wire_msg_deinit(&t->msg);
    mem_free(t->fds);
    mem_free(t->kids);
}

/* The template's loop. -1 in a forked child, else the template's exit status. */
static int serve(struct tmpl *t)
{
    if (send_ready(t) < 0)
        return 1;
    bool eof = false;
    while (!(t->stopping && t->nkids == 0)) {
        struct pollfd pf[2] = {{.fd = t->fd, .events = POLLIN}, {.fd = t->sigfd, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("template: poll: %s", strerror(errno));
            return 1;
        }
        if (pf[1].revents) {
            struct signalfd_siginfo si;
            while (read(t->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
                ;
            if (reap(t) < 0)
                return 1;
        }
        if (!pf[0].revents)
            continue;
        long k = read_frames(t);
        if (k <= 0) {
            eof = k == 0;
            break;
        }
        int rc = handle_frames(t);
        if (rc != 0)
            return rc > 0 ? -1 : 1;
    }
    return eof || t->stopping ? 0 : 1;
}

int worker_template_serve(int fd, const char **child)
{
    struct tmpl t = {.fd = fd, .sigfd = -1};
    buf_init(&t.in, TEMPLATE_FRAME_MAX * 4);
    if (wire_msg_init(&t.msg) < 0) {
        log_error("template: out of memory");
        return 1;
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
        (t.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        log_error("template: cannot watch its children: %s", strerror(errno));
        tmpl_deinit(&t);
        return 1;
    }
    log_debug("template ready (pid %d)", (int)getpid());
    int status = serve(&t);
    if (status < 0) {
        tmpl_deinit(&t);
        *child = child_id;
        return -1;
    }
    /* The template ends: no child may outlive it unreported (W_STOP waited for them already). */
    kill_kids(&t);
    close(t.sigfd);
    tmpl_deinit(&t);
    return status;
}
