/* C test of the irontoken ABI's keys: shared vectors, the key lifecycle,
 * rotation, imports, threads and files, and hostile input (NULL, invalid
 * UTF-8, bad JSON) across the boundary. JWTs are in test_jwt.c, rate
 * limits in test_ratelimit.c, usage in test_usage.c.
 * Usage: test_keys VECTORS_DIR TMP_DIR */
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

static void test_vectors(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/keys.json", dir);
    char *text = mj_read_file(path);
    mj *doc = mj_parse(text);
    mj *cases = mj_get(doc, "cases");
    CHECK(cases && cases->len >= 10);
    itk_manager *m = open_memory();
    for (size_t i = 0; cases && i < cases->len; i++) {
        mj *c = cases->items[i];
        char *key;
        const char *literal = mj_str(c, "key");
        if (literal) {
            key = strdup(literal);
        } else {
            mj *rep = mj_get(c, "key_repeat");
            const char *unit = mj_str(rep, "unit"), *suffix = mj_str(rep, "suffix");
            size_t count = (size_t)mj_get(rep, "count")->num, ul = strlen(unit);
            size_t sl = suffix ? strlen(suffix) : 0;
            key = malloc(ul * count + sl + 1);
            for (size_t j = 0; j < count; j++) memcpy(key + j * ul, unit, ul);
            if (suffix) memcpy(key + ul * count, suffix, sl);
            key[ul * count + sl] = 0;
        }
        int well_formed = mj_get(c, "well_formed")->boolean;
        itk_verify_reason r = verify(m, key);
        itk_verify_reason want = well_formed ? ITK_VERIFY_REASON_NOT_FOUND : ITK_VERIFY_REASON_MALFORMED;
        if (r != want)
            fprintf(stderr, "vector '%s': got %s\n", mj_str(c, "name"), itk_verify_reason_code(r));
        CHECK(r == want);
        free(key);
    }
    itk_manager_free(m);
    mj_free(doc);
    free(text);
}

static void test_lifecycle(void) {
    itk_manager *m = open_memory();
    char *id = NULL;
    char *key = create(m,
                       "{\"owner\": \"alice\", \"name\": \"c\", \"scopes\": [\"read\", \"write\"],"
                       " \"metadata\": {\"tier\": \"gold\"}, \"expires_in\": 3600, \"actor\": \"c-test\"}",
                       &id);
    CHECK(key && !strncmp(key, "itk_", 4) && strlen(key) >= 32);

    /* VALID, with the record. */
    itk_verify_reason r = 99;
    char *rec = NULL;
    const char *scopes[] = {"read", "write"};
    CHECK(itk_key_verify(m, key, scopes, 2, &r, &rec) == ITK_STATUS_OK);
    CHECK(r == ITK_VERIFY_REASON_VALID);
    mj *j = mj_parse(rec);
    CHECK(!strcmp(mj_str(j, "owner"), "alice"));
    CHECK(!strcmp(mj_str(mj_get(j, "metadata"), "tier"), "gold"));
    mj_free(j);
    itk_string_free(rec);

    /* Scopes. */
    const char *admin[] = {"read", "admin"};
    CHECK(itk_key_verify(m, key, admin, 2, &r, NULL) == ITK_STATUS_OK);
    CHECK(r == ITK_VERIFY_REASON_INSUFFICIENT_SCOPE);

    /* Disable, enable, revoke. */
    CHECK(itk_key_disable(m, id, "ops", NULL) == ITK_STATUS_OK);
    CHECK(verify(m, key) == ITK_VERIFY_REASON_DISABLED);
    CHECK(itk_key_enable(m, id, NULL, NULL) == ITK_STATUS_OK);
    CHECK(verify(m, key) == ITK_VERIFY_REASON_VALID);

    /* Expiry with the manual clock. */
    CHECK(itk_manager_advance_clock(m, 3600) == ITK_STATUS_OK);
    CHECK(verify(m, key) == ITK_VERIFY_REASON_EXPIRED);
    char update[128];
    snprintf(update, sizeof update, "{\"expires_at\": %d}", T0 + 7200);
    CHECK(itk_key_update(m, id, update, NULL) == ITK_STATUS_OK);
    CHECK(verify(m, key) == ITK_VERIFY_REASON_VALID);

    char *out = NULL;
    CHECK(itk_key_revoke(m, id, "leaked", "ops", &out) == ITK_STATUS_OK);
    CHECK(out && strstr(out, "\"revoked\""));
    itk_string_free(out);
    CHECK(verify(m, key) == ITK_VERIFY_REASON_REVOKED);
    CHECK(itk_key_enable(m, id, NULL, NULL) == ITK_STATUS_KEY_REVOKED);
    CHECK(itk_last_error_status() == ITK_STATUS_KEY_REVOKED);
    char *nk = NULL;
    CHECK(itk_key_rotate(m, id, NULL, &nk, NULL) == ITK_STATUS_KEY_REVOKED);
    CHECK(nk == NULL);

    /* Metrics, Prometheus text. */
    char *metrics = NULL;
    CHECK(itk_manager_metrics(m, &metrics) == ITK_STATUS_OK);
    CHECK(metrics && strstr(metrics, "irontoken_key_verifications_total{reason=\"REVOKED\"} 1"));
    CHECK(strstr(metrics, key + 4) == NULL);
    itk_string_free(metrics);

    /* Audit trail. */
    char *audit = NULL;
    char filter[128];
    snprintf(filter, sizeof filter, "{\"key_id\": \"%s\"}", id);
    CHECK(itk_audit_list(m, filter, &audit) == ITK_STATUS_OK);
    mj *a = mj_parse(audit);
    mj *items = mj_get(a, "items");
    CHECK(items && items->len >= 6);
    CHECK(!strcmp(mj_str(items->items[items->len - 1], "action"), "key.create"));
    CHECK(!strcmp(mj_str(items->items[items->len - 1], "actor"), "c-test"));
    CHECK(strstr(audit, key + 4) == NULL);
    mj_free(a);
    itk_string_free(audit);

    itk_string_free(key);
    free(id);
    itk_manager_free(m);
}

