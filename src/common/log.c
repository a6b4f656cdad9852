/*
 * log.c - leveled logging to stderr (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int level = -1; /* -1: not yet read from the environment */
static const char *name = "skiff";

void log_set_level(enum log_level l)
{
    level = (int)l;
}

void log_set_name(const char *n)
{
    name = n;
}

static void init_level(void)
{
    const char *e = getenv("SKIFF_LOG");
    level = LOG_INFO;
    if (!e)
        return;
    if (!strcmp(e, "debug"))
        level = LOG_DEBUG;
    else if (!strcmp(e, "warn"))
        level = LOG_WARN;
    else if (!strcmp(e, "error"))
        level = LOG_ERROR;
}

void log_msg(enum log_level l, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < 0)
        init_level();
    if ((int)l < level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, name, names[l]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
