/* Multi-rank tests of ds_comm_*, run as real processes under dsrun:
 *
 *     dsrun -n 4 --master-port 0 dist_comm collectives [--device cuda]
 *
 * Modes: collectives, async, split, p2p, barrier, mismatch, logger, failure VICTIM, abort, hosts
 * ADDR0 ADDR1. Every rank computes the expected result of every collective itself from the seeded
 * data of all ranks (integer-valued, so that any reduction order gives the same bits) and compares
 * bit for bit. The seed is fresh per run, chosen by rank 0, broadcast, and printed. Exit status 0
 * means every check of this rank passed.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dsabi.h"
#include "minitest.h"

static int g_rank, g_n, g_dev_type = DS_DEV_CPU, g_dev_index = 0;

/* Every CHECK that failed anywhere in this rank decides the exit status. */
static int report(const char* mode) {
    (void)minitest_report; /* the harness's RUN counters are not used here: checks are */
    if (minitest_failed_checks == 0) {
        printf("%s: PASS\n", mode);
        return 0;
    }
    printf("%s: FAIL (%d failed checks)\n", mode, minitest_failed_checks);
    return 1;
}
static uint64_t g_seed;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int64_t env_i64(const char* name, int64_t dflt) {
    const char* v = getenv(name);
    return v && *v ? strtoll(v, NULL, 10) : dflt;
}

/* ---- reference encodings, written from the IEEE-754 definitions ------------------------------ */

static double decode_small(uint16_t bits, int ebits, int mbits) {
    int bias = (1 << (ebits - 1)) - 1;
    uint32_t e = (bits >> mbits) & ((1u << ebits) - 1), m = bits & ((1u << mbits) - 1);
    double s = (bits >> (ebits + mbits)) & 1 ? -1.0 : 1.0;
    if (e == (1u << ebits) - 1) return m ? NAN : s * INFINITY;
    if (e == 0) return s * ldexp((double)m, 1 - bias - mbits);
    return s * ldexp((double)(m | (1u << mbits)), (int)e - bias - mbits);
}

/* double -> binary16 / bfloat16 with one rounding, to nearest, ties to even */
static uint16_t encode_small(double v, int ebits, int mbits) {
    int bias = (1 << (ebits - 1)) - 1;
    uint16_t sign = signbit(v) ? (uint16_t)(1u << (ebits + mbits)) : 0;
    double a = fabs(v);
    uint16_t inf = (uint16_t)(((1u << ebits) - 1) << mbits);
    if (isnan(v)) return (uint16_t)(inf | (1u << (mbits - 1)));
    if (a == 0) return sign;
    int e;
    frexp(a, &e);
    int E = e - 1; /* a in [2^E, 2^(E+1)) */
    if (E < 1 - bias) {
        double q = nearbyint(ldexp(a, mbits - (1 - bias)));
        return (uint16_t)(sign | (uint16_t)q);
    }
    double q = nearbyint(ldexp(a, mbits - E));
    if (q >= ldexp(1.0, mbits + 1)) {
        q /= 2;
        E++;
    }
    if (E > bias) return (uint16_t)(sign | inf);
    return (uint16_t)(sign | (uint16_t)((E + bias) << mbits) | (uint16_t)(q - ldexp(1.0, mbits)));
}

static uint64_t esize(int32_t dt) {
    uint64_t s = 0;
    ds_dtype_size(dt, &s);
    return s;
}

static void put(void* base, int32_t dt, int64_t i, double v) {
    char* p = (char*)base + i * (int64_t)esize(dt);
    switch (dt) {
        case DS_DTYPE_F32: { float x = (float)v; memcpy(p, &x, 4); break; }
        case DS_DTYPE_F64: memcpy(p, &v, 8); break;
        case DS_DTYPE_F16: { uint16_t x = encode_small(v, 5, 10); memcpy(p, &x, 2); break; }
        case DS_DTYPE_BF16: { uint16_t x = encode_small(v, 8, 7); memcpy(p, &x, 2); break; }
        case DS_DTYPE_I8: { int8_t x = (int8_t)v; memcpy(p, &x, 1); break; }
        case DS_DTYPE_U8: { uint8_t x = (uint8_t)v; memcpy(p, &x, 1); break; }
        case DS_DTYPE_I32: { int32_t x = (int32_t)v; memcpy(p, &x, 4); break; }
        case DS_DTYPE_I64: { int64_t x = (int64_t)v; memcpy(p, &x, 8); break; }
    }
}

static double get(const void* base, int32_t dt, int64_t i) {
    const char* p = (const char*)base + i * (int64_t)esize(dt);
    switch (dt) {
        case DS_DTYPE_F32: { float x; memcpy(&x, p, 4); return x; }
        case DS_DTYPE_F64: { double x; memcpy(&x, p, 8); return x; }
        case DS_DTYPE_F16: { uint16_t x; memcpy(&x, p, 2); return decode_small(x, 5, 10); }
        case DS_DTYPE_BF16: { uint16_t x; memcpy(&x, p, 2); return decode_small(x, 8, 7); }
        case DS_DTYPE_I8: { int8_t x; memcpy(&x, p, 1); return x; }
        case DS_DTYPE_U8: { uint8_t x; memcpy(&x, p, 1); return x; }
        case DS_DTYPE_I32: { int32_t x; memcpy(&x, p, 4); return x; }
        case DS_DTYPE_I64: { int64_t x; memcpy(&x, p, 8); return (double)x; }
    }
    return NAN;
}

static int is_int(int32_t dt) { return dt == DS_DTYPE_I8 || dt == DS_DTYPE_U8 || dt == DS_DTYPE_I32 || dt == DS_DTYPE_I64; }

/* ---- data: every rank can compute every rank's input ------------------------------------------ */

static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Integer in [lo, hi] for (case, rank, element). */
static double value(int c, int r, int64_t i, int lo, int hi) {
    uint64_t h = mix(g_seed ^ mix((uint64_t)c * 1000003u ^ mix((uint64_t)r * 7919u ^ mix((uint64_t)i))));
    return lo + (double)(h % (uint64_t)(hi - lo + 1));
}

/* Value range that keeps every reduction of n ranks exact in dtype dt. */
static void range_for(int32_t dt, int32_t op, int* lo, int* hi) {
    int u = dt == DS_DTYPE_U8;
    switch (op) {
        case DS_REDUCE_PROD: *lo = u ? 0 : -2; *hi = u ? 3 : 2; break;
        case DS_REDUCE_MAX:
        case DS_REDUCE_MIN: *lo = u ? 0 : -100; *hi = u ? 255 : 100; break;
        default: *lo = u ? 0 : -8; *hi = u ? 15 : 8; break;
    }
    if (dt == DS_DTYPE_I8 && (op == DS_REDUCE_MAX || op == DS_REDUCE_MIN)) *hi = 100;
}

