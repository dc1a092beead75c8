/* GEMM and weight-only quantized linear throughput through ds_op_gemm / ds_op_gemm_wq, as JSON
 * (one row per case); bench/ops/gemm_torch.py times the same cases in torch and merges the two.
 *
 *     gemm_bench --device cpu|cuda [--suite gemm|wq|all] [--cases FILE] [--json out.json]
 *                [--min-time 0.5] [--threads N]
 *     gemm_bench --device cpu|cuda --print-cases      (the default cases, for gemm_torch.py)
 *
 * Default cases (the table in default_cases below) or one case per line of FILE:
 *     gemm NAME DTYPE M N K TRANS_A TRANS_B         (DTYPE f32, f16, bf16; C in the same dtype)
 *     wq   NAME DTYPE M N K BITS GROUP SYMMETRIC
 * Timing: inputs filled with random values once; warm-up calls until 0.1 s or 3 calls, then
 * batches of calls between device synchronisations until min-time has passed; the time per call
 * is the best batch's mean (the CPU machine is shared and noisy). TFLOP/s = 2 M N K / time.
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsabi.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char* what) {
    fprintf(stderr, "gemm_bench: %s: %s\n", what, ds_last_error());
    exit(1);
}

/* ---- CPU peak: register-only FMA loops on every thread at once (12 independent accumulators) ---- */

typedef struct {
    double seconds, flops;
    int isa; /* 2: AVX-512, 1: AVX2 + FMA, 0: none */
} peak_arg_t;

__attribute__((target("avx512f"))) static double fma_loop_avx512(double seconds) {
    __m512 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps((float)i * 1e-3f);
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    double best = 0, t0 = now_s();
    while (now_s() - t0 < seconds) { /* the best 10 ms window: the rate when this thread has its core */
        const double w0 = now_s();
        double flops = 0;
        while (now_s() - w0 < 0.01) {
            for (int it = 0; it < 20000; ++it)
#pragma GCC unroll 12
                for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, c);
            flops += 20000.0 * 12 * 32;
        }
        const double rate = flops / (now_s() - w0);
        if (rate > best) best = rate;
    }
    float sink = 0;
    for (int i = 0; i < 12; ++i) sink += _mm512_reduce_add_ps(acc[i]);
    return sink == 12345.0f ? 0 : best;
}

__attribute__((target("avx2,fma"))) static double fma_loop_avx2(double seconds) {
    __m256 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps((float)i * 1e-3f);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    double best = 0, t0 = now_s();
    while (now_s() - t0 < seconds) { /* the best 10 ms window: the rate when this thread has its core */
        const double w0 = now_s();
        double flops = 0;
        while (now_s() - w0 < 0.01) {
            for (int it = 0; it < 20000; ++it)
#pragma GCC unroll 12
                for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, c);
            flops += 20000.0 * 12 * 16;
        }
        const double rate = flops / (now_s() - w0);
        if (rate > best) best = rate;
    }
    float buf[8], sink = 0;
    for (int i = 0; i < 12; ++i) {
        _mm256_storeu_ps(buf, acc[i]);
        for (int j = 0; j < 8; ++j) sink += buf[j];
    }
    return sink == 12345.0f ? 0 : best;
}

static void* peak_thread(void* p) {
    peak_arg_t* a = (peak_arg_t*)p;
    a->flops = a->isa == 2 ? fma_loop_avx512(a->seconds) : a->isa == 1 ? fma_loop_avx2(a->seconds) : 0.0;
    return NULL;
}

/* Sum over n threads (run together) of each one's best FMA rate, GFLOP/s (f32). */
static double measure_peak(int n, int isa, double seconds) {
    pthread_t th[256];
    peak_arg_t args[256];
    if (n > 256) n = 256;
    for (int i = 0; i < n; ++i) {
        args[i].seconds = seconds;
        args[i].isa = isa;
        args[i].flops = 0;
        pthread_create(&th[i], NULL, peak_thread, &args[i]);
    }
    double total = 0;
    for (int i = 0; i < n; ++i) {
        pthread_join(th[i], NULL);
        total += args[i].flops;
    }
    return total / 1e9;
}

