/* C test of the irontoken ABI: shared vectors, the key lifecycle, and
 * hostile input (NULL, invalid UTF-8, bad JSON) across the boundary.
 * Usage: test_keys VECTORS_DIR TMP_DIR */
#define _POSIX_C_SOURCE 200809L
#include "irontoken.h"
#include "minijson.h"
#include "check.h"

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

#define T0 1700000000

static itk_manager *open_memory(void) {
    itk_manager *m = NULL;
    itk_status s = itk_manager_open(":memory:", "{\"manual_clock_start\": 1700000000}", &m);
    CHECK(s == ITK_STATUS_OK && m != NULL);
    return m;
}

static itk_verify_reason verify(itk_manager *m, const char *key) {
    itk_verify_reason r = 99;
    itk_status s = itk_key_verify(m, key, NULL, 0, &r, NULL);
    CHECK(s == ITK_STATUS_OK);
    return r;
}

/* Creates a key; returns the plaintext (free with itk_string_free) and the id (free()). */
static char *create(itk_manager *m, const char *request, char **id) {
    char *key = NULL, *record = NULL;
    itk_status s = itk_key_create(m, request, &key, &record);
    CHECK(s == ITK_STATUS_OK);
    if (s != ITK_STATUS_OK) return NULL;
    mj *r = mj_parse(record);
    *id = strdup(mj_str(r, "id"));
    CHECK(!strcmp(mj_str(r, "status"), "active"));
    /* The record never holds the key. */
    CHECK(strstr(record, key + 4) == NULL);
    mj_free(r);
    itk_string_free(record);
    return key;
}

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

    /* A second manager on the same file sees a revoke at once. */
    itk_manager *m2 = NULL;
    CHECK(itk_manager_open(path, NULL, &m2) == ITK_STATUS_OK);
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

/* Decodes unpadded base64url; returns the length written to out. */
static size_t b64url_decode(const char *in, unsigned char *out) {
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *c = in; *c; c++) {
        int v = (*c >= 'A' && *c <= 'Z') ? *c - 'A' : (*c >= 'a' && *c <= 'z') ? *c - 'a' + 26
              : (*c >= '0' && *c <= '9') ? *c - '0' + 52 : *c == '-' ? 62 : *c == '_' ? 63 : -1;
        if (v < 0) break;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) { bits -= 8; out[n++] = (unsigned char)(acc >> bits); }
    }
    return n;
}

