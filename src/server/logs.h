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
#include <uv.h>

struct conn;
struct container;

/* Bytes of lines kept per app: a few thousand lines of typical output. */
#define LOGS_KEEP_BYTES (1u << 20)
/* Age of the oldest line kept: as long as a spawned call's result. */
#define LOGS_KEEP_AGE_MS (7LL * 24 * 3600 * 1000)
/* How often new lines are written to the store: what a crash of the server may lose. */
#define LOGS_FLUSH_MS 250
/* Longest line kept; a longer one is cut (and says so). */
#define LOGS_LINE_MAX (16u << 10)

/* Makes the store's logs table if needed, loads the lines kept from before a restart, and starts
 * the flush timer. After store_open. */
void logs_init(uv_loop_t *loop);
/* Writes the lines not yet in the store, and closes the timer (shutdown). */
void logs_shutdown(void);
void logs_deinit(void);
/* Writes the lines not yet in the store now (also run by the timer). */
void logs_flush(void);

/* Captures output of container ct: len bytes from its stdout (stream 1) or stderr (2), any
 * number of lines, the last possibly unfinished (kept until its newline or the container's
 * end). */
void logs_output(struct container *ct, int stream, const char *p, size_t len);
/* ct's worker starts another input (W_STARTED): the unfinished lines so far end here, as the
 * previous input's. */
void logs_input_switch(struct container *ct);
/* The container's stream (1 or 2) ended: its unfinished line is captured as it is. */
void logs_stream_ended(struct container *ct, int stream);

/* Handles LOGS: the kept lines of app (function NULL: all of its functions; "Cls" a class's,
 * "Cls.method" a method's; params_key, or NULL, one parameter set's pool), the last tail of them
 * (tail < 0: all), then, with follow, every new line until the conn closes. An unknown app or
 * function is a NotFoundError. */
void logs_request(struct conn *c, uint64_t rid, const char *app, const char *function,
                  const char *params_key, bool follow, int64_t tail);

/* Appends {"lines": [{seq, ts (unix s), container_id, input_id, stream, function, text}]} of
 * the last max_lines kept lines of app (those of input input_id only, unless it is ""), oldest
 * first, to b: the dashboard's log view. 0 or a buf error. */
/* The sequence number the next captured line will get (it grows with every line). */
int64_t logs_seq(void);
struct buf;
int logs_json(struct buf *b, const char *app, const char *input_id, size_t max_lines);

#endif
