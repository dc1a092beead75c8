/* A 2 GB dataset (2^30 u16 tokens) is written and read back across the whole file with bounded
 * resident memory: VmHWM / VmRSS from /proc/self/status are checked against fixed bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "dsabi.h"
#include "minitest.h"
#include "test_data_util.h"

static const uint64_t kTokens = 1ull << 30; /* 2 GiB of u16 */
static const uint64_t kDocs = 1024;

static int32_t token_at(uint64_t i) { return (int32_t)((uint32_t)(i * 0x9E3779B1u) >> 16); }

static long status_kb(const char* key) { /* "VmHWM:" etc., in kB */
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    const size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0) v = strtol(line + n, NULL, 10);
    if (f) fclose(f);
    return v;
}

static void reset_hwm(void) { /* writing "5" to clear_refs resets VmHWM (Linux >= 4.0) */
    FILE* f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char g_path[512];

TEST(write_2gb_with_bounded_memory) {
    const double t0 = now();
    const long base = status_kb("VmRSS:");
    reset_hwm();
    ds_data_writer_options_t o;
    ds_data_writer_options_init(&o);
    o.vocab_size = 65536;
    ds_data_writer_t* w = NULL;
    CHECK_OK(ds_data_writer_create(g_path, &o, &w));
    const uint64_t chunk = 1u << 20;
    int32_t* buf = malloc(sizeof(int32_t) * chunk);
    const uint64_t per_doc = kTokens / kDocs;
    for (uint64_t i = 0; i < kTokens; i += chunk) {
        for (uint64_t k = 0; k < chunk; ++k) buf[k] = token_at(i + k);
        CHECK_OK(ds_data_writer_append(w, buf, chunk));
        if ((i + chunk) % per_doc == 0) CHECK_OK(ds_data_writer_end_document(w));
    }
    CHECK_OK(ds_data_writer_commit(w));
    ds_data_writer_destroy(w);
    free(buf);
    const long hwm = status_kb("VmHWM:");
    CHECK_EQ_INT(file_size(g_path), (long)(64 + 2 * kTokens + 8 * (kDocs + 1)));
    printf("write: 2 GiB in %.1f s, VmHWM %ld MB (%ld MB before)\n", now() - t0, hwm / 1024, base / 1024);
    CHECK(hwm - base < 64 * 1024); /* the 8 MiB write buffer + the 4 MiB chunk, far below 2 GB */
}

TEST(read_across_2gb_with_bounded_memory) {
    const double t0 = now();
    reset_hwm();
    const long base = status_kb("VmRSS:");
    ds_data_options_t o;
    ds_data_options_init(&o);
    o.max_resident_bytes = 64ull << 20;
    ds_data_t* d = NULL;
    CHECK_OK(ds_data_open(g_path, &o, &d));
    ds_data_info_t info;
    ds_data_info_init(&info);
    CHECK_OK(ds_data_get_info(d, &info));
    CHECK_EQ_INT(info.n_tokens, kTokens);
    CHECK_EQ_INT(info.n_documents, kDocs);
    /* every token, sequentially, in 1 Mi-token pieces */
    const uint64_t chunk = 1u << 20;
    int32_t* buf = malloc(sizeof(int32_t) * chunk);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < kTokens; i += chunk) {
        CHECK_OK(ds_data_read_tokens(d, i, chunk, buf));
        for (uint64_t k = 0; k < chunk; ++k) bad += buf[k] != token_at(i + k);
    }
    CHECK_EQ_INT(bad, 0);
    free(buf);
    const double t1 = now();
    printf("after the sequential pass: VmRSS %ld MB (file %ld MB, anon %ld MB), VmHWM %ld MB\n", status_kb("VmRSS:") / 1024,
           status_kb("RssFile:") / 1024, status_kb("RssAnon:") / 1024, status_kb("VmHWM:") / 1024);
    /* random windows across the whole file through the loader (2 workers) */
    ds_data_loader_options_t lo;
    ds_data_loader_options_init(&lo);
    lo.seq_len = 1025;
    lo.window_stride = 1024;
    lo.micro_batch_size = 16;
    lo.num_workers = 2;
    lo.seed = 1;
    lo.pin_memory = 0; /* the bound is about the data path: on a GPU machine pinned batches would
                          create a CUDA context, which alone takes ~250 MB of host memory */
    ds_data_loader_t* l = NULL;
    CHECK_OK(ds_data_loader_create(d, &lo, &l));
    uint64_t lo_first = UINT64_MAX, hi_first = 0;
    for (int n = 0; n < 5000; ++n) {
        ds_data_batch_t* b = NULL;
        CHECK_OK(ds_data_loader_next(l, &b));
        ds_tensor_t* t = NULL, *s = NULL;
        ds_data_batch_get_tensor(b, DS_DATA_FIELD_TOKENS, &t);
        ds_data_batch_get_tensor(b, DS_DATA_FIELD_SAMPLE_IDS, &s);
        int32_t* tok = NULL;
        int64_t* sid = NULL;
        ds_tensor_get_data(t, (void**)&tok);
        ds_tensor_get_data(s, (void**)&sid);
        for (int r = 0; r < 16; ++r) {
            const uint64_t first = (uint64_t)sid[r] * 1024;
            lo_first = first < lo_first ? first : lo_first;
            hi_first = first > hi_first ? first : hi_first;
            bad += tok[r * 1025] != token_at(first);
            bad += tok[r * 1025 + 1024] != token_at(first + 1024);
        }
        ds_tensor_destroy(t);
        ds_tensor_destroy(s);
        ds_data_batch_destroy(b);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(lo_first < kTokens / 100 && hi_first > kTokens / 100 * 99); /* the windows span the file */
    printf("after the loader: VmRSS %ld MB (file %ld MB, anon %ld MB)\n", status_kb("VmRSS:") / 1024,
           status_kb("RssFile:") / 1024, status_kb("RssAnon:") / 1024);
    ds_data_loader_destroy(l);
    const long hwm = status_kb("VmHWM:"), rss = status_kb("VmRSS:");
    printf("read: 2 GiB sequentially in %.1f s, 80000 random windows in %.1f s; VmHWM %ld MB, VmRSS %ld MB (%ld MB before)\n",
           t1 - t0, now() - t1, hwm / 1024, rss / 1024, base / 1024);
    CHECK(hwm - base < 256 * 1024); /* 64 MiB residency budget + large folios + batches: bounded, not 2 GB */
    CHECK(rss - base < 256 * 1024);
    ds_data_close(d);
}

int main(void) {
    scratch_init("data-large");
    snprintf(g_path, sizeof g_path, "%s", path_in("big.dst"));
    RUN(write_2gb_with_bounded_memory);
    RUN(read_across_2gb_with_bounded_memory);
    scratch_cleanup();
    return minitest_report();
}