/* The reduction of element i over ranks (exact in double for these ranges). */
static double reduce_ref(int c, int64_t i, int32_t dt, int32_t op, int lo, int hi, int n) {
    double acc = value(c, 0, i, lo, hi);
    for (int r = 1; r < n; ++r) {
        double v = value(c, r, i, lo, hi);
        switch (op) {
            case DS_REDUCE_PROD: acc *= v; break;
            case DS_REDUCE_MAX: acc = v > acc ? v : acc; break;
            case DS_REDUCE_MIN: acc = v < acc ? v : acc; break;
            default: acc += v; break;
        }
    }
    if (op == DS_REDUCE_AVG) {
        if (is_int(dt)) return (double)((int64_t)acc / n); /* truncation toward zero */
        return acc / n;
    }
    return acc;
}

/* ---- tensors on the chosen device ------------------------------------------------------------- */

typedef struct {
    ds_tensor_t* t;    /* on the test device */
    ds_tensor_t* host; /* CPU mirror */
    void* h;
    int64_t n;
    int32_t dt;
} buf_t;

static buf_t make(int32_t dt, int64_t n) {
    buf_t b = {NULL, NULL, NULL, n, dt};
    CHECK_OK(ds_tensor_create(dt, 1, &n, DS_DEV_CPU, 0, &b.host));
    ds_tensor_get_data(b.host, &b.h);
    if (g_dev_type == DS_DEV_CPU) {
        b.t = b.host;
    } else {
        CHECK_OK(ds_tensor_create(dt, 1, &n, g_dev_type, g_dev_index, &b.t));
    }
    return b;
}
static void upload(buf_t* b) {
    if (b->t != b->host) CHECK_OK(ds_tensor_copy(b->t, b->host));
}
static void download(buf_t* b) {
    if (b->t != b->host) CHECK_OK(ds_tensor_copy(b->host, b->t));
}
static void drop(buf_t* b) {
    if (b->t != b->host) ds_tensor_destroy(b->t);
    ds_tensor_destroy(b->host);
}

/* Compare element i of b with the expected value; print the first few differences. */
static int g_reported;
static void expect(const char* what, const buf_t* b, int64_t i, double want) {
    double got = get(b->h, b->dt, i);
    double tol = 0;
    if (g_dev_type == DS_DEV_CUDA && strstr(what, "avg")) /* NCCL averages by pre-scaling */
        tol = is_int(b->dt) ? 1 : fabs(want) * (b->dt == DS_DTYPE_BF16 ? 1.0 / 64 : b->dt == DS_DTYPE_F16 ? 1.0 / 512 : 1e-6);
    if (fabs(got - want) > tol || (isnan(got) != isnan(want))) {
        minitest_failed_checks++;
        if (g_reported++ < 12)
            fprintf(stderr, "MISMATCH %s dtype %s n=%d: element %lld is %.17g, expected %.17g\n", what,
                    ds_dtype_name(b->dt), g_n, (long long)i, got, want);
    }
}

static const int32_t k_dtypes[] = {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16, DS_DTYPE_F64,
                                   DS_DTYPE_I8,  DS_DTYPE_U8,  DS_DTYPE_I32,  DS_DTYPE_I64};
static const char* const k_ops[] = {"sum", "avg", "max", "min", "prod"};

static ds_comm_t* join(int32_t check, const ds_config_t* cfg) {
    ds_comm_options_t o;
    ds_comm_options_init(&o);
    o.timeout_ms = (int32_t)env_i64("DIST_TIMEOUT_MS", 30000);
    o.check_mismatch = check;
    o.config = cfg;
    const char* backend = getenv("DIST_BACKEND"); /* gloo: CUDA tensors staged through host memory */
    if (backend && strcmp(backend, "gloo") == 0) o.backend = DS_COMM_BACKEND_GLOO;
    if (backend && strcmp(backend, "nccl") == 0) o.backend = DS_COMM_BACKEND_NCCL;
    if (g_dev_type == DS_DEV_CUDA) {
        int32_t ngpu = 0;
        ds_dev_count(DS_DEV_CUDA, &ngpu);
        if (ngpu < env_i64("LOCAL_WORLD_SIZE", 1)) {
            printf("SKIPPED: %d CUDA devices for %lld local ranks\n", ngpu, (long long)env_i64("LOCAL_WORLD_SIZE", 1));
            exit(77);
        }
    }
    ds_comm_t* c = NULL;
    ds_status_t st = ds_comm_create(&o, &c);
    if (st != DS_OK) {
        fprintf(stderr, "ds_comm_create failed: %s\n", ds_last_error());
        exit(3);
    }
    ds_comm_get_rank(c, &g_rank);
    ds_comm_get_world_size(c, &g_n);
    if (g_dev_type == DS_DEV_CUDA) {
        int32_t lr = 0;
        ds_comm_get_local_rank(c, &lr);
        g_dev_index = lr;
    }
    return c;
}

/* Rank 0 picks the seed; everybody learns it through a broadcast (checked later by the data). */
static void agree_seed(ds_comm_t* c) {
    int64_t one = 1;
    ds_tensor_t* s = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_I64, 1, &one, DS_DEV_CPU, 0, &s));
    int64_t* p = NULL;
    ds_tensor_get_data(s, (void**)&p);
    p[0] = (int64_t)env_i64("DIST_SEED", 0);
    if (p[0] == 0 && g_rank == 0) p[0] = (int64_t)(((uint64_t)time(NULL) * 2654435761u) ^ (uint64_t)getpid()) & 0x7fffffff;
    CHECK_OK(ds_comm_broadcast(c, s, 0, NULL));
    g_seed = (uint64_t)p[0];
    if (g_rank == 0) printf("seed %llu (rerun with DIST_SEED=%llu)\n", (unsigned long long)g_seed, (unsigned long long)g_seed);
    ds_tensor_destroy(s);
}

/* ---- modes ---------------------------------------------------------------------------------- */

static int g_case;

static void test_all_reduce(ds_comm_t* c, int32_t dt, int32_t op, int64_t n) {
    int k = ++g_case, lo, hi;
    range_for(dt, op, &lo, &hi);
    buf_t b = make(dt, n);
    for (int64_t i = 0; i < n; ++i) put(b.h, dt, i, value(k, g_rank, i, lo, hi));
    upload(&b);
    CHECK_OK(ds_comm_all_reduce(c, b.t, op, NULL));
    download(&b);
    char what[64];
    snprintf(what, sizeof what, "all_reduce(%s)", k_ops[op]);
    for (int64_t i = 0; i < n; ++i) {
        double want = reduce_ref(k, i, dt, op, lo, hi, g_n);
        /* the expected value as the dtype holds it */
        char cell[8];
        put(cell, dt, 0, want);
        expect(what, &b, i, get(cell, dt, 0));
    }
    drop(&b);
}

