/*
 * cron.h - cron schedules ("m h dom mon dow", UTC) for functions that run on their own.
 *
 * The five fields of crontab(5): minute 0-59, hour 0-23, day of month 1-31, month 1-12 (or
 * jan-dec), day of week 0-7 (0 and 7 are Sunday, or sun-sat). Each field is `*`, a number, a
 * range `a-b`, a step `*\/n` or `a-b/n` or `a/n` (from a to the end), or a comma list of those.
 * As in cron, when both day fields are restricted a day matching either runs; when one is `*`,
 * the other decides. Times are UTC: a schedule means the same on every host.
 */
#ifndef SKIFF_COMMON_CRON_H
#define SKIFF_COMMON_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cron {
    uint64_t minutes;   /* bit m: minute m matches */
    uint32_t hours;     /* bit h */
    uint32_t days;      /* bit d (1-31) */
    uint16_t months;    /* bit m (1-12) */
    uint8_t weekdays;   /* bit w (0-6, Sunday 0) */
    bool days_star;     /* the day-of-month field was `*` */
    bool weekdays_star; /* the day-of-week field was `*` */
};

/* Parses spec into *out. 0, or -1 with the reason in why (which field, what is wrong);
 * *out is written only on success. */
int cron_parse(const char *spec, struct cron *out, char *why, size_t why_size);

/* The first time (unix seconds, on a whole minute) strictly after `after` that c matches, or -1
 * if none within 8 years (a schedule such as "0 0 30 2 *" never matches). */
int64_t cron_next(const struct cron *c, int64_t after);

#endif
