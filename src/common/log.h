/*
 * log.h - leveled logging to stderr, one line per event, with a timestamp.
 */
#ifndef SKIFF_COMMON_LOG_H
#define SKIFF_COMMON_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Messages below level are dropped; the default is LOG_INFO, or $SKIFF_LOG (debug|info|warn|error)
 * read at the first message. */
void log_set_level(enum log_level level);
/* The prefix on every line, e.g. "skiffd" or "worker ta-..."; the string is borrowed. */
void log_set_name(const char *name);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