typedef struct {
    char kind[8];
    char name[64];
    char dtype[8];
    long long m, n, k;
    int ta, tb;              /* gemm */
    int bits, group, sym;    /* wq */
} bcase_t;

static const char* default_cpu =
    "gemm cube256 f32 256 256 256 0 0\n"
    "gemm cube512 f32 512 512 512 0 0\n"
    "gemm cube768 f32 768 768 768 0 0\n"
    "gemm cube1024 f32 1024 1024 1024 0 0\n"
    "gemm linear512x2304x768 f32 512 2304 768 0 1\n"
    "gemm linear512x768x3072 f32 512 768 3072 0 1\n"
    "gemm cube1024_bf16 bf16 1024 1024 1024 0 0\n"
    "gemm linear512x2304x768_bf16 bf16 512 2304 768 0 1\n"
    "gemm decode1x3072x768 f32 1 3072 768 0 1\n"
    "wq wq8_16x3072x768 f32 16 3072 768 8 128 1\n"
    "wq wq4_1x3072x768 f32 1 3072 768 4 128 1\n";

static const char* default_cuda =
    "gemm cube8192 bf16 8192 8192 8192 0 0\n"
    "gemm cube4096 bf16 4096 4096 4096 0 0\n"
    "gemm gpt2_fc_16384x3072x768 bf16 16384 3072 768 0 1\n"
    "gemm gpt2_proj_16384x768x3072 bf16 16384 768 3072 0 1\n"
    "gemm gpt2_qkv_16384x2304x768 bf16 16384 2304 768 0 1\n"
    "gemm llama_up_8192x14336x4096 bf16 8192 14336 4096 0 1\n"
    "gemm llama_down_8192x4096x14336 bf16 8192 4096 14336 0 1\n"
    "gemm llama_qkv_8192x6144x4096 bf16 8192 6144 4096 0 1\n"
    "gemm cube4096_f16 f16 4096 4096 4096 0 0\n"
    "gemm cube4096_f32 f32 4096 4096 4096 0 0\n"
    "gemm decode16x4096x4096 bf16 16 4096 4096 0 1\n"
    "wq wq8_m1_4096x4096 bf16 1 4096 4096 8 128 1\n"
    "wq wq8_m16_4096x4096 bf16 16 4096 4096 8 128 1\n"
    "wq wq4_m1_4096x4096 bf16 1 4096 4096 4 128 1\n"
    "wq wq4_m16_4096x4096 bf16 16 4096 4096 4 128 1\n"
    "wq wq8_m1_14336x4096 bf16 1 14336 4096 8 128 1\n"
    "wq wq8_m16_14336x4096 bf16 16 14336 4096 8 128 1\n"
    "wq wq4_m1_14336x4096 bf16 1 14336 4096 4 128 1\n"
    "wq wq4_m16_14336x4096 bf16 16 14336 4096 4 128 1\n"
    "wq wq4a_m1_14336x4096 bf16 1 14336 4096 4 128 0\n"
    "wq wq8_m256_4096x4096 bf16 256 4096 4096 8 128 1\n";

static int parse_cases(const char* text, bcase_t* out, int cap) {
    int n = 0;
    const char* p = text;
    while (*p && n < cap) {
        char line[256];
        size_t len = strcspn(p, "\n");
        if (len >= sizeof line) len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = 0;
        p += strcspn(p, "\n");
        if (*p) ++p;
        if (line[0] == '#' || line[0] == 0) continue;
        bcase_t c;
        memset(&c, 0, sizeof c);
        if (sscanf(line, "%7s", c.kind) != 1) continue;
        if (strcmp(c.kind, "gemm") == 0) {
            if (sscanf(line, "%*s %63s %7s %lld %lld %lld %d %d", c.name, c.dtype, &c.m, &c.n, &c.k, &c.ta, &c.tb) != 7) {
                fprintf(stderr, "gemm_bench: bad case line: %s\n", line);
                exit(2);
            }
        } else if (strcmp(c.kind, "wq") == 0) {
            if (sscanf(line, "%*s %63s %7s %lld %lld %lld %d %d %d", c.name, c.dtype, &c.m, &c.n, &c.k, &c.bits, &c.group,
                       &c.sym) != 8) {
                fprintf(stderr, "gemm_bench: bad case line: %s\n", line);
                exit(2);
            }
        } else {
            fprintf(stderr, "gemm_bench: unknown case kind %s\n", c.kind);
            exit(2);
        }
        out[n++] = c;
    }
    return n;
}

