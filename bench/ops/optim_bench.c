/* Optimizer step throughput of ds_op_optim_step, and the memory-bandwidth floor it is measured against.
 *
 *     optim_bench [--device cpu|cuda] [--n 100000000] [--tensors 1] [--threads 1,2] [--iters 5]
 *                 [--kind adamw] [--grad f32|f16|bf16] [--lp none|f16|bf16] [--check-finite 0|1]
 *                 [--stream 1] [--label NAME] [--json out.json]
 *
 * One row per thread count (CPU) or one row (CUDA): the best and the median time of `iters` steps
 * after one warm-up step, and the bytes one step moves (params, grads, states read; params, states,
 * lp copy written; the non-finite pre-pass reads the grads once more). With --stream 1 (CPU) the
 * same thread counts also measure memory bandwidth on arrays as large as the optimizer state:
 * STREAM copy (a = b) and triad (a = b + s c), counted the STREAM way (no write-allocate), and
 * "rmw4r3w": x += y; m += y; v += y in one pass, the access pattern of an Adam step (4 streams read,
 * 3 written back in place, 28 bytes per element), counted as 28 bytes. The floor of a step is its
 * bytes over the rmw4r3w bandwidth. On the CPU the bandwidth kernels run interleaved with the
 * optimizer steps (step, copy, triad, rmw4r3w, step, ...), so that both see the same machine load
 * (the CI machine is shared); copy and triad use two extra arrays, rmw4r3w the optimizer's own.
 *
 * CUDA times are wall-clock around `iters` asynchronous steps followed by one ds_dev_synchronize.
 */
#define _GNU_SOURCE
#include <omp.h>
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
    fprintf(stderr, "optim_bench: %s: %s\n", what, ds_last_error());
    exit(1);
}

static int32_t parse_dtype(const char* s) {
    if (strcmp(s, "f32") == 0) return DS_DTYPE_F32;
    if (strcmp(s, "f16") == 0) return DS_DTYPE_F16;
    if (strcmp(s, "bf16") == 0) return DS_DTYPE_BF16;
    if (strcmp(s, "none") == 0) return -1;
    fprintf(stderr, "optim_bench: unknown dtype %s\n", s);
    exit(2);
}

static int32_t parse_kind(const char* s) {
    static const char* names[] = {"adam", "adamw", "lamb", "lion", "sgd", "adagrad"};
    for (int i = 0; i < 6; ++i)
        if (strcmp(s, names[i]) == 0) return i;
    fprintf(stderr, "optim_bench: unknown kind %s\n", s);
    exit(2);
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

static double median(double* v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Bandwidth kernels (plain C, vectorised by the compiler at -O3). */
static void k_copy(float* restrict a, const float* restrict b, int64_t n, int nt) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i];
}
static void k_triad(float* restrict a, const float* restrict b, const float* restrict c, int64_t n, int nt) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i] + 0.5f * c[i];
}
static void k_rmw(float* restrict x, const float* restrict y, float* restrict m, float* restrict v, int64_t n, int nt) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) {
        float g = y[i];
        x[i] += 1e-30f * g;
        m[i] += 1e-30f * g;
        v[i] += 1e-30f * g;
    }
}

