/*
 * test_common_resources.c - unit tests of the .secrets and .volumes lists (src/common/
 * resources.c): names, keys, mount paths and every refusal with its reason.
 */
#include <string.h>

#include "common/resources.h"
#include "unit.h"

static void volumes_refused(const char *spec, const char *want)
{
    struct res_volume v[RES_MAX_VOLUMES];
    char why[400] = "";
    ASSERT_EQ_INT(res_parse_volumes(spec, v, RES_MAX_VOLUMES, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, want);
}

static void secrets_refused(const char *spec, const char *want)
{
    char names[RES_MAX_SECRETS][RES_NAME_MAX + 1];
    char why[400] = "";
    ASSERT_EQ_INT(res_parse_secrets(spec, names, RES_MAX_SECRETS, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, want);
}

TEST(secrets_lists)
{
    char names[RES_MAX_SECRETS][RES_NAME_MAX + 1];
    char why[400];
    ASSERT_EQ_INT(res_parse_secrets(NULL, names, RES_MAX_SECRETS, why, sizeof why), 0);
    ASSERT_EQ_INT(res_parse_secrets("", names, RES_MAX_SECRETS, why, sizeof why), 0);
    ASSERT_EQ_INT(
        res_parse_secrets(" db , api-key,x.y_z ", names, RES_MAX_SECRETS, why, sizeof why), 3);
    ASSERT_EQ_INT(strcmp(names[0], "db"), 0);
    ASSERT_EQ_INT(strcmp(names[1], "api-key"), 0);
    ASSERT_EQ_INT(strcmp(names[2], "x.y_z"), 0);
    secrets_refused("db,not/ok", "'not/ok'");
    secrets_refused("db,db", "twice");
    secrets_refused("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "more than 16");
    char long_name[100];
    memset(long_name, 'a', 70);
    long_name[70] = '\0';
    secrets_refused(long_name, "too long");
}

TEST(keys)
{
    ASSERT_TRUE(res_valid_key("PASSWORD"));
    ASSERT_TRUE(res_valid_key("_x1"));
    ASSERT_FALSE(res_valid_key("1X"));
    ASSERT_FALSE(res_valid_key("A-B"));
    ASSERT_FALSE(res_valid_key(""));
    ASSERT_FALSE(res_valid_key("SKIFF_TOKEN_SECRET"));
    ASSERT_TRUE(res_valid_key("SKIFFY"));
}

TEST(volume_lists)
{
    struct res_volume v[RES_MAX_VOLUMES];
    char why[400];
    ASSERT_EQ_INT(res_parse_volumes(NULL, v, RES_MAX_VOLUMES, why, sizeof why), 0);
    ASSERT_EQ_INT(
        res_parse_volumes("/data=store, /mnt/cache=c-1", v, RES_MAX_VOLUMES, why, sizeof why), 2);
    ASSERT_EQ_INT(strcmp(v[0].path, "/data"), 0);
    ASSERT_EQ_INT(strcmp(v[0].name, "store"), 0);
    ASSERT_EQ_INT(strcmp(v[1].path, "/mnt/cache"), 0);
    ASSERT_EQ_INT(strcmp(v[1].name, "c-1"), 0);
    /* /data and /database do not overlap */
    ASSERT_EQ_INT(res_parse_volumes("/data=a,/database=b", v, RES_MAX_VOLUMES, why, sizeof why), 2);
}

TEST(volume_paths_refused)
{
    volumes_refused("data=store", "not an absolute path");
    volumes_refused("/=store", "the root");
    volumes_refused("/data/=store", "ends in '/'");
    volumes_refused("//data=store", "empty component");
    volumes_refused("/data/../usr=store", "'..'");
    volumes_refused("/data/./x=store", "'.'");
    volumes_refused("/da ta=store", "character");
    volumes_refused("/usr/local/x=store", "system directory");
    volumes_refused("/proc=store", "system directory");
    volumes_refused("/tmp/x=store", "system directory");
    volumes_refused("/etc=store", "system directory");
    volumes_refused("/data", "PATH=NAME");
    volumes_refused("/data=bad/name", "volume name");
    volumes_refused("/data=a,/data/sub=b", "overlap");
    volumes_refused("/data/sub=a,/data=b", "overlap");
    volumes_refused("/a=x,/b=x,/c=x,/d=x,/e=x,/f=x,/g=x,/h=x,/i=x", "more than 8");
}
