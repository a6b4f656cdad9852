/*
 * proto.h - operation codes and limits of the skiff wire protocol.
 *
 * docs/protocol.md is the normative description of every message; this header only names the
 * numbers. Numbers are part of the protocol: never reuse or renumber one.
 */
#ifndef SKIFF_COMMON_PROTO_H
#define SKIFF_COMMON_PROTO_H

#define PROTO_VERSION 2

/* Largest argument or result payload by default (DESIGN.md: 64 MiB). */
#define PROTO_PAYLOAD_MAX (64u << 20)
/* Room in a frame for the fields around a payload (ids, names, error text). */
#define PROTO_FRAME_OVERHEAD (64u << 10)
/* Largest frame before authentication: a HELLO is small, so a stranger cannot make the server
 * buffer 64 MiB. */
#define PROTO_HELLO_MAX (16u << 10)
/* Largest app code (shared object) a deploy may carry. */
#define PROTO_CODE_MAX (256u << 20)
/* Most inputs a live map (not spawn_map) holds in the server at once: added and not yet sent
 * back as outputs. libskiff's largest window (SKIFF_MAP_WINDOW_MAX) stays within it. */
#define PROTO_MAP_HELD_MAX 1000000u

enum proto_op {
    /* replies, carrying the request's rid */
    OP_OK = 1,     /* success; fields depend on the request */
    OP_ERROR = 2,  /* failure: code, type, message[, traceback] */
    OP_STREAM = 3, /* one batch of a streaming request's items: items[, backlog] */

    /* client -> server requests */
    OP_HELLO = 10,          /* token_id, token_secret[, client] -> server, version, payload_max */
    OP_LOOKUP = 11,         /* app, function -> app_id, function_id */
    OP_CALL = 12,           /* (function_id | app, function), args, spawn[, parent_input_id] */
    OP_GET = 13,            /* call_id, timeout_ms -> value */
    OP_CANCEL = 14,         /* call_id, terminate_containers -> {} */
    OP_DEPLOY = 15,         /* app, code, functions -> app_id, version, functions */
    OP_APP_LIST = 16,       /* -> apps */
    OP_APP_STOP = 17,       /* app -> {} */
    OP_CONTAINER_LIST = 18, /* -> containers */
    OP_STATS = 19,          /* app, function -> backlog, num_total_runners, num_running_inputs */
    OP_TOKEN_NEW = 20,      /* [scope, expires_ms] -> token_id, token_secret, scope, expires */
    OP_CALL_INFO = 21,      /* call_id -> call_id, function_id, app, function, status, ... */
    OP_MAP_START = 22,      /* function, spawn[, params, parent_input_id] -> call_id, function_id */
    OP_MAP_INPUTS = 23,     /* call_id, start, args[], last -> count */
    OP_OUTPUTS = 24,        /* call_id[, from] -> STREAM of outputs or items, then count */
    OP_CALL_GRAPH = 25,     /* call_id -> inputs (a tree of input nodes) */
    OP_AUTOSCALER = 26,     /* function, settings to change -> autoscaler */
    OP_LOGS = 27,           /* app[, function], follow[, tail] -> STREAM of log lines */
    OP_CLS_LOOKUP = 28,     /* app, class -> app_id, class, params, methods */
    OP_TOKEN_LIST = 29,     /* -> tokens */
    OP_TOKEN_REVOKE = 30,   /* token_id -> {} */
    /* secrets and volumes (60 and up: a range of their own) */
    OP_SECRET_CREATE = 60, /* name, values {KEY: VALUE}, replace -> name, keys, created */
    OP_SECRET_LIST = 61,   /* -> secrets [{name, keys, created, updated}] (never values) */
    OP_SECRET_DELETE = 62, /* name -> {} */
    OP_VOLUME_CREATE = 63, /* name -> name, created */
    OP_VOLUME_LIST = 64,   /* -> volumes [{name, size, files, created}] */
    OP_VOLUME_DELETE = 65, /* name -> {} */
    OP_VOLUME_PUT = 66,    /* name, path, data, offset, last -> size */
    OP_VOLUME_GET = 67,    /* name, path, offset, length -> data, size */
    OP_VOLUME_LS = 68,     /* name[, path] -> entries [{name, type, size, mtime}] */
    /* the dashboard (70 and up) */
    OP_DASHBOARD_LOGIN = 70, /* -> code, http (a one-time dashboard login code; HOST:PORT) */

    /* server <-> container (on the container's private socket, no rid) */
    OP_W_READY = 40, /* worker -> server: container_id, pid */
    /* 41 and 42 were version 1's one-input W_INPUT / W_OUTPUT: retired, never reuse them. */
    OP_W_INIT_FAILED = 43, /* worker -> server: code, type, message[, traceback] */
    OP_W_STOP = 44,        /* server -> worker: finish and exit */
    OP_W_CANCEL = 45,      /* server -> worker: slot */
    OP_W_INPUTS = 46,      /* server -> worker: inputs [[slot, input_id, call_id, method, args]] */
    OP_W_OUTPUTS = 47,     /* worker -> server: outputs [[slot, kind, ...]] */
    OP_W_CRASH = 48,       /* worker -> server: slot, signal, message (from a signal handler) */
    /* server <-> a class's snapshot template (its own private socket, no rid) */
    OP_W_TEMPLATE_READY = 49, /* template -> server: pid (the enter_snap hooks ran) */
    OP_T_FORK = 50,   /* server -> template: container_id; with SCM_RIGHTS socket, stdout, stderr */
    OP_T_PID = 51,    /* template -> server: container_id, pid (the child was forked) */
    OP_T_EXITED = 52, /* template -> server: container_id, pid, status, signal (the child ended) */
    /* server <-> container: which input printed (docs/protocol.md, "Log attribution") */
    OP_W_LOG_MARKS = 53,  /* server -> worker: from now on, announce each input before it runs */
    OP_W_STARTED = 54,    /* worker -> server: slot (-1: a batch); stdio flushed before it */
    OP_W_STARTED_OK = 55, /* server -> worker: what was printed before W_STARTED is read */
};

#endif
