/* Attention throughput through ds_op_attention (forward) and ds_op_attention + ds_op_attention_backward
 * (forward + backward), as JSON (one row per case); bench/ops/attn_torch.py times the same cases with
 * torch.nn.functional.scaled_dot_product_attention and merges the two.
 *
 *     attn_bench --device cpu|cuda [--cases FILE] [--json out.json] [--min-time 0.5] [--threads N]
 *     attn_bench --device cpu|cuda --print-cases      (the default cases, for attn_torch.py)
 *
 * One case per line:  NAME DTYPE B HQ HKV S SKV D CAUSAL   (q [B, S, HQ, D], k and v [B, SKV, HKV, D])
 * Timing: q, k, v and dout random in [-1, 1) (filled once); warm-up calls until 0.1 s or 3 calls; then
 * batches of calls between device synchronisations until min-time has passed; the time per call is
 * the best batch's mean. FLOPs: forward 4 B HQ S SKV D (halved under a causal mask with S = SKV),
 * backward 2.5 x forward, so forward + backward = 3.5 x forward.
 */
#define _GNU_SOURCE
#include <math.h>
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
    fprintf(stderr, "attn_bench: %s: %s\n", what, ds_last_error());
    exit(1);
}

typedef struct {
    char name[64];
    char dtype[8];
    long long B, Hq, Hkv, S, Skv, D;
    int causal;
} bcase_t;

static const char* default_cpu =
    "b1h8s512d64_causal f32 1 8 8 512 512 64 1\n"
    "b1h8s512d64 f32 1 8 8 512 512 64 0\n"
    "b1h4s1024d128_causal f32 1 4 4 1024 1024 128 1\n"
    "b2h8s256d64_gqa2 f32 2 8 4 256 256 64 0\n"
    "b1h8s512d64_causal_bf16 bf16 1 8 8 512 512 64 1\n";

static const char* default_cuda =
    "b8h16s2048d128_causal bf16 8 16 16 2048 2048 128 1\n"
    "b8h16s2048d128 bf16 8 16 16 2048 2048 128 0\n"
    "b8h16s2048d64_causal bf16 8 16 16 2048 2048 64 1\n"
    "b8h16s2048d64 bf16 8 16 16 2048 2048 64 0\n"
    "b8h16s2048d128_causal_f16 f16 8 16 16 2048 2048 128 1\n"
    "b2h16s8192d128_causal bf16 2 16 16 8192 8192 128 1\n"
    "b8h32kv8s2048d128_causal_gqa bf16 8 32 8 2048 2048 128 1\n"
    "b16h16s512d64_causal bf16 16 16 16 512 512 64 1\n";

static int parse_cases(const char* text, bcase_t* out, int cap) {
    int n = 0;
    const char* p = text;
    while (*p && n < cap) {
        const char* e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[256];
        if (len >= sizeof line) len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = 0;
        bcase_t c;
        memset(&c, 0, sizeof c);
        if (line[0] != '#' && sscanf(line, "%63s %7s %lld %lld %lld %lld %lld %lld %d", c.name, c.dtype, &c.B, &c.Hq, &c.Hkv,
                                     &c.S, &c.Skv, &c.D, &c.causal) == 9)
            out[n++] = c;
        if (!e) break;
        p = e + 1;
    }
    return n;
}

static char* read_file(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char* buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = 0;
    fclose(f);
    return buf;
}

