/* C test of sessions, usage, stats, quotas (shared vectors), verify-with, agent
 * budgets and signals through the irontoken ABI, with hostile input.
 * Usage: test_usage VECTORS_DIR TMP_DIR */
#define _POSIX_C_SOURCE 200809L
#include "irontoken.h"
#include "minijson.h"
#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T_FEB 1769904000

static itk_manager *open_at(long long t, int master) {
    char opts[256];
    snprintf(opts, sizeof opts, "{\"manual_clock_start\": %lld%s}", t,
             master ? ", \"master_key\": \"0707070707070707070707070707070707070707070707070707070707070707\"" : "");
    itk_manager *m = NULL;
    CHECK(itk_manager_open(":memory:", opts, &m) == ITK_STATUS_OK && m != NULL);
    return m;
}

/* Creates a key for `owner`; returns its id (free()) and, if wanted, the plaintext. */
static char *new_key(itk_manager *m, const char *request, char **plaintext) {
    char *key = NULL, *record = NULL;
    CHECK(itk_key_create(m, request, &key, &record) == ITK_STATUS_OK);
    mj *r = mj_parse(record);
    char *id = strdup(mj_str(r, "id"));
    mj_free(r);
    itk_string_free(record);
    if (plaintext) *plaintext = key;
    else itk_string_free(key);
    return id;
}

/* Parses the JSON a call wrote to *out (read after the call: the address is
 * passed, not the value), frees it and resets *out. Free the result with mj_free. */
static mj *answer(itk_status s, char **out) {
    CHECK(s == ITK_STATUS_OK);
    mj *v = (s == ITK_STATUS_OK && *out) ? mj_parse(*out) : NULL;
    itk_string_free(*out);
    *out = NULL;
    return v;
}

static double num(const mj *v, const char *key) {
    mj *m = mj_get(v, key);
    return m && m->type == MJ_NUM ? m->num : -1;
}

static void test_quota_vectors(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/quota.json", dir);
    char *text = mj_read_file(path);
    mj *doc = mj_parse(text);
    mj *cases = mj_get(doc, "cases");
    CHECK(cases && cases->len >= 5);
    for (size_t i = 0; cases && i < cases->len; i++) {
        mj *c = cases->items[i];
        itk_manager *m = open_at((long long)num(c, "start"), 0);
        const char *owner = mj_str(c, "owner");
        char req[256];
        snprintf(req, sizeof req, "{\"owner\": \"%s\"}", owner);
        char *kid = new_key(m, req, NULL);
        mj *quotas = mj_get(c, "quotas");
        for (size_t q = 0; q < quotas->len; q++) {
            mj *spec = quotas->items[q];
            const char *subject = !strcmp(mj_str(spec, "scope"), "key") ? kid : owner;
            char *body = mj_dump(spec); /* "{...}" : splice the subject in front */
            char *full = malloc(strlen(body) + 128);
            sprintf(full, "{\"subject\": \"%s\", %s", subject, body + 1);
            char *out = NULL;
            CHECK(itk_quota_set(m, full, &out) == ITK_STATUS_OK);
            itk_string_free(out);
            free(full);
            free(body);
        }
        char *reservation = NULL;
        mj *steps = mj_get(c, "steps");
        for (size_t k = 0; k < steps->len; k++) {
            mj *st = steps->items[k];
            mj *adv = mj_get(st, "advance");
            CHECK(itk_manager_advance_clock(m, adv ? (int64_t)adv->num : 0) == ITK_STATUS_OK);
            const char *op = mj_str(st, "op");
            mj *am = mj_get(st, "amounts");
            char *amounts = am ? mj_dump(am) : strdup("{}");
            int allowed = -1;
            char *out = NULL;
            if (!strcmp(op, "consume") || !strcmp(op, "peek")) {
                bool a = false;
                CHECK(itk_quota_consume(m, kid, amounts, !strcmp(op, "consume"), &a, &out) == ITK_STATUS_OK);
                allowed = a;
            } else if (!strcmp(op, "reserve")) {
                mj *ttl = mj_get(st, "ttl_seconds");
                mj *r = answer(itk_quota_reserve(m, kid, amounts, ttl ? (int64_t)ttl->num : 0, &out), &out);
                out = NULL;
                mj *res = mj_get(r, "reservation");
                if (res && res->type == MJ_OBJ) {
                    free(reservation);
                    reservation = strdup(mj_str(res, "id"));
                }
                allowed = mj_get(mj_get(r, "decision"), "allowed")->boolean;
                mj_free(r);
            } else if (!strcmp(op, "settle")) {
                CHECK(itk_quota_settle(m, reservation, amounts, &out) == ITK_STATUS_OK);
            } else if (!strcmp(op, "release")) {
                CHECK(itk_quota_settle(m, reservation, NULL, &out) == ITK_STATUS_OK);
            } else if (!strcmp(op, "add_credits")) {
                mj *spec = quotas->items[(size_t)num(st, "quota")];
                char body[512];
                snprintf(body, sizeof body, "{\"scope\": \"%s\", \"subject\": \"%s\", \"metric\": \"%s\", \"amount\": %lld}",
                         mj_str(spec, "scope"), !strcmp(mj_str(spec, "scope"), "key") ? kid : owner,
                         mj_str(spec, "metric"), (long long)num(st, "amount"));
                CHECK(itk_quota_add_credits(m, body, &out) == ITK_STATUS_OK);
            }
            itk_string_free(out);
            mj *want = mj_get(st, "allowed");
            if (want) CHECK(allowed == want->boolean);
            out = NULL;
            CHECK(itk_quota_consume(m, kid, "{}", false, NULL, &out) == ITK_STATUS_OK);
            mj *d = mj_parse(out);
            mj *qs = mj_get(d, "quotas");
            mj *rem = mj_get(st, "remaining");
            CHECK(qs->len == rem->len);
            for (size_t q = 0; q < qs->len && q < rem->len; q++) {
                CHECK(num(qs->items[q], "remaining") == rem->items[q]->num);
                mj *reset = mj_get(st, "reset_at");
                if (reset) CHECK(num(qs->items[q], "reset_at") == reset->items[q]->num);
            }
            mj_free(d);
            itk_string_free(out);
            free(amounts);
        }
        free(reservation);
        free(kid);
        itk_manager_free(m);
    }
    mj_free(doc);
    free(text);
}

