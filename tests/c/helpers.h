/* What the C test programs share: a manager in memory on a manual clock,
 * a verification, a key created with its id. */
#ifndef ITK_TEST_HELPERS_H
#define ITK_TEST_HELPERS_H

#include "irontoken.h"
#include "minijson.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

#define T0 1700000000

static inline itk_manager *open_memory(void) {
    itk_manager *m = NULL;
    itk_status s = itk_manager_open(":memory:", "{\"manual_clock_start\": 1700000000}", &m);
    CHECK(s == ITK_STATUS_OK && m != NULL);
    return m;
}

static inline itk_verify_reason verify(itk_manager *m, const char *key) {
    itk_verify_reason r = 99;
    itk_status s = itk_key_verify(m, key, NULL, 0, &r, NULL);
    CHECK(s == ITK_STATUS_OK);
    return r;
}

/* Creates a key; returns the plaintext (free with itk_string_free) and the id (free()). */
static inline char *create(itk_manager *m, const char *request, char **id) {
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

#endif