/* A verification's record shows the last use: a refused answer the use
 * before it, a valid one itself. */
static void test_last_use_in_answers(void) {
    itk_manager *m = open_memory();
    char *id = NULL;
    char *key = create(m, "{\"owner\": \"lu\", \"scopes\": [\"read\"]}", &id);
    const char *admin[] = {"admin"}, *read[] = {"read"};
    const int64_t t0 = 1700000000;
    struct { const char *const *scopes; int64_t advance, reason, count, last; } steps[] = {
        {NULL, 0, ITK_VERIFY_REASON_VALID, 1, t0},
        {admin, 100, ITK_VERIFY_REASON_INSUFFICIENT_SCOPE, 1, t0},
        {read, 100, ITK_VERIFY_REASON_VALID, 2, t0 + 200},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        itk_verify_reason r = 99;
        char *rec = NULL;
        CHECK(itk_manager_advance_clock(m, steps[i].advance) == ITK_STATUS_OK);
        CHECK(itk_key_verify(m, key, steps[i].scopes, steps[i].scopes ? 1 : 0, &r, &rec) == ITK_STATUS_OK);
        CHECK((int64_t)r == steps[i].reason);
        mj *j = mj_parse(rec);
        const mj *count = j ? mj_get(j, "usage_count") : NULL, *last = j ? mj_get(j, "last_used_at") : NULL;
        CHECK(count && count->num == (double)steps[i].count);
        CHECK(last && last->num == (double)steps[i].last);
        mj_free(j);
        itk_string_free(rec);
    }
    itk_string_free(key);
    free(id);
    itk_manager_free(m);
}

static void test_rotation(void) {
    itk_manager *m = open_memory();
    char *id = NULL;
    char *old = create(m, "{\"owner\": \"bob\", \"prefix\": \"sp_live\", \"scopes\": [\"a\"]}", &id);
    CHECK(old && !strncmp(old, "sp_live_", 8));
    char *new_key = NULL, *rec = NULL;
    CHECK(itk_key_rotate(m, id, "{\"overlap_seconds\": 60}", &new_key, &rec) == ITK_STATUS_OK);
    mj *j = mj_parse(rec);
    CHECK(mj_get(j, "version")->num == 2);
    CHECK(!strcmp(mj_str(j, "rotated_from"), id));
    CHECK(!strncmp(new_key, "sp_live_", 8));
    mj_free(j);
    CHECK(verify(m, old) == ITK_VERIFY_REASON_VALID);
    CHECK(itk_manager_advance_clock(m, 59) == ITK_STATUS_OK);
    CHECK(verify(m, old) == ITK_VERIFY_REASON_VALID);
    CHECK(itk_manager_advance_clock(m, 1) == ITK_STATUS_OK);
    CHECK(verify(m, old) == ITK_VERIFY_REASON_EXPIRED);
    CHECK(verify(m, new_key) == ITK_VERIFY_REASON_VALID);
    itk_string_free(old);
    itk_string_free(new_key);
    itk_string_free(rec);
    free(id);

    /* Pagination through itk_key_list. */
    for (int i = 0; i < 5; i++) {
        char *k = create(m, "{\"owner\": \"pager\"}", &id);
        itk_string_free(k);
        free(id);
    }
    char *page = NULL;
    CHECK(itk_key_list(m, "{\"owner\": \"pager\", \"limit\": 3}", &page) == ITK_STATUS_OK);
    mj *p = mj_parse(page);
    CHECK(mj_get(p, "items")->len == 3);
    const char *cursor = mj_str(p, "next_cursor");
    CHECK(cursor != NULL);
    char filter[256];
    snprintf(filter, sizeof filter, "{\"owner\": \"pager\", \"limit\": 3, \"cursor\": \"%s\"}", cursor);
    char *page2 = NULL;
    CHECK(itk_key_list(m, filter, &page2) == ITK_STATUS_OK);
    mj *p2 = mj_parse(page2);
    CHECK(mj_get(p2, "items")->len == 2);
    CHECK(mj_get(p2, "next_cursor")->type == MJ_NULL);
    mj_free(p);
    mj_free(p2);
    itk_string_free(page);
    itk_string_free(page2);
    itk_manager_free(m);
}