static int32_t dtype_of(const char* s) {
    if (strcmp(s, "f32") == 0) return DS_DTYPE_F32;
    if (strcmp(s, "f16") == 0) return DS_DTYPE_F16;
    if (strcmp(s, "bf16") == 0) return DS_DTYPE_BF16;
    fprintf(stderr, "gemm_bench: unknown dtype %s\n", s);
    exit(2);
}

static uint64_t g_rng = 0x243F6A8885A308D3ull;
static float frand(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (float)((double)((g_rng * 2685821657736338717ull) >> 40) / 16777216.0 * 2.0 - 1.0);
}

/* A tensor on (dev) with uniform random values in [-1, 1) (through an f32 host tensor and ds_op_cast
 * when available, else by copying f32 and relying on the GEMM only needing finite data). */
static ds_tensor_t* rand_tensor(int32_t dev, int32_t dt, int nd, const int64_t* shape) {
    int64_t n = 1;
    for (int i = 0; i < nd; ++i) n *= shape[i];
    ds_tensor_t* h32 = NULL;
    if (ds_tensor_create(DS_DTYPE_F32, nd, shape, DS_DEV_CPU, 0, &h32) != DS_OK) die("ds_tensor_create");
    float* p = NULL;
    ds_tensor_get_data(h32, (void**)&p);
    for (int64_t i = 0; i < n; ++i) p[i] = frand();
    ds_tensor_t* h = h32;
    if (dt != DS_DTYPE_F32) {
        if (ds_tensor_create(dt, nd, shape, DS_DEV_CPU, 0, &h) != DS_OK) die("ds_tensor_create");
        uint16_t* q = NULL;
        ds_tensor_get_data(h, (void**)&q);
        for (int64_t i = 0; i < n; ++i) { /* round to nearest even, by hand (no dependence on ds_op_cast) */
            uint32_t u;
            memcpy(&u, &p[i], 4);
            if (dt == DS_DTYPE_BF16) {
                q[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
            } else { /* |x| < 1: normal or subnormal f16; a simple RNE for this range */
                float a = fabsf(p[i]);
                uint16_t s = (u >> 16) & 0x8000u;
                if (a < 6.103515625e-05f) {
                    q[i] = (uint16_t)(s | (uint16_t)lrintf(a / 5.960464477539063e-08f));
                } else {
                    int e;
                    float m = frexpf(a, &e); /* a = m 2^e, m in [0.5, 1) */
                    long mm = lrintf(m * 2048.0f); /* 11 significant bits */
                    if (mm == 2048) { mm = 1024; e += 1; }
                    q[i] = (uint16_t)(s | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)(mm - 1024));
                }
            }
        }
        ds_tensor_destroy(h32);
    }
    if (dev == DS_DEV_CPU) return h;
    ds_tensor_t* d = NULL;
    if (ds_tensor_clone(h, DS_DEV_CUDA, 0, &d) != DS_OK) die("ds_tensor_clone");
    ds_tensor_destroy(h);
    return d;
}

static ds_tensor_t* empty_tensor(int32_t dev, int32_t dt, int nd, const int64_t* shape) {
    ds_tensor_t* t = NULL;
    if (ds_tensor_create(dt, nd, shape, dev, 0, &t) != DS_OK) die("ds_tensor_create");
    return t;
}

typedef struct {
    ds_tensor_t *a, *b, *c, *bias;
    ds_tensor_t *wq, *scales, *zeros;
    ds_gemm_options_t go;
    ds_quant_options_t qo;
    int wq_case;
} prepared_t;

static void run_once(const prepared_t* p) {
    ds_status_t st = p->wq_case ? ds_op_gemm_wq(p->a, p->wq, p->scales, p->zeros, NULL, p->c, &p->qo)
                                : ds_op_gemm(p->a, p->b, NULL, p->c, &p->go);
    if (st != DS_OK) die(p->wq_case ? "ds_op_gemm_wq" : "ds_op_gemm");
}

