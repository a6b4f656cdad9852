/*
 * cron.c - cron schedules (see cron.h).
 *
 * A field is parsed into a bit set; the next time is found by walking forward in whole units:
 * a month that does not match skips to the next month's first minute, a day to the next day, an
 * hour to the next hour, else a minute at a time within the hour. At most 8 years of months,
 * days and hours are looked at, so an impossible schedule ends quickly with -1.
 */
#include "cron.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* three-letter names of lo.., or NULL */
    int nnames;
};

static const struct field fields[5] = {
    {"minute", 0, 59, NULL, 0},          {"hour", 0, 23, NULL, 0},
    {"day of month", 1, 31, NULL, 0},    {"month", 1, 12, month_names, 12},
    {"day of week", 0, 7, day_names, 7},
};

/* A number or a name at *p (advanced). -1 if there is none. */
static int value_at(const struct field *f, const char **p)
{
    const char *s = *p;
    if (*s >= '0' && *s <= '9') {
        int v = 0;
        while (*s >= '0' && *s <= '9' && v < 1000)
            v = v * 10 + (*s++ - '0');
        *p = s;
        return v;
    }
    for (int i = 0; i < f->nnames; i++)
        if (!strncasecmp(s, f->names[i], 3)) {
            *p = s + 3;
            return f->lo == 1 ? i + 1 : i;
        }
    return -1;
}

/* Parses one field's text (len bytes at s) into *bits. */
static int parse_field(const struct field *f, const char *s, size_t len, uint64_t *bits, bool *star,
                       char *why, size_t size)
{
    char text[64];
    if (len == 0 || len >= sizeof text) {
        snprintf(why, size, "the %s field is %s", f->name, len ? "too long" : "empty");
        return -1;
    }
    memcpy(text, s, len);
    text[len] = '\0';
    *bits = 0;
    *star = !strcmp(text, "*");
    for (char *item = text; item;) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        const char *p = item;
        int lo, hi, step = 1;
        if (*p == '*') {
            lo = f->lo;
            hi = f->hi;
            p++;
        } else {
            lo = value_at(f, &p);
            hi = lo;
            if (lo >= 0 && *p == '-') {
                p++;
                hi = value_at(f, &p);
            } else if (lo >= 0 && *p == '/') {
                hi = f->hi; /* a/n: from a to the end */
            }
        }
        if (*p == '/') {
            p++;
            const char *q = p;
            step = value_at(&(struct field){f->name, 0, 0, NULL, 0}, &p);
            if (p == q || step <= 0) {
                snprintf(why, size, "the %s field '%s' has a bad step", f->name, item);
                return -1;
            }
        }
        if (lo < 0 || hi < 0 || *p) {
            snprintf(why, size, "the %s field '%s' is not a number, range, step or list", f->name,
                     item);
            return -1;
        }
        if (lo < f->lo || hi > f->hi || lo > hi) {
            snprintf(why, size, "the %s field '%s' is out of range %d-%d", f->name, item, f->lo,
                     f->hi);
            return -1;
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= 1ULL << v;
        item = comma ? comma + 1 : NULL;
    }
    return 0;
}

int cron_parse(const char *spec, struct cron *out, char *why, size_t size)
{
    if (!spec) {
        snprintf(why, size, "no schedule");
        return -1;
    }
    const char *p = spec;
    uint64_t bits[5];
    bool star[5];
    for (int i = 0; i < 5; i++) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (p == start) {
            snprintf(why, size,
                     "'%s' has %d field%s; a cron schedule has 5: minute hour day-of-month "
                     "month day-of-week",
                     spec, i, i == 1 ? "" : "s");
            return -1;
        }
        if (parse_field(&fields[i], start, (size_t)(p - start), &bits[i], &star[i], why, size) < 0)
            return -1;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p) {
        snprintf(why, size,
                 "'%s' has more than 5 fields; a cron schedule has minute hour day-of-month "
                 "month day-of-week",
                 spec);
        return -1;
    }
    struct cron c = {0};
    c.minutes = bits[0];
    c.hours = (uint32_t)bits[1];
    c.days = (uint32_t)bits[2];
    c.months = (uint16_t)bits[3];
    c.weekdays = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7F); /* 7 is Sunday too */
    c.days_star = star[2];
    c.weekdays_star = star[4];
    *out = c;
    return 0;
}

static bool day_matches(const struct cron *c, const struct tm *tm)
{
    bool dom = c->days >> tm->tm_mday & 1, dow = c->weekdays >> tm->tm_wday & 1;
    if (c->days_star || c->weekdays_star)
        return dom && dow; /* the `*` one matches every day */
    return dom || dow;
}

int64_t cron_next(const struct cron *c, int64_t after)
{
    time_t t = (time_t)(after - (after % 60 + 60) % 60 + 60); /* the next whole minute */
    time_t limit = t + (time_t)8 * 366 * 86400;
    struct tm tm;
    while (t <= limit) {
        gmtime_r(&t, &tm);
        if (!(c->months >> (tm.tm_mon + 1) & 1)) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            t = timegm(&tm); /* normalises a month past December */
            continue;
        }
        if (!day_matches(c, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            t = timegm(&tm);
            continue;
        }
        if (!(c->hours >> tm.tm_hour & 1)) {
            tm.tm_hour++;
            tm.tm_min = tm.tm_sec = 0;
            t = timegm(&tm);
            continue;
        }
        if (!(c->minutes >> tm.tm_min & 1)) {
            t += 60;
            continue;
        }
        return (int64_t)t;
    }
    return -1;
}