static void test_hostile_input(void) {
    itk_manager *m = open_memory();
    itk_verify_reason r = 99;
    char *out = (char *)0x1; /* must stay untouched on failure */
    char msg[256];

    CHECK(itk_key_verify(NULL, "itk_x", NULL, 0, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_verify(m, NULL, NULL, 0, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_verify(m, "itk_x", NULL, 0, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_verify(m, "itk_x", NULL, 2, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    const char *null_scope[] = {NULL};
    CHECK(itk_key_verify(m, "itk_x", null_scope, 1, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    /* Numeric options out of range: an error, not a panic in SQLite's binding. */
    itk_manager *mm = NULL;
    CHECK(itk_manager_open(":memory:", "{\"busy_timeout_ms\": 2147483648}", &mm) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_open(":memory:", "{\"flush_interval_ms\": 0}", &mm) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_open(":memory:", "{\"busy_timeout_ms\": -1}", &mm) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_open("/nonexistent-dir/typo.db", "{\"create\": false}", &mm) == ITK_STATUS_DATABASE_NOT_FOUND);
    CHECK(mm == NULL);
    /* Huge counts are refused before anything is allocated or read. */
    CHECK(itk_key_verify(m, "itk_x", NULL, (size_t)1 << 40, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_verify(m, "itk_x", null_scope, (size_t)1 << 40, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_verify(m, "itk_x", null_scope, SIZE_MAX, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(r == 99);

    /* Invalid UTF-8 in the key, an id and JSON. */
    const char bad_utf8[] = {'i', 't', 'k', '_', (char)0xC3, (char)0x28, 0};
    CHECK(itk_key_verify(m, bad_utf8, NULL, 0, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_last_error_status() == ITK_STATUS_INVALID_ARGUMENT);
    size_t n = itk_last_error_message(msg, sizeof msg);
    CHECK(n > 0 && strstr(msg, "UTF-8") != NULL);
    CHECK(itk_key_get(m, bad_utf8, &out) == ITK_STATUS_INVALID_ARGUMENT);
    const char bad_json[] = {'{', '"', 'o', 'w', 'n', 'e', 'r', '"', ':', '"', (char)0xFF, '"', '}', 0};
    CHECK(itk_key_create(m, bad_json, &out, NULL) == ITK_STATUS_INVALID_ARGUMENT);

    /* Bad JSON, unknown fields, missing required fields, NULL out-params. */
    CHECK(itk_key_create(m, "{not json", &out, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_create(m, "{\"owner\": \"a\", \"bogus\": 1}", &out, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_create(m, "{}", &out, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_create(m, "{\"owner\": \"a\"}", NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_create(m, NULL, &out, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_list(m, "[1,2]", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_list(m, "{\"limit\": 0}", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_get(m, "no-such-id", &out) == ITK_STATUS_KEY_NOT_FOUND);
    CHECK(!strcmp(itk_status_code(itk_last_error_status()), "KEY_NOT_FOUND"));
    /* A NUL escaped in JSON filters: bad input on every store (STORAGE on PostgreSQL before). */
    CHECK(itk_key_list(m, "{\"owner\": \"a\\u0000b\"}", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_advance_clock(NULL, 1) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(out == (char *)0x1);

    /* A real manager without a manual clock refuses to move time. */
    itk_manager *sys = NULL;
    CHECK(itk_manager_open(":memory:", NULL, &sys) == ITK_STATUS_OK);
    CHECK(itk_manager_advance_clock(sys, 1) == ITK_STATUS_INVALID_ARGUMENT);
    itk_manager_free(sys);
    itk_manager *none = NULL;
    CHECK(itk_manager_open(NULL, NULL, &none) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_open("", NULL, &none) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_open(":memory:", "{\"durability\": \"sometimes\"}", &none) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_open("/nonexistent-dir/x/y.db", NULL, &none) == ITK_STATUS_STORAGE);
    CHECK(none == NULL);

    /* A success clears the last error; messages are truncated safely. */
    CHECK(itk_manager_flush(m) == ITK_STATUS_OK);
    CHECK(itk_last_error_status() == ITK_STATUS_OK);
    CHECK(itk_last_error_message(msg, sizeof msg) == 0 && msg[0] == 0);
    CHECK(itk_key_get(m, "no-such-id", &out) == ITK_STATUS_KEY_NOT_FOUND);
    char tiny[4];
    n = itk_last_error_message(tiny, sizeof tiny);
    CHECK(n > 3 && strlen(tiny) == 3);
    CHECK(itk_last_error_message(NULL, 0) == n);

    /* Unknown numbers are safe. */
    CHECK(!strcmp(itk_status_code(12345), "UNKNOWN"));
    CHECK(!strcmp(itk_verify_reason_code(12345), "UNKNOWN"));
    CHECK(strlen(itk_version()) > 0);

    /* Issue 29: NULL claims is INVALID_ARGUMENT whatever the key; the
     * manual clock never wraps; one documented cap on required scopes. */
    char *tok = NULL;
    CHECK(itk_jwt_encode(NULL, "not a key", "HS256", NULL, NULL, &tok) == ITK_STATUS_INVALID_ARGUMENT && tok == NULL);
    CHECK(itk_jwt_encode(NULL, "cccccccccccccccccccccccccccccccc", "HS256", NULL, NULL, &tok) == ITK_STATUS_INVALID_ARGUMENT);
    itk_manager *clocked = NULL;
    CHECK(itk_manager_open(":memory:", "{\"manual_clock_start\": 1700000000}", &clocked) == ITK_STATUS_OK);
    CHECK(itk_manager_advance_clock(clocked, INT64_MAX) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_advance_clock(clocked, INT64_MIN) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_advance_clock(clocked, 60) == ITK_STATUS_OK);
    char *made = NULL, *made_key = NULL;
    CHECK(itk_key_create(clocked, "{\"owner\": \"o\", \"scopes\": [\"s\"]}", &made_key, &made) == ITK_STATUS_OK);
    CHECK(made && strstr(made, "\"created_at\":1700000060") != NULL);
    static const char *many[1025];
    for (int i = 0; i < 1025; i++) many[i] = "s";
    CHECK(itk_key_verify(clocked, made_key, many, 1024, &r, NULL) == ITK_STATUS_OK && r == ITK_VERIFY_REASON_VALID);
    CHECK(itk_key_verify(clocked, made_key, many, 1025, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    itk_string_free(made);
    itk_string_free(made_key);
    /* Tag characters and line separators are refused in names. */
    char *hidden_key = NULL;
    CHECK(itk_key_create(clocked, "{\"owner\": \"admin\xf3\xa0\x81\x81\"}", &hidden_key, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_create(clocked, "{\"owner\": \"a\xe2\x80\xa8" "b\"}", &hidden_key, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(hidden_key == NULL);
    itk_manager_free(clocked);

    /* Free functions accept NULL. */
    itk_string_free(NULL);
    itk_manager_free(NULL);
    itk_manager_free(m);
}

struct worker { itk_manager *m; const char *key; int ok; };

static void *verify_many(void *arg) {
    struct worker *w = arg;
    for (int i = 0; i < 200; i++) {
        itk_verify_reason r;
        if (itk_key_verify(w->m, w->key, NULL, 0, &r, NULL) == ITK_STATUS_OK && r == ITK_VERIFY_REASON_VALID)
            w->ok++;
    }
    return NULL;
}

/* Opens a manager on a new file `name` under `tmp` (its path in `path`). */
static itk_manager *open_fresh(const char *tmp, const char *name, const char *options, char *path, size_t size) {
    snprintf(path, size, "%s/%s", tmp, name);
    remove(path);
    itk_manager *m = NULL;
    CHECK(itk_manager_open(path, options, &m) == ITK_STATUS_OK);
    return m;
}

static void test_threads_and_file(const char *tmp) {
    char path[4096];
    /* An empty file is never made a new database (a truncated one must not come back empty). */
    snprintf(path, sizeof path, "%s/truncated.db", tmp);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    itk_manager *none = NULL;
    CHECK(itk_manager_open(path, NULL, &none) == ITK_STATUS_DATABASE_NOT_FOUND && none == NULL);
    itk_manager *m = open_fresh(tmp, "c-test.db", "{\"durability\": \"normal\"}", path, sizeof path);
    char *id = NULL;
    char *key = create(m, "{\"owner\": \"threads\"}", &id);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){m, key, 0};
        pthread_create(&t[i], NULL, verify_many, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].ok == 200);
    }
    CHECK(itk_manager_flush(m) == ITK_STATUS_OK);
    char *rec = NULL;
    CHECK(itk_key_get(m, id, &rec) == ITK_STATUS_OK);
    mj *j = mj_parse(rec);
    CHECK(mj_get(j, "usage_count")->num == 800);
    mj_free(j);
    itk_string_free(rec);

    /* A second manager on the same file (as another process would) changes
       the key m has cached: m's next call sees each change (state epoch). */
    itk_manager *m2 = NULL;
    CHECK(itk_manager_open(path, NULL, &m2) == ITK_STATUS_OK);
    CHECK(itk_key_disable(m2, id, NULL, NULL) == ITK_STATUS_OK);
    CHECK(verify(m, key) == ITK_VERIFY_REASON_DISABLED);
    CHECK(itk_key_enable(m2, id, NULL, NULL) == ITK_STATUS_OK);
    CHECK(verify(m, key) == ITK_VERIFY_REASON_VALID);
    CHECK(itk_key_revoke(m2, id, NULL, NULL, NULL) == ITK_STATUS_OK);
    CHECK(verify(m, key) == ITK_VERIFY_REASON_REVOKED);
    itk_manager_free(m2);
    itk_string_free(key);
    free(id);
    itk_manager_free(m);
}

/* Sum of the usage counts of `ids` as a second manager on `path` reads them. */
static double uses_of(const char *path, char **ids, int n) {
    itk_manager *other = NULL;
    double sum = 0;
    CHECK(itk_manager_open(path, NULL, &other) == ITK_STATUS_OK);
    for (int i = 0; i < n; i++) {
        char *rec = NULL;
        CHECK(itk_key_get(other, ids[i], &rec) == ITK_STATUS_OK);
        mj *j = mj_parse(rec);
        const mj *count = j ? mj_get(j, "usage_count") : NULL;
        sum += count ? count->num : 0;
        mj_free(j);
        itk_string_free(rec);
    }
    itk_manager_free(other);
    return sum;
}

/* flush_threshold: with a flush interval of an hour, only the threshold gets
   uses written before the manager is freed. */
static void test_flush_threshold(const char *tmp) {
    char path[4096];
    itk_manager *m =
        open_fresh(tmp, "c-flush-threshold.db", "{\"flush_interval_ms\": 3600000, \"flush_threshold\": 1}", path, sizeof path);
    char *ids[16], *keys[16];
    for (int i = 0; i < 16; i++) {
        keys[i] = create(m, "{\"owner\": \"flush\"}", &ids[i]);
        CHECK(verify(m, keys[i]) == ITK_VERIFY_REASON_VALID);
    }
    /* Eight counters make one buffered entry: at least the first eight get written. */
    double seen = 0;
    for (int tries = 0; tries < 500 && (seen = uses_of(path, ids, 16)) < 8; tries++) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    CHECK(seen >= 8);
    itk_manager_free(m);
    CHECK(uses_of(path, ids, 16) == 16);
    for (int i = 0; i < 16; i++) {
        itk_string_free(keys[i]);
        free(ids[i]);
    }
    const char *bad[] = {"{\"flush_threshold\": 0}", "{\"flush_threshold\": 16777217}", "{\"flush_threshold\": -1}",
                         "{\"flush_threshold\": 1.5}", "{\"flush_threshold\": \"8\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        itk_manager *none = NULL;
        CHECK(itk_manager_open(":memory:", bad[i], &none) == ITK_STATUS_INVALID_ARGUMENT);
        CHECK(none == NULL);
    }
}

/* The names before itk_key_try_verify stay for one release, deprecated
 * (a compiler warning where the compiler has the attribute). */
static void test_old_names_of_try_verify(void) {
    itk_manager *m = NULL;
    CHECK(itk_manager_open(":memory:", NULL, &m) == ITK_STATUS_OK);
    char *key = NULL;
    CHECK(itk_key_create(m, "{\"owner\": \"old-names\"}", &key, NULL) == ITK_STATUS_OK);
    itk_verify_reason reason = ITK_VERIFY_REASON_NOT_FOUND;
    char *out = NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    CHECK(itk_key_verify_now(m, key, NULL, 0, &reason, &out) == ITK_STATUS_OK);
    CHECK(reason == ITK_VERIFY_REASON_VALID);
    itk_string_free(out);
    out = NULL;
    CHECK(itk_key_verify_with_now(m, key, NULL, &reason, &out) == ITK_STATUS_OK);
    CHECK(reason == ITK_VERIFY_REASON_VALID);
#pragma GCC diagnostic pop
    itk_string_free(out);
    itk_string_free(key);
    itk_manager_free(m);
}

static void test_error_codes(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/error_codes.json", dir);
    char *text = mj_read_file(path);
    mj *doc = mj_parse(text);
    mj *codes = mj_get(doc, "codes");
    CHECK(codes && codes->len >= 12);
    for (size_t i = 0; codes && i < codes->len; i++) {
        const char *code = mj_str(codes->items[i], "code");
        uint32_t number = (uint32_t)mj_get(codes->items[i], "number")->num;
        if (strcmp(itk_status_code(number), code) != 0)
            fprintf(stderr, "status %u: header says %s, vector says %s\n", number, itk_status_code(number), code);
        CHECK(!strcmp(itk_status_code(number), code));
    }
    mj_free(doc);
    free(text);
    /* Each code's HTTP status, from the shared vectors (an unknown code is 500). */
    snprintf(path, sizeof path, "%s/http.json", dir);
    text = mj_read_file(path);
    doc = mj_parse(text);
    mj *statuses = mj_get(doc, "status_of");
    CHECK(statuses && statuses->len >= 20);
    for (size_t i = 0; statuses && i < statuses->len; i++) {
        const char *code = statuses->keys[i];
        uint16_t want = (uint16_t)statuses->items[i]->num;
        uint32_t number = 12345; /* a code irontoken does not have */
        for (uint32_t n = 1; n < 64; n++)
            if (!strcmp(itk_status_code(n), code)) number = n;
        CHECK(itk_http_status(number) == want);
    }
    CHECK(itk_http_status(ITK_STATUS_OK) == 200);
    CHECK(itk_http_status(0xFFFFFFFFu) == 500);
    mj_free(doc);
    free(text);
}

static void test_create_many(void) {
    itk_manager *m = open_memory();
    char *out = NULL;
    CHECK(itk_key_create_many(m, "[{\"owner\": \"a\", \"scopes\": [\"read\"]}, {\"owner\": \"b\"}]", &out)
          == ITK_STATUS_OK);
    mj *arr = mj_parse(out);
    CHECK(arr && arr->type == MJ_ARR && arr->len == 2);
    if (arr && arr->len == 2) {
        const char *key = mj_str(arr->items[0], "key");
        CHECK(key && verify(m, key) == ITK_VERIFY_REASON_VALID);
        CHECK(!strcmp(mj_str(mj_get(arr->items[1], "record"), "owner"), "b"));
    }
    mj_free(arr);
    itk_string_free(out);
    /* All or none: the bad third request is named, nothing is created. */
    out = NULL;
    CHECK(itk_key_create_many(m, "[{\"owner\": \"c\"}, {\"owner\": \"d\"}, {\"owner\": \"\"}]", &out)
          == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(out == NULL);
    char msg[512];
    itk_last_error_message(msg, sizeof msg);
    CHECK(strstr(msg, "key 2:") != NULL);
    char *page = NULL;
    CHECK(itk_key_list(m, "{}", &page) == ITK_STATUS_OK);
    mj *p = mj_parse(page);
    mj *items = mj_get(p, "items");
    CHECK(items && items->len == 2);
    mj_free(p);
    itk_string_free(page);
    CHECK(itk_key_create_many(m, NULL, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_create_many(m, "{\"owner\": \"x\"}", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_create_many(m, "[]", NULL) == ITK_STATUS_INVALID_ARGUMENT);
    itk_manager_free(m);
}

/* PostgreSQL over TLS: a server certificate the client does not trust (the
 * test server's self-signed one, without sslrootcert; or one issued to
 * localhost reached as 127.0.0.1) refuses the connection with STORAGE and
 * says why — never a fallback to clear text. The trusted case is tested from
 * Rust, Python and Node, which can create a scratch schema. */
static void test_postgres_tls(void) {
    const char *ca = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    if (access(ca, R_OK) != 0) {
        printf("skipped: PostgreSQL TLS needs %s\n", ca);
        return;
    }
    itk_manager *m = NULL;
    itk_status st = itk_manager_open("postgresql://postgres@localhost:5432/test?sslmode=require&connect_timeout=3", NULL, &m);
    if (st == ITK_STATUS_STORAGE) {
        char msg[512];
        itk_last_error_message(msg, sizeof msg);
        if (strstr(msg, "certificate") == NULL) {
            printf("skipped: no PostgreSQL with TLS at localhost:5432 (%s)\n", msg);
            return;
        }
        CHECK(strstr(msg, "UnknownIssuer") != NULL);
        st = itk_manager_open("postgresql://postgres@127.0.0.1:5432/test?sslmode=verify-full"
                              "&sslrootcert=%2Fetc%2Fssl%2Fcerts%2Fssl-cert-snakeoil.pem", NULL, &m);
        CHECK(st == ITK_STATUS_STORAGE);
        itk_last_error_message(msg, sizeof msg);
        CHECK(strstr(msg, "not valid for name") != NULL);
    } else {
        CHECK(st == ITK_STATUS_STORAGE);
        itk_manager_free(m);
    }
    CHECK(itk_manager_open("postgresql://postgres@localhost/test?sslmode=bogus", NULL, &m) == ITK_STATUS_INVALID_ARGUMENT);
}

/* storage_timeout_ms bounds a call whatever the network does: a server that
 * accepts connections and never answers (a black hole: listening, never
 * accepting) is STORAGE within 1.5 x the bound; the options are checked. */
static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

static void test_storage_timeout(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 16) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    char url[128];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%d/test", ntohs(a.sin_port));
    itk_manager *m = NULL;
    double start = now_ms();
    CHECK(itk_manager_open(url, "{\"storage_timeout_ms\": 1000}", &m) == ITK_STATUS_STORAGE);
    double took = now_ms() - start;
    CHECK(took <= 1000 * 1.5);
    close(fd);
    CHECK(itk_manager_open(":memory:", "{\"storage_timeout_ms\": 5}", &m) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_open(":memory:", "{\"max_staleness_ms\": 1}", &m) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_open(":memory:", "{\"verify_fail_open\": \"yes\"}", &m) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_open(":memory:",
                           "{\"storage_timeout_ms\": 500, \"max_staleness_ms\": 300, \"verify_fail_open\": false}",
                           &m) == ITK_STATUS_OK);
    itk_manager_free(m);
}

/* itk_key_try_verify: on SQLite it always answers (as itk_key_verify does,
 * counted and audited alike); argument errors are those of itk_key_verify. */
static void test_verify_now(void) {
    itk_manager *m = open_memory();
    char *id = NULL;
    char *key = create(m, "{\"owner\": \"now\", \"scopes\": [\"read\"]}", &id);
    itk_verify_reason r = 99;
    char *rec = NULL;
    const char *read[] = {"read"};
    CHECK(itk_key_try_verify(m, key, read, 1, &r, &rec) == ITK_STATUS_OK);
    CHECK(r == ITK_VERIFY_REASON_VALID);
    mj *j = mj_parse(rec);
    CHECK(!strcmp(mj_str(j, "owner"), "now"));
    mj_free(j);
    itk_string_free(rec);
    const char *admin[] = {"admin"};
    CHECK(itk_key_try_verify(m, key, admin, 1, &r, NULL) == ITK_STATUS_OK);
    CHECK(r == ITK_VERIFY_REASON_INSUFFICIENT_SCOPE);
    CHECK(itk_key_try_verify(m, "itk_nope", NULL, 0, &r, NULL) == ITK_STATUS_OK);
    CHECK(r == ITK_VERIFY_REASON_MALFORMED);
    /* verify_with_now: no write needed (no quota, no limits on the key). */
    char *answer = NULL;
    CHECK(itk_key_try_verify_with(m, key, "{\"rate_limit\": true}", &r, &answer) == ITK_STATUS_OK);
    CHECK(r == ITK_VERIFY_REASON_VALID && answer && strstr(answer, "\"valid\":true"));
    itk_string_free(answer);
    answer = NULL;
    /* A quota is a write: BUSY, nothing written. */
    r = 99;
    CHECK(itk_key_try_verify_with(m, key, "{\"quota\": {\"requests\": 1}}", &r, &answer) == ITK_STATUS_BUSY);
    CHECK(r == 99 && answer == NULL);
    CHECK(itk_key_verify_with(m, key, "{\"quota\": {\"requests\": 1}}", &r, NULL) == ITK_STATUS_OK);
    CHECK(r == ITK_VERIFY_REASON_VALID);
    CHECK(itk_key_try_verify_with(m, NULL, NULL, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_try_verify_with(m, key, "{\"bogus\": 1}", &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_try_verify_with(m, key, "{not json", &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_revoke(m, id, NULL, NULL, NULL) == ITK_STATUS_OK);
    CHECK(itk_key_try_verify(m, key, NULL, 0, &r, NULL) == ITK_STATUS_OK);
    CHECK(r == ITK_VERIFY_REASON_REVOKED);
    CHECK(itk_key_try_verify(NULL, key, NULL, 0, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_try_verify(m, NULL, NULL, 0, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_try_verify(m, key, NULL, 0, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_try_verify(m, key, NULL, 2, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_try_verify(m, "itk_\xff\xfe", NULL, 0, &r, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    itk_string_free(key);
    itk_string_free(id);
    itk_manager_free(m);
}

/* Keys from another system: a legacy key by plaintext and one by SHA-256,
 * all-or-nothing batches, CONFLICT on a key already here, NULL arguments. */
static void test_import(void) {
    itk_manager *m = NULL;
    CHECK(itk_manager_open(":memory:", NULL, &m) == ITK_STATUS_OK);
    const char *old = "dev-sk-4f1c9a7e2b8d6035aa71";
    itk_verify_reason reason = ITK_VERIFY_REASON_VALID;
    CHECK(itk_key_verify(m, old, NULL, 0, &reason, NULL) == ITK_STATUS_OK && reason == ITK_VERIFY_REASON_MALFORMED);
    char *record = NULL;
    CHECK(itk_key_import(m, "{\"key\": \"dev-sk-4f1c9a7e2b8d6035aa71\", \"owner\": \"acme\", \"scopes\": [\"read\"]}",
                         &record) == ITK_STATUS_OK);
    CHECK(record != NULL && strstr(record, "\"prefix\":\"legacy\"") != NULL && strstr(record, "4f1c9a7e") == NULL);
    itk_string_free(record);
    const char *need[] = {"read"};
    CHECK(itk_key_verify(m, old, need, 1, &reason, NULL) == ITK_STATUS_OK && reason == ITK_VERIFY_REASON_VALID);
    /* entry 0 is a valid SHA-256 (any 64 hex digits), entry 1 is not: nothing is imported */
    char *records = NULL;
    CHECK(itk_key_import_many(m,
                              "[{\"key_hash\": \"e8bd1b8c3d6f06c7ea6b5d9e3c3e5ce0f45a8f5cfd8a9d0b5b1bd3bba8c1f0d4\", \"owner\": \"a\"},"
                              " {\"key_hash\": \"zz\", \"owner\": \"b\"}]",
                              &records) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(records == NULL);
    char msg[256];
    itk_last_error_message(msg, sizeof msg);
    CHECK(strstr(msg, "key 1:") != NULL);
    CHECK(itk_key_import(m, "{\"key\": \"dev-sk-4f1c9a7e2b8d6035aa71\", \"owner\": \"again\"}", NULL) == ITK_STATUS_CONFLICT);
    CHECK(itk_key_import(m, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_import(NULL, "{}", NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_import(m, "{\"key\": \"\xff\xfe-not-utf8-0123456789\", \"owner\": \"a\"}", NULL) == ITK_STATUS_INVALID_ARGUMENT);
    /* A display prefix of 3-32 characters; shorter is an argument error, not a storage one. */
    CHECK(itk_key_import(m, "{\"key\": \"legacy-disp-0123456789a\", \"owner\": \"a\", \"display_prefix\": \"ab\"}", NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_import_many(m, "[]", &records) == ITK_STATUS_OK && records && strcmp(records, "[]") == 0);
    itk_string_free(records);

    /* A deleted key leaves a tombstone: no re-import until it is lifted. */
    CHECK(itk_key_import(m, "{\"key\": \"tomb-sk-0123456789abcdef\", \"owner\": \"a\", \"legacy_id\": \"u-1\"}",
                         &record) == ITK_STATUS_OK);
    const char *id_at = strstr(record, "\"id\":\"");
    CHECK(id_at != NULL);
    char id[37] = {0};
    memcpy(id, id_at + 6, 36);
    itk_string_free(record);
    CHECK(itk_key_delete(m, id, "ops") == ITK_STATUS_OK);
    CHECK(itk_key_import(m, "{\"key\": \"tomb-sk-0123456789abcdef\", \"owner\": \"mallory\"}", NULL) == ITK_STATUS_CONFLICT);
    /* Another key of the same old record: refused too. */
    CHECK(itk_key_import(m, "{\"key\": \"tomb-sk-0123456789abcdXX\", \"owner\": \"a\", \"legacy_id\": \"u-1\"}", NULL) ==
          ITK_STATUS_CONFLICT);
    bool lifted = false;
    CHECK(itk_key_lift_tombstone(m, "tomb-sk-0123456789abcdef", NULL, "ops", &lifted) == ITK_STATUS_OK && lifted);
    CHECK(itk_key_lift_tombstone(m, "tomb-sk-0123456789abcdef", NULL, NULL, &lifted) == ITK_STATUS_OK && !lifted);
    CHECK(itk_key_lift_tombstone(m, NULL, NULL, NULL, &lifted) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_lift_tombstone(m, NULL, "zz", NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_lift_tombstone(m, "\xff\xfe-not-utf8", NULL, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_import(m, "{\"key\": \"tomb-sk-0123456789abcdef\", \"owner\": \"a\", \"legacy_id\": \"u-1\"}", NULL) ==
          ITK_STATUS_OK);
    itk_manager_free(m);
}

/* Scheduled rotation: a key with a rotation period, due after it, rotated
 * once by itk_keys_rotate_due with its new plaintext returned. */
static void test_rotate_due(void) {
    itk_manager *m = NULL;
    CHECK(itk_manager_open(":memory:", "{\"manual_clock_start\": 1700000000}", &m) == ITK_STATUS_OK);
    char *key = NULL;
    CHECK(itk_key_create(m, "{\"owner\": \"a\", \"rotation_period\": 100}", &key, NULL) == ITK_STATUS_OK);
    char *json = NULL;
    CHECK(itk_keys_due(m, 10, &json) == ITK_STATUS_OK && json && strcmp(json, "[]") == 0);
    itk_string_free(json);
    CHECK(itk_manager_advance_clock(m, 100) == ITK_STATUS_OK);
    CHECK(itk_keys_due(m, 10, &json) == ITK_STATUS_OK && json && strstr(json, "\"rotation_period\":100"));
    itk_string_free(json);
    CHECK(itk_keys_due(m, 0, &json) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_keys_rotate_due(m, "{\"overlap_seconds\": 60, \"actor\": \"cron\"}", &json) == ITK_STATUS_OK);
    CHECK(json && strstr(json, "\"key\":\"itk_") && strstr(json, "\"rotated_from\""));
    itk_string_free(json);
    CHECK(itk_keys_rotate_due(m, NULL, &json) == ITK_STATUS_OK && json && strcmp(json, "[]") == 0);
    itk_string_free(json);
    CHECK(itk_keys_rotate_due(m, "{\"overlap\": 1}", &json) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_keys_rotate_due(m, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_create(m, "{\"owner\": \"b\", \"rotation_period\": 0}", NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    itk_string_free(key);
    itk_manager_free(m);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s VECTORS_DIR TMP_DIR\n", argv[0]);
        return 2;
    }
    test_vectors(argv[1]);
    test_error_codes(argv[1]);
    test_old_names_of_try_verify();
    test_lifecycle();
    test_create_many();
    test_rotation();
    test_last_use_in_answers();
    test_hostile_input();
    test_threads_and_file(argv[2]);
    test_flush_threshold(argv[2]);
    test_postgres_tls();
    test_import();
    test_rotate_due();
    test_verify_now();
    test_storage_timeout();
    printf("c: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
