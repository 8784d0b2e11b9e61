/* A complete irontoken program: create, verify, revoke, audit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irontoken.h"

/* Prints the last error of this thread and exits. */
static void die(const char *what, itk_status s) {
    char msg[512];
    itk_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s: %s (%s)\n", what, itk_status_code(s), msg);
    exit(1);
}

int main(void) {
    remove("example.db");
    itk_manager *m = NULL;
    itk_status s = itk_manager_open("example.db", NULL, &m);
    if (s != ITK_STATUS_OK) die("open", s);

    char *key = NULL, *record = NULL;
    s = itk_key_create(m, "{\"owner\": \"alice\", \"scopes\": [\"read\"], \"expires_in\": 3600}", &key, &record);
    if (s != ITK_STATUS_OK) die("create", s);

    /* The record is JSON; its id is what revoke takes. */
    const char *at = strstr(record, "\"id\":\"");
    char id[64] = {0};
    if (!at || sscanf(at + 6, "%63[^\"]", id) != 1) die("record", ITK_STATUS_INTERNAL);

    const char *read[] = {"read"}, *write[] = {"write"};
    itk_verify_reason reason;
    if ((s = itk_key_verify(m, key, read, 1, &reason, NULL)) != ITK_STATUS_OK) die("verify", s);
    printf("with read:  %s\n", itk_verify_reason_code(reason)); /* VALID */
    if (reason != ITK_VERIFY_REASON_VALID) return 1;
    if ((s = itk_key_verify(m, key, write, 1, &reason, NULL)) != ITK_STATUS_OK) die("verify", s);
    printf("with write: %s\n", itk_verify_reason_code(reason)); /* INSUFFICIENT_SCOPE */

    if ((s = itk_key_revoke(m, id, "example", "ops", NULL)) != ITK_STATUS_OK) die("revoke", s);
    if ((s = itk_key_verify(m, key, NULL, 0, &reason, NULL)) != ITK_STATUS_OK) die("verify", s);
    printf("revoked:    %s\n", itk_verify_reason_code(reason)); /* REVOKED */
    if (reason != ITK_VERIFY_REASON_REVOKED) return 1;

    char *audit = NULL;
    if ((s = itk_audit_list(m, NULL, &audit)) != ITK_STATUS_OK) die("audit", s);
    printf("audit has key.revoke: %s\n", strstr(audit, "key.revoke") ? "yes" : "no");

    itk_string_free(audit);
    itk_string_free(key); /* wipes the plaintext, then frees */
    itk_string_free(record);
    itk_manager_free(m);
    puts("c-program: ok");
    return 0;
}
