/* C test of the irontoken ABI's JWTs: the shared vectors (with the claim
 * of each refusal), key material, managed signing keys and remote JWKS.
 * Usage: test_jwt VECTORS_DIR */
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

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]);
        return 2;
    }
    test_jwt(argv[1]);
    test_remote_jwks();
    test_managed_keys();
    printf("c jwt: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
