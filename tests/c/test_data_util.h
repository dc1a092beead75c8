/* Helpers shared by the data tests (C99): a scratch directory, seeded random numbers, files. */
#ifndef DSABI_TEST_DATA_UTIL_H_
#define DSABI_TEST_DATA_UTIL_H_

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dsabi.h"

static char g_dir[256];

static inline void scratch_init(const char* name) {
    const char* t = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/dsabi-%s-XXXXXX", t && *t ? t : "/tmp", name);
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        exit(2);
    }
}

static inline const char* path_in(const char* file) {
    static char buf[8][512];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, file);
    return buf[k];
}

static inline void scratch_cleanup(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", g_dir);
}

static uint64_t g_seed = 0x243F6A8885A308D3ull;
static inline uint64_t rnd_u64(void) { /* splitmix64 */
    uint64_t z = (g_seed += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline uint32_t rnd_below(uint32_t n) { return (uint32_t)(rnd_u64() % n); }

static inline void write_file(const char* path, const void* data, size_t n) {
    FILE* f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static inline long file_size(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Overwrite n bytes at offset of a file. */
static inline void patch_file(const char* path, long offset, const void* data, size_t n) {
    FILE* f = fopen(path, "r+b");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, offset, SEEK_SET);
    fwrite(data, 1, n, f);
    fclose(f);
}

static inline void copy_file(const char* from, const char* to, long max_bytes) {
    FILE* a = fopen(from, "rb");
    FILE* b = fopen(to, "wb");
    char buf[65536];
    long left = max_bytes;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) {
        if (max_bytes >= 0 && (long)n > left) n = (size_t)left;
        fwrite(buf, 1, n, b);
        if (max_bytes >= 0 && (left -= (long)n) <= 0) break;
    }
    fclose(a);
    fclose(b);
}

/* A config for a one-rank world; prints the problems and returns NULL when it is invalid. Needs dsabi.h. */
static inline ds_config_t* parse_config(const char* json) {
    ds_config_t* cfg = NULL;
    ds_config_options_t co;
    ds_config_options_init(&co);
    co.world_size = 1;
    if (ds_config_parse(json, 0, &co, &cfg) != DS_OK) fprintf(stderr, "config: %s\n", ds_last_error());
    return cfg;
}

#endif