static void run_jwt_vectors(const char *dir, const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/jwt/%s", dir, file);
    char *text = mj_read_file(path);
    mj *doc = mj_parse(text);
    mj *cases = mj_get(doc, "cases");
    CHECK(cases && cases->len >= 5);
    for (size_t i = 0; cases && i < cases->len; i++) {
        mj *c = cases->items[i];
        const char *name = mj_str(c, "name");
        mj *key = mj_get(c, "key");
        char *policy = mj_dump(mj_get(c, "policy"));
        itk_jwt_verifier *v = NULL;
        itk_status s;
        if (mj_str(key, "pem")) {
            snprintf(path, sizeof path, "%s/jwt/%s", dir, mj_str(key, "pem"));
            char *pem = mj_read_file(path);
            s = itk_jwt_verifier_new(pem, policy, &v);
            free(pem);
        } else if (mj_str(key, "secret_b64u")) {
            unsigned char secret[256];
            size_t n = b64url_decode(mj_str(key, "secret_b64u"), secret);
            s = itk_jwt_verifier_new_hmac(secret, n, policy, &v);
        } else {
            char *json = mj_dump(mj_get(key, "jwk") ? mj_get(key, "jwk") : mj_get(key, "jwks"));
            s = itk_jwt_verifier_new(json, policy, &v);
            free(json);
        }
        char *out = NULL;
        if (s == ITK_STATUS_OK) {
            int64_t now = (int64_t)mj_get(c, "now")->num;
            s = itk_jwt_verifier_decode(v, mj_str(c, "token"), &now, &out);
        }
        mj *expect = mj_get(c, "expect");
        const char *want = mj_str(expect, "error");
        if (want) {
            if (strcmp(itk_status_code(s), want) != 0)
                fprintf(stderr, "jwt vector '%s': got %s, want %s\n", name, itk_status_code(s), want);
            CHECK(!strcmp(itk_status_code(s), want));
            /* The claim a refusal is about, as data ("" when none). */
            char claim[64];
            const char *want_claim = mj_str(expect, "claim") ? mj_str(expect, "claim") : "";
            size_t n = itk_last_error_claim(claim, sizeof claim);
            if (strcmp(claim, want_claim) != 0)
                fprintf(stderr, "jwt vector '%s': claim '%s', want '%s'\n", name, claim, want_claim);
            CHECK(n == strlen(want_claim) && !strcmp(claim, want_claim));
        } else {
            if (s != ITK_STATUS_OK) fprintf(stderr, "jwt vector '%s': got %s\n", name, itk_status_code(s));
            CHECK(s == ITK_STATUS_OK);
            if (out) {
                mj *got = mj_parse(out);
                char *a = mj_dump(mj_get(got, "claims")), *b = mj_dump(mj_get(expect, "claims"));
                /* Same members in the same (sorted) order: the vectors list claims sorted or as signed. */
                mj *ga = mj_get(got, "claims"), *gb = mj_get(expect, "claims");
                CHECK(ga && gb && ga->len == gb->len);
                for (size_t k = 0; ga && gb && k < gb->len; k++) {
                    mj *x = mj_get(ga, gb->keys[k]);
                    char *xs = x ? mj_dump(x) : NULL, *ys = mj_dump(gb->items[k]);
                    CHECK(xs && !strcmp(xs, ys));
                    free(xs);
                    free(ys);
                }
                free(a);
                free(b);
                mj_free(got);
            }
        }
        itk_string_free(out);
        itk_jwt_verifier_free(v);
        free(policy);
    }
    mj_free(doc);
    free(text);
}

/* One key-material case through the byte entry points (and the text ones when
 * the material is UTF-8 without NUL): returns the status of the first failure. */
static itk_status key_case(const char *dir, mj *doc, mj *c, const uint8_t *key, size_t len, int as_text) {
    int64_t now = (int64_t)mj_get(doc, "now")->num;
    char *text = NULL;
    if (as_text) {
        text = malloc(len + 1);
        memcpy(text, key, len);
        text[len] = 0;
    }
    itk_status s;
    if (!strcmp(mj_str(c, "use"), "verify")) {
        mj policy_obj = {.type = MJ_OBJ, .len = 1, .keys = (char *[]){"algorithms"}, .items = (mj *[]){mj_get(c, "algorithms")}};
        char *policy = mj_dump(&policy_obj);
        itk_jwt_verifier *v = NULL;
        s = as_text ? itk_jwt_verifier_new(text, policy, &v) : itk_jwt_verifier_new_key(key, len, policy, &v);
        char *out = NULL;
        if (s == ITK_STATUS_OK) s = itk_jwt_verifier_decode(v, mj_str(c, "token"), &now, &out);
        if (s == ITK_STATUS_OK) CHECK(out && strstr(out, "\"user-1\""));
        itk_string_free(out);
        itk_jwt_verifier_free(v);
        free(policy);
    } else {
        const char *alg = mj_str(c, "alg");
        itk_jwt_signer *signer = NULL;
        s = as_text ? itk_jwt_signer_new(text, alg, NULL, &signer) : itk_jwt_signer_new_key(key, len, alg, NULL, &signer);
        char *token = NULL, *out = NULL;
        char *claims = mj_dump(mj_get(doc, "claims"));
        if (s == ITK_STATUS_OK) s = itk_jwt_signer_sign(signer, claims, NULL, &token);
        if (s == ITK_STATUS_OK) {
            char policy[64], path[4096];
            snprintf(policy, sizeof policy, "{\"algorithms\":[\"%s\"]}", alg);
            itk_jwt_verifier *v = NULL;
            if (mj_str(c, "verify_pem")) {
                snprintf(path, sizeof path, "%s/jwt/%s", dir, mj_str(c, "verify_pem"));
                char *pem = mj_read_file(path);
                s = itk_jwt_verifier_new(pem, policy, &v);
                free(pem);
            } else {
                s = itk_jwt_verifier_new_key(key, len, policy, &v);
            }
            if (s == ITK_STATUS_OK) s = itk_jwt_verifier_decode(v, token, &now, &out);
            itk_jwt_verifier_free(v);
        }
        itk_string_free(out);
        itk_string_free(token);
        free(claims);
        itk_jwt_signer_free(signer);
    }
    free(text);
    return s;
}

