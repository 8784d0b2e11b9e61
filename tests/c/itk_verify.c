/* Verifies one API key against a database file, or one JWT against a JWKS
 * file: the C leg of `make demo`.
 * Usage: itk_verify DB_PATH          (key in IRONTOKEN_KEY)
 *        itk_verify DB_PATH N OPTIONS_JSON  (N times itk_key_verify_with, one line each)
 *        itk_verify --jwt JWKS_FILE  (token in IRONTOKEN_JWT; ES256/EdDSA/RS256)
 *        itk_verify --cap DB_PATH REQUEST_JSON  (capability token in IRONTOKEN_CAP)
 * Secrets come from the environment so they do not show in the process list.
 * Prints the reason or error code; exits 0 if valid, 1 if refused, 2 on error. */
#include "irontoken.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) buf[n] = 0;
    fclose(f);
    return buf;
}

static int verify_jwt(const char *jwks_path) {
    const char *token = getenv("IRONTOKEN_JWT");
    char *jwks = read_all(jwks_path);
    if (!token || !jwks) {
        fprintf(stderr, "need IRONTOKEN_JWT and a readable JWKS file\n");
        free(jwks);
        return 2;
    }
    itk_jwt_verifier *v = NULL;
    itk_status s = itk_jwt_verifier_new(jwks, "{\"algorithms\": [\"ES256\", \"EdDSA\", \"RS256\"]}", &v);
    free(jwks);
    if (s != ITK_STATUS_OK) {
        fprintf(stderr, "bad JWKS: %s\n", itk_status_code(s));
        return 2;
    }
    char *json = NULL;
    s = itk_jwt_verifier_decode(v, token, NULL, &json);
    printf("%s\n", s == ITK_STATUS_OK ? "VALID" : itk_status_code(s));
    itk_string_free(json);
    itk_jwt_verifier_free(v);
    return s == ITK_STATUS_OK ? 0 : 1;
}

/* Authorizes REQUEST_JSON under the capability token in IRONTOKEN_CAP. */
static int authorize_cap(const char *db, const char *request) {
    const char *token = getenv("IRONTOKEN_CAP");
    itk_manager *m = NULL;
    char msg[512];
    if (!token || itk_manager_open(db, NULL, &m) != ITK_STATUS_OK) {
        fprintf(stderr, "need IRONTOKEN_CAP and a database\n");
        return 2;
    }
    char *answer = NULL;
    int allowed = 0;
    if (itk_cap_authorize(m, token, request, &allowed, &answer) != ITK_STATUS_OK) {
        itk_last_error_message(msg, sizeof msg);
        fprintf(stderr, "authorize failed: %s\n", msg);
        itk_manager_free(m);
        return 2;
    }
    /* The reason, cut out of the answer's JSON ("reason":"..."). */
    const char *r = strstr(answer, "\"reason\":\"");
    if (r) {
        r += 10;
        printf("%.*s\n", (int)strcspn(r, "\""), r);
    }
    itk_string_free(answer);
    itk_manager_free(m);
    return allowed ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--jwt") == 0) return verify_jwt(argv[2]);
    if (argc == 4 && strcmp(argv[1], "--cap") == 0) return authorize_cap(argv[2], argv[3]);
    const char *key = getenv("IRONTOKEN_KEY");
    if ((argc != 2 && argc != 4) || !key) {
        fprintf(stderr, "usage: IRONTOKEN_KEY=... %s DB_PATH [N OPTIONS_JSON]\n", argv[0]);
        return 2;
    }
    itk_manager *m = NULL;
    char msg[512];
    if (itk_manager_open(argv[1], NULL, &m) != ITK_STATUS_OK) {
        itk_last_error_message(msg, sizeof msg);
        fprintf(stderr, "open failed: %s\n", msg);
        return 2;
    }
    itk_verify_reason reason;
    if (argc == 4) {
        int n = atoi(argv[2]);
        for (int i = 0; i < n; i++) {
            if (itk_key_verify_with(m, key, argv[3], &reason, NULL) != ITK_STATUS_OK) {
                itk_last_error_message(msg, sizeof msg);
                fprintf(stderr, "verify failed: %s\n", msg);
                itk_manager_free(m);
                return 2;
            }
            printf("%s\n", itk_verify_reason_code(reason));
        }
        itk_manager_free(m);
        return 0;
    }
    if (itk_key_verify(m, key, NULL, 0, &reason, NULL) != ITK_STATUS_OK) {
        itk_last_error_message(msg, sizeof msg);
        fprintf(stderr, "verify failed: %s\n", msg);
        itk_manager_free(m);
        return 2;
    }
    printf("%s\n", itk_verify_reason_code(reason));
    itk_manager_free(m);
    return reason == ITK_VERIFY_REASON_VALID ? 0 : 1;
}
