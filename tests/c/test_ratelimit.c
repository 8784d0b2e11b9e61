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

/* LLM spend controls: a key's tokens-per-minute limit with its requests
 * per minute, model allow-list and per-request ceiling (refusals consume
 * nothing), settlement, and a limiter's costs. */
static void test_llm_limits(void) {
    itk_manager *m = NULL;
    CHECK(itk_manager_open(":memory:", "{\"manual_clock_start\": 1700000000}", &m) == ITK_STATUS_OK);
    char *key = NULL, *rec = NULL;
    CHECK(itk_key_create(m,
                         "{\"owner\": \"acme\", \"models\": [\"gpt-4o*\", \"claude-*\"], \"max_tokens_per_request\": 800,"
                         " \"rate_limits\": [{\"name\": \"tpm\", \"count\": 1000, \"period_ms\": 60000, \"unit\": \"tokens\"},"
                         " {\"name\": \"rpm\", \"count\": 5, \"period_ms\": 60000}]}",
                         &key, &rec) == ITK_STATUS_OK);
    CHECK(rec && strstr(rec, "\"models\":[\"gpt-4o*\",\"claude-*\"]") && strstr(rec, "\"max_tokens_per_request\":800"));
    CHECK(rec && strstr(rec, "\"unit\":\"tokens\""));
    const char *id_at = rec ? strstr(rec, "\"id\":\"") : NULL;
    char id[64] = {0};
    if (id_at) memcpy(id, id_at + 6, 36);
    itk_verify_reason reason = ITK_VERIFY_REASON_VALID;
    char *out = NULL;
    CHECK(itk_key_verify_with(m, key, "{\"rate_limit\": true, \"tokens\": 100, \"model\": \"gpt-4o-mini\"}", &reason, &out) == ITK_STATUS_OK);
    CHECK(reason == ITK_VERIFY_REASON_VALID && out && strstr(out, "\"remaining\":900"));
    itk_string_free(out);
    CHECK(itk_key_verify_with(m, key, "{\"rate_limit\": true, \"tokens\": 10, \"model\": \"gpt-3.5-turbo\"}", &reason, NULL) == ITK_STATUS_OK);
    CHECK(reason == ITK_VERIFY_REASON_MODEL_NOT_ALLOWED);
    CHECK(strcmp(itk_verify_reason_code(reason), "MODEL_NOT_ALLOWED") == 0);
    CHECK(itk_key_verify_with(m, key, "{\"rate_limit\": true, \"tokens\": 801, \"model\": \"claude-3\"}", &reason, NULL) == ITK_STATUS_OK);
    CHECK(reason == ITK_VERIFY_REASON_REQUEST_TOO_LARGE);
    CHECK(strcmp(itk_verify_reason_code(reason), "REQUEST_TOO_LARGE") == 0);
    out = NULL;
    CHECK(itk_key_verify_with(m, key, "{\"rate_limit\": true, \"tokens\": 700, \"model\": \"claude-3\"}", &reason, &out) == ITK_STATUS_OK);
    /* The refusals took nothing: 900 - 700 left, 3 requests. */
    CHECK(reason == ITK_VERIFY_REASON_VALID && out && strstr(out, "\"remaining\":200") && strstr(out, "\"remaining\":3"));
    itk_string_free(out);
    CHECK(itk_key_settle_tokens(m, id, 700, 100) == ITK_STATUS_OK);
    out = NULL;
    CHECK(itk_key_verify_with(m, key, "{\"rate_limit\": true, \"tokens\": 0}", &reason, &out) == ITK_STATUS_OK);
    CHECK(reason == ITK_VERIFY_REASON_VALID && out && strstr(out, "\"remaining\":800"));
    itk_string_free(out);
    /* Hostile input. */
    CHECK(itk_key_settle_tokens(m, NULL, 1, 2) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_settle_tokens(m, "\xff", 1, 2) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_settle_tokens(NULL, id, 1, 2) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_settle_tokens(m, "no-such-key", 1, 2) == ITK_STATUS_KEY_NOT_FOUND);
    CHECK(itk_key_verify_with(m, key, "{\"model\": \"a b\"}", &reason, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_verify_with(m, key, "{\"tokens\": -1}", &reason, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_create(m, "{\"owner\": \"a\", \"models\": [\"\"]}", &out, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    out = NULL;
    CHECK(itk_key_update(m, id, "{\"models\": [\"claude-*\"], \"max_tokens_per_request\": null}", &out) == ITK_STATUS_OK);
    CHECK(out && strstr(out, "\"models\":[\"claude-*\"]") && strstr(out, "\"max_tokens_per_request\":null"));
    itk_string_free(out);
    CHECK(itk_key_verify_with(m, key, "{\"model\": \"gpt-4o\"}", &reason, NULL) == ITK_STATUS_OK && reason == ITK_VERIFY_REASON_MODEL_NOT_ALLOWED);

    /* An owner's policy: both allow-lists, the lower ceiling. */
    out = NULL;
    CHECK(itk_owner_policy_set(m, "{\"owner\": \"acme\", \"models\": [\"gpt-4o*\"], \"max_tokens_per_request\": 300}", &out) == ITK_STATUS_OK);
    CHECK(out && strstr(out, "\"max_tokens_per_request\":300"));
    itk_string_free(out);
    CHECK(itk_key_verify_with(m, key, "{\"model\": \"claude-3\"}", &reason, NULL) == ITK_STATUS_OK && reason == ITK_VERIFY_REASON_MODEL_NOT_ALLOWED);
    out = NULL;
    CHECK(itk_owner_policy_get(m, "acme", &out) == ITK_STATUS_OK && out && strstr(out, "\"owner\":\"acme\""));
    itk_string_free(out);
    out = (char *)1;
    CHECK(itk_owner_policy_get(m, "nobody", &out) == ITK_STATUS_OK && out == NULL);
    bool deleted = false;
    CHECK(itk_owner_policy_delete(m, "acme", NULL, &deleted) == ITK_STATUS_OK && deleted);
    CHECK(itk_owner_policy_delete(m, "acme", "ops", &deleted) == ITK_STATUS_OK && !deleted);
    CHECK(itk_owner_policy_set(m, "{\"owner\": \"\"}", NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_owner_policy_set(m, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_owner_policy_get(m, "\xff", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_owner_policy_delete(NULL, "acme", NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);

    /* A limiter's costs. */
    const char *tpm = "[{\"name\": \"tpm\", \"count\": 1000, \"period_ms\": 60000, \"unit\": \"tokens\"}]";
    itk_ratelimiter *rl = NULL;
    CHECK(itk_ratelimiter_new(1000, &rl) == ITK_STATUS_OK);
    bool ok = false;
    CHECK(itk_ratelimiter_check_cost(rl, "k", tpm, 0, true, 600, &ok, NULL) == ITK_STATUS_OK && ok);
    CHECK(itk_ratelimiter_check_cost(rl, "k", tpm, 0, true, 500, &ok, NULL) == ITK_STATUS_OK && !ok);
    CHECK(itk_ratelimiter_settle(rl, "k", tpm, 600, 100, 0) == ITK_STATUS_OK);
    CHECK(itk_ratelimiter_check_cost(rl, "k", tpm, 0, true, 500, &ok, NULL) == ITK_STATUS_OK && ok);
    CHECK(itk_ratelimiter_check_cost(rl, "k", tpm, 0, true, 1001, &ok, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_ratelimiter_check_cost(rl, "k", "[{\"name\": \"r\", \"count\": 5, \"period_ms\": 1000}]", 0, true, 5, &ok, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_ratelimiter_settle(rl, NULL, tpm, 1, 2, 0) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_ratelimiter_settle(NULL, "k", tpm, 1, 2, 0) == ITK_STATUS_INVALID_ARGUMENT);
    itk_ratelimiter_free(rl);
    char *d = NULL;
    CHECK(itk_rate_limit_cost(m, "k", tpm, true, 999, &ok, &d) == ITK_STATUS_OK && ok && d && strstr(d, "\"remaining\":1"));
    itk_string_free(d);
    CHECK(itk_rate_limit_settle(m, "k", tpm, 999, 0) == ITK_STATUS_OK);
    CHECK(itk_rate_limit_settle(m, "k", "not json", 1, 2) == ITK_STATUS_INVALID_ARGUMENT);
    itk_string_free(key);
    itk_string_free(rec);
    itk_manager_free(m);
}

/* Alert webhooks: a signature made by Python's hmac module verifies; an
 * altered body, another secret, a stale time and hostile input do not; a
 * manager opens with alert settings (and refuses bad ones). */
static void test_webhook_signature(void) {
    const char *secret = "0123456789abcdef", *body = "{\"a\":1}";
    const char *sig = "t=1700000000,v1=9eb18f493f8ec135d9eb2dad817c369bb4e9cbfa818657897a7437c1cd8c3a23";
    CHECK(itk_webhook_verify((const uint8_t *)secret, strlen(secret), sig, (const uint8_t *)body, strlen(body), 1700000100, 300) == ITK_STATUS_OK);
    CHECK(itk_webhook_verify((const uint8_t *)secret, strlen(secret), sig, (const uint8_t *)"{\"a\":2}", 7, 1700000100, 300) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_webhook_verify((const uint8_t *)"another-secret!!", 16, sig, (const uint8_t *)body, strlen(body), 1700000100, 300) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_webhook_verify((const uint8_t *)secret, strlen(secret), sig, (const uint8_t *)body, strlen(body), 1700009999, 300) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_webhook_verify((const uint8_t *)secret, strlen(secret), sig, (const uint8_t *)body, strlen(body), 0, 300) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_webhook_verify(NULL, 0, sig, (const uint8_t *)body, strlen(body), 1700000100, 300) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_webhook_verify((const uint8_t *)secret, strlen(secret), NULL, (const uint8_t *)body, strlen(body), 1700000100, 300) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_webhook_verify((const uint8_t *)secret, strlen(secret), "\xff", (const uint8_t *)body, strlen(body), 1700000100, 300) == ITK_STATUS_INVALID_ARGUMENT);
    itk_manager *m = NULL;
    CHECK(itk_manager_open(":memory:", "{\"alerts\": {\"quota_levels\": [50, 100], \"spike_factor\": 5}}", &m) == ITK_STATUS_OK);
    itk_manager_free(m);
    m = NULL;
    CHECK(itk_manager_open(":memory:", "{\"alerts\": {\"quota_levels\": [100, 50]}}", &m) == ITK_STATUS_INVALID_ARGUMENT && m == NULL);
    CHECK(itk_manager_open(":memory:", "{\"alerts\": {\"webhook\": {\"url\": \"http://example.com/\", \"secret\": \"0123456789abcdef\"}}}", &m) == ITK_STATUS_INVALID_ARGUMENT);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s VECTORS_DIR TMP_DIR\n", argv[0]);
        return 2;
    }
    test_ratelimit(argv[1]);
    test_shared_limits(argv[2]);
    test_llm_limits();
    test_webhook_signature();
    printf("c ratelimit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
