/* C test of capability tokens (itk_cap_*): the shared vectors, revocation of
 * a parent and its children by a second manager on one file, sealing, and
 * hostile input (NULL, invalid UTF-8, garbage tokens); one-time ids and
 * refresh-token families (itk_token_pair_*) across two managers.
 * Usage: test_capability VECTORS_DIR TMP_DIR */
#define _POSIX_C_SOURCE 200809L
#include "irontoken.h"
#include "minijson.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MASTER "0707070707070707070707070707070707070707070707070707070707070707"

/* A manager with the master key; `manual`: on a manual clock started at the
 * current time, as offline attenuation (ttl_seconds) reads the system clock. */
static itk_manager *open_path(const char *path, int manual) {
    char opts[256];
    if (manual)
        snprintf(opts, sizeof opts, "{\"manual_clock_start\": %lld, \"master_key\": \"%s\"}",
                 (long long)time(NULL), MASTER);
    else
        snprintf(opts, sizeof opts, "{\"master_key\": \"%s\"}", MASTER);
    itk_manager *m = NULL;
    CHECK(itk_manager_open(path, opts, &m) == ITK_STATUS_OK && m != NULL);
    return m;
}

static char *new_key_id(itk_manager *m) {
    char *key = NULL, *record = NULL;
    CHECK(itk_key_create(m, "{\"owner\": \"acme\"}", &key, &record) == ITK_STATUS_OK);
    mj *r = mj_parse(record);
    char *id = strdup(mj_str(r, "id"));
    mj_free(r);
    itk_string_free(record);
    itk_string_free(key);
    return id;
}

/* Authorizes `request` under `token`; returns the reason (free()). */
static char *authorize(itk_manager *m, const char *token, const char *request) {
    char *out = NULL;
    int allowed = -1;
    CHECK(itk_cap_authorize(m, token, request, &allowed, &out) == ITK_STATUS_OK);
    mj *a = mj_parse(out);
    char *reason = strdup(mj_str(a, "reason") ? mj_str(a, "reason") : "?");
    CHECK(allowed == (strcmp(reason, "OK") == 0));
    mj_free(a);
    itk_string_free(out);
    return reason;
}

static int reason_is(itk_manager *m, const char *token, const char *request, const char *want) {
    char *r = authorize(m, token, request);
    int ok = strcmp(r, want) == 0;
    if (!ok) fprintf(stderr, "  %s: got %s, want %s\n", request, r, want);
    free(r);
    return ok;
}

static void test_vectors(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/capabilities.json", dir);
    char *text = mj_read_file(path);
    mj *doc = mj_parse(text);
    mj *cases = mj_get(doc, "cases");
    CHECK(cases && cases->len >= 10);
    for (size_t i = 0; cases && i < cases->len; i++) {
        mj *c = cases->items[i];
        itk_manager *m = open_path(":memory:", 1);
        char *kid = new_key_id(m);
        char *body = mj_dump(mj_get(c, "mint"));
        char *full = malloc(strlen(body) + 128);
        sprintf(full, "{\"key_id\": \"%s\", %s", kid, body + 1);
        char *token = NULL;
        CHECK(itk_cap_mint(m, full, &token) == ITK_STATUS_OK);
        free(full);
        free(body);
        mj *steps = mj_get(c, "attenuate");
        for (size_t s = 0; token && s < steps->len; s++) {
            char *a = mj_dump(steps->items[s]);
            char *next = NULL;
            CHECK(itk_cap_attenuate(token, a, &next) == ITK_STATUS_OK);
            itk_string_free(token);
            token = next;
            free(a);
        }
        mj *adv = mj_get(c, "advance_seconds");
        if (adv) CHECK(itk_manager_advance_clock(m, (long long)adv->num) == ITK_STATUS_OK);
        mj *reqs = mj_get(c, "requests");
        for (size_t r = 0; token && r < reqs->len; r++) {
            mj *q = reqs->items[r];
            char req[512];
            mj *cost = mj_get(q, "cost_micros");
            int n = snprintf(req, sizeof req, "{\"tool\": \"%s\", \"cost_micros\": %.0f", mj_str(q, "tool"),
                             cost ? cost->num : 0.0);
            if (mj_str(q, "resource")) n += snprintf(req + n, sizeof req - n, ", \"resource\": \"%s\"", mj_str(q, "resource"));
            if (mj_str(q, "session_id")) n += snprintf(req + n, sizeof req - n, ", \"session_id\": \"%s\"", mj_str(q, "session_id"));
            snprintf(req + n, sizeof req - n, "}");
            int ok = reason_is(m, token, req, mj_str(q, "expect"));
            if (!ok) fprintf(stderr, "  case: %s\n", mj_str(c, "name"));
            CHECK(ok);
        }
        itk_string_free(token);
        free(kid);
        itk_manager_free(m);
    }
    mj_free(doc);
    free(text);
}

