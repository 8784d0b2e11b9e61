/* A tiny JSON reader for the C tests: enough for the vector files and the
 * records irontoken returns. Not a general-purpose parser: no validation
 * beyond what the tests need, aborts on syntax errors. */
#ifndef MINIJSON_H
#define MINIJSON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { MJ_NULL, MJ_BOOL, MJ_NUM, MJ_STR, MJ_ARR, MJ_OBJ } mj_type;

typedef struct mj {
    mj_type type;
    int boolean;
    double num;
    char *str;          /* MJ_STR: decoded UTF-8, NUL-terminated */
    size_t len;         /* MJ_ARR / MJ_OBJ: number of children */
    char **keys;        /* MJ_OBJ */
    struct mj **items;  /* MJ_ARR / MJ_OBJ */
} mj;

static __attribute__((unused)) void mj_fail(const char *why) {
    fprintf(stderr, "minijson: %s\n", why);
    abort();
}

static __attribute__((unused)) void mj_ws(const char **p) {
    while (**p == ' ' || **p == '\n' || **p == '\r' || **p == '\t') (*p)++;
}

static __attribute__((unused)) void mj_utf8(char **o, unsigned cp) {
    if (cp < 0x80) { *(*o)++ = (char)cp; }
    else if (cp < 0x800) { *(*o)++ = (char)(0xC0 | (cp >> 6)); *(*o)++ = (char)(0x80 | (cp & 0x3F)); }
    else { *(*o)++ = (char)(0xE0 | (cp >> 12)); *(*o)++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *(*o)++ = (char)(0x80 | (cp & 0x3F)); }
}

static __attribute__((unused)) char *mj_string(const char **p) {
    if (**p != '"') mj_fail("expected string");
    (*p)++;
    const char *start = *p;
    size_t cap = 0;
    while (start[cap] && start[cap] != '"') { if (start[cap] == '\\') cap++; cap++; }
    char *out = malloc(cap * 3 + 1), *o = out;
    while (**p != '"') {
        if (!**p) mj_fail("unterminated string");
        if (**p == '\\') {
            (*p)++;
            switch (**p) {
            case 'n': *o++ = '\n'; break;
            case 't': *o++ = '\t'; break;
            case 'r': *o++ = '\r'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'u': { unsigned cp = 0; for (int i = 0; i < 4; i++) { (*p)++; char c = **p; cp = cp * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 32) - 'a' + 10); } mj_utf8(&o, cp); break; }
            default: *o++ = **p;
            }
            (*p)++;
        } else {
            *o++ = *(*p)++;
        }
    }
    (*p)++;
    *o = 0;
    return out;
}

static __attribute__((unused)) mj *mj_value(const char **p);

static __attribute__((unused)) mj *mj_new(mj_type t) {
    mj *v = calloc(1, sizeof *v);
    v->type = t;
    return v;
}

static __attribute__((unused)) void mj_push(mj *v, char *key, mj *item) {
    v->items = realloc(v->items, (v->len + 1) * sizeof *v->items);
    v->keys = realloc(v->keys, (v->len + 1) * sizeof *v->keys);
    v->items[v->len] = item;
    v->keys[v->len] = key;
    v->len++;
}

static __attribute__((unused)) mj *mj_value(const char **p) {
    mj_ws(p);
    mj *v;
    if (**p == '{') {
        v = mj_new(MJ_OBJ);
        (*p)++;
        mj_ws(p);
        if (**p == '}') { (*p)++; return v; }
        for (;;) {
            mj_ws(p);
            char *k = mj_string(p);
            mj_ws(p);
            if (*(*p)++ != ':') mj_fail("expected ':'");
            mj_push(v, k, mj_value(p));
            mj_ws(p);
            if (**p == ',') { (*p)++; continue; }
            if (*(*p)++ != '}') mj_fail("expected '}'");
            return v;
        }
    }
    if (**p == '[') {
        v = mj_new(MJ_ARR);
        (*p)++;
        mj_ws(p);
        if (**p == ']') { (*p)++; return v; }
        for (;;) {
            mj_push(v, NULL, mj_value(p));
            mj_ws(p);
            if (**p == ',') { (*p)++; continue; }
            if (*(*p)++ != ']') mj_fail("expected ']'");
            return v;
        }
    }
    if (**p == '"') { v = mj_new(MJ_STR); v->str = mj_string(p); return v; }
    if (!strncmp(*p, "true", 4)) { *p += 4; v = mj_new(MJ_BOOL); v->boolean = 1; return v; }
    if (!strncmp(*p, "false", 5)) { *p += 5; return mj_new(MJ_BOOL); }
    if (!strncmp(*p, "null", 4)) { *p += 4; return mj_new(MJ_NULL); }
    v = mj_new(MJ_NUM);
    char *end;
    v->num = strtod(*p, &end);
    if (end == *p) mj_fail("unexpected character");
    *p = end;
    return v;
}