static void test_reduce(ds_comm_t* c, int32_t dt, int32_t op, int64_t n) {
    int k = ++g_case, lo, hi, root = k % g_n;
    range_for(dt, op, &lo, &hi);
    buf_t b = make(dt, n);
    for (int64_t i = 0; i < n; ++i) put(b.h, dt, i, value(k, g_rank, i, lo, hi));
    upload(&b);
    CHECK_OK(ds_comm_reduce(c, b.t, op, root, NULL));
    download(&b);
    if (g_rank == root) {
        char what[64];
        snprintf(what, sizeof what, "reduce(%s, root %d)", k_ops[op], root);
        for (int64_t i = 0; i < n; ++i) {
            char cell[8];
            put(cell, dt, 0, reduce_ref(k, i, dt, op, lo, hi, g_n));
            expect(what, &b, i, get(cell, dt, 0));
        }
    }
    drop(&b);
}

static void test_broadcast(ds_comm_t* c, int32_t dt, int64_t n) {
    int k = ++g_case, root = (k + 1) % g_n;
    buf_t b = make(dt, n);
    for (int64_t i = 0; i < n; ++i) put(b.h, dt, i, value(k, g_rank, i, 0, 100));
    upload(&b);
    CHECK_OK(ds_comm_broadcast(c, b.t, root, NULL));
    download(&b);
    for (int64_t i = 0; i < n; ++i) expect("broadcast", &b, i, value(k, root, i, 0, 100));
    drop(&b);
}

static void test_all_gather(ds_comm_t* c, int32_t dt, int64_t n, int as_list) {
    int k = ++g_case;
    buf_t in = make(dt, n), out = make(dt, n * g_n);
    for (int64_t i = 0; i < n; ++i) put(in.h, dt, i, value(k, g_rank, i, 0, 100));
    upload(&in);
    if (!as_list) {
        CHECK_OK(ds_comm_all_gather(c, in.t, out.t, NULL));
        download(&out);
        for (int r = 0; r < g_n; ++r)
            for (int64_t i = 0; i < n; ++i) expect("all_gather", &out, r * n + i, value(k, r, i, 0, 100));
    } else {
        buf_t parts[8];
        ds_tensor_t* outs[8];
        for (int r = 0; r < g_n; ++r) {
            parts[r] = make(dt, n);
            outs[r] = parts[r].t;
        }
        CHECK_OK(ds_comm_all_gather_list(c, in.t, outs, g_n, NULL));
        for (int r = 0; r < g_n; ++r) {
            download(&parts[r]);
            for (int64_t i = 0; i < n; ++i) expect("all_gather_list", &parts[r], i, value(k, r, i, 0, 100));
            drop(&parts[r]);
        }
    }
    drop(&in);
    drop(&out);
}

static void test_reduce_scatter(ds_comm_t* c, int32_t dt, int32_t op, int64_t n) {
    int k = ++g_case, lo, hi;
    range_for(dt, op, &lo, &hi);
    buf_t in = make(dt, n * g_n), out = make(dt, n);
    for (int64_t i = 0; i < n * g_n; ++i) put(in.h, dt, i, value(k, g_rank, i, lo, hi));
    upload(&in);
    CHECK_OK(ds_comm_reduce_scatter(c, in.t, out.t, op, NULL));
    download(&out);
    char what[64];
    snprintf(what, sizeof what, "reduce_scatter(%s)", k_ops[op]);
    for (int64_t i = 0; i < n; ++i) {
        char cell[8];
        put(cell, dt, 0, reduce_ref(k, g_rank * n + i, dt, op, lo, hi, g_n));
        expect(what, &out, i, get(cell, dt, 0));
    }
    drop(&in);
    drop(&out);
}

static void test_all_to_all(ds_comm_t* c, int32_t dt, int64_t chunk) {
    int k = ++g_case;
    buf_t in = make(dt, chunk * g_n), out = make(dt, chunk * g_n);
    for (int64_t i = 0; i < chunk * g_n; ++i) put(in.h, dt, i, value(k, g_rank, i, 0, 100));
    upload(&in);
    CHECK_OK(ds_comm_all_to_all(c, in.t, out.t, NULL));
    download(&out);
    /* chunk r of my output is chunk <my rank> of rank r's input */
    for (int r = 0; r < g_n; ++r)
        for (int64_t i = 0; i < chunk; ++i) expect("all_to_all", &out, r * chunk + i, value(k, r, g_rank * chunk + i, 0, 100));
    drop(&in);
    drop(&out);
}