static void test_revocation_across_managers(const char *tmp) {
    char path[4096];
    snprintf(path, sizeof path, "%s/caps.db", tmp);
    itk_manager *a = open_path(path, 0), *b = open_path(path, 0);
    char *kid = new_key_id(a);
    char req[256], *root = NULL, *child = NULL, *grandchild = NULL, *out = NULL;
    snprintf(req, sizeof req, "{\"key_id\": \"%s\", \"tools\": [\"search\", \"fetch\"], \"ttl_seconds\": 3600}", kid);
    CHECK(itk_cap_mint(a, req, &root) == ITK_STATUS_OK);
    CHECK(itk_cap_attenuate(root, "{\"tools\": [\"search\"]}", &child) == ITK_STATUS_OK);
    CHECK(itk_cap_attenuate(child, NULL, &grandchild) == ITK_STATUS_OK);
    CHECK(reason_is(b, grandchild, "{\"tool\": \"search\"}", "OK"));
    CHECK(reason_is(b, child, "{\"tool\": \"fetch\"}", "TOOL_NOT_ALLOWED"));
    CHECK(itk_cap_revoke(a, child, "ops", &out) == ITK_STATUS_OK && out && out[0] == '"');
    itk_string_free(out);
    out = NULL;
    CHECK(reason_is(b, child, "{\"tool\": \"search\"}", "CAPABILITY_REVOKED"));
    CHECK(reason_is(b, grandchild, "{\"tool\": \"search\"}", "CAPABILITY_REVOKED"));
    CHECK(reason_is(b, root, "{\"tool\": \"fetch\"}", "OK"));
    /* Sealed: authorizes, refuses appends. */
    char *sealed = NULL, *more = NULL;
    CHECK(itk_cap_seal(root, &sealed) == ITK_STATUS_OK);
    CHECK(reason_is(b, sealed, "{\"tool\": \"search\"}", "OK"));
    CHECK(itk_cap_attenuate(sealed, NULL, &more) == ITK_STATUS_CAPABILITY_SEALED && more == NULL);
    CHECK(itk_cap_inspect(sealed, &out) == ITK_STATUS_OK);
    mj *info = mj_parse(out);
    CHECK(mj_get(info, "sealed") && mj_get(info, "sealed")->boolean == 1);
    mj_free(info);
    itk_string_free(out);
    out = NULL;
    /* The public keys. */
    CHECK(itk_cap_public_key(b, &out) == ITK_STATUS_OK && out && strncmp(out, "ed25519/", 8) == 0 && strlen(out) == 72);
    itk_string_free(out);
    out = NULL;
    CHECK(itk_cap_public_keys(b, &out) == ITK_STATUS_OK && out && out[0] == '[');
    itk_string_free(out);
    out = NULL;
    itk_string_free(sealed);
    itk_string_free(root);
    itk_string_free(child);
    itk_string_free(grandchild);
    free(kid);
    itk_manager_free(a);
    itk_manager_free(b);
}

