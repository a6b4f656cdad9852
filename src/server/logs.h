/*
 * logs.h - what containers print: captured line by line, kept per app with a bounded size, and
 * streamed to LOGS requests (docs/protocol.md, "Logs").
 *
 * Each line is tagged with the time, the container, the function (or class) it runs, the
 * stream (stdout or stderr), and the input it was running when the line arrived, if it ran
 * exactly one then (with several inputs at once a line cannot be attributed honestly). An app
 * keeps its last LOGS_KEEP_BYTES of lines; older lines are dropped first. Followers get every
 * new line as it is captured.
 */
#ifndef SKIFF_SERVER_LOGS_H
#define SKIFF_SERVER_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct container;

/* Bytes of lines kept per app: a few thousand lines of typical output. */
#define LOGS_KEEP_BYTES (1u << 20)
/* Longest line kept; a longer one is cut (and says so). */
#define LOGS_LINE_MAX (16u << 10)

void logs_init(void);
void logs_deinit(void);

/* Captures output of container ct: len bytes from its stdout (stream 1) or stderr (2), any
 * number of lines, the last possibly unfinished (kept until its newline or the container's
 * end). */
void logs_output(struct container *ct, int stream, const char *p, size_t len);
/* The container's stream (1 or 2) ended: its unfinished line is captured as it is. */
void logs_stream_ended(struct container *ct, int stream);

/* Handles LOGS: the kept lines of app (function NULL: all of its functions), the last tail of
 * them (tail < 0: all), then, with follow, every new line until the conn closes. */
void logs_request(struct conn *c, uint64_t rid, const char *app, const char *function, bool follow,
                  int64_t tail);

#endif
