/* The installed C library, found through pkg-config: create and verify a key. */
#include <irontoken.h>
#include <stdio.h>

int main(void) {
    itk_manager *m = NULL;
    char *key = NULL;
    itk_verify_reason reason = ITK_VERIFY_REASON_NOT_FOUND;
    if (itk_manager_open(":memory:", NULL, &m) != ITK_STATUS_OK) return 1;
    if (itk_key_create(m, "{\"owner\": \"c\", \"scopes\": [\"read\"]}", &key, NULL) != ITK_STATUS_OK) return 2;
    const char *need[] = {"read"};
    if (itk_key_verify(m, key, need, 1, &reason, NULL) != ITK_STATUS_OK) return 3;
    itk_string_free(key);
    itk_manager_free(m);
    if (reason != ITK_VERIFY_REASON_VALID) return 4;
    printf("c smoke: VALID\n");
    return 0;
}