static void mode_collectives(ds_comm_t* c) {
    const int64_t small = 1000 + 37 * g_n;
    for (size_t d = 0; d < sizeof k_dtypes / sizeof k_dtypes[0]; ++d) {
        int32_t dt = k_dtypes[d];
        for (int32_t op = DS_REDUCE_SUM; op <= DS_REDUCE_PROD; ++op) {
            test_all_reduce(c, dt, op, small);
            test_reduce(c, dt, op, small / 3);
            test_reduce_scatter(c, dt, op, small / 2);
        }
        /* Above the size where small reductions go through one all_gather: Gloo's ring algorithms. */
        const int64_t ring = 300 * 1024 / (int64_t)esize(dt) + 3;
        for (int32_t op = DS_REDUCE_SUM; op <= DS_REDUCE_PROD; ++op) test_all_reduce(c, dt, op, ring);
        test_reduce(c, dt, (int32_t)(d % 5), ring);
        /* Between the slot and the small-gather bound: with checks on, every rank sends to the root. */
        test_reduce(c, dt, (int32_t)((d + 2) % 5), 3000);
        test_reduce_scatter(c, dt, (int32_t)((d + 1) % 5), ring / g_n + 1);
        test_broadcast(c, dt, small);
        test_all_gather(c, dt, small / 4, 0);
        test_all_gather(c, dt, small / 4 + 1, 1);
        test_all_to_all(c, dt, 129);
        CHECK_OK(ds_comm_barrier(c, NULL));
    }
    /* Large enough for several pipeline segments per chunk (1 MiB segments). */
    const int64_t big = 3 * 1024 * 1024 / 4 * g_n + 5 * g_n;
    test_all_reduce(c, DS_DTYPE_F32, DS_REDUCE_SUM, big + 3);
    test_reduce_scatter(c, DS_DTYPE_F32, DS_REDUCE_SUM, big / g_n);
    test_reduce_scatter(c, DS_DTYPE_BF16, DS_REDUCE_MAX, big / g_n);
    test_all_gather(c, DS_DTYPE_I32, big / g_n, 0);
    /* Broadcasts of every size class: direct from the root (up to 3 ranks any size, else up to
     * 1 MiB) and Gloo's tree after the check (4 ranks, above 1 MiB). */
    test_broadcast(c, DS_DTYPE_F32, 200 * 1024 + 1);
    test_broadcast(c, DS_DTYPE_BF16, big);
    test_broadcast(c, DS_DTYPE_I64, 3);
    test_broadcast(c, DS_DTYPE_F32, 0);
    /* Rings on the mesh in several 4 MiB segments per step; direct all_to_all and list all_gather. */
    const int64_t seg3 = 9 * 1024 * 1024 / 4 + 7; /* f32 elements per chunk: 3 segments */
    test_all_reduce(c, DS_DTYPE_F32, DS_REDUCE_SUM, seg3 * g_n + 1);
    test_reduce_scatter(c, DS_DTYPE_I32, DS_REDUCE_MAX, seg3);
    test_all_to_all(c, DS_DTYPE_F32, 50000);
    test_all_gather(c, DS_DTYPE_F32, 5000, 1);
    test_all_gather(c, DS_DTYPE_U8, 300 * 1024 + 1, 0);
    /* Empty tensors do nothing and do not hang. */
    test_all_reduce(c, DS_DTYPE_F32, DS_REDUCE_SUM, 0);
    test_all_gather(c, DS_DTYPE_F32, 0, 0);
    /* Asynchronous forms of every collective, waited in reverse order. */
    int k = ++g_case;
    buf_t a = make(DS_DTYPE_I64, 4096), g_in = make(DS_DTYPE_I64, 100), g_out = make(DS_DTYPE_I64, 100 * g_n);
    for (int64_t i = 0; i < 4096; ++i) put(a.h, DS_DTYPE_I64, i, value(k, g_rank, i, -1000, 1000));
    for (int64_t i = 0; i < 100; ++i) put(g_in.h, DS_DTYPE_I64, i, value(k + 1, g_rank, i, -1000, 1000));
    upload(&a);
    upload(&g_in);
    ds_work_t* w[3];
    CHECK_OK(ds_comm_all_reduce(c, a.t, DS_REDUCE_SUM, &w[0]));
    CHECK_OK(ds_comm_all_gather(c, g_in.t, g_out.t, &w[1]));
    CHECK_OK(ds_comm_barrier(c, &w[2]));
    for (int i = 2; i >= 0; --i) {
        CHECK_OK(ds_work_wait(w[i], -1));
        ds_work_destroy(w[i]);
    }
    download(&a);
    download(&g_out);
    for (int64_t i = 0; i < 4096; ++i) {
        double s = 0;
        for (int r = 0; r < g_n; ++r) s += value(k, r, i, -1000, 1000);
        expect("async all_reduce", &a, i, s);
    }
    for (int r = 0; r < g_n; ++r)
        for (int64_t i = 0; i < 100; ++i) expect("async all_gather", &g_out, r * 100 + i, value(k + 1, r, i, -1000, 1000));
    drop(&a);
    drop(&g_in);
    drop(&g_out);
}

/* Many queued collectives overlap with computation on this thread; results are checked after. */
static void mode_async(ds_comm_t* c) {
    enum { K = 24 };
    const int64_t n = 256 * 1024;
    buf_t b[K];
    ds_work_t* w[K];
    int base = g_case + 1;
    g_case += K;
    for (int j = 0; j < K; ++j) {
        b[j] = make(DS_DTYPE_F32, n);
        for (int64_t i = 0; i < n; ++i) put(b[j].h, DS_DTYPE_F32, i, value(base + j, g_rank, i, -8, 8));
        upload(&b[j]);
    }
    double t0 = now_s();
    for (int j = 0; j < K; ++j) CHECK_OK(ds_comm_all_reduce(c, b[j].t, j % 2 ? DS_REDUCE_MAX : DS_REDUCE_SUM, &w[j]));
    double submitted = now_s() - t0;
    /* Work of our own meanwhile: it must not wait for the communication. */
    volatile double acc = 0;
    int polls = 0, done_early = 0;
    for (int it = 0; it < 2000000; ++it) {
        acc += sqrt((double)it);
        if (it % 100000 == 0) {
            int32_t d = 0;
            CHECK_OK(ds_work_test(w[K - 1], &d));
            polls++;
            done_early += d;
        }
    }
    double computed = now_s() - t0;
    for (int j = K - 1; j >= 0; --j) {
        CHECK_OK(ds_work_wait(w[j], -1));
        int32_t d = 0;
        CHECK_OK(ds_work_test(w[j], &d));
        CHECK_EQ_INT(d, 1);
        ds_work_destroy(w[j]);
    }
    double total = now_s() - t0;
    for (int j = 0; j < K; ++j) {
        download(&b[j]);
        for (int64_t i = 0; i < n; i += 7) {
            double want = j % 2 ? -1e9 : 0;
            for (int r = 0; r < g_n; ++r) {
                double v = value(base + j, r, i, -8, 8);
                want = j % 2 ? (v > want ? v : want) : want + v;
            }
            expect("async all_reduce", &b[j], i, want);
        }
        drop(&b[j]);
    }
    CHECK(submitted < computed); /* submission returned before the work was done */
    printf("async: %d all_reduce of 1 MiB submitted in %.2f ms, compute %.1f ms, all done after %.1f ms (%d/%d polls saw the last done)\n",
           K, submitted * 1e3, computed * 1e3, total * 1e3, done_early, polls);
    (void)acc;
}