static int32_t dtype_of(const char* s) {
    if (!strcmp(s, "bf16")) return DS_DTYPE_BF16;
    if (!strcmp(s, "f16")) return DS_DTYPE_F16;
    return DS_DTYPE_F32;
}

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static double rnd(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (double)((g_rng * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static uint16_t to_f16(float f) { /* normal range and zero (the values here are in [-1, 1)) */
    uint16_t s = f < 0 ? 0x8000u : 0;
    float a = fabsf(f);
    if (a < 6.103515625e-05f) return s;
    int e;
    float m = frexpf(a, &e); /* a = m 2^e, m in [0.5, 1) */
    long mant = lrintf((m * 2.0f - 1.0f) * 1024.0f);
    int ex = e - 1 + 15;
    if (mant == 1024) {
        mant = 0;
        ++ex;
    }
    return (uint16_t)(s | (uint16_t)(ex << 10) | (uint16_t)mant);
}

/* A tensor of the given shape on (dev, 0) filled with random values in [-1, 1). */
static ds_tensor_t* random_tensor(int32_t dtype, const int64_t* shape, int32_t dev) {
    int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
    ds_tensor_t *host = NULL, *t = NULL;
    if (ds_tensor_create(dtype, 4, shape, DS_DEV_CPU, 0, &host) != DS_OK) die("ds_tensor_create");
    void* p = NULL;
    ds_tensor_get_data(host, &p);
    for (int64_t i = 0; i < n; ++i) {
        float x = (float)rnd();
        if (dtype == DS_DTYPE_F32) ((float*)p)[i] = x;
        else ((uint16_t*)p)[i] = dtype == DS_DTYPE_BF16 ? to_bf16(x) : to_f16(x);
    }
    if (dev == DS_DEV_CPU) return host;
    if (ds_tensor_clone(host, dev, 0, &t) != DS_OK) die("ds_tensor_clone");
    ds_tensor_destroy(host);
    return t;
}

typedef struct {
    ds_tensor_t *q, *k, *v, *o, *lse, *dout, *dq, *dk, *dv;
    ds_attn_options_t opt;
} bufs_t;

static void run_fwd(bufs_t* b) {
    if (ds_op_attention(b->q, b->k, b->v, b->o, b->lse, &b->opt) != DS_OK) die("ds_op_attention");
}
static void run_fwdbwd(bufs_t* b) {
    run_fwd(b);
    if (ds_op_attention_backward(b->q, b->k, b->v, b->o, b->dout, b->lse, b->dq, b->dk, b->dv, &b->opt) != DS_OK)
        die("ds_op_attention_backward");
}

/* Best batch mean in seconds. */
static double time_it(void (*fn)(bufs_t*), bufs_t* b, int32_t dev, double min_time) {
    double t0 = now_s();
    int warm = 0;
    while (warm < 3 || now_s() - t0 < 0.1) {
        fn(b);
        if (ds_dev_synchronize(dev, 0) != DS_OK) die("ds_dev_synchronize");
        ++warm;
        if (now_s() - t0 > 5.0) break;
    }
    double per = (now_s() - t0) / warm;
    int batch = (int)(min_time / 5.0 / (per > 1e-9 ? per : 1e-9));
    if (batch < 1) batch = 1;
    if (batch > 1000) batch = 1000;
    double best = 1e30, start = now_s();
    int batches = 0;
    while (batches < 2 || now_s() - start < min_time) {
        double s = now_s();
        for (int i = 0; i < batch; ++i) fn(b);
        if (ds_dev_synchronize(dev, 0) != DS_OK) die("ds_dev_synchronize");
        double m = (now_s() - s) / batch;
        if (m < best) best = m;
        ++batches;
    }
    return best;
}

static double flops_fwd(const bcase_t* c) {
    double f = 4.0 * (double)c->B * (double)c->Hq * (double)c->S * (double)c->Skv * (double)c->D;
    return c->causal && c->S == c->Skv ? f / 2 : f;
}

int main(int argc, char** argv) {
    const char* device = "cpu";
    const char* cases_path = NULL;
    const char* json = NULL;
    double min_time = 0.5;
    int threads = 0, print_cases = 0;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(argv[i], "--cases") && i + 1 < argc) cases_path = argv[++i];
        else if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--print-cases")) print_cases = 1;
        else {
            fprintf(stderr, "usage: attn_bench --device cpu|cuda [--cases FILE] [--json out.json] [--min-time S] [--threads N] [--print-cases]\n");
            return 2;
        }
    }
    const int32_t dev = !strcmp(device, "cuda") ? DS_DEV_CUDA : DS_DEV_CPU;
    const char* text = cases_path ? read_file(cases_path) : dev == DS_DEV_CUDA ? default_cuda : default_cpu;
    if (print_cases) {
        fputs(text, stdout);
        return 0;
    }
    if (threads > 0) ds_op_set_num_threads(threads);
    int32_t nthreads = 0, isa = 0;
    ds_op_get_num_threads(&nthreads);
    ds_op_get_cpu_isa(&isa);
    bcase_t cases[64];
    int n = parse_cases(text, cases, 64);

    FILE* out = json ? fopen(json, "w") : NULL;
    if (json && !out) {
        perror(json);
        return 1;
    }
    if (out)
        fprintf(out, "{\n \"impl\": \"dsabi\",\n \"device\": \"%s\",\n \"threads\": %d,\n \"cpu_isa\": %d,\n \"min_time\": %g,\n \"rows\": [\n",
                device, nthreads, isa, min_time);
    const double unit = dev == DS_DEV_CUDA ? 1e-12 : 1e-9;
    const char* uname = dev == DS_DEV_CUDA ? "TFLOP/s" : "GFLOP/s";
    printf("%-34s %-5s %9s %9s %11s %9s\n", "case", "dtype", "fwd_ms", uname, "fwdbwd_ms", uname);
    for (int i = 0; i < n; ++i) {
        const bcase_t* c = &cases[i];
        const int32_t dt = dtype_of(c->dtype);
        const int64_t qs[4] = {c->B, c->S, c->Hq, c->D}, ks[4] = {c->B, c->Skv, c->Hkv, c->D}, ls[3] = {c->B, c->Hq, c->S};
        bufs_t b;
        memset(&b, 0, sizeof b);
        b.q = random_tensor(dt, qs, dev);
        b.k = random_tensor(dt, ks, dev);
        b.v = random_tensor(dt, ks, dev);
        b.dout = random_tensor(dt, qs, dev);
        if (ds_tensor_create(dt, 4, qs, dev, 0, &b.o) != DS_OK || ds_tensor_create(DS_DTYPE_F32, 3, ls, dev, 0, &b.lse) != DS_OK ||
            ds_tensor_create(dt, 4, qs, dev, 0, &b.dq) != DS_OK || ds_tensor_create(dt, 4, ks, dev, 0, &b.dk) != DS_OK ||
            ds_tensor_create(dt, 4, ks, dev, 0, &b.dv) != DS_OK)
            die("ds_tensor_create");
        ds_attn_options_init(&b.opt);
        b.opt.causal = c->causal;
        const double tf = time_it(run_fwd, &b, dev, min_time);
        const double tfb = time_it(run_fwdbwd, &b, dev, min_time);
        const double ff = flops_fwd(c);
        printf("%-34s %-5s %9.3f %9.2f %11.3f %9.2f\n", c->name, c->dtype, tf * 1e3, ff / tf * unit, tfb * 1e3,
               3.5 * ff / tfb * unit);
        fflush(stdout);
        if (out)
            fprintf(out,
                    "  {\"name\": \"%s\", \"dtype\": \"%s\", \"B\": %lld, \"Hq\": %lld, \"Hkv\": %lld, \"S\": %lld, \"Skv\": %lld, "
                    "\"D\": %lld, \"causal\": %d, \"fwd_flops\": %.6g, \"fwd_s\": %.6g, \"fwdbwd_s\": %.6g, "
                    "\"fwd_tflops\": %.4f, \"fwdbwd_tflops\": %.4f}%s\n",
                    c->name, c->dtype, c->B, c->Hq, c->Hkv, c->S, c->Skv, c->D, c->causal, ff, tf, tfb, ff / tf * 1e-12,
                    3.5 * ff / tfb * 1e-12, i + 1 < n ? "," : "");
        ds_tensor_t* all[] = {b.q, b.k, b.v, b.o, b.lse, b.dout, b.dq, b.dk, b.dv};
        for (size_t j = 0; j < sizeof all / sizeof all[0]; ++j) ds_tensor_destroy(all[j]);
    }
    if (out) {
        fprintf(out, " ]\n}\n");
        fclose(out);
    }
    return 0;
}