/* Parses a NUL-terminated JSON text. */
static __attribute__((unused)) mj *mj_parse(const char *text) {
    const char *p = text;
    return mj_value(&p);
}

/* The member `key` of an object, or NULL. */
static __attribute__((unused)) mj *mj_get(const mj *v, const char *key) {
    if (!v || v->type != MJ_OBJ) return NULL;
    for (size_t i = 0; i < v->len; i++)
        if (!strcmp(v->keys[i], key)) return v->items[i];
    return NULL;
}

/* The string member `key`, or NULL. */
static __attribute__((unused)) const char *mj_str(const mj *v, const char *key) {
    mj *m = mj_get(v, key);
    return m && m->type == MJ_STR ? m->str : NULL;
}

static __attribute__((unused)) void mj_free(mj *v) {
    if (!v) return;
    for (size_t i = 0; i < v->len; i++) { free(v->keys[i]); mj_free(v->items[i]); }
    free(v->keys);
    free(v->items);
    free(v->str);
    free(v);
}

/* Appends the JSON text of `v` to the growing buffer *buf (length *len, capacity *cap). */
static __attribute__((unused)) void mj_put(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
}

static __attribute__((unused)) void mj_put_str(char **buf, size_t *len, size_t *cap, const char *s) {
    mj_put(buf, len, cap, "\"", 1);
    for (const char *c = s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') { esc[0] = '\\'; esc[1] = *c; mj_put(buf, len, cap, esc, 2); }
        else if ((unsigned char)*c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)*c); mj_put(buf, len, cap, esc, 6); }
        else mj_put(buf, len, cap, c, 1);
    }
    mj_put(buf, len, cap, "\"", 1);
}

static __attribute__((unused)) void mj_dump_into(const mj *v, char **buf, size_t *len, size_t *cap) {
    char num[64];
    switch (v->type) {
    case MJ_NULL: mj_put(buf, len, cap, "null", 4); break;
    case MJ_BOOL: v->boolean ? mj_put(buf, len, cap, "true", 4) : mj_put(buf, len, cap, "false", 5); break;
    case MJ_NUM: snprintf(num, sizeof num, "%.17g", v->num); mj_put(buf, len, cap, num, strlen(num)); break;
    case MJ_STR: mj_put_str(buf, len, cap, v->str); break;
    case MJ_ARR:
    case MJ_OBJ:
        mj_put(buf, len, cap, v->type == MJ_ARR ? "[" : "{", 1);
        for (size_t i = 0; i < v->len; i++) {
            if (i) mj_put(buf, len, cap, ",", 1);
            if (v->type == MJ_OBJ) { mj_put_str(buf, len, cap, v->keys[i]); mj_put(buf, len, cap, ":", 1); }
            mj_dump_into(v->items[i], buf, len, cap);
        }
        mj_put(buf, len, cap, v->type == MJ_ARR ? "]" : "}", 1);
        break;
    }
}

/* The JSON text of `v` (malloc'd). */
static __attribute__((unused)) char *mj_dump(const mj *v) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    mj_put(&buf, &len, &cap, "", 0);
    mj_dump_into(v, &buf, &len, &cap);
    return buf;
}

/* Reads a whole file into a NUL-terminated buffer. */
static __attribute__((unused)) char *mj_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); abort(); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) mj_fail("short read");
    buf[n] = 0;
    fclose(f);
    return buf;
}

#endif