static void mode_split(ds_comm_t* c) {
    /* Colors by parity, keys reversing the order: child rank = position by descending parent rank. */
    ds_comm_t* child = NULL;
    int color = g_rank % 2;
    CHECK_OK(ds_comm_split(c, color, -g_rank, &child));
    CHECK(child != NULL);
    int members[8], m = 0;
    for (int r = g_n - 1; r >= 0; --r)
        if (r % 2 == color) members[m++] = r;
    int32_t cr = -1, cn = -1;
    ds_comm_get_rank(child, &cr);
    ds_comm_get_world_size(child, &cn);
    CHECK_EQ_INT(cn, m);
    int expect_rank = -1;
    for (int i = 0; i < m; ++i)
        if (members[i] == g_rank) expect_rank = i;
    CHECK_EQ_INT(cr, expect_rank);
    char* info = NULL;
    CHECK_OK(ds_comm_query_info(child, &info));
    char want[128] = "\"global_ranks\":[";
    for (int i = 0; i < m; ++i) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", i ? "," : "", members[i]);
    strcat(want, "]");
    CHECK_CONTAINS(info, want);
    ds_free(info);
    /* A sum over the group only. */
    int k = ++g_case;
    buf_t b = make(DS_DTYPE_I32, 333);
    for (int64_t i = 0; i < 333; ++i) put(b.h, DS_DTYPE_I32, i, value(k, g_rank, i, -100, 100));
    upload(&b);
    CHECK_OK(ds_comm_all_reduce(child, b.t, DS_REDUCE_SUM, NULL));
    download(&b);
    for (int64_t i = 0; i < 333; ++i) {
        double s = 0;
        for (int j = 0; j < m; ++j) s += value(k, members[j], i, -100, 100);
        expect("split all_reduce", &b, i, s);
    }
    /* Groups work concurrently with the parent, in submission order on each. */
    CHECK_OK(ds_comm_barrier(c, NULL));
    CHECK_OK(ds_comm_barrier(child, NULL));
    /* Rank 0 opts out of a second split; the others form one group. */
    ds_comm_t* rest = (ds_comm_t*)0x1;
    CHECK_OK(ds_comm_split(c, g_rank == 0 ? DS_COMM_SPLIT_NONE : 5, g_rank, &rest));
    if (g_rank == 0) {
        CHECK(rest == NULL);
    } else {
        int32_t rn = 0, rr = -1;
        ds_comm_get_world_size(rest, &rn);
        ds_comm_get_rank(rest, &rr);
        CHECK_EQ_INT(rn, g_n - 1);
        CHECK_EQ_INT(rr, g_rank - 1);
        /* A split of a split. */
        ds_comm_t* leaf = NULL;
        CHECK_OK(ds_comm_split(rest, 0, 0, &leaf));
        CHECK_OK(ds_comm_all_reduce(leaf, b.t, DS_REDUCE_MAX, NULL));
        ds_comm_destroy(leaf);
        ds_comm_destroy(rest);
    }
    drop(&b);
    /* The child outlives its parent handle. */
    CHECK_OK(ds_comm_barrier(c, NULL));
    ds_comm_destroy(c);
    CHECK_OK(ds_comm_barrier(child, NULL));
    ds_comm_destroy(child);
}

static void mode_p2p(ds_comm_t* c) {
    const int next = (g_rank + 1) % g_n, prev = (g_rank + g_n - 1) % g_n;
    /* Ring: asynchronous send to the next rank, synchronous receive from the previous one. */
    for (int round = 0; round < 3; ++round) {
        int k = ++g_case;
        int64_t n = round == 2 ? 1 << 20 : 1000 + round; /* the last round is 4 MiB */
        buf_t s = make(DS_DTYPE_F32, n), r = make(DS_DTYPE_F32, n);
        for (int64_t i = 0; i < n; ++i) put(s.h, DS_DTYPE_F32, i, value(k, g_rank, i, -1000, 1000));
        upload(&s);
        ds_work_t* w = NULL;
        CHECK_OK(ds_comm_send(c, s.t, next, round, &w));
        CHECK_OK(ds_comm_recv(c, r.t, prev, round, NULL));
        CHECK_OK(ds_work_wait(w, -1));
        ds_work_destroy(w);
        download(&r);
        for (int64_t i = 0; i < n; ++i) expect("ring recv", &r, i, value(k, prev, i, -1000, 1000));
        drop(&s);
        drop(&r);
    }
    /* Receives posted before sends (both asynchronous), several messages per pair and tag, matched
     * in order. */
    {
        int k = ++g_case;
        enum { M = 4 };
        buf_t s[M], r[M];
        ds_work_t* w[2 * M];
        for (int j = 0; j < M; ++j) {
            s[j] = make(DS_DTYPE_I64, 64);
            r[j] = make(DS_DTYPE_I64, 64);
            for (int64_t i = 0; i < 64; ++i) put(s[j].h, DS_DTYPE_I64, i, value(k + j, g_rank, i, 0, 1 << 20));
            upload(&s[j]);
        }
        for (int j = 0; j < M; ++j) CHECK_OK(ds_comm_recv(c, r[j].t, prev, 9, &w[M + j]));
        for (int j = 0; j < M; ++j) CHECK_OK(ds_comm_send(c, s[j].t, next, 9, &w[j]));
        for (int j = 0; j < 2 * M; ++j) {
            CHECK_OK(ds_work_wait(w[j], -1));
            ds_work_destroy(w[j]);
        }
        for (int j = 0; j < M; ++j) {
            download(&r[j]);
            for (int64_t i = 0; i < 64; ++i) expect("ordered recv", &r[j], i, value(k + j, prev, i, 0, 1 << 20));
            drop(&s[j]);
            drop(&r[j]);
        }
        g_case += M;
    }
    /* A collective after point-to-point traffic sees it completed. */
    CHECK_OK(ds_comm_barrier(c, NULL));
    /* Pairwise synchronous exchange: even ranks send first. */
    if (g_n % 2 == 0) {
        int k = ++g_case, peer = g_rank ^ 1;
        buf_t s = make(DS_DTYPE_U8, 5000), r = make(DS_DTYPE_U8, 5000);
        for (int64_t i = 0; i < 5000; ++i) put(s.h, DS_DTYPE_U8, i, value(k, g_rank, i, 0, 255));
        upload(&s);
        if (g_rank % 2 == 0) {
            CHECK_OK(ds_comm_send(c, s.t, peer, 1, NULL));
            CHECK_OK(ds_comm_recv(c, r.t, peer, 1, NULL));
        } else {
            CHECK_OK(ds_comm_recv(c, r.t, peer, 1, NULL));
            CHECK_OK(ds_comm_send(c, s.t, peer, 1, NULL));
        }
        download(&r);
        for (int64_t i = 0; i < 5000; ++i) expect("pairwise recv", &r, i, value(k, peer, i, 0, 255));
        drop(&s);
        drop(&r);
    }
}

static void mode_barrier(ds_comm_t* c) {
    /* Rank r arrives r * 150 ms late: nobody leaves before the last one arrived. */
    CHECK_OK(ds_comm_barrier(c, NULL));
    double t0 = now_s();
    usleep((useconds_t)(g_rank * 150000));
    CHECK_OK(ds_comm_barrier(c, NULL));
    double waited = now_s() - t0;
    CHECK(waited >= (g_n - 1) * 0.150 - 0.010);
    printf("barrier released after %.3f s (last rank arrives at %.3f s)\n", waited, (g_n - 1) * 0.150);
}

