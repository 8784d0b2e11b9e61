/* Verifies one API key against a database file: the C leg of `make demo`.
 * Usage: itk_verify DB_PATH   (the key is read from the IRONTOKEN_KEY
 * environment variable so it does not show in the process list).
 * Prints the reason code; exits 0 if VALID, 1 if refused, 2 on error. */
#include "irontoken.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const char *key = getenv("IRONTOKEN_KEY");
    if (argc != 2 || !key) {
        fprintf(stderr, "usage: IRONTOKEN_KEY=... %s DB_PATH\n", argv[0]);
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