int main(int argc, char** argv) {
    const char* json = NULL;
    const char* threads_s = "1,2";
    const char* label = "";
    int64_t n = 100000000;
    int n_tensors = 1, iters = 5, stream = 1, check_finite = 0;
    int32_t dev = DS_DEV_CPU, kind = DS_OPTIM_ADAMW, gdt = DS_DTYPE_F32, ldt = -1;
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "optim_bench: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--device") == 0) dev = strcmp(v, "cuda") == 0 ? DS_DEV_CUDA : DS_DEV_CPU;
        else if (strcmp(a, "--n") == 0) n = (int64_t)strtod(v, NULL);
        else if (strcmp(a, "--tensors") == 0) n_tensors = atoi(v);
        else if (strcmp(a, "--threads") == 0) threads_s = v;
        else if (strcmp(a, "--iters") == 0) iters = atoi(v);
        else if (strcmp(a, "--kind") == 0) kind = parse_kind(v);
        else if (strcmp(a, "--grad") == 0) gdt = parse_dtype(v);
        else if (strcmp(a, "--lp") == 0) ldt = parse_dtype(v);
        else if (strcmp(a, "--check-finite") == 0) check_finite = atoi(v);
        else if (strcmp(a, "--stream") == 0) stream = atoi(v);
        else if (strcmp(a, "--label") == 0) label = v;
        else if (strcmp(a, "--json") == 0) json = v;
        else {
            fprintf(stderr, "optim_bench: unknown option %s\n", a);
            return 2;
        }
        ++i;
    }
    if (n_tensors < 1 || iters < 1 || n < n_tensors) {
        fprintf(stderr, "optim_bench: bad --n/--tensors/--iters\n");
        return 2;
    }
    if (gdt < 0) gdt = DS_DTYPE_F32;
    const int32_t dev_index = 0;
    ds_tensor_t** P = calloc((size_t)n_tensors, sizeof *P);
    ds_tensor_t** G = calloc((size_t)n_tensors, sizeof *G);
    ds_tensor_t** M = calloc((size_t)n_tensors, sizeof *M);
    ds_tensor_t** V = calloc((size_t)n_tensors, sizeof *V);
    ds_tensor_t** L = calloc((size_t)n_tensors, sizeof *L);
    ds_optim_options_t o;
    ds_optim_options_init(&o, kind);
    o.check_finite = check_finite;
    const int s1 = kind != DS_OPTIM_SGD || o.momentum != 0.0f, s2 = kind <= DS_OPTIM_LAMB;
    for (int t = 0; t < n_tensors; ++t) {
        int64_t len = n / n_tensors + (t < n % n_tensors);
        if (ds_tensor_create(DS_DTYPE_F32, 1, &len, dev, dev_index, &P[t]) != DS_OK) die("create params");
        if (ds_tensor_create(gdt, 1, &len, dev, dev_index, &G[t]) != DS_OK) die("create grads");
        if (s1 && ds_tensor_create(DS_DTYPE_F32, 1, &len, dev, dev_index, &M[t]) != DS_OK) die("create state1");
        if (s2 && ds_tensor_create(DS_DTYPE_F32, 1, &len, dev, dev_index, &V[t]) != DS_OK) die("create state2");
        if (ldt >= 0 && ds_tensor_create(ldt, 1, &len, dev, dev_index, &L[t]) != DS_OK) die("create params_lp");
        /* touch everything once (first-touch page faults are not part of a step) */
        if (ds_tensor_fill(P[t], 0.5) != DS_OK || ds_tensor_fill(G[t], 0.01) != DS_OK) die("fill");
    }
    uint64_t gsz = 0, lsz = 0;
    ds_dtype_size(gdt, &gsz);
    if (ldt >= 0) ds_dtype_size(ldt, &lsz);
    /* params read+write, grads read, states read+write, lp written (+ grads again for the pre-pass) */
    const double bytes_per = 8.0 + (double)gsz + 8.0 * s1 + 8.0 * s2 + (double)lsz + (check_finite ? (double)gsz : 0.0);
    const double bytes = bytes_per * (double)n;

    int thr[16], n_thr = 0;
    if (dev == DS_DEV_CPU) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", threads_s);
        for (char* tok = strtok(buf, ","); tok && n_thr < 16; tok = strtok(NULL, ",")) thr[n_thr++] = atoi(tok);
    } else {
        thr[n_thr++] = 0;
    }
    int32_t isa = 0;
    ds_op_get_cpu_isa(&isa);
    static const char* kinds[] = {"adam", "adamw", "lamb", "lion", "sgd", "adagrad"};
    const char* isan = isa == DS_CPU_ISA_AVX512 ? "avx512" : isa == DS_CPU_ISA_AVX2 ? "avx2" : "scalar";
    FILE* js = json ? fopen(json, "w") : NULL;
    if (json && !js) {
        fprintf(stderr, "optim_bench: cannot write %s\n", json);
        return 1;
    }
    if (js)
        fprintf(js, "{\"what\": \"ds_op_optim_step\", \"label\": \"%s\", \"device\": \"%s\", \"kind\": \"%s\", \"n\": %lld, "
                    "\"tensors\": %d, \"grad_dtype\": \"%s\", \"lp_dtype\": \"%s\", \"check_finite\": %d, \"cpu_isa\": \"%s\", "
                    "\"iters\": %d, \"bytes_per_param\": %.1f, \"rows\": [",
                label, dev == DS_DEV_CUDA ? "cuda" : "cpu", kinds[kind], (long long)n, n_tensors, ds_dtype_name(gdt),
                ldt >= 0 ? ds_dtype_name(ldt) : "none", check_finite, isan, iters, bytes_per);
    /* Bandwidth buffers (CPU, --stream 1): x, y, m, v of the first tensor's length (the optimizer's own
     * params/grads/states when they are f32, else extra arrays) and a, b for copy and triad. */
    const int do_stream = stream && dev == DS_DEV_CPU;
    float *x = NULL, *y = NULL, *m = NULL, *v = NULL, *sa = NULL, *sb = NULL;
    ds_tensor_t* extra[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    int64_t slen = n / n_tensors + (0 < n % n_tensors);
    double sbest[16][3];
    for (int r = 0; r < 16; ++r) sbest[r][0] = sbest[r][1] = sbest[r][2] = 1e30;
    if (do_stream) {
        for (int k = 0; k < 6; ++k) {
            int need = k == 0 ? 0 : k == 1 ? gdt != DS_DTYPE_F32 : k == 2 ? !s1 : k == 3 ? !s2 : 1;
            if (need && ds_tensor_create(DS_DTYPE_F32, 1, &slen, dev, dev_index, &extra[k]) != DS_OK) die("create");
        }
        ds_tensor_get_data(P[0], (void**)&x);
        ds_tensor_get_data(extra[1] ? extra[1] : G[0], (void**)&y);
        ds_tensor_get_data(extra[2] ? extra[2] : M[0], (void**)&m);
        ds_tensor_get_data(extra[3] ? extra[3] : V[0], (void**)&v);
        ds_tensor_get_data(extra[4], (void**)&sa);
        ds_tensor_get_data(extra[5], (void**)&sb);
        if (extra[1]) for (int64_t i = 0; i < slen; ++i) y[i] = 0.01f;
        for (int64_t i = 0; i < slen; ++i) { sa[i] = 0.0f; sb[i] = 1.0f; }
    }
    printf("%-8s %-6s %8s %12s %12s %10s\n", "what", "device", "threads", "best_s", "median_s", "GB/s");
    double* times = malloc(sizeof(double) * (size_t)iters);
    for (int r = 0; r < n_thr; ++r) {
        if (dev == DS_DEV_CPU && ds_op_set_num_threads(thr[r]) != DS_OK) die("ds_op_set_num_threads");
        int64_t step = 1;
        int32_t skipped = 0;
        if (ds_op_optim_step(&o, step++, P, n_tensors, G, n_tensors, M, s1 ? n_tensors : 0, V, s2 ? n_tensors : 0, L,
                             ldt >= 0 ? n_tensors : 0, &skipped) != DS_OK)
            die("ds_op_optim_step");
        if (ds_dev_synchronize(dev, dev_index) != DS_OK) die("sync");
        double best = 1e30, med = 0;
        if (dev == DS_DEV_CPU) {
            for (int it = 0; it < iters; ++it) {
                double t0 = now_s();
                if (ds_op_optim_step(&o, step++, P, n_tensors, G, n_tensors, M, s1 ? n_tensors : 0, V, s2 ? n_tensors : 0, L,
                                     ldt >= 0 ? n_tensors : 0, NULL) != DS_OK)
                    die("ds_op_optim_step");
                times[it] = now_s() - t0;
                if (times[it] < best) best = times[it];
                if (do_stream && r < 16) {
                    for (int k = 0; k < 3; ++k) {
                        double s0 = now_s();
                        if (k == 0) k_copy(sa, sb, slen, thr[r]);
                        else if (k == 1) k_triad(sa, sb, y, slen, thr[r]);
                        else k_rmw(x, y, m, v, slen, thr[r]);
                        double dt = now_s() - s0;
                        if (dt < sbest[r][k]) sbest[r][k] = dt;
                    }
                }
            }
            med = median(times, iters);
        } else {
            /* asynchronous launches: one sync per batch; 3 batches, the best per-step time kept */
            for (int b = 0; b < 3; ++b) {
                double t0 = now_s();
                for (int it = 0; it < iters; ++it)
                    if (ds_op_optim_step(&o, step++, P, n_tensors, G, n_tensors, M, s1 ? n_tensors : 0, V, s2 ? n_tensors : 0, L,
                                         ldt >= 0 ? n_tensors : 0, NULL) != DS_OK)
                        die("ds_op_optim_step");
                if (ds_dev_synchronize(dev, dev_index) != DS_OK) die("sync");
                times[b] = (now_s() - t0) / iters;
                if (times[b] < best) best = times[b];
            }
            med = median(times, 3);
        }
        printf("%-8s %-6s %8d %12.5f %12.5f %10.2f\n", kinds[kind], dev == DS_DEV_CUDA ? "cuda" : "cpu", thr[r], best, med,
               bytes / best * 1e-9);
        if (js)
            fprintf(js, "%s{\"threads\": %d, \"best_s\": %.6f, \"median_s\": %.6f, \"GBps\": %.3f}", r ? ", " : "", thr[r], best,
                    med, bytes / best * 1e-9);
    }
    if (js) fprintf(js, "]");

    if (do_stream) {
        if (js) fprintf(js, ", \"stream\": [");
        printf("\n%-8s %8s %12s %10s   (elements: %lld; interleaved with the steps above)\n", "stream", "threads", "best_s",
               "GB/s", (long long)slen);
        const char* names[3] = {"copy", "triad", "rmw4r3w"};
        const double per[3] = {8.0, 12.0, 28.0};
        int first = 1;
        for (int r = 0; r < n_thr && r < 16; ++r) {
            for (int k = 0; k < 3; ++k) {
                double gbps = per[k] * (double)slen / sbest[r][k] * 1e-9;
                printf("%-8s %8d %12.5f %10.2f\n", names[k], thr[r], sbest[r][k], gbps);
                if (js)
                    fprintf(js, "%s{\"kernel\": \"%s\", \"threads\": %d, \"best_s\": %.6f, \"bytes_per_elem\": %.0f, \"GBps\": %.3f}",
                            first ? "" : ", ", names[k], thr[r], sbest[r][k], per[k], gbps);
                first = 0;
            }
        }
        if (js) fprintf(js, "]");
    }
    for (int k = 0; k < 6; ++k) ds_tensor_destroy(extra[k]);
    if (js) {
        fprintf(js, "}\n");
        fclose(js);
    }
    for (int t = 0; t < n_tensors; ++t) {
        ds_tensor_destroy(P[t]);
        ds_tensor_destroy(G[t]);
        ds_tensor_destroy(M[t]);
        ds_tensor_destroy(V[t]);
        ds_tensor_destroy(L[t]);
    }
    free(P); free(G); free(M); free(V); free(L); free(times);
    return 0;
}