static void mode_mismatch(ds_comm_t* c) {
    int64_t n = 100 + g_rank; /* every rank a different size */
    int64_t same = 64;
    ds_tensor_t *t = NULL, *ok = NULL, *i32 = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &n, DS_DEV_CPU, 0, &t));
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &same, DS_DEV_CPU, 0, &ok));
    CHECK_OK(ds_tensor_create(g_rank == g_n - 1 ? DS_DTYPE_I32 : DS_DTYPE_F32, 1, &same, DS_DEV_CPU, 0, &i32));
    CHECK_STATUS(ds_comm_all_reduce(c, t, DS_REDUCE_SUM, NULL), DS_ERR_COMM_MISMATCH);
    CHECK_CONTAINS(ds_last_error(), "rank 0: all_reduce f32 x 100 (sum) on cpu; rank 1: all_reduce f32 x 101 (sum) on cpu");
    CHECK_STATUS(ds_comm_all_reduce(c, i32, DS_REDUCE_SUM, NULL), DS_ERR_COMM_MISMATCH);
    CHECK_CONTAINS(ds_last_error(), "i32");
    CHECK_STATUS(ds_comm_all_reduce(c, ok, g_rank == 0 ? DS_REDUCE_MAX : DS_REDUCE_SUM, NULL), DS_ERR_COMM_MISMATCH);
    CHECK_CONTAINS(ds_last_error(), "(max)");
    CHECK_STATUS(ds_comm_broadcast(c, ok, g_rank == 0 ? 1 : 0, NULL), DS_ERR_COMM_MISMATCH);
    CHECK_CONTAINS(ds_last_error(), "root");
    if (g_rank == 0)
        CHECK_STATUS(ds_comm_barrier(c, NULL), DS_ERR_COMM_MISMATCH);
    else
        CHECK_STATUS(ds_comm_all_reduce(c, ok, DS_REDUCE_SUM, NULL), DS_ERR_COMM_MISMATCH);
    /* One rank small (carried in the agreement slot), the others large: still a clean mismatch. */
    {
        int64_t sz = g_rank == 0 ? 64 : 100000;
        ds_tensor_t* x = NULL;
        CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &sz, DS_DEV_CPU, 0, &x));
        CHECK_STATUS(ds_comm_all_reduce(c, x, DS_REDUCE_SUM, NULL), DS_ERR_COMM_MISMATCH);
        CHECK_CONTAINS(ds_last_error(), "rank 1: all_reduce f32 x 100000 (sum) on cpu");
        ds_tensor_destroy(x);
    }
    /* Broadcasts above the agreement slot: the receivers post their receive before the exchange
     * (direct broadcast), so a disagreement must still leave every buffer untouched, on every path:
     * sizes, roots, dtypes of the same width, and ranks that are not broadcasting at all. */
    {
        const int64_t big = 300 * 1024 + 7; /* f32: 1.2 MiB */
        for (int variant = 0; variant < 5; ++variant) {
            int64_t sz = big + (variant == 0 && g_rank == g_n - 1 ? 1 : 0);
            int32_t dt = variant == 2 && g_rank == 1 ? DS_DTYPE_I32 : DS_DTYPE_F32;
            int32_t root = variant == 1 && g_rank == 0 ? 1 : 0;
            ds_tensor_t* x = NULL;
            CHECK_OK(ds_tensor_create(dt, 1, &sz, DS_DEV_CPU, 0, &x));
            CHECK_OK(ds_tensor_fill(x, 10.0 + g_rank));
            ds_status_t st;
            if (variant == 3 && g_rank == g_n - 1) /* not a broadcast: an all_reduce of the same tensor */
                st = ds_comm_all_reduce(c, x, DS_REDUCE_SUM, NULL);
            else if (variant == 4 && g_rank == 0) /* the root of the others' broadcast is in a barrier */
                st = ds_comm_barrier(c, NULL);
            else
                st = ds_comm_broadcast(c, x, variant == 4 ? 0 : root, NULL);
            CHECK_STATUS(st, DS_ERR_COMM_MISMATCH);
            CHECK_CONTAINS(ds_last_error(), "Nothing was transferred");
            void* d = NULL;
            ds_tensor_get_data(x, &d);
            int untouched = 1;
            for (int64_t i = 0; i < sz; ++i) {
                double v = dt == DS_DTYPE_I32 ? (double)((int32_t*)d)[i] : (double)((float*)d)[i];
                if (v != 10.0 + g_rank) {
                    untouched = 0;
                    break;
                }
            }
            if (!untouched) fprintf(stderr, "rank %d: broadcast mismatch variant %d wrote into the buffer\n", g_rank, variant);
            CHECK(untouched);
            ds_tensor_destroy(x);
        }
        /* The other direct collectives: all_gather (everybody receives from everybody), small
         * all_reduce (the same, reduced locally) and small reduce (the root receives). */
        const int64_t mid = 4096 + 5; /* f32: 16 KiB, above the slot, below the small-gather bound */
        for (int variant = 0; variant < 4; ++variant) {
            int64_t sz = mid + (variant == 0 && g_rank == 1 ? 2 : 0);
            int64_t outn = sz * g_n;
            ds_tensor_t *x = NULL, *out = NULL;
            CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &sz, DS_DEV_CPU, 0, &x));
            CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &outn, DS_DEV_CPU, 0, &out));
            CHECK_OK(ds_tensor_fill(x, 10.0 + g_rank));
            CHECK_OK(ds_tensor_fill(out, 20.0 + g_rank));
            ds_status_t st;
            if (variant == 0) /* all_gather, one rank's input longer */
                st = ds_comm_all_gather(c, x, out, NULL);
            else if (variant == 1) /* reduce, roots disagree */
                st = ds_comm_reduce(c, x, DS_REDUCE_SUM, g_rank == 0 ? 1 : 0, NULL);
            else if (variant == 2) /* all_reduce against a reduce */
                st = g_rank == 1 ? ds_comm_reduce(c, x, DS_REDUCE_SUM, 0, NULL) : ds_comm_all_reduce(c, x, DS_REDUCE_SUM, NULL);
            else /* all_gather against an all_reduce of the same input */
                st = g_rank == 0 ? ds_comm_all_reduce(c, x, DS_REDUCE_SUM, NULL) : ds_comm_all_gather(c, x, out, NULL);
            CHECK_STATUS(st, DS_ERR_COMM_MISMATCH);
            float *px = NULL, *po = NULL;
            ds_tensor_get_data(x, (void**)&px);
            ds_tensor_get_data(out, (void**)&po);
            int untouched = 1;
            for (int64_t i = 0; i < sz; ++i) untouched &= px[i] == 10.0f + g_rank;
            for (int64_t i = 0; i < outn; ++i) untouched &= po[i] == 20.0f + g_rank;
            if (!untouched) fprintf(stderr, "rank %d: direct mismatch variant %d wrote into a buffer\n", g_rank, variant);
            CHECK(untouched);
            ds_tensor_destroy(x);
            ds_tensor_destroy(out);
        }
        /* ... and a large broadcast that agrees still works right after. */
        buf_t b = make(DS_DTYPE_F32, big);
        int k = ++g_case;
        for (int64_t i = 0; i < big; ++i) put(b.h, DS_DTYPE_F32, i, value(k, g_rank, i, 0, 100));
        CHECK_OK(ds_comm_broadcast(c, b.t, g_n - 1, NULL));
        for (int64_t i = 0; i < big; ++i) expect("broadcast after mismatches", &b, i, value(k, g_n - 1, i, 0, 100));
        drop(&b);
    }
    /* Nothing moved, the communicator is still good. */
    CHECK_OK(ds_tensor_fill(ok, 1.0));
    CHECK_OK(ds_comm_all_reduce(c, ok, DS_REDUCE_SUM, NULL));
    float* p = NULL;
    ds_tensor_get_data(ok, (void**)&p);
    CHECK_NEAR(p[63], (double)g_n, 0);
    ds_tensor_destroy(t);
    ds_tensor_destroy(ok);
    ds_tensor_destroy(i32);
}

