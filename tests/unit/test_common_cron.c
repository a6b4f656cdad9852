/*
 * test_common_cron.c - unit tests of cron schedules (src/common/cron.c): parsing every field
 * form and its errors, and the next run time across minutes, hours, days, months, leap years,
 * weekdays and the day-of-month/day-of-week rule.
 */
#include "common/cron.h"
#include "unit.h"

/* Unix seconds of a UTC date and time. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm);
}

static int64_t next(const char *spec, int64_t after)
{
    struct cron c;
    char why[200];
    if (cron_parse(spec, &c, why, sizeof why) < 0)
        FAIL("'%s' did not parse: %s", spec, why);
    return cron_next(&c, after);
}

static void refused(const char *spec, const char *want)
{
    struct cron c;
    char why[200] = "";
    ASSERT_EQ_INT(cron_parse(spec, &c, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, want);
}

TEST(every_minute_and_steps)
{
    int64_t t = utc(2026, 12, 8, 10, 30) + 15; /* 10:30:15 */
    ASSERT_EQ_INT(next("* * * * *", t), utc(2026, 12, 8, 10, 31));
    ASSERT_EQ_INT(next("*/5 * * * *", t), utc(2026, 12, 8, 10, 35));
    ASSERT_EQ_INT(next("*/5 * * * *", utc(2026, 12, 8, 10, 35)), utc(2026, 12, 8, 10, 40));
    ASSERT_EQ_INT(next("7/20 * * * *", t), utc(2026, 12, 8, 10, 47));
    ASSERT_EQ_INT(next("0 * * * *", t), utc(2026, 12, 8, 11, 0));
    ASSERT_EQ_INT(next("15,45 9-17/4 * * *", t), utc(2026, 12, 8, 13, 15));
}

TEST(days_months_and_years)
{
    int64_t t = utc(2026, 12, 31, 23, 59);
    ASSERT_EQ_INT(next("0 0 1 1 *", t), utc(2027, 1, 1, 0, 0));
    ASSERT_EQ_INT(next("0 12 29 feb *", utc(2027, 1, 1, 0, 0)), utc(2028, 2, 29, 12, 0));
    ASSERT_EQ_INT(next("30 6 * jun-aug *", t), utc(2027, 6, 1, 6, 30));
    ASSERT_EQ_INT(next("0 0 31 * *", utc(2027, 2, 1, 0, 0)), utc(2027, 3, 31, 0, 0));
}

TEST(weekdays_and_the_either_rule)
{
    /* 2026-12-08 is a Tuesday. */
    int64_t t = utc(2026, 12, 8, 12, 0);
    ASSERT_EQ_INT(next("0 9 * * mon", t), utc(2026, 12, 14, 9, 0));
    ASSERT_EQ_INT(next("0 9 * * 0", t), utc(2026, 12, 13, 9, 0));
    ASSERT_EQ_INT(next("0 9 * * 7", t), utc(2026, 12, 13, 9, 0)); /* 7 is Sunday too */
    ASSERT_EQ_INT(next("0 9 * * 1-5", t), utc(2026, 12, 9, 9, 0));
    /* Both restricted: the 1st of the month or a Friday, whichever comes first. */
    ASSERT_EQ_INT(next("0 0 1 * fri", t), utc(2026, 12, 11, 0, 0));
    ASSERT_EQ_INT(next("0 0 1 * fri", utc(2026, 12, 26, 0, 0)), utc(2027, 1, 1, 0, 0));
}

TEST(never)
{
    ASSERT_EQ_INT(next("0 0 30 2 *", utc(2026, 1, 1, 0, 0)), -1);
}

TEST(errors_name_the_field)
{
    refused("* * * *", "has 4 fields");
    refused("* * * * * *", "more than 5 fields");
    refused("60 * * * *", "minute field '60' is out of range 0-59");
    refused("* 24 * * *", "hour field");
    refused("* * 0 * *", "day of month field '0' is out of range 1-31");
    refused("* * * 13 *", "month field");
    refused("* * * * 8", "day of week field");
    refused("*/0 * * * *", "bad step");
    refused("a * * * *", "is not a number");
    refused("5-1 * * * *", "out of range");
    refused("1,,2 * * * *", "minute field");
    refused("", "has 0 fields");
}
