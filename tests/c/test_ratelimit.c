/* C test of the irontoken ABI's rate limits: the shared vectors and limits
 * shared by processes through one database file.
 * Usage: test_ratelimit VECTORS_DIR TMP_DIR */
#define _POSIX_C_SOURCE 200809L
#include "irontoken.h"
#include "minijson.h"
#include "check.h"
#include "helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_ratelimit(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/ratelimit.json", dir);
    char *text = mj_read_file(path);
    mj *doc = mj_parse(text);
    mj *cases = mj_get(doc, "cases");
    CHECK(cases && cases->len >= 3);
    for (size_t i = 0; cases && i < cases->len; i++) {
        mj *c = cases->items[i];
        char *limits = mj_dump(mj_get(c, "limits"));
        itk_ratelimiter *rl = NULL;
        CHECK(itk_ratelimiter_new(1000, &rl) == ITK_STATUS_OK);
        mj *steps = mj_get(c, "steps");
        for (size_t k = 0; k < steps->len; k++) {
            mj *st = steps->items[k];
            bool allowed = false;
            char *out = NULL;
            CHECK(itk_ratelimiter_check(rl, "key", limits, (int64_t)mj_get(st, "now_ms")->num, true, &allowed, &out) == ITK_STATUS_OK);
            CHECK(allowed == mj_get(st, "allowed")->boolean);
            mj *got = mj_parse(out);
            CHECK(mj_get(got, "retry_after_ms")->num == mj_get(st, "retry_after_ms")->num);
            char *a = mj_dump(mj_get(got, "limits")), *b = mj_dump(mj_get(st, "limits"));
            CHECK(!strcmp(a, b));
            free(a);
            free(b);
            mj_free(got);
            itk_string_free(out);
        }
        itk_ratelimiter_free(rl);
        free(limits);
    }
    itk_ratelimiter *rl = NULL;
    CHECK(itk_ratelimiter_new(10, &rl) == ITK_STATUS_OK);
    CHECK(itk_ratelimiter_check(rl, "k", "[]", 0, true, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_ratelimiter_check(rl, NULL, "[]", 0, true, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_ratelimiter_check(NULL, "k", "[]", 0, true, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    /* Every limiter refuses an empty key, one over 512 bytes and a limit
     * name given twice (the in-process one once took them all). */
    const char *one = "[{\"name\": \"s\", \"count\": 10, \"period_ms\": 1000}]";
    const char *twice = "[{\"name\": \"s\", \"count\": 10, \"period_ms\": 1000},"
                        " {\"name\": \"s\", \"count\": 5, \"period_ms\": 1000}]";
    char longest[514];
    memset(longest, 'k', 513);
    longest[513] = '\0';
    itk_manager *m = open_memory();
    for (int consume = 0; consume < 2; consume++) {
        CHECK(itk_ratelimiter_check(rl, "", one, 0, consume, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
        CHECK(itk_ratelimiter_check(rl, longest, one, 0, consume, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
        CHECK(itk_ratelimiter_check(rl, "k", twice, 0, consume, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
        CHECK(itk_rate_limit(m, "", one, consume, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
        CHECK(itk_rate_limit(m, longest, one, consume, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
        CHECK(itk_rate_limit(m, "k", twice, consume, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    }
    longest[512] = '\0';
    bool allowed = false;
    CHECK(itk_ratelimiter_check(rl, longest, one, 0, true, &allowed, NULL) == ITK_STATUS_OK && allowed);
    allowed = false;
    CHECK(itk_rate_limit(m, longest, one, true, &allowed, NULL) == ITK_STATUS_OK && allowed);
    itk_manager_free(m);
    itk_ratelimiter_free(rl);
    itk_ratelimiter_free(NULL);
    mj_free(doc);
    free(text);
}

/* Rate limits shared by managers on one file (the default store), per
 * manager when "local", on Redis when it answers; Redis down is STORAGE or
 * allowed with fail_open. */
static void test_shared_limits(const char *tmp) {
    const char *limit = "[{\"name\": \"per_minute\", \"count\": 10, \"period_ms\": 60000}]";
    char path[4096];
    for (int local = 0; local < 2; local++) {
        snprintf(path, sizeof path, "%s/limits-%d.db", tmp, local);
        const char *opts = local ? "{\"rate_limit_store\": \"local\"}" : NULL;
        itk_manager *a = NULL, *b = NULL;
        CHECK(itk_manager_open(path, opts, &a) == ITK_STATUS_OK);
        CHECK(itk_manager_open(path, opts, &b) == ITK_STATUS_OK);
        int allowed = 0;
        for (int i = 0; i < 16; i++) {
            bool ok = false;
            CHECK(itk_rate_limit(i % 2 ? a : b, "client", limit, true, &ok, NULL) == ITK_STATUS_OK);
            allowed += ok;
        }
        /* One store: 10 of 16. Local: each manager its own 10 (8 each asked). */
        CHECK(allowed == (local ? 16 : 10));
        char *out = NULL;
        bool ok = true;
        CHECK(itk_rate_limit(a, "client", limit, false, &ok, &out) == ITK_STATUS_OK);
        CHECK(out && strstr(out, "\"retry_after_ms\""));
        itk_string_free(out);
        CHECK(itk_rate_limit(a, "", limit, true, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
        CHECK(itk_rate_limit(a, "k", NULL, true, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
        itk_manager_free(a);
        itk_manager_free(b);
    }
    itk_ratelimiter *rl = NULL;
    CHECK(itk_ratelimiter_open("{\"store\": \"redis://127.0.0.1:1\", \"timeout_ms\": 300}", &rl) == ITK_STATUS_OK);
    CHECK(itk_ratelimiter_check(rl, "k", limit, 0, true, NULL, NULL) == ITK_STATUS_STORAGE);
    itk_ratelimiter_free(rl);
    CHECK(itk_ratelimiter_open("{\"store\": \"redis://127.0.0.1:1\", \"fail_open\": true}", &rl) == ITK_STATUS_OK);
    bool ok = false;
    char *decision = NULL;
    CHECK(itk_ratelimiter_check(rl, "k", limit, 0, true, &ok, &decision) == ITK_STATUS_OK && ok);
    /* Allowed unchecked, and marked so; counted. */
    CHECK(decision && strstr(decision, "\"degraded\":true") != NULL);
    itk_string_free(decision);
    uint64_t store_errors = 0, opened = 0;
    CHECK(itk_ratelimiter_failures(rl, &store_errors, &opened) == ITK_STATUS_OK && store_errors == 1 && opened == 1);
    CHECK(itk_ratelimiter_failures(NULL, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    itk_ratelimiter_free(rl);
    CHECK(itk_ratelimiter_open("{\"store\": \"store\"}", &rl) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_ratelimiter_open("{\"bogus\": 1}", &rl) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_ratelimiter_open(NULL, &rl) == ITK_STATUS_INVALID_ARGUMENT);

    const char *redis = getenv("IRONTOKEN_TEST_REDIS_URL");
    if (!redis) redis = "redis://127.0.0.1:6379";
    char opts[1024];
    snprintf(opts, sizeof opts, "{\"store\": \"%s?key_prefix=itk-test:c:%ld:%ld:\"}", redis, (long)getpid(), (long)time(NULL));
    itk_ratelimiter *x = NULL, *y = NULL;
    CHECK(itk_ratelimiter_open(opts, &x) == ITK_STATUS_OK);
    CHECK(itk_ratelimiter_open(opts, &y) == ITK_STATUS_OK);
    if (itk_ratelimiter_check(x, "client", limit, 0, false, NULL, NULL) == ITK_STATUS_STORAGE) {
        printf("skipped: no Redis at %s\n", redis);
    } else {
        int allowed = 0;
        for (int i = 0; i < 16; i++) {
            bool got = false;
            CHECK(itk_ratelimiter_check(i % 2 ? x : y, "client", limit, 0, true, &got, NULL) == ITK_STATUS_OK);
            allowed += got;
        }
        CHECK(allowed == 10);
    }
    itk_ratelimiter_free(x);
    itk_ratelimiter_free(y);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s VECTORS_DIR TMP_DIR\n", argv[0]);
        return 2;
    }
    test_ratelimit(argv[1]);
    test_shared_limits(argv[2]);
    printf("c ratelimit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