/* Bandwidth formulas of the comms logger, recomputed from what it reports. */
static double row_num(const char* js, const char* op, const char* key) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"op\":\"%s\"", op);
    const char* p = strstr(js, pat);
    if (!p) return -1;
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    p = strstr(p, k);
    return p ? strtod(p + strlen(k), NULL) : -1;
}

static void mode_logger(void) {
    ds_config_t* cfg = NULL;
    CHECK_OK(ds_config_parse("{\"train_batch_size\": 12, \"comms_logger\": {\"enabled\": true, \"prof_all\": true}}", 0, NULL, &cfg));
    ds_comm_t* c = join(-1, cfg);
    ds_config_destroy(cfg);
    const int64_t n = 256 * 1024; /* 1 MiB of f32 */
    ds_tensor_t *a = NULL, *big = NULL, *big2 = NULL, *small = NULL;
    int64_t nn = n * g_n;
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &n, DS_DEV_CPU, 0, &a));
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &nn, DS_DEV_CPU, 0, &big));
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &nn, DS_DEV_CPU, 0, &big2));
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &n, DS_DEV_CPU, 0, &small));
    for (int i = 0; i < 10; ++i) CHECK_OK(ds_comm_all_reduce(c, a, DS_REDUCE_SUM, NULL));
    CHECK_OK(ds_comm_all_gather(c, a, big, NULL));
    CHECK_OK(ds_comm_reduce_scatter(c, big, small, DS_REDUCE_SUM, NULL));
    CHECK_OK(ds_comm_all_to_all(c, big, big2, NULL));
    CHECK_OK(ds_comm_broadcast(c, a, 0, NULL));
    char* js = NULL;
    CHECK_OK(ds_comm_log_summary(c, 1, &js));
    const double size = 1048576.0, nd = g_n;
    CHECK_EQ_INT((long long)row_num(js, "all_reduce", "count"), 10);
    CHECK_EQ_INT((long long)row_num(js, "all_reduce", "msg_size_bytes"), 1048576);
    /* The ratios hold for every sample, so for the trimmed means too. */
    CHECK_NEAR(row_num(js, "all_reduce", "busbw_gbps") / row_num(js, "all_reduce", "algbw_gbps"), (nd - 1) / nd, 1e-9);
    /* Single samples: the formulas exactly. */
    double t = row_num(js, "all_gather_into_tensor", "avg_latency_ms");
    CHECK_NEAR(row_num(js, "all_gather_into_tensor", "algbw_gbps"), size * nd / t * 8 / 1e6, 1e-6 * (size * nd / t * 8 / 1e6));
    CHECK_NEAR(row_num(js, "all_gather_into_tensor", "busbw_gbps"), size * nd / t * 8 / 1e6 * (nd - 1) / nd, 1e-6 * (size * nd / t * 8 / 1e6));
    t = row_num(js, "reduce_scatter_tensor", "avg_latency_ms");
    CHECK_EQ_INT((long long)row_num(js, "reduce_scatter_tensor", "msg_size_bytes"), 1048576);
    CHECK_NEAR(row_num(js, "reduce_scatter_tensor", "algbw_gbps"), size * nd / t * 8 / 1e6, 1e-6 * (size * nd / t * 8 / 1e6));
    t = row_num(js, "all_to_all_single", "avg_latency_ms");
    CHECK_NEAR(row_num(js, "all_to_all_single", "busbw_gbps"), size * nd / t * 8 / 1e6 * (nd - 1) / nd, 1e-6 * (size * nd / t * 8 / 1e6));
    t = row_num(js, "broadcast", "avg_latency_ms");
    CHECK_NEAR(row_num(js, "broadcast", "busbw_gbps"), size / t * 8 / 1e6, 1e-6 * (size / t * 8 / 1e6));
    CHECK_NEAR(row_num(js, "broadcast", "algbw_gbps"), size / t * 8 / 1e6, 1e-6 * (size / t * 8 / 1e6));
    ds_free(js);
    if (g_rank == 0) {
        char* text = NULL;
        CHECK_OK(ds_comm_log_summary(c, 0, &text));
        printf("%s", text);
        CHECK_CONTAINS(text, "1.0 MB");
        ds_free(text);
    }
    ds_tensor_destroy(a);
    ds_tensor_destroy(big);
    ds_tensor_destroy(big2);
    ds_tensor_destroy(small);
    ds_comm_destroy(c);
}

/* One rank dies (how = "kill": SIGKILL) or stops answering (how = "stop": SIGSTOP) while a stream
 * of 4 MiB all_reduces is in flight (a thread of the victim strikes 200 ms into the run); the others
 * must return an error within the timeout and report it. A stopped victim never exits, so in that
 * case the survivors exit with status 3 when they passed: dsrun then ends the job with status 3 and
 * must get rid of the stopped rank. */
static int g_stop_instead;

static void* strike_later(void* arg) {
    (void)arg;
    usleep(200 * 1000);
    fprintf(stderr, "victim rank %d: %s myself in the middle of a collective\n", g_rank, g_stop_instead ? "stopping" : "killing");
    fflush(stderr);
    raise(g_stop_instead ? SIGSTOP : SIGKILL);
    return NULL;
}

static int mode_failure(ds_comm_t* c, int victim, const char* how) {
    g_stop_instead = how && strcmp(how, "stop") == 0;
    buf_t b = make(DS_DTYPE_F32, 1 << 20); /* 4 MiB, on the test device */
    ds_tensor_t* t = b.t;
    const double timeout = env_i64("DIST_TIMEOUT_MS", 30000) / 1000.0;
    if (g_rank == victim) {
        pthread_t th;
        pthread_create(&th, NULL, strike_later, NULL);
    }
    double last_ok = now_s();
    ds_status_t st = DS_OK;
    int it;
    for (it = 0; it < 1000000; ++it) {
        st = ds_comm_all_reduce(c, t, DS_REDUCE_SUM, NULL);
        if (st != DS_OK) break;
        last_ok = now_s();
    }
    double took = now_s() - last_ok;
    ds_status_t want = g_stop_instead ? DS_ERR_COMM_TIMEOUT : DS_ERR_COMM_PEER;
    int good = (st == want || st == DS_ERR_COMM_TIMEOUT || st == DS_ERR_COMM_PEER) && took <= timeout + 3.0;
    if (g_stop_instead) good = good && st == DS_ERR_COMM_TIMEOUT && took >= timeout - 0.5;
    printf("survivor rank %d: %s after %d collectives, %.2f s after the last success (timeout %.1f s): %s: %s\n", g_rank,
           good ? "ok" : "WRONG", it, took, timeout, ds_status_str(st), ds_last_error());
    CHECK(good);
    /* The communicator is spent now. */
    CHECK_STATUS(ds_comm_all_reduce(c, t, DS_REDUCE_SUM, NULL), DS_ERR_STATE);
    CHECK_CONTAINS(ds_last_error(), "failed earlier");
    double t0 = now_s();
    ds_comm_destroy(c);
    CHECK(now_s() - t0 < timeout + 3.0);
    drop(&b);
    return g_stop_instead;
}

