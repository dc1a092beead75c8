/* Bandwidth of the nn family's ops (ds_op_*), one line per op, and the device copy bandwidth, as JSON
 * for bench/ops/nn_torch.py (which times PyTorch on the same shapes in the same run and merges):
 *
 *     nn_bench [--device cpu|cuda] [--preset cpu|gpu] [--batch-ms 100] [--ops name,name] [--json out.json]
 *
 * "bytes" counts what an op must move at least: every input read once, every output written once
 * (parameters and per-row statistics included). Time: warm-up, then batches of calls long enough to
 * last --batch-ms each (the device synchronised before and after a batch); the median over 5 batches
 * of the time per call. GB/s = 1e9 bytes/s. The copy line is ds_tensor_copy within the device
 * (bytes = 2 x size: read and write). */
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
    fprintf(stderr, "nn_bench: %s: %s\n", what, ds_last_error());
    exit(1);
}
#define OK(expr)                          \
    do {                                  \
        if ((expr) != DS_OK) die(#expr);  \
    } while (0)

static int32_t g_dev = DS_DEV_CPU;

/* A tensor on the benchmark device, filled with uniform values in [lo, hi) (or ints in [0, hi) for
 * index dtypes). */
static ds_tensor_t* mk(int32_t dt, int ndim, const int64_t* shape, double lo, double hi) {
    ds_tensor_t* h = NULL;
    OK(ds_tensor_create(dt, ndim, shape, DS_DEV_CPU, 0, &h));
    int64_t n = 0;
    void* p = NULL;
    OK(ds_tensor_get_numel(h, &n));
    OK(ds_tensor_get_data(h, &p));
    uint64_t s = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    for (int64_t i = 0; i < n; ++i) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double u = (double)(s >> 11) / 9007199254740992.0;
        double v = lo + (hi - lo) * u;
        switch (dt) {
            case DS_DTYPE_F32: ((float*)p)[i] = (float)v; break;
            case DS_DTYPE_BF16: {
                float f = (float)v;
                uint32_t b;
                memcpy(&b, &f, 4);
                ((uint16_t*)p)[i] = (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
                break;
            }
            case DS_DTYPE_F16: {
                /* values here are within [-8, 8): a simple normal-range encoding is enough */
                float f = (float)v;
                uint32_t b;
                memcpy(&b, &f, 4);
                uint32_t sign = (b >> 16) & 0x8000u, e = (b >> 23) & 0xff, m = b & 0x7fffffu;
                uint16_t h16 = (e < 103) ? (uint16_t)sign : (uint16_t)(sign | ((e - 112) << 10) | (m >> 13));
                ((uint16_t*)p)[i] = h16;
                break;
            }
            case DS_DTYPE_I32: ((int32_t*)p)[i] = (int32_t)(u * hi); break;
            case DS_DTYPE_I64: ((int64_t*)p)[i] = (int64_t)(u * hi); break;
            default: break;
        }
    }
    if (g_dev == DS_DEV_CPU) return h;
    ds_tensor_t* d = NULL;
    OK(ds_tensor_clone(h, DS_DEV_CUDA, 0, &d));
    ds_tensor_destroy(h);
    return d;
}

static void sync_dev(void) {
    if (g_dev == DS_DEV_CUDA) OK(ds_dev_synchronize(DS_DEV_CUDA, 0));
}

static int32_t parse_dtype(const char* s) {
    if (strcmp(s, "f32") == 0) return DS_DTYPE_F32;
    if (strcmp(s, "f16") == 0) return DS_DTYPE_F16;
    if (strcmp(s, "bf16") == 0) return DS_DTYPE_BF16;
    fprintf(stderr, "nn_bench: unknown dtype %s\n", s);
    exit(2);
}

/* ---- the ops --------------------------------------------------------------------------------------- */

typedef struct {
    const char* name;  /* also the key nn_torch.py uses */
    const char* dtype;
    int64_t rows, cols; /* [rows, cols]; cross-entropy: [N, V]; rope: rows = tokens, cols = H * 128 */
} bench_op_t;

typedef struct {
    ds_tensor_t* t[10];
    int32_t dt;
    int64_t bytes;
} state_t;

static int64_t esz(int32_t dt) { return dt == DS_DTYPE_F32 ? 4 : 2; }

static void setup(const bench_op_t* op, state_t* s) {
    memset(s, 0, sizeof *s);
    const int32_t dt = s->dt = parse_dtype(op->dtype);
    const int64_t n = op->rows, d = op->cols, e = esz(dt);
    int64_t sh[2] = {n, d}, shd[1] = {d}, shn[1] = {n};
    const char* k = op->name;
    if (!strncmp(k, "layer_norm", 10) || !strncmp(k, "rms_norm", 8)) {
        const int rms = k[0] == 'r';
        s->t[0] = mk(dt, 2, sh, -2, 2);             /* x */
        s->t[1] = mk(dt, 1, shd, 0.5, 1.5);         /* weight */
        s->t[2] = mk(dt, 1, shd, -0.1, 0.1);        /* bias */
        s->t[3] = mk(dt, 2, sh, 0, 0);              /* y */
        s->t[4] = mk(DS_DTYPE_F32, 1, shn, 0, 0);   /* mean */
        s->t[5] = mk(DS_DTYPE_F32, 1, shn, 0, 0);   /* rstd */
        s->t[6] = mk(dt, 2, sh, -1, 1);             /* dy */
        s->t[7] = mk(dt, 2, sh, 0, 0);              /* dx */
        s->t[8] = mk(dt, 1, shd, 0, 0);             /* dweight */
        s->t[9] = mk(dt, 1, shd, 0, 0);             /* dbias */
        if (rms)
            OK(ds_op_rms_norm(s->t[0], s->t[1], 1e-5f, s->t[3], s->t[5]));
        else
            OK(ds_op_layer_norm(s->t[0], s->t[1], s->t[2], 1e-5f, s->t[3], s->t[4], s->t[5]));
        const int64_t stats = (rms ? 1 : 2) * n * 4, params = (rms ? 1 : 2) * d * e;
        if (strstr(k, "bwd")) /* dy, x, stats, weight in; dx out; dweight (dbias) read + written */
            s->bytes = 3 * n * d * e + stats + d * e + 2 * params;
        else /* x, weight (bias) in; y, stats out */
            s->bytes = 2 * n * d * e + params + stats;
    } else if (!strncmp(k, "softmax", 7)) {
        s->t[0] = mk(dt, 2, sh, -4, 4);
        s->t[1] = mk(dt, 2, sh, 0, 0);
        s->t[2] = mk(dt, 2, sh, -1, 1);
        s->t[3] = mk(dt, 2, sh, 0, 0);
        OK(ds_op_softmax(s->t[0], 1.0f, s->t[1]));
        s->bytes = (strstr(k, "bwd") ? 3 : 2) * n * d * e;
    } else if (!strncmp(k, "cross_entropy", 13)) {
        s->t[0] = mk(dt, 2, sh, -4, 4);                /* logits */
        s->t[1] = mk(DS_DTYPE_I64, 1, shn, 0, (double)d); /* targets */
        s->t[2] = mk(DS_DTYPE_F32, 1, shn, 0, 0);      /* losses */
        s->t[3] = mk(dt, 2, sh, 0, 0);                 /* dlogits */
        s->bytes = n * d * e + n * 8 + n * 4 + (strstr(k, "bwd") ? n * d * e : 0);
    } else if (!strcmp(k, "gelu_tanh_fwd") || !strcmp(k, "gelu_tanh_bwd")) {
        s->t[0] = mk(dt, 2, sh, -4, 4);
        s->t[1] = mk(dt, 2, sh, -1, 1);
        s->t[2] = mk(dt, 2, sh, 0, 0);
        s->bytes = (strstr(k, "bwd") ? 3 : 2) * n * d * e;
    } else if (!strcmp(k, "swiglu_fwd")) {
        s->t[0] = mk(dt, 2, sh, -4, 4);
        s->t[1] = mk(dt, 2, sh, -2, 2);
        s->t[2] = mk(dt, 2, sh, 0, 0);
        s->bytes = 3 * n * d * e;
    } else if (!strcmp(k, "rope_fwd")) {
        int64_t sh3[3] = {n, d / 128, 128};
        s->t[0] = mk(dt, 3, sh3, -1, 1);
        s->t[1] = mk(DS_DTYPE_I64, 1, shn, 0, 4096);
        s->t[2] = mk(dt, 3, sh3, 0, 0);
        s->bytes = 2 * n * d * e + n * 8;
    } else if (!strcmp(k, "embedding_fwd") || !strcmp(k, "embedding_bwd")) {
        /* rows = tokens, cols = D; vocabulary 50304 */
        int64_t shw[2] = {50304, d};
        s->t[0] = mk(dt, 2, shw, -1, 1);
        s->t[1] = mk(DS_DTYPE_I64, 1, shn, 0, 50304);
        s->t[2] = mk(dt, 2, sh, 0, 0);
        s->t[3] = mk(dt, 2, shw, 0, 0);
        /* forward: ids, the gathered rows, out; backward: ids, dout, touched dweight rows read + written
         * (counted as n rows: an upper bound of the distinct ones) */
        s->bytes = n * 8 + (strstr(k, "bwd") ? 3 : 2) * n * d * e;
    } else if (!strcmp(k, "dropout_fwd")) {
        s->t[0] = mk(dt, 2, sh, -1, 1);
        s->t[1] = mk(dt, 2, sh, 0, 0);
        s->bytes = 2 * n * d * e;
    } else {
        fprintf(stderr, "nn_bench: unknown op %s\n", k);
        exit(2);
    }
    sync_dev();
}

static void run(const bench_op_t* op, state_t* s) {
    const char* k = op->name;
    ds_tensor_t** t = s->t;
    if (!strcmp(k, "layer_norm_fwd")) OK(ds_op_layer_norm(t[0], t[1], t[2], 1e-5f, t[3], t[4], t[5]));
    else if (!strcmp(k, "layer_norm_bwd")) OK(ds_op_layer_norm_backward(t[6], t[0], t[1], t[4], t[5], t[7], t[8], t[9]));
    else if (!strcmp(k, "rms_norm_fwd")) OK(ds_op_rms_norm(t[0], t[1], 1e-5f, t[3], t[5]));
    else if (!strcmp(k, "rms_norm_bwd")) OK(ds_op_rms_norm_backward(t[6], t[0], t[1], t[5], t[7], t[8]));
    else if (!strcmp(k, "softmax_fwd")) OK(ds_op_softmax(t[0], 1.0f, t[1]));
    else if (!strcmp(k, "softmax_bwd")) OK(ds_op_softmax_backward(t[1], t[2], 1.0f, t[3]));
    else if (!strcmp(k, "cross_entropy_fwd")) OK(ds_op_cross_entropy(t[0], t[1], -100, 1.0f, t[2], NULL));
    else if (!strcmp(k, "cross_entropy_fwd_bwd"))
        OK(ds_op_cross_entropy(t[0], t[1], -100, 1.0f / (float)op->rows, t[2], t[3]));
    else if (!strcmp(k, "gelu_tanh_fwd")) OK(ds_op_activation(DS_ACT_GELU_TANH, t[0], t[2]));
    else if (!strcmp(k, "gelu_tanh_bwd")) OK(ds_op_activation_backward(DS_ACT_GELU_TANH, t[0], t[1], t[2]));
    else if (!strcmp(k, "swiglu_fwd")) OK(ds_op_swiglu(t[0], t[1], t[2]));
    else if (!strcmp(k, "rope_fwd")) OK(ds_op_rope(t[0], t[1], 10000.0f, 0, t[2]));
    else if (!strcmp(k, "embedding_fwd")) OK(ds_op_embedding(t[0], t[1], t[2]));
    else if (!strcmp(k, "embedding_bwd")) OK(ds_op_embedding_backward(t[1], t[2], t[3]));
    else if (!strcmp(k, "dropout_fwd")) OK(ds_op_dropout(t[0], 0.1f, 1234, 0, t[1]));
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

/* Median seconds per call over 5 batches of about batch_s each. */
static double time_calls(void (*call)(const bench_op_t*, state_t*), const bench_op_t* op, state_t* s, double batch_s,
                         int* iters_out) {
    for (int i = 0; i < 2; ++i) call(op, s);
    sync_dev();
    double t0 = now_s();
    call(op, s);
    sync_dev();
    double one = now_s() - t0;
    int iters = one > 0 ? (int)(batch_s / one) : 1000;
    if (iters < 1) iters = 1;
    if (iters > 100000) iters = 100000;
    double per[5];
    for (int b = 0; b < 5; ++b) {
        sync_dev();
        t0 = now_s();
        for (int i = 0; i < iters; ++i) call(op, s);
        sync_dev();
        per[b] = (now_s() - t0) / iters;
    }
    qsort(per, 5, sizeof per[0], cmp_double);
    *iters_out = iters;
    return per[2];
}

static const bench_op_t GPU_OPS[] = {
    {"layer_norm_fwd", "bf16", 16384, 4096},  {"layer_norm_bwd", "bf16", 16384, 4096},
    {"rms_norm_fwd", "bf16", 16384, 4096},    {"rms_norm_bwd", "bf16", 16384, 4096},
    {"softmax_fwd", "bf16", 16384, 4096},     {"softmax_bwd", "bf16", 16384, 4096},
    {"cross_entropy_fwd", "bf16", 8192, 50304}, {"cross_entropy_fwd_bwd", "bf16", 8192, 50304},
    {"layer_norm_fwd", "f32", 16384, 4096},   {"layer_norm_bwd", "f32", 16384, 4096},
    {"gelu_tanh_fwd", "bf16", 16384, 16384},  {"gelu_tanh_bwd", "bf16", 16384, 16384},
    {"swiglu_fwd", "bf16", 16384, 11008},     {"rope_fwd", "bf16", 16384, 4096},
    {"embedding_fwd", "bf16", 16384, 4096},   {"embedding_bwd", "bf16", 16384, 4096},
    {"dropout_fwd", "bf16", 16384, 4096},
};
static const bench_op_t CPU_OPS[] = {
    {"layer_norm_fwd", "f32", 4096, 1024},  {"layer_norm_bwd", "f32", 4096, 1024},
    {"rms_norm_fwd", "f32", 4096, 1024},    {"rms_norm_bwd", "f32", 4096, 1024},
    {"softmax_fwd", "f32", 4096, 1024},     {"softmax_bwd", "f32", 4096, 1024},
    {"cross_entropy_fwd", "f32", 128, 50304}, {"cross_entropy_fwd_bwd", "f32", 128, 50304},
    {"layer_norm_fwd", "bf16", 4096, 1024}, {"layer_norm_bwd", "bf16", 4096, 1024},
    {"gelu_tanh_fwd", "f32", 4096, 1024},   {"gelu_tanh_bwd", "f32", 4096, 1024},
    {"swiglu_fwd", "f32", 4096, 1024},      {"rope_fwd", "f32", 4096, 1024},
    {"embedding_fwd", "f32", 4096, 1024},   {"embedding_bwd", "f32", 4096, 1024},
    {"dropout_fwd", "f32", 4096, 1024},
};

int main(int argc, char** argv) {
    const char* json = NULL;
    const char* preset = NULL;
    const char* only = NULL;
    double batch_ms = -1;
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "nn_bench: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--device")) g_dev = strcmp(v, "cuda") == 0 ? DS_DEV_CUDA : DS_DEV_CPU;
        else if (!strcmp(a, "--preset")) preset = v;
        else if (!strcmp(a, "--batch-ms")) batch_ms = atof(v);
        else if (!strcmp(a, "--ops")) only = v;
        else if (!strcmp(a, "--json")) json = v;
        else {
            fprintf(stderr, "nn_bench: unknown argument %s\n", a);
            return 2;
        }
        ++i;
    }
    OK(ds_lib_init(NULL));
    if (!preset) preset = g_dev == DS_DEV_CUDA ? "gpu" : "cpu";
    if (batch_ms <= 0) batch_ms = g_dev == DS_DEV_CUDA ? 60 : 150;
    const int gpu = !strcmp(preset, "gpu");
    const bench_op_t* ops = gpu ? GPU_OPS : CPU_OPS;
    const int n_ops = gpu ? (int)(sizeof GPU_OPS / sizeof GPU_OPS[0]) : (int)(sizeof CPU_OPS / sizeof CPU_OPS[0]);

    ds_dev_info_t info;
    ds_dev_info_init(&info);
    OK(ds_dev_get_info(g_dev, 0, &info));
    int32_t isa = 0, threads = 0;
    OK(ds_op_get_cpu_isa(&isa));
    OK(ds_op_get_num_threads(&threads));

    /* device copy bandwidth */
    const int64_t copy_elems = gpu ? (int64_t)1 << 28 : (int64_t)1 << 25; /* f32: 1 GiB / 128 MiB */
    ds_tensor_t* ca = mk(DS_DTYPE_F32, 1, &copy_elems, 0, 1);
    ds_tensor_t* cb = mk(DS_DTYPE_F32, 1, &copy_elems, 0, 0);
    double copy_best = 1e30;
    for (int r = 0; r < 6; ++r) {
        sync_dev();
        double t0 = now_s();
        OK(ds_tensor_copy(cb, ca));
        sync_dev();
        double t = now_s() - t0;
        if (r > 0 && t < copy_best) copy_best = t;
    }
    ds_tensor_destroy(ca);
    ds_tensor_destroy(cb);
    const double copy_gbps = 2.0 * (double)copy_elems * 4 / copy_best / 1e9;

    FILE* out = json ? fopen(json, "w") : NULL;
    if (json && !out) {
        fprintf(stderr, "nn_bench: cannot write %s\n", json);
        return 1;
    }
    printf("# nn_bench on %s (%s), preset %s, cpu isa %d, %d threads; copy %.1f GB/s\n",
           g_dev == DS_DEV_CUDA ? "cuda:0" : "cpu", info.name, preset, isa, threads, copy_gbps);
    printf("%-24s %-5s %-14s %12s %10s %10s %8s\n", "op", "dtype", "shape", "bytes", "us", "GB/s", "of copy");
    if (out)
        fprintf(out, "{\"device\": \"%s\", \"device_name\": \"%s\", \"cpu_isa\": %d, \"threads\": %d,\n"
                     " \"copy\": {\"bytes\": %lld, \"ms\": %.4f, \"gbps\": %.2f},\n \"ops\": [\n",
                g_dev == DS_DEV_CUDA ? "cuda" : "cpu", info.name, isa, threads, (long long)(2 * copy_elems * 4),
                copy_best * 1e3, copy_gbps);
    int first = 1;
    for (int i = 0; i < n_ops; ++i) {
        const bench_op_t* op = &ops[i];
        if (only) {
            char key[96];
            snprintf(key, sizeof key, ",%s,", op->name);
            char list[1024];
            snprintf(list, sizeof list, ",%s,", only);
            if (!strstr(list, key)) continue;
        }
        state_t s;
        setup(op, &s);
        int iters = 0;
        const double t = time_calls(run, op, &s, batch_ms * 1e-3, &iters);
        const double gbps = (double)s.bytes / t / 1e9;
        char shape[32];
        snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)op->rows, (long long)op->cols);
        printf("%-24s %-5s %-14s %12lld %10.1f %10.1f %7.0f%%\n", op->name, op->dtype, shape, (long long)s.bytes,
               t * 1e6, gbps, 100.0 * gbps / copy_gbps);
        fflush(stdout);
        if (out)
            fprintf(out, "%s  {\"op\": \"%s\", \"dtype\": \"%s\", \"rows\": %lld, \"cols\": %lld, \"bytes\": %lld, "
                         "\"ms\": %.5f, \"gbps\": %.2f, \"iters\": %d}",
                    first ? "" : ",\n", op->name, op->dtype, (long long)op->rows, (long long)op->cols,
                    (long long)s.bytes, t * 1e3, gbps, iters);
        first = 0;
        for (int k = 0; k < 10; ++k) ds_tensor_destroy(s.t[k]);
    }
    if (out) {
        fprintf(out, "\n ]}\n");
        fclose(out);
    }
    return 0;
}