static void run_key_vectors(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/jwt/keys.json", dir);
    char *file = mj_read_file(path);
    mj *doc = mj_parse(file);
    mj *cases = mj_get(doc, "cases");
    CHECK(cases && cases->len >= 100);
    for (size_t i = 0; cases && i < cases->len; i++) {
        mj *c = cases->items[i];
        const char *hex = mj_str(c, "key_hex");
        size_t len = strlen(hex) / 2;
        uint8_t *key = malloc(len + 1);
        for (size_t k = 0; k < len; k++) {
            unsigned b = 0;
            sscanf(hex + 2 * k, "%2x", &b);
            key[k] = (uint8_t)b;
        }
        int text = mj_get(c, "text")->boolean && memchr(key, 0, len) == NULL;
        for (int as_text = 0; as_text <= text; as_text++) {
            itk_status s = key_case(dir, doc, c, key, len, as_text);
            const char *want = mj_str(c, "expect");
            const char *got = s == ITK_STATUS_OK ? "ok" : itk_status_code(s);
            if (strcmp(got, want) != 0)
                fprintf(stderr, "key vector '%s' (text %d): got %s, want %s\n", mj_str(c, "name"), as_text, got, want);
            CHECK(!strcmp(got, want));
        }
        free(key);
    }
    /* Pointers and lengths are checked before anything is read. */
    itk_jwt_verifier *v = NULL;
    itk_jwt_signer *sg = NULL;
    CHECK(itk_jwt_verifier_new_key(NULL, 32, "{\"algorithms\":[\"HS256\"]}", &v) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwt_verifier_new_key((const uint8_t *)"x", SIZE_MAX, "{\"algorithms\":[\"HS256\"]}", &v) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwt_signer_new_key(NULL, 0, "HS256", NULL, &sg) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwt_signer_new_key((const uint8_t *)"x", SIZE_MAX, "HS256", NULL, &sg) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(v == NULL && sg == NULL);
    mj_free(doc);
    free(file);
}

static void test_jwt(const char *dir) {
    run_key_vectors(dir);
    run_jwt_vectors(dir, "rfc7515.json");
    run_jwt_vectors(dir, "attacks.json");

    /* Sign and verify; hostile input across the boundary. */
    const char *secret = "irontoken-test-hmac-secret-of-32-bytes!!";
    char *token = NULL;
    CHECK(itk_jwt_encode("{\"sub\":\"u\",\"exp\":1700000060}", secret, "HS256", NULL, "k1", &token) == ITK_STATUS_OK);
    itk_jwt_verifier *v = NULL;
    CHECK(itk_jwt_verifier_new(secret, "{\"algorithms\":[\"HS256\"]}", &v) == ITK_STATUS_OK);
    int64_t now = 1700000000;
    char *out = NULL;
    CHECK(itk_jwt_verifier_decode(v, token, &now, &out) == ITK_STATUS_OK);
    CHECK(out && strstr(out, "\"kid\":\"k1\""));
    itk_string_free(out);
    now = 1700000060;
    out = (char *)0x1;
    CHECK(itk_jwt_verifier_decode(v, token, &now, &out) == ITK_STATUS_JWT_EXPIRED);
    CHECK(out == (char *)0x1);
    char msg[256];
    itk_last_error_message(msg, sizeof msg);
    CHECK(strstr(msg, token) == NULL);
    const char bad_utf8[] = {'e', 'y', (char)0xC3, (char)0x28, 0};
    CHECK(itk_jwt_verifier_decode(v, bad_utf8, NULL, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwt_verifier_decode(v, NULL, NULL, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwt_verifier_decode(NULL, token, NULL, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwt_verifier_decode(v, token, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    itk_jwt_verifier *none = NULL;
    CHECK(itk_jwt_verifier_new(secret, "{\"algorithms\":[]}", &none) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwt_verifier_new("short", "{\"algorithms\":[\"HS256\"]}", &none) == ITK_STATUS_INVALID_KEY_MATERIAL);
    CHECK(itk_jwt_verifier_new_hmac(NULL, 32, "{\"algorithms\":[\"HS256\"]}", &none) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(none == NULL);
    char *t2 = NULL;
    CHECK(itk_jwt_encode("[1]", secret, "HS256", NULL, NULL, &t2) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwt_encode("{}", secret, "none", NULL, NULL, &t2) == ITK_STATUS_JWT_ALG_NOT_ALLOWED);
    CHECK(t2 == NULL);
    /* JWS: the payload comes back as bytes. */
    char *hdr = NULL;
    uint8_t *payload = NULL;
    size_t plen = 0;
    CHECK(itk_jwt_verifier_verify_jws(v, token, &hdr, &payload, &plen) == ITK_STATUS_OK);
    CHECK(plen > 0 && payload && memchr(payload, '{', plen) == payload);
    CHECK(hdr && strstr(hdr, "HS256"));
    itk_bytes_free(payload, plen);
    itk_string_free(hdr);
    CHECK(itk_jwt_verifier_verify_jws(v, "a.b.c", NULL, &payload, &plen) == ITK_STATUS_JWT_MALFORMED);
    CHECK(itk_jwt_verifier_verify_jws(v, token, NULL, NULL, &plen) == ITK_STATUS_INVALID_ARGUMENT);
    itk_bytes_free(NULL, 0);

    /* A signer parsed once signs many tokens that verify. */
    char keypath[4096];
    snprintf(keypath, sizeof keypath, "%s/jwt/keys/ec_p256_private.pem", dir);
    char *ec_priv = mj_read_file(keypath);
    snprintf(keypath, sizeof keypath, "%s/jwt/keys/ec_p256_public.pem", dir);
    char *ec_pub = mj_read_file(keypath);
    itk_jwt_signer *signer = NULL;
    CHECK(itk_jwt_signer_new(ec_priv, "ES256", "ec-1", &signer) == ITK_STATUS_OK);
    itk_jwt_verifier *ev = NULL;
    CHECK(itk_jwt_verifier_new(ec_pub, "{\"algorithms\":[\"ES256\"]}", &ev) == ITK_STATUS_OK);
    for (int i = 0; i < 3; i++) {
        char *t = NULL, *o = NULL;
        CHECK(itk_jwt_signer_sign(signer, "{\"sub\":\"s\",\"exp\":1700000060}", "{\"typ\":\"at+jwt\"}", &t) == ITK_STATUS_OK);
        CHECK(itk_jwt_verifier_decode(ev, t, &(int64_t){1700000000}, &o) == ITK_STATUS_OK);
        CHECK(o && strstr(o, "\"ec-1\"") && strstr(o, "at+jwt"));
        itk_string_free(t);
        itk_string_free(o);
    }
    itk_jwt_signer *bad = NULL;
    CHECK(itk_jwt_signer_new(ec_priv, "RS256", NULL, &bad) == ITK_STATUS_JWT_ALG_NOT_ALLOWED);
    CHECK(itk_jwt_signer_new(ec_pub, "ES256", NULL, &bad) == ITK_STATUS_INVALID_KEY_MATERIAL);
    CHECK(bad == NULL);
    itk_jwt_signer_free(NULL);
    itk_jwt_signer_free(signer);
    itk_jwt_verifier_free(ev);
    free(ec_priv);
    free(ec_pub);

    itk_jwt_verifier_free(NULL);
    itk_jwt_verifier_free(v);
    itk_string_free(token);
}

static void test_managed_keys(void) {
    itk_manager *m = NULL;
    CHECK(itk_manager_open(":memory:", "{\"manual_clock_start\": 1700000000, \"master_key\": \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"}", &m) == ITK_STATUS_OK);
    char *token = NULL, *k = NULL, *out = NULL;
    CHECK(itk_jwt_issue(m, "{\"sub\":\"x\"}", 0, &token) == ITK_STATUS_NO_ACTIVE_SIGNING_KEY);
    CHECK(itk_signing_key_create(m, "ES256", "c-test", &k) == ITK_STATUS_OK);
    CHECK(k && strstr(k, "\"active\""));
    CHECK(itk_jwt_issue(m, "{\"sub\":\"svc\"}", 60, &token) == ITK_STATUS_OK);
    CHECK(itk_jwt_verify_issued(m, token, "{\"algorithms\":[\"ES256\"]}", &out) == ITK_STATUS_OK);
    CHECK(out && strstr(out, "\"svc\""));
    itk_string_free(out);
    char *jwks = NULL;
    CHECK(itk_jwks(m, &jwks) == ITK_STATUS_OK);
    /* The exported JWKS verifies the token through a stand-alone verifier. */
    itk_jwt_verifier *v = NULL;
    CHECK(itk_jwt_verifier_new(jwks, "{\"algorithms\":[\"ES256\"]}", &v) == ITK_STATUS_OK);
    CHECK(itk_jwt_verifier_decode(v, token, &(int64_t){1700000000}, &out) == ITK_STATUS_OK);
    itk_string_free(out);
    itk_jwt_verifier_free(v);
    CHECK(itk_signing_key_rotate(m, "{\"overlap_seconds\": 0}", NULL) == ITK_STATUS_OK);
    /* The scheduled rotation: not due (JSON null), bad period, bad options. */
    char *due = NULL;
    CHECK(itk_signing_key_rotate_if_due(m, 90 * 86400, "{\"overlap_seconds\": 86400}", &due) == ITK_STATUS_OK);
    CHECK(due != NULL && strcmp(due, "null") == 0);
    itk_string_free(due);
    CHECK(itk_signing_key_rotate_if_due(m, 0, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_signing_key_rotate_if_due(m, 60, "{\"alg\": \"RS256\"}", NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_signing_key_rotate_if_due(NULL, 60, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    out = NULL;
    CHECK(itk_jwt_verify_issued(m, token, "{\"algorithms\":[\"ES256\"]}", &out) == ITK_STATUS_JWT_KEY_NOT_FOUND);
    char *list = NULL;
    CHECK(itk_signing_key_list(m, &list) == ITK_STATUS_OK);
    CHECK(list && strstr(list, "\"retired\"") && strstr(list, "\"active\""));
    char *id = NULL;
    char *key = create(m, "{\"owner\": \"svc-billing\", \"scopes\": [\"read\"]}", &id);
    char *at = NULL;
    CHECK(itk_api_key_exchange(m, key, "{\"required_scopes\": [\"read\"]}", &at) == ITK_STATUS_OK);
    CHECK(at && strstr(at, "\"svc-billing\""));
    /* Lifetimes past 9999-12-31T23:59:59Z: refused, never wrapped to a negative exp. */
    char *far = NULL;
    CHECK(itk_api_key_exchange(m, key, "{\"ttl_seconds\": 9223372036854775807}", &far) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(far == NULL);
    CHECK(itk_key_create(m, "{\"owner\": \"a\", \"expires_in\": 9223372036854775807}", &far, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_create(m, "{\"owner\": \"a\", \"expires_at\": 253402300800}", &far, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(far == NULL);
    CHECK(itk_signing_key_rotate(m, "{\"overlap_seconds\": 9223372036854775807}", &far) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(far == NULL);
    char *far_record = NULL;
    CHECK(itk_key_create(m, "{\"owner\": \"a\", \"expires_at\": 253402300799}", &far, &far_record) == ITK_STATUS_OK);
    CHECK(far_record && strstr(far_record, "253402300799"));
    itk_string_free(far);
    itk_string_free(far_record);
    CHECK(itk_key_revoke(m, id, NULL, NULL, NULL) == ITK_STATUS_OK);
    char *at2 = NULL;
    CHECK(itk_api_key_exchange(m, key, NULL, &at2) == ITK_STATUS_KEY_REVOKED);
    CHECK(at2 == NULL);
    itk_manager *plain = NULL;
    CHECK(itk_manager_open(":memory:", NULL, &plain) == ITK_STATUS_OK);
    CHECK(itk_signing_key_create(plain, "ES256", NULL, NULL) == ITK_STATUS_MASTER_KEY_REQUIRED);
    itk_manager *weak = NULL;
    CHECK(itk_manager_open(":memory:", "{\"master_key\": \"c2hvcnQ=\"}", &weak) == ITK_STATUS_INVALID_ARGUMENT);
    itk_manager_free(plain);
    itk_string_free(at);
    itk_string_free(key);
    free(id);
    itk_string_free(list);
    itk_string_free(jwks);
    itk_string_free(token);
    itk_string_free(k);
    itk_manager_free(m);
}

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

/* A one-thread HTTP server on 127.0.0.1 that answers its connections in
 * turn with the statuses listed, each with the same JWKS body. */
typedef struct {
    int fd;
    const int *statuses;
    int count;
    const char *body;
} jwks_server;

static void *serve_jwks(void *arg) {
    jwks_server *s = arg;
    for (int i = 0; i < s->count; i++) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) break;
        char req[2048];
        ssize_t got = read(c, req, sizeof req);
        (void)got;
        char resp[1024];
        int n = snprintf(resp, sizeof resp,
                         "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         s->statuses[i], strlen(s->body), s->body);
        ssize_t put = write(c, resp, (size_t)n);
        (void)put;
        close(c);
    }
    return NULL;
}

static void test_remote_jwks(void) {
    /* An Ed25519 key, and a published HMAC secret under kid h1: k =
     * base64url("cccc...", 32 bytes). A remote set never yields the secret. */
    const char *body = "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"c1\","
                       "\"x\":\"K4wEiq85BBSQjYQCClpN39a-8DnZraR_hSPC27S40bI\"},"
                       "{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2M\"}]}";
    static const int statuses[] = {200, 200, 500};
    jwks_server srv = {.fd = socket(AF_INET, SOCK_STREAM, 0), .statuses = statuses, .count = 3, .body = body};
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(srv.fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(listen(srv.fd, 8) == 0);
    socklen_t len = sizeof addr;
    CHECK(getsockname(srv.fd, (struct sockaddr *)&addr, &len) == 0);
    pthread_t th;
    pthread_create(&th, NULL, serve_jwks, &srv);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/jwks.json", ntohs(addr.sin_port));

    itk_jwks_remote *r = NULL;
    /* The cooldown has a floor of one second. */
    CHECK(itk_jwks_remote_new(url, "{\"cooldown_ms\":0}", &r) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwks_remote_new(url, "{\"cooldown_ms\":1000}", &r) == ITK_STATUS_OK);
    itk_jwt_signer *s1 = NULL, *s9 = NULL, *sh = NULL;
    const char *ed = "-----BEGIN PRIVATE KEY-----\n"
                     "MC4CAQAwBQYDK2VwBCIEIEW8aFYJLI42N6jL4F7OeaBoMXXvwgqrWbWNoBiWoQRs\n"
                     "-----END PRIVATE KEY-----\n";
    CHECK(itk_jwt_signer_new(ed, "EdDSA", "c1", &s1) == ITK_STATUS_OK);
    CHECK(itk_jwt_signer_new(ed, "EdDSA", "c9", &s9) == ITK_STATUS_OK);
    CHECK(itk_jwt_signer_new("cccccccccccccccccccccccccccccccc", "HS256", "h1", &sh) == ITK_STATUS_OK);
    char *t1 = NULL, *t9 = NULL, *th1 = NULL, *out = NULL;
    CHECK(itk_jwt_signer_sign(s1, "{\"sub\":\"u\",\"exp\":1700000060}", NULL, &t1) == ITK_STATUS_OK);
    CHECK(itk_jwt_signer_sign(s9, "{\"sub\":\"u\",\"exp\":1700000060}", NULL, &t9) == ITK_STATUS_OK);
    CHECK(itk_jwt_signer_sign(sh, "{\"sub\":\"u\",\"exp\":1700000060}", NULL, &th1) == ITK_STATUS_OK);
    int64_t now = 1700000000;
    const char *policy = "{\"algorithms\":[\"EdDSA\",\"HS256\"]}";
    CHECK(itk_jwks_remote_decode(r, t1, policy, &now, &out) == ITK_STATUS_OK); /* fetch 1 */
    CHECK(out && strstr(out, "\"c1\""));
    itk_string_free(out);
    out = NULL;
    /* The published secret verifies nothing (no refetch: inside the cooldown). */
    CHECK(itk_jwks_remote_decode(r, th1, policy, &now, &out) == ITK_STATUS_JWT_KEY_NOT_FOUND);
    CHECK(itk_jwks_remote_fetch_count(r) == 1);
    struct timespec cool = {.tv_sec = 1, .tv_nsec = 50 * 1000 * 1000};
    nanosleep(&cool, NULL);
    CHECK(itk_jwks_remote_decode(r, t9, policy, &now, &out) == ITK_STATUS_JWT_KEY_NOT_FOUND); /* fetch 2 */
    CHECK(out == NULL);
    CHECK(itk_jwks_remote_fetch_count(r) == 2);
    CHECK(itk_jwks_remote_reload(r, &out) == ITK_STATUS_JWKS_FETCH_FAILED); /* fetch 3: HTTP 500 */
    CHECK(out == NULL);
    /* The cached set still verifies (the reload failed; the set is fresh). */
    CHECK(itk_jwks_remote_decode(r, t1, policy, &now, &out) == ITK_STATUS_OK);
    itk_string_free(out);
    CHECK(itk_jwks_remote_decode(r, t1, policy, &now, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwks_remote_fetch_count(r) == 3);
    pthread_join(th, NULL);
    close(srv.fd);

    itk_jwks_remote *bad = NULL;
    CHECK(itk_jwks_remote_new("http://idp.example/jwks", NULL, &bad) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwks_remote_new("https://idp.example/jwks", "{\"bogus\":1}", &bad) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwks_remote_new(NULL, NULL, &bad) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(bad == NULL);
    CHECK(itk_jwks_remote_decode(NULL, t1, policy, &now, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwks_remote_fetch_count(NULL) == 0);
    itk_jwks_remote_free(NULL);
    itk_jwks_remote_free(r);
    itk_string_free(t1);
    itk_string_free(t9);
    itk_string_free(th1);
    itk_jwt_signer_free(s1);
    itk_jwt_signer_free(s9);
    itk_jwt_signer_free(sh);
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

/* itk_stats, the prefix filter of itk_keys_list, itk_manager_open_env. */
static void test_stats_prefix_env(const char *tmp) {
    itk_manager *m = NULL;
    CHECK(itk_manager_open(":memory:", NULL, &m) == ITK_STATUS_OK);
    char *record = NULL, *key = NULL;
    CHECK(itk_key_create(m, "{\"owner\": \"alice\"}", &key, &record) == ITK_STATUS_OK);
    itk_string_free(key);
    CHECK(itk_key_create(m, "{\"owner\": \"bob\"}", &key, NULL) == ITK_STATUS_OK);
    itk_string_free(key);
    char *json = NULL;
    CHECK(itk_stats(m, 3600, 5, &json) == ITK_STATUS_OK);
    CHECK(json && strstr(json, "\"keys\":{\"total\":2,\"active\":2,"));
    CHECK(json && strstr(json, "\"owners\":[{\"owner\":\"alice\""));
    itk_string_free(json);
    json = NULL;
    CHECK(itk_stats(m, 0, 5, &json) == ITK_STATUS_INVALID_ARGUMENT && json == NULL);
    CHECK(itk_stats(m, 3600, 0, &json) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_stats(NULL, 3600, 5, &json) == ITK_STATUS_INVALID_ARGUMENT);
    /* The display prefix from the record finds that key alone. */
    const char *p = record ? strstr(record, "\"display_prefix\":\"") : NULL;
    CHECK(p != NULL);
    if (p) {
        char prefix[64] = {0}, filter[128];
        p += strlen("\"display_prefix\":\"");
        size_t n = strcspn(p, "\"");
        memcpy(prefix, p, n < sizeof prefix - 1 ? n : sizeof prefix - 1);
        snprintf(filter, sizeof filter, "{\"prefix\": \"%s\"}", prefix);
        CHECK(itk_key_list(m, filter, &json) == ITK_STATUS_OK);
        CHECK(json && strstr(json, "\"owner\":\"alice\"") && !strstr(json, "\"owner\":\"bob\""));
        itk_string_free(json);
    }
    CHECK(itk_key_list(m, "{\"prefix\": \"\"}", &json) == ITK_STATUS_INVALID_ARGUMENT);
    itk_string_free(record);
    itk_manager_free(m);
    m = NULL;

    /* itk_manager_open_env: IRONTOKEN_DB names the file. */
    char db[4096];
    snprintf(db, sizeof db, "%s/env.db", tmp);
    unsetenv("IRONTOKEN_DB");
    CHECK(itk_manager_open_env(NULL, &m) == ITK_STATUS_INVALID_ARGUMENT && m == NULL);
    setenv("IRONTOKEN_DB", db, 1);
    CHECK(itk_manager_open_env("{\"rate_limit_store\": \"local\"}", &m) == ITK_STATUS_OK && m);
    CHECK(itk_key_create(m, "{\"owner\": \"env\"}", &key, NULL) == ITK_STATUS_OK);
    itk_string_free(key);
    itk_manager_free(m);
    m = NULL;
    CHECK(access(db, F_OK) == 0);
    setenv("IRONTOKEN_STORAGE_TIMEOUT_MS", "soon", 1);
    CHECK(itk_manager_open_env(NULL, &m) == ITK_STATUS_INVALID_ARGUMENT);
    unsetenv("IRONTOKEN_STORAGE_TIMEOUT_MS");
    CHECK(itk_manager_open_env("{not json", &m) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_open_env(NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    unsetenv("IRONTOKEN_DB");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s VECTORS_DIR TMP_DIR\n", argv[0]);
        return 2;
    }
    test_vectors(argv[1]);
    test_error_codes(argv[1]);
    test_old_names_of_try_verify();
    test_jwt(argv[1]);
    test_remote_jwks();
    test_managed_keys();
    test_ratelimit(argv[1]);
    test_lifecycle();
    test_create_many();
    test_rotation();
    test_last_use_in_answers();
    test_hostile_input();
    test_threads_and_file(argv[2]);
    test_flush_threshold(argv[2]);
    test_shared_limits(argv[2]);
    test_postgres_tls();
    test_import();
    test_rotate_due();
    test_verify_now();
    test_storage_timeout();
    test_stats_prefix_env(argv[2]);
    printf("c: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