typedef struct {
    ds_comm_t* c;
    int delay_ms;
} abort_arg_t;

static void* abort_later(void* p) {
    abort_arg_t* a = (abort_arg_t*)p;
    usleep((useconds_t)a->delay_ms * 1000);
    ds_comm_abort(a->c);
    return NULL;
}

/* Rank 0 waits in a collective nobody else joins; another thread aborts it. */
static void mode_abort(ds_comm_t* c) {
    buf_t b = make(DS_DTYPE_F32, 1024);
    ds_tensor_t* t = b.t;
    CHECK_OK(ds_comm_all_reduce(c, t, DS_REDUCE_SUM, NULL)); /* NCCL: the communicator exists before the abort */
    CHECK_OK(ds_comm_barrier(c, NULL));
    if (g_rank == 0) {
        ds_work_t *w = NULL, *queued = NULL;
        CHECK_OK(ds_comm_all_reduce(c, t, DS_REDUCE_SUM, &w));
        CHECK_OK(ds_comm_all_reduce(c, t, DS_REDUCE_SUM, &queued));
        pthread_t th;
        abort_arg_t a = {c, 300};
        double t0 = now_s();
        pthread_create(&th, NULL, abort_later, &a);
        ds_status_t st = ds_work_wait(w, -1);
        double took = now_s() - t0;
        pthread_join(th, NULL);
        CHECK_EQ_INT(st, DS_ABORTED);
        CHECK_EQ_INT(ds_work_wait(queued, -1), DS_ABORTED);
        CHECK(took < 5.0);
        printf("rank 0: in-flight all_reduce aborted after %.2f s: %s\n", took, ds_last_error());
        CHECK_STATUS(ds_comm_barrier(c, NULL), DS_ERR_STATE);
        ds_work_destroy(w);
        ds_work_destroy(queued);
    } else {
        /* Join late: rank 0 has aborted meanwhile, so the connection to it is gone. */
        usleep(1500 * 1000);
        double t0 = now_s();
        ds_status_t st = ds_comm_all_reduce(c, t, DS_REDUCE_SUM, NULL);
        /* Rank 0's two all_reduces may have sent their data before it aborted (NCCL: asynchronous
         * collectives are enqueued on its GPU together; CPU with checks off: the mesh sends at
         * once), so up to two matching ones may complete here. The third has no partner. */
        for (int k = 1; k <= 2 && st == DS_OK; ++k) {
            printf("rank %d: all_reduce %d matched one of rank 0's in-flight ones; trying another\n", g_rank, k);
            st = ds_comm_all_reduce(c, t, DS_REDUCE_SUM, NULL);
        }
        double took = now_s() - t0;
        printf("rank %d: all_reduce after rank 0 aborted: %s after %.2f s\n", g_rank, ds_status_str(st), took);
        CHECK(st == DS_ERR_COMM_PEER || st == DS_ERR_COMM_TIMEOUT || st == DS_ERR_COMM);
    }
    drop(&b);
    ds_comm_destroy(c);
}

/* Ranks on several "hosts" (network namespaces): each rank must use its own host's address. */
static void mode_hosts(ds_comm_t* c, int argc, char** argv) {
    int64_t cross = env_i64("CROSS_RANK", -1);
    char* info = NULL;
    CHECK_OK(ds_comm_query_info(c, &info));
    if (cross >= 0 && cross + 2 < argc) {
        char want[96];
        snprintf(want, sizeof want, "\"bind_addr\":\"%s\"", argv[cross + 2]);
        CHECK_CONTAINS(info, want);
    }
    printf("host %lld: %s\n", (long long)cross, info);
    ds_free(info);
    mode_collectives(c);
    mode_p2p(c);
}

int main(int argc, char** argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODE [args] [--device cuda]\n", argv[0]);
        return 2;
    }
    const char* mode = argv[1];
    for (int i = 2; i < argc; ++i)
        if (strcmp(argv[i], "--device") == 0 && i + 1 < argc && strcmp(argv[i + 1], "cuda") == 0) g_dev_type = DS_DEV_CUDA;
    if (strcmp(mode, "logger") == 0) {
        mode_logger();
        return report(mode);
    }
    /* Checks as DSABI_COMM_CHECK says (failure.sh's kill-nocheck, manual runs with checks off);
     * always on for the mismatch mode, which needs them. */
    ds_comm_t* c = join(strcmp(mode, "mismatch") == 0 ? 1 : DS_UNSET_I32, NULL);
    double t0 = now_s();
    agree_seed(c);
    if (strcmp(mode, "collectives") == 0) {
        mode_collectives(c);
    } else if (strcmp(mode, "async") == 0) {
        mode_async(c);
    } else if (strcmp(mode, "split") == 0) {
        mode_split(c);
        c = NULL;
    } else if (strcmp(mode, "p2p") == 0) {
        mode_p2p(c);
    } else if (strcmp(mode, "barrier") == 0) {
        mode_barrier(c);
    } else if (strcmp(mode, "mismatch") == 0) {
        mode_mismatch(c);
    } else if (strcmp(mode, "failure") == 0) {
        int stop = mode_failure(c, argc > 2 ? atoi(argv[2]) : 1, argc > 3 ? argv[3] : "kill");
        printf("failure on %d ranks: %.2f s\n", g_n, now_s() - t0);
        int rc = report(mode);
        return rc == 0 && stop ? 3 : rc;
    } else if (strcmp(mode, "abort") == 0) {
        mode_abort(c);
        c = NULL;
    } else if (strcmp(mode, "hosts") == 0) {
        mode_hosts(c, argc, argv);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    if (c) {
        CHECK_OK(ds_comm_barrier(c, NULL));
        ds_comm_destroy(c);
    }
    printf("%s on %d ranks (%s): %.2f s\n", mode, g_n, g_dev_type == DS_DEV_CUDA ? "cuda" : "cpu", now_s() - t0);
    return report(mode);
}