static double time_case(const prepared_t* p, int32_t dev, double min_time) {
    /* warm-up */
    double t0 = now_s();
    int warm = 0;
    while (warm < 3 || now_s() - t0 < 0.1) {
        run_once(p);
        ++warm;
        if (warm >= 1000) break;
    }
    if (ds_dev_synchronize(dev, 0) != DS_OK) die("ds_dev_synchronize");
    /* a batch of about 0.05 s */
    t0 = now_s();
    run_once(p);
    ds_dev_synchronize(dev, 0);
    double one = now_s() - t0;
    int per_batch = one > 0 ? (int)(0.05 / one) : 1000;
    if (per_batch < 1) per_batch = 1;
    if (per_batch > 20000) per_batch = 20000;
    double best = 1e30, start = now_s();
    int batches = 0;
    while (batches < 3 || now_s() - start < min_time) {
        double b0 = now_s();
        for (int i = 0; i < per_batch; ++i) run_once(p);
        ds_dev_synchronize(dev, 0);
        double dt = (now_s() - b0) / per_batch;
        if (dt < best) best = dt;
        ++batches;
        if (batches > 10000) break;
    }
    return best;
}

int main(int argc, char** argv) {
    int32_t dev = DS_DEV_CPU;
    const char* json = NULL;
    const char* cases_file = NULL;
    const char* suite = "all";
    double min_time = 0.5;
    int threads = 0;
    int print_cases = 0;
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--print-cases") == 0) {
            print_cases = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "gemm_bench: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--device") == 0) dev = strcmp(v, "cuda") == 0 ? DS_DEV_CUDA : DS_DEV_CPU;
        else if (strcmp(a, "--json") == 0) json = v;
        else if (strcmp(a, "--cases") == 0) cases_file = v;
        else if (strcmp(a, "--suite") == 0) suite = v;
        else if (strcmp(a, "--min-time") == 0) min_time = atof(v);
        else if (strcmp(a, "--threads") == 0) threads = atoi(v);
        else {
            fprintf(stderr, "gemm_bench: unknown option %s\n", a);
            return 2;
        }
        ++i;
    }
    if (print_cases) {
        fputs(dev == DS_DEV_CUDA ? default_cuda : default_cpu, stdout);
        return 0;
    }
    if (threads > 0 && ds_op_set_num_threads(threads) != DS_OK) die("ds_op_set_num_threads");
    char* text = NULL;
    if (cases_file) {
        FILE* f = fopen(cases_file, "r");
        if (!f) {
            perror(cases_file);
            return 1;
        }
        text = calloc(1, 1 << 20);
        size_t got = fread(text, 1, (1 << 20) - 1, f);
        text[got] = 0;
        fclose(f);
    } else {
        text = strdup(dev == DS_DEV_CUDA ? default_cuda : default_cpu);
    }
    bcase_t cases[256];
    int ncases = parse_cases(text, cases, 256);
    free(text);
    ds_dev_info_t info;
    ds_dev_info_init(&info);
    if (ds_dev_get_info(dev, 0, &info) != DS_OK) die("ds_dev_get_info");
    int32_t isa = 0, nth = 0;
    ds_op_get_cpu_isa(&isa);
    ds_op_get_num_threads(&nth);
    FILE* out = json ? fopen(json, "w") : NULL;
    if (json && !out) {
        perror(json);
        return 1;
    }
    double peak = 0;
    if (dev == DS_DEV_CPU && isa > 0) {
        peak = measure_peak(nth, isa, 0.3);
        printf("measured f32 FMA peak: %.1f GFLOP/s on %d threads (%s)\n", peak, nth, isa == 2 ? "AVX-512" : "AVX2");
    }
    if (out)
        fprintf(out,
                "{\"device\": \"%s\", \"device_name\": \"%s\", \"cpu_isa\": %d, \"threads\": %d, "
                "\"measured_peak_gflops\": %.2f, \"rows\": [\n",
                dev == DS_DEV_CUDA ? "cuda" : "cpu", info.name, isa, nth, peak);
    printf("%-28s %-5s %7s %7s %7s %5s %11s %9s\n", "case", "dtype", "M", "N", "K", "extra", "time_us", "TFLOP/s");
    int first = 1;
    for (int ci = 0; ci < ncases; ++ci) {
        const bcase_t* c = &cases[ci];
        int is_wq = strcmp(c->kind, "wq") == 0;
        if (strcmp(suite, "all") != 0 && strcmp(suite, c->kind) != 0) continue;
        int32_t dt = dtype_of(c->dtype);
        prepared_t p;
        memset(&p, 0, sizeof p);
        p.wq_case = is_wq;
        int64_t cs[2] = {c->m, c->n};
        if (!is_wq) {
            int64_t as[2] = {c->ta ? c->k : c->m, c->ta ? c->m : c->k};
            int64_t bs[2] = {c->tb ? c->n : c->k, c->tb ? c->k : c->n};
            p.a = rand_tensor(dev, dt, 2, as);
            p.b = rand_tensor(dev, dt, 2, bs);
            p.c = empty_tensor(dev, dt, 2, cs);
            ds_gemm_options_init(&p.go);
            p.go.trans_a = c->ta;
            p.go.trans_b = c->tb;
        } else {
            int64_t xs[2] = {c->m, c->k}, ws[2] = {c->n, c->k}, qs[2] = {c->n, c->bits == 8 ? c->k : c->k / 2},
                    ss[2] = {c->n, c->k / c->group};
            p.a = rand_tensor(dev, dt, 2, xs);
            ds_tensor_t* w = rand_tensor(dev, DS_DTYPE_F32, 2, ws);
            p.wq = empty_tensor(dev, c->bits == 8 && c->sym ? DS_DTYPE_I8 : DS_DTYPE_U8, 2, qs);
            p.scales = empty_tensor(dev, DS_DTYPE_F32, 2, ss);
            p.zeros = c->sym ? NULL : empty_tensor(dev, DS_DTYPE_F32, 2, ss);
            p.c = empty_tensor(dev, dt, 2, cs);
            ds_quant_options_init(&p.qo);
            p.qo.bits = c->bits;
            p.qo.group_size = c->group;
            p.qo.symmetric = c->sym;
            if (ds_op_quantize(w, p.wq, p.scales, p.zeros, &p.qo) != DS_OK) die("ds_op_quantize");
            ds_tensor_destroy(w);
        }
        double t = time_case(&p, dev, min_time);
        double flops = 2.0 * (double)c->m * (double)c->n * (double)c->k;
        double wbytes = is_wq ? (double)c->n * (double)c->k * c->bits / 8.0 + (double)c->n * (c->k / c->group) * 4.0 *
                                    (c->sym ? 1 : 2)
                              : 0;
        char extra[32];
        if (is_wq)
            snprintf(extra, sizeof extra, "w%d%s", c->bits, c->sym ? "" : "a");
        else
            snprintf(extra, sizeof extra, "%s%s", c->ta ? "T" : "N", c->tb ? "T" : "N");
        printf("%-28s %-5s %7lld %7lld %7lld %5s %11.2f %9.4f\n", c->name, c->dtype, c->m, c->n, c->k, extra, t * 1e6,
               flops / t / 1e12);
        fflush(stdout);
        if (out) {
            fprintf(out,
                    "%s  {\"kind\": \"%s\", \"name\": \"%s\", \"dtype\": \"%s\", \"m\": %lld, \"n\": %lld, \"k\": %lld, "
                    "\"trans_a\": %d, \"trans_b\": %d, \"bits\": %d, \"group\": %d, \"symmetric\": %d, "
                    "\"time_us\": %.3f, \"tflops\": %.6f, \"weight_bytes\": %.0f}",
                    first ? "" : ",\n", c->kind, c->name, c->dtype, c->m, c->n, c->k, c->ta, c->tb, c->bits, c->group,
                    c->sym, t * 1e6, flops / t / 1e12, wbytes);
            first = 0;
        }
        ds_tensor_destroy(p.a);
        ds_tensor_destroy(p.b);
        ds_tensor_destroy(p.c);
        ds_tensor_destroy(p.wq);
        ds_tensor_destroy(p.scales);
        ds_tensor_destroy(p.zeros);
    }
    if (out) {
        fprintf(out, "\n]}\n");
        fclose(out);
    }
    return 0;
}
