/*
 * test_common_prom.c - unit tests of the Prometheus text format pieces (src/common/prom.c):
 * label values escape backslash, double quote and newline (app and function names cannot hold
 * them today, so /metrics itself never shows one), and formatted appends of any length.
 */
#include <string.h>

#include "common/prom.h"
#include "unit.h"

static void check_escape(const char *in, const char *want)
{
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ_INT(prom_escape_label(&b, in), 0);
    ASSERT_EQ_INT(buf_append(&b, "", 1), 0);
    ASSERT_EQ_STR(b.data, want);
    buf_deinit(&b);
}

TEST(escape)
{
    check_escape("", "");
    check_escape("plain-name_1.x", "plain-name_1.x");
    check_escape("a\"b", "a\\\"b");
    check_escape("back\\slash", "back\\\\slash");
    check_escape("two\nlines\n", "two\\nlines\\n");
    check_escape("\\\"\n", "\\\\\\\"\\n");
    check_escape("tab\tstays", "tab\tstays");
}

TEST(printf_long)
{
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ_INT(prom_printf(&b, "%s %d", "x", 42), 0);
    char big[1000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ASSERT_EQ_INT(prom_printf(&b, "|%s|", big), 0);
    ASSERT_EQ_INT((int)b.len, 4 + 1001);
    ASSERT(!memcmp(b.data, "x 42|yyy", 8));
    ASSERT_EQ_INT(b.data[b.len - 1], '|');
    buf_deinit(&b);
}

TEST(capped)
{
    struct buf b;
    buf_init(&b, 8);
    ASSERT(prom_printf(&b, "%s", "far more than eight bytes") != 0);
    ASSERT(prom_escape_label(&b, "\"\"\"\"\"\"\"\"") != 0);
    buf_deinit(&b);
}

TEST(json_string)
{
    struct buf b;
    buf_init(&b, 0);
    const char in[] = "a\"b\\c\n<tag>&\x01\xc3\xa9";
    ASSERT_EQ_INT(prom_json_string(&b, in, sizeof in - 1), 0);
    ASSERT_EQ_INT(prom_json_string(&b, NULL, 0), 0);
    ASSERT_EQ_INT(prom_json_string(&b, "x\0y", 3), 0);
    ASSERT_EQ_INT(buf_append(&b, "", 1), 0);
    ASSERT_EQ_STR(b.data,
                  "\"a\\\"b\\\\c\\u000a\\u003ctag\\u003e\\u0026\\u0001\xc3\xa9\"null\"x\\u0000y\"");
    buf_deinit(&b);
}