static void test_jti(const char *tmp) {
    char path[4096];
    snprintf(path, sizeof path, "%s/jti.db", tmp);
    itk_manager *a = open_path(path, 0), *b = open_path(path, 0);
    long long exp = (long long)time(NULL) + 600;
    int claimed = -1;
    CHECK(itk_jti_claim(a, "jti-1", exp, &claimed) == ITK_STATUS_OK && claimed == 1);
    CHECK(itk_jti_claim(b, "jti-1", exp, &claimed) == ITK_STATUS_OK && claimed == 0);
    CHECK(itk_jti_claim(b, "jti-2", exp, &claimed) == ITK_STATUS_OK && claimed == 1);
    claimed = 7;
    CHECK(itk_jti_claim(a, "", exp, &claimed) == ITK_STATUS_INVALID_ARGUMENT && claimed == 7);
    CHECK(itk_jti_claim(a, NULL, exp, &claimed) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jti_claim(a, "\xff", exp, &claimed) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jti_claim(a, "jti-3", exp, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    /* A one-time JWT: accepted once. */
    char *jwk = NULL, *token = NULL, *out = NULL;
    CHECK(itk_signing_key_create(a, "EdDSA", NULL, &jwk) == ITK_STATUS_OK);
    CHECK(itk_jwt_issue(a, "{\"sub\": \"alice\"}", 600, &token) == ITK_STATUS_OK);
    const char *policy = "{\"algorithms\": [\"EdDSA\"]}";
    CHECK(itk_jwt_verify_issued_once(b, token, policy, &out) == ITK_STATUS_OK && out != NULL);
    itk_string_free(out);
    out = NULL;
    CHECK(itk_jwt_verify_issued_once(a, token, policy, &out) == ITK_STATUS_JWT_REPLAYED && out == NULL);
    CHECK(itk_jwt_verify_issued(a, token, policy, &out) == ITK_STATUS_OK);
    itk_string_free(out);
    itk_string_free(token);
    itk_string_free(jwk);
    itk_manager_free(a);
    itk_manager_free(b);
}

static void test_hostile_input(void) {
    itk_manager *m = open_path(":memory:", 1);
    char *out = NULL;
    int allowed = 7;
    CHECK(itk_cap_authorize(m, NULL, "{\"tool\": \"x\"}", &allowed, &out) == ITK_STATUS_INVALID_ARGUMENT && out == NULL);
    CHECK(itk_cap_authorize(m, "abc", NULL, &allowed, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_cap_authorize(NULL, "abc", "{\"tool\": \"x\"}", &allowed, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_cap_authorize(m, "\xff\xfe", "{\"tool\": \"x\"}", &allowed, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_cap_authorize(m, "abc", "{\"tool\": \"\xff\"}", &allowed, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_cap_authorize(m, "abc", "{\"tool\": \"x\", \"extra\": 1}", &allowed, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(allowed == 7);
    /* A garbage token is an answer, not an error. */
    CHECK(reason_is(m, "bm90IGEgdG9rZW4", "{\"tool\": \"x\"}", "CAPABILITY_MALFORMED"));
    CHECK(itk_cap_attenuate("bm90IGEgdG9rZW4", NULL, &out) == ITK_STATUS_CAPABILITY_MALFORMED && out == NULL);
    CHECK(itk_cap_attenuate(NULL, NULL, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_cap_seal("", &out) == ITK_STATUS_CAPABILITY_MALFORMED);
    CHECK(itk_cap_inspect("abc", NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_cap_revoke_id(m, "not hex", NULL, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_cap_mint(m, "{\"key_id\": \"nope\", \"tools\": [\"x\"], \"ttl_seconds\": 60}", &out) != ITK_STATUS_OK && out == NULL);
    /* No master key: no roots. */
    itk_manager *plain = NULL;
    CHECK(itk_manager_open(":memory:", NULL, &plain) == ITK_STATUS_OK);
    CHECK(itk_cap_public_key(plain, &out) == ITK_STATUS_MASTER_KEY_REQUIRED && out == NULL);
    itk_manager_free(plain);
    itk_manager_free(m);
}

/* The refresh token of a pair answer (strdup'd) and, once, its family id. */
static char *refresh_of(const char *pair, char **family) {
    mj *p = mj_parse(pair);
    CHECK(p && mj_str(p, "refresh_token") && strncmp(mj_str(p, "refresh_token"), "itkrt_", 6) == 0);
    CHECK(mj_str(p, "access_token") && mj_get(p, "expires_in") && mj_get(p, "expires_in")->num == 300);
    char *r = strdup(mj_str(p, "refresh_token"));
    if (family) *family = strdup(mj_str(p, "family_id"));
    mj_free(p);
    return r;
}

static void test_refresh(const char *tmp) {
    char path[4096];
    snprintf(path, sizeof path, "%s/refresh.db", tmp);
    itk_manager *a = open_path(path, 0), *b = open_path(path, 0);
    char *jwk = NULL, *out = NULL, *family = NULL;
    CHECK(itk_signing_key_create(a, "ES256", NULL, &jwk) == ITK_STATUS_OK);
    const char *req = "{\"subject\": \"alice\", \"scopes\": [\"read\"], \"ttl_seconds\": 300}";
    CHECK(itk_token_pair_issue(a, req, &out) == ITK_STATUS_OK && out);
    char *first = refresh_of(out, &family);
    itk_string_free(out);
    out = NULL;
    /* Another process refreshes; the first token again revokes the family. */
    CHECK(itk_token_pair_refresh(b, first, &out) == ITK_STATUS_OK && out);
    char *second = refresh_of(out, NULL);
    itk_string_free(out);
    out = NULL;
    CHECK(itk_token_pair_refresh(a, first, &out) == ITK_STATUS_REFRESH_TOKEN_REUSED && out == NULL);
    CHECK(itk_token_pair_refresh(b, second, &out) == ITK_STATUS_REFRESH_TOKEN_REVOKED && out == NULL);
    CHECK(itk_token_family_get(b, family, &out) == ITK_STATUS_OK);
    mj *f = mj_parse(out);
    CHECK(f && strcmp(mj_str(f, "status"), "revoked") == 0 && strcmp(mj_str(f, "revoke_reason"), "reuse_detected") == 0);
    mj_free(f);
    itk_string_free(out);
    out = NULL;
    int revoked = 7;
    CHECK(itk_token_family_revoke(a, family, NULL, &revoked) == ITK_STATUS_OK && revoked == 0);
    /* Revoke by family and by subject. */
    char *fam2 = NULL;
    CHECK(itk_token_pair_issue(a, req, &out) == ITK_STATUS_OK);
    char *third = refresh_of(out, &fam2);
    itk_string_free(out);
    out = NULL;
    CHECK(itk_token_family_revoke(b, fam2, "logout", &revoked) == ITK_STATUS_OK && revoked == 1);
    CHECK(itk_token_pair_refresh(a, third, &out) == ITK_STATUS_REFRESH_TOKEN_REVOKED);
    CHECK(itk_token_pair_issue(a, req, &out) == ITK_STATUS_OK);
    char *fourth = refresh_of(out, NULL);
    itk_string_free(out);
    out = NULL;
    uint64_t n = 99;
    CHECK(itk_token_families_revoke(b, "alice", NULL, &n) == ITK_STATUS_OK && n == 1);
    CHECK(itk_token_pair_refresh(a, fourth, &out) == ITK_STATUS_REFRESH_TOKEN_REVOKED);
    /* Hostile input. */
    CHECK(itk_token_pair_refresh(a, NULL, &out) == ITK_STATUS_INVALID_ARGUMENT && out == NULL);
    CHECK(itk_token_pair_refresh(a, "\xff\xfe", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_token_pair_refresh(a, "itkrt_garbage", &out) == ITK_STATUS_REFRESH_TOKEN_INVALID && out == NULL);
    CHECK(itk_token_pair_refresh(NULL, first, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_token_pair_issue(a, "{\"subject\": \"x\", \"sub\": 1}", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_token_pair_issue(a, "{\"subject\": \"x\", \"claims\": {\"exp\": 1}}", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_token_pair_issue(a, "{\"subject\": \"\xff\"}", &out) == ITK_STATUS_INVALID_ARGUMENT && out == NULL);
    CHECK(itk_token_family_revoke(a, family, NULL, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_token_family_get(a, "nope", &out) == ITK_STATUS_NOT_FOUND && out == NULL);
    CHECK(itk_token_families_revoke(a, NULL, NULL, &n) == ITK_STATUS_INVALID_ARGUMENT);
    free(first);
    free(second);
    free(third);
    free(fourth);
    free(family);
    free(fam2);
    itk_string_free(jwk);
    itk_manager_free(a);
    itk_manager_free(b);
}

/* `s` as a JSON string literal (quotes included); free(). */
static char *json_string(const char *s) {
    char *out = malloc(strlen(s) * 6 + 3), *o = out;
    *o++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') { *o++ = '\\'; *o++ = *s; }
        else if ((unsigned char)*s < 0x20) o += sprintf(o, "\\u%04x", (unsigned char)*s);
        else *o++ = *s;
    }
    *o++ = '"';
    *o = 0;
    return out;
}

/* DPoP proofs (the shared vectors, a proof accepted once by two managers on
 * one file, a bound family refreshed with the RFC's proof) and
 * certificate-bound tokens. */
static void test_dpop(const char *dir, const char *tmp) {
    char path[4096];
    snprintf(path, sizeof path, "%s/dpop.json", dir);
    char *text = mj_read_file(path);
    mj *doc = mj_parse(text);
    mj *cases = mj_get(doc, "cases");
    CHECK(cases && cases->len >= 20);
    for (size_t i = 0; cases && i < cases->len; i++) {
        mj *c = cases->items[i];
        char *check = mj_dump(mj_get(c, "check")), *out = NULL;
        const char *error = mj_str(c, "error");
        itk_status st = itk_dpop_verify_proof_at(mj_str(c, "proof"), check, (int64_t)mj_get(c, "now")->num, &out);
        if (error) {
            int ok = st != ITK_STATUS_OK && strcmp(itk_status_code(st), error) == 0 && out == NULL;
            if (!ok) fprintf(stderr, "  %s: got %s\n", mj_str(c, "name"), itk_status_code(st));
            CHECK(ok);
        } else {
            CHECK(st == ITK_STATUS_OK && out);
            mj *p = mj_parse(out);
            if (mj_str(c, "jkt")) CHECK(strcmp(mj_str(p, "jkt"), mj_str(c, "jkt")) == 0);
            mj_free(p);
        }
        itk_string_free(out);
        free(check);
    }
    const char *rfc = mj_str(cases->items[0], "proof"), *jkt = mj_str(cases->items[0], "jkt");
    long long iat = (long long)mj_get(cases->items[0], "now")->num;

    /* Two managers on one file, their clocks at the proof's iat. */
    snprintf(path, sizeof path, "%s/dpop.db", tmp);
    char opts[256];
    snprintf(opts, sizeof opts, "{\"manual_clock_start\": %lld, \"master_key\": \"%s\"}", iat, MASTER);
    itk_manager *a = NULL, *b = NULL;
    CHECK(itk_manager_open(path, opts, &a) == ITK_STATUS_OK && itk_manager_open(path, opts, &b) == ITK_STATUS_OK);
    const char *token_req = "{\"htm\": \"POST\", \"htu\": \"https://server.example.com/token\"}";
    char *out = NULL;
    CHECK(itk_dpop_verify_proof(a, rfc, token_req, &out) == ITK_STATUS_OK && out);
    itk_string_free(out);
    out = NULL;
    CHECK(itk_dpop_verify_proof(b, rfc, token_req, &out) == ITK_STATUS_DPOP_PROOF_REPLAYED && out == NULL);

    /* A family bound to the RFC's key: no proof, no refresh; its access
     * token needs a proof with ath, which the RFC's proof lacks. */
    char *jwk = NULL, *thumb = NULL;
    CHECK(itk_jwk_thumbprint("{\"kty\":\"EC\",\"x\":\"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs\",\"y\":\"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA\",\"crv\":\"P-256\"}", &thumb) == ITK_STATUS_OK);
    CHECK(thumb && strcmp(thumb, jkt) == 0);
    itk_string_free(thumb);
    CHECK(itk_signing_key_create(a, "EdDSA", NULL, &jwk) == ITK_STATUS_OK);
    char req[512];
    snprintf(req, sizeof req, "{\"subject\": \"alice\", \"dpop_jkt\": \"%s\"}", jkt);
    CHECK(itk_token_pair_issue(a, req, &out) == ITK_STATUS_OK);
    mj *pair = mj_parse(out);
    char *refresh = strdup(mj_str(pair, "refresh_token")), *access = strdup(mj_str(pair, "access_token"));
    mj_free(pair);
    itk_string_free(out);
    out = NULL;
    const char *policy = "{\"algorithms\": [\"EdDSA\"]}";
    CHECK(itk_jwt_verify_issued(b, access, policy, &out) == ITK_STATUS_DPOP_BINDING_MISMATCH && out == NULL);
    char presented[4096];
    snprintf(presented, sizeof presented, "{\"dpop_proof\": \"%s\", \"htm\": \"POST\", \"htu\": \"https://server.example.com/token\"}", rfc);
    CHECK(itk_jwt_verify_issued_presented(b, access, policy, presented, 0, &out) == ITK_STATUS_DPOP_PROOF_INVALID);
    CHECK(itk_token_pair_refresh(b, refresh, &out) == ITK_STATUS_DPOP_BINDING_MISMATCH);
    /* The proof was used above (replayed now): refused, nothing spent. */
    CHECK(itk_token_pair_refresh_presented(b, refresh, presented, &out) == ITK_STATUS_DPOP_PROOF_REPLAYED);
    itk_manager *c = NULL;
    snprintf(path, sizeof path, "%s/dpop2.db", tmp);
    CHECK(itk_manager_open(path, opts, &c) == ITK_STATUS_OK);
    itk_string_free(jwk);
    CHECK(itk_signing_key_create(c, "EdDSA", NULL, &jwk) == ITK_STATUS_OK);
    CHECK(itk_token_pair_issue(c, req, &out) == ITK_STATUS_OK);
    pair = mj_parse(out);
    char *refresh2 = strdup(mj_str(pair, "refresh_token"));
    mj_free(pair);
    itk_string_free(out);
    out = NULL;
    CHECK(itk_token_pair_refresh_presented(c, refresh2, presented, &out) == ITK_STATUS_OK && out);
    itk_string_free(out);
    out = NULL;

    /* A certificate-bound pair. */
    snprintf(path, sizeof path, "%s/jwt/keys/rsa_cert.pem", dir);
    char *pem = mj_read_file(path);
    snprintf(path, sizeof path, "%s/jwt/keys/client_cert_b.pem", dir);
    char *other = mj_read_file(path);
    CHECK(itk_cert_thumbprint((const uint8_t *)pem, strlen(pem), &thumb) == ITK_STATUS_OK && thumb && strlen(thumb) == 43);
    snprintf(req, sizeof req, "{\"subject\": \"svc\", \"cert_thumbprint\": \"%s\"}", thumb);
    itk_string_free(thumb);
    CHECK(itk_token_pair_issue(c, req, &out) == ITK_STATUS_OK);
    pair = mj_parse(out);
    char *bound = strdup(mj_str(pair, "access_token"));
    mj_free(pair);
    itk_string_free(out);
    out = NULL;
    char *pem_json = json_string(pem), *other_json = json_string(other);
    char *with = malloc(strlen(pem_json) + 64), *with_other = malloc(strlen(other_json) + 64);
    sprintf(with, "{\"client_cert\": %s}", pem_json);
    sprintf(with_other, "{\"client_cert\": %s}", other_json);
    CHECK(itk_jwt_verify_issued_presented(c, bound, policy, with, 0, &out) == ITK_STATUS_OK && out);
    itk_string_free(out);
    out = NULL;
    CHECK(itk_jwt_verify_issued_presented(c, bound, policy, with_other, 0, &out) == ITK_STATUS_MTLS_BINDING_MISMATCH && out == NULL);
    CHECK(itk_jwt_verify_issued_presented(c, bound, policy, "{}", 0, &out) == ITK_STATUS_MTLS_BINDING_MISMATCH);
    /* The binding rule for claims another verifier checked. */
    char claims[256], *got = NULL;
    CHECK(itk_cert_thumbprint((const uint8_t *)pem, strlen(pem), &thumb) == ITK_STATUS_OK);
    snprintf(claims, sizeof claims, "{\"sub\": \"svc\", \"cnf\": {\"x5t#S256\": \"%s\"}}", thumb);
    itk_string_free(thumb);
    CHECK(itk_token_binding(claims, (const uint8_t *)pem, strlen(pem), 0, &got) == ITK_STATUS_OK && got == NULL);
    CHECK(itk_token_binding(claims, (const uint8_t *)other, strlen(other), 0, &got) == ITK_STATUS_MTLS_BINDING_MISMATCH);
    CHECK(itk_token_binding(claims, NULL, 0, 0, &got) == ITK_STATUS_MTLS_BINDING_MISMATCH);
    CHECK(itk_token_binding(claims, (const uint8_t *)"junk", 4, 0, &got) == ITK_STATUS_MTLS_BINDING_MISMATCH);
    snprintf(claims, sizeof claims, "{\"sub\": \"alice\", \"cnf\": {\"jkt\": \"%s\"}}", jkt);
    CHECK(itk_token_binding(claims, NULL, 0, 0, &got) == ITK_STATUS_DPOP_BINDING_MISMATCH && got == NULL);
    CHECK(itk_token_binding(claims, NULL, 0, 1, &got) == ITK_STATUS_OK && got && strcmp(got, jkt) == 0);
    itk_string_free(got);
    got = NULL;
    CHECK(itk_token_binding("{\"sub\": \"bob\"}", NULL, 0, 0, &got) == ITK_STATUS_OK && got == NULL);
    CHECK(itk_token_binding(NULL, NULL, 0, 0, &got) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_token_binding("\xff", NULL, 0, 0, &got) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_token_binding("{}", NULL, 0, 0, NULL) == ITK_STATUS_INVALID_ARGUMENT);
    /* Hostile input. */
    CHECK(itk_cert_thumbprint(NULL, 10, &thumb) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_cert_thumbprint((const uint8_t *)"junk", 4, &thumb) == ITK_STATUS_INVALID_KEY_MATERIAL);
    CHECK(itk_dpop_verify_proof(a, NULL, token_req, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_dpop_verify_proof(a, "\xff", token_req, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_dpop_verify_proof(a, rfc, "{\"htm\": \"POST\"}", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_dpop_verify_proof(a, rfc, "{\"htm\": \"POST\", \"htu\": \"https://x/\", \"extra\": 1}", &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwt_verify_issued_presented(c, bound, policy, "{\"dpop_proof\": \"x\"}", 0, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(itk_jwt_verify_issued_presented(c, bound, policy, NULL, 0, &out) == ITK_STATUS_INVALID_ARGUMENT);
    CHECK(out == NULL);
    free(with);
    free(with_other);
    free(pem_json);
    free(other_json);
    free(pem);
    free(other);
    free(bound);
    free(refresh);
    free(refresh2);
    free(access);
    itk_string_free(jwk);
    itk_manager_free(a);
    itk_manager_free(b);
    itk_manager_free(c);
    mj_free(doc);
    free(text);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s VECTORS_DIR TMP_DIR\n", argv[0]);
        return 2;
    }
    test_vectors(argv[1]);
    test_revocation_across_managers(argv[2]);
    test_hostile_input();
    test_jti(argv[2]);
    test_refresh(argv[2]);
    test_dpop(argv[1], argv[2]);
    printf("c capability: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