static void test_sessions(void) {
    itk_manager *m = open_at(T_FEB, 0);
    char *kid = new_key(m, "{\"owner\": \"alice\"}", NULL);
    char req[256];
    snprintf(req, sizeof req, "{\"owner\": \"alice\", \"key_id\": \"%s\", \"ttl_seconds\": 100, \"idle_timeout_seconds\": 30, \"metadata\": {\"max_memory_mb\": 64}}", kid);
    char *out = NULL;
    mj *s = answer(itk_session_create(m, req, &out), &out);
    char *sid = strdup(mj_str(s, "id"));
    CHECK(!strcmp(mj_str(s, "session_type"), "runtime"));
    CHECK(num(mj_get(s, "metadata"), "max_memory_mb") == 64);
    mj_free(s);
    CHECK(itk_manager_advance_clock(m, 20) == ITK_STATUS_OK);
    CHECK(itk_session_touch(m, sid, NULL) == ITK_STATUS_OK);
    out = NULL;
    s = answer(itk_session_get(m, sid, &out), &out);
    CHECK(num(s, "expires_next_at") == T_FEB + 50);
    mj_free(s);
    out = NULL;
    CHECK(itk_session_update(m, sid, "{\"status\": \"paused\"}", &out) == ITK_STATUS_OK);
    itk_string_free(out);
    out = NULL;
    CHECK(itk_session_update(m, sid, "{\"status\": \"ended\"}", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_manager_advance_clock(m, 30) == ITK_STATUS_OK);
    CHECK(itk_session_touch(m, sid, NULL) == ITK_STATUS_SESSION_EXPIRED);
    out = NULL;
    mj *page = answer(itk_session_list(m, "{\"status\": \"expired\"}", &out), &out);
    CHECK(mj_get(page, "items")->len == 1);
    mj_free(page);
    uint64_t n = 0;
    CHECK(itk_session_cleanup(m, &n) == ITK_STATUS_OK && n == 1);
    CHECK(itk_session_purge(m, 0, &n) == ITK_STATUS_OK && n == 1);
    CHECK(itk_session_purge(m, -1, &n) == ITK_STATUS_INVALID_ARGUMENT);
    /* Ending, then revoking the key. */
    out = NULL;
    snprintf(req, sizeof req, "{\"owner\": \"alice\", \"key_id\": \"%s\"}", kid);
    s = answer(itk_session_create(m, req, &out), &out);
    char *live = strdup(mj_str(s, "id"));
    mj_free(s);
    CHECK(itk_key_revoke(m, kid, NULL, NULL, NULL) == ITK_STATUS_OK);
    out = NULL;
    s = answer(itk_session_get(m, live, &out), &out);
    CHECK(!strcmp(mj_str(s, "end_reason"), "key_revoked"));
    mj_free(s);
    CHECK(itk_session_end(m, live, NULL, NULL) == ITK_STATUS_SESSION_ENDED);
    CHECK(itk_session_get(m, "nope", &out) == ITK_STATUS_SESSION_NOT_FOUND);
    /* Hostile input. */
    CHECK(itk_session_create(m, NULL, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_session_create(m, "{\"owner\": 1}", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_session_create(m, "{\"owner\": \"\xff\xfe\"}", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_session_create(NULL, "{\"owner\": \"a\"}", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_session_get(m, NULL, &out) == ITK_STATUS_INVALID_ARGUMENT);
    free(live);
    free(sid);
    free(kid);
    itk_manager_free(m);
}

static void test_usage_and_verify_with(void) {
    itk_manager *m = open_at(T_FEB, 0);
    char *key = NULL;
    char *kid = new_key(m, "{\"owner\": \"alice\", \"rate_limits\": [{\"name\": \"per_min\", \"count\": 2, \"period_ms\": 60000, \"burst\": 2}]}", &key);
    char req[512], *out = NULL;
    snprintf(req, sizeof req, "{\"request_id\": \"r1\", \"key_id\": \"%s\", \"model\": \"gpt\", \"prompt_tokens\": 10, \"completion_tokens\": 5, \"cost_micros\": 1500000}", kid);
    mj *r = answer(itk_usage_record(m, req, &out), &out);
    CHECK(!mj_get(r, "duplicate")->boolean);
    mj_free(r);
    out = NULL;
    r = answer(itk_usage_record(m, req, &out), &out);
    CHECK(mj_get(r, "duplicate")->boolean);
    mj_free(r);
    out = NULL;
    mj *sum = answer(itk_usage_summary(m, "{\"group_by\": [\"owner\", \"day\"]}", &out), &out);
    CHECK(sum->type == MJ_ARR && sum->len == 1);
    CHECK(!strcmp(mj_str(sum->items[0], "owner"), "alice"));
    CHECK(!strcmp(mj_str(sum->items[0], "day"), "2026-02-01"));
    CHECK(num(sum->items[0], "total_tokens") == 15 && num(sum->items[0], "cost_micros") == 1500000);
    mj_free(sum);
    out = NULL;
    /* Hourly buckets (UTC) for dashboards. */
    sum = answer(itk_usage_summary(m, "{\"group_by\": [\"hour\", \"model\"]}", &out), &out);
    CHECK(sum->type == MJ_ARR && sum->len == 1);
    CHECK(sum->len == 1 && !strcmp(mj_str(sum->items[0], "hour"), "2026-02-01T00:00:00Z"));
    CHECK(sum->len == 1 && !strcmp(mj_str(sum->items[0], "model"), "gpt"));
    mj_free(sum);
    out = NULL;
    mj *exp = answer(itk_usage_export(m, NULL, &out), &out);
    CHECK(mj_get(exp, "items")->len == 1);
    mj_free(exp);
    CHECK(itk_usage_record(m, "{\"model\": \"x\"}", &out) == ITK_STATUS_INVALID_ARGUMENT);
    /* A time past what a summary can show (9999-12-31T23:59:59Z) or before 1970. */
    snprintf(req, sizeof req, "{\"request_id\": \"far\", \"key_id\": \"%s\", \"at\": 253402300800}", kid);
    CHECK(itk_usage_record(m, req, &out) == ITK_STATUS_INVALID_ARGUMENT);
    snprintf(req, sizeof req, "{\"request_id\": \"far\", \"key_id\": \"%s\", \"at\": -1}", kid);
    CHECK(itk_usage_record(m, req, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(out == NULL);
    CHECK(itk_usage_summary(m, "{\"group_by\": [\"colour\"]}", &out) == ITK_STATUS_INVALID_ARGUMENT);

    snprintf(req, sizeof req, "{\"subject\": \"%s\", \"metric\": \"requests\", \"period\": \"day\", \"limit\": 3}", kid);
    out = NULL;
    CHECK(itk_quota_set(m, req, &out) == ITK_STATUS_OK);
    itk_string_free(out);
    const char *opts = "{\"rate_limit\": true, \"quota\": {\"requests\": 1}}";
    itk_verify_reason reasons[3];
    for (int i = 0; i < 3; i++) CHECK(itk_key_verify_with(m, key, opts, &reasons[i], NULL) == ITK_STATUS_OK);
    CHECK(reasons[0] == ITK_VERIFY_REASON_VALID && reasons[1] == ITK_VERIFY_REASON_VALID);
    CHECK(reasons[2] == ITK_VERIFY_REASON_RATE_LIMITED);
    CHECK(!strcmp(itk_verify_reason_code(ITK_VERIFY_REASON_USAGE_EXCEEDED), "USAGE_EXCEEDED"));
    CHECK(itk_manager_advance_clock(m, 60) == ITK_STATUS_OK);
    itk_verify_reason rr = 99;
    CHECK(itk_key_verify_with(m, key, opts, &rr, NULL) == ITK_STATUS_OK && rr == ITK_VERIFY_REASON_VALID);
    out = NULL;
    CHECK(itk_key_verify_with(m, key, opts, &rr, &out) == ITK_STATUS_OK && rr == ITK_VERIFY_REASON_USAGE_EXCEEDED);
    mj *v = mj_parse(out);
    CHECK(num(mj_get(mj_get(v, "quota"), "denied_by"), "remaining") == 0);
    CHECK(strstr(out, key + 4) == NULL); /* the answer never holds the key */
    mj_free(v);
    itk_string_free(out);
    CHECK(itk_key_verify_with(m, key, "{\"bogus\": 1}", &rr, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_key_verify_with(m, key, opts, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    /* Reservations and credits. */
    CHECK(itk_quota_reserve(m, kid, "{\"requests\": 1}", 0, &out) == ITK_STATUS_OK);
    itk_string_free(out);
    CHECK(itk_quota_settle(m, "not-a-reservation", NULL, &out) == ITK_STATUS_NOT_FOUND);
    CHECK(itk_quota_delete(m, "{\"subject\": \"x\", \"metric\": \"tokens\", \"period\": \"day\"}") == ITK_STATUS_NOT_FOUND);
    out = NULL;
    mj *list = answer(itk_quota_list(m, "key", kid, &out), &out);
    CHECK(list->type == MJ_ARR && list->len == 1);
    mj_free(list);
    CHECK(itk_quota_list(m, "planet", kid, &out) == ITK_STATUS_INVALID_ARGUMENT);
    out = NULL;
    mj *ev = answer(itk_events_drain(m, 100, &out), &out);
    CHECK(ev->type == MJ_ARR && ev->len == 1); /* 2 of 3 is below 80 %; 3 of 3 is 100 % */
    CHECK(ev->len == 1 && !strcmp(mj_str(ev->items[0], "kind"), "quota_threshold"));
    CHECK(ev->len == 1 && num(mj_get(ev->items[0], "detail"), "level") == 100);
    mj_free(ev);
    itk_string_free(key);
    free(kid);
    itk_manager_free(m);
}

static void test_agents(void) {
    itk_manager *m = open_at(T_FEB, 1);
    char *out = NULL;
    CHECK(itk_signing_key_create(m, "ES256", NULL, &out) == ITK_STATUS_OK);
    itk_string_free(out);
    out = NULL;
    mj *b = answer(itk_budget_create(m, "{\"owner\": \"acme\", \"limit_micros\": 100000000}", &out), &out);
    char req[512];
    snprintf(req, sizeof req, "{\"agent_id\": \"agent-1\", \"budget_id\": \"%s\", \"permissions\": [\"llm:call\"]}", mj_str(b, "id"));
    out = NULL;
    mj *t1 = answer(itk_agent_token_issue(m, req, &out), &out);
    const char *token = mj_str(t1, "token");
    out = NULL;
    mj *claims = answer(itk_agent_token_verify(m, token, &out), &out);
    CHECK(!strcmp(mj_str(claims, "agent_id"), "agent-1"));
    mj_free(claims);
    out = NULL;
    mj *lease = answer(itk_lease_acquire(m, token, 10000000, 0, &out), &out);
    const char *lid = mj_str(lease, "id");
    out = NULL;
    mj *l = answer(itk_lease_report(m, lid, "{\"request_id\": \"q1\", \"cost_micros\": 4000000}", &out), &out);
    CHECK(num(l, "remaining_micros") == 6000000);
    mj_free(l);
    out = NULL;
    CHECK(itk_lease_refresh(m, lid, 96000001, 0, &out) == ITK_STATUS_USAGE_EXCEEDED);
    CHECK(itk_lease_acquire(m, token, 90000001, 0, &out) == ITK_STATUS_USAGE_EXCEEDED);
    out = NULL;
    mj *bb = answer(itk_budget_get(m, mj_str(b, "id"), &out), &out);
    CHECK(num(bb, "available_micros") == 90000000);
    mj_free(bb);
    out = NULL;
    mj *t2 = answer(itk_agent_token_issue(m, req, &out), &out);
    CHECK(!strcmp(mj_str(t2, "replaced"), mj_str(mj_get(t1, "claims"), "jti")));
    CHECK(itk_agent_token_verify(m, token, &out) == ITK_STATUS_AGENT_TOKEN_REVOKED);
    CHECK(itk_lease_refresh(m, lid, 1, 0, &out) == ITK_STATUS_AGENT_TOKEN_REVOKED);
    out = NULL;
    CHECK(itk_agent_token_revoke(m, "agent-1", NULL, &out) == ITK_STATUS_OK);
    itk_string_free(out);
    CHECK(itk_agent_token_revoke(m, "agent-1", NULL, NULL) == ITK_STATUS_NOT_FOUND);
    out = NULL;
    mj *got = answer(itk_lease_get(m, lid, &out), &out);
    CHECK(!strcmp(mj_str(got, "status"), "revoked"));
    mj_free(got);
    uint64_t n = 99;
    CHECK(itk_quota_expire_reservations(m, &n) == ITK_STATUS_OK && n == 0);
    CHECK(itk_agent_token_verify(m, "not.a.token", &out) == ITK_STATUS_JWT_MALFORMED);
    CHECK(itk_lease_release(m, NULL, &out) == ITK_STATUS_INVALID_ARGUMENT);
    mj_free(t2);
    mj_free(lease);
    mj_free(t1);
    mj_free(b);
    itk_manager_free(m);
}

struct worker {
    const char *path;
    const char *kid;
    int granted;
    int refused;
    int errors; /* any status but OK: BUSY included, never "not granted" */
};

static void *consume_many(void *arg) {
    struct worker *w = arg;
    itk_manager *m = NULL;
    if (itk_manager_open(w->path, "{\"durability\": \"normal\", \"busy_timeout_ms\": 30000}", &m) != ITK_STATUS_OK) {
        w->errors++;
        return NULL;
    }
    for (int i = 0; i < 25; i++) {
        bool allowed = false;
        itk_status s = itk_quota_consume(m, w->kid, "{\"tokens\": 2}", true, &allowed, NULL);
        if (s != ITK_STATUS_OK)
            w->errors++;
        else if (allowed)
            w->granted++;
        else
            w->refused++;
    }
    itk_manager_free(m);
    return NULL;
}

/* Four managers on one file, one per thread: the total granted is the limit. */
static void test_no_overshoot(const char *tmp) {
    char path[4096];
    snprintf(path, sizeof path, "%s/quota.db", tmp);
    itk_manager *m = NULL;
    CHECK(itk_manager_open(path, NULL, &m) == ITK_STATUS_OK);
    char *kid = new_key(m, "{\"owner\": \"acme\"}", NULL);
    char req[256], *out = NULL;
    snprintf(req, sizeof req, "{\"subject\": \"%s\", \"metric\": \"tokens\", \"period\": \"month\", \"limit\": 150}", kid);
    CHECK(itk_quota_set(m, req, &out) == ITK_STATUS_OK);
    itk_string_free(out);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){path, kid, 0, 0, 0};
        pthread_create(&th[i], NULL, consume_many, &w[i]);
    }
    int total = 0, refused = 0, errors = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += w[i].granted;
        refused += w[i].refused;
        errors += w[i].errors;
    }
    CHECK(errors == 0); /* a BUSY or any failure is a failure, not a refusal */
    CHECK(total == 75); /* 4 x 25 x 2 tokens asked, 150 allowed */
    CHECK(refused == 25);
    free(kid);
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

/* Session hijacking defences: a fingerprint-bound session, rotation that
 * refuses the old id, a per-owner limit, sign-out everywhere. */
static void test_session_hardening(void) {
    itk_manager *m = open_at(T_FEB, 0);
    char *out = NULL;
    mj *s = answer(itk_session_create(m, "{\"owner\": \"alice\", \"fingerprint\": \"ua=x|key=k1\"}", &out), &out);
    char *sid = strdup(mj_str(s, "id"));
    CHECK(mj_get(s, "fingerprint_bound")->boolean == 1);
    mj_free(s);
    out = NULL;
    CHECK(itk_session_verify(m, sid, "ua=x|key=k1", &out) == ITK_STATUS_OK && out);
    itk_string_free(out);
    out = NULL;
    CHECK(itk_session_verify(m, sid, "ua=y|key=k1", &out) == ITK_STATUS_SESSION_FINGERPRINT_MISMATCH && out == NULL);
    CHECK(itk_session_verify(m, sid, NULL, &out) == ITK_STATUS_SESSION_FINGERPRINT_MISMATCH);
    CHECK(itk_session_verify(m, sid, "\xff", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_session_rotate(m, sid, "ua=y", &out) == ITK_STATUS_SESSION_FINGERPRINT_MISMATCH);
    s = answer(itk_session_rotate(m, sid, "ua=x|key=k1", &out), &out);
    char *next = strdup(mj_str(s, "id"));
    mj_free(s);
    out = NULL;
    CHECK(strcmp(next, sid) != 0);
    CHECK(itk_session_verify(m, sid, "ua=x|key=k1", &out) == ITK_STATUS_SESSION_ENDED);
    CHECK(itk_session_verify(m, next, "ua=x|key=k1", &out) == ITK_STATUS_OK);
    itk_string_free(out);
    out = NULL;
    const char *limited = "{\"owner\": \"bob\", \"max_concurrent\": 1}";
    CHECK(itk_session_create(m, limited, &out) == ITK_STATUS_OK);
    itk_string_free(out);
    out = NULL;
    CHECK(itk_session_create(m, limited, &out) == ITK_STATUS_SESSION_LIMIT_EXCEEDED && out == NULL);
    CHECK(itk_session_create(m, "{\"owner\": \"bob\", \"max_concurrent\": 1, \"evict_oldest\": true}", &out) == ITK_STATUS_OK);
    itk_string_free(out);
    out = NULL;
    uint64_t n = 99;
    CHECK(itk_sessions_end(m, "bob", NULL, NULL, &n) == ITK_STATUS_OK && n == 1);
    CHECK(itk_sessions_end(m, "alice", "logout", next, &n) == ITK_STATUS_OK && n == 0);
    CHECK(itk_sessions_end(m, NULL, NULL, NULL, &n) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_sessions_end(m, "bob", NULL, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    free(sid);
    free(next);
    itk_manager_free(m);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s VECTORS_DIR TMP_DIR\n", argv[0]);
        return 2;
    }
    test_quota_vectors(argv[1]);
    test_sessions();
    test_session_hardening();
    test_usage_and_verify_with();
    test_agents();
    test_no_overshoot(argv[2]);
    test_stats_prefix_env(argv[2]);
    printf("c usage: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
