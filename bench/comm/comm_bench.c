/* Collective bandwidth through ds_comm, one line per (op, size), run under a launcher:
 *
 *     dsrun -n 2 --master-port 0 comm_bench [--ops all_reduce,all_gather,reduce_scatter,broadcast]
 *           [--min-bytes 1024] [--max-bytes 268435456] [--dtype f32] [--device cpu|cuda]
 *           [--iters N] [--json out.json] [--check -1|0|1]
 *
 * Sizes go up by 4x. "bytes" follows nccl-tests: the all_reduce / broadcast buffer, the gathered
 * output of all_gather, the input of reduce_scatter. Time is the mean of synchronous calls after a
 * barrier, as measured on rank 0; bus bandwidth uses nccl-tests' formulas (GB/s = 1e9 bytes/s):
 * all_reduce S/t * 2(n-1)/n, all_gather and reduce_scatter S/t * (n-1)/n, broadcast S/t.
 */
#define _GNU_SOURCE
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

static int die(const char* what) {
    fprintf(stderr, "comm_bench: %s: %s\n", what, ds_last_error());
    exit(1);
}

static int32_t parse_dtype(const char* s) {
    static const char* names[] = {"f32", "f16", "bf16", "f64", "i8", "u8", "i32", "i64"};
    static const int32_t codes[] = {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16, DS_DTYPE_F64,
                                    DS_DTYPE_I8,  DS_DTYPE_U8,  DS_DTYPE_I32,  DS_DTYPE_I64};
    for (int i = 0; i < 8; ++i)
        if (strcmp(s, names[i]) == 0) return codes[i];
    fprintf(stderr, "comm_bench: unknown dtype %s\n", s);
    exit(2);
}

int main(int argc, char** argv) {
    const char* ops = "all_reduce,all_gather,reduce_scatter,broadcast";
    const char* json = NULL;
    uint64_t min_bytes = 1024, max_bytes = 256ull << 20;
    int32_t dtype = DS_DTYPE_F32, dev = DS_DEV_CPU, check = DS_UNSET_I32;
    int fixed_iters = 0;
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "comm_bench: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--ops") == 0) ops = v;
        else if (strcmp(a, "--min-bytes") == 0) min_bytes = strtoull(v, NULL, 10);
        else if (strcmp(a, "--max-bytes") == 0) max_bytes = strtoull(v, NULL, 10);
        else if (strcmp(a, "--dtype") == 0) dtype = parse_dtype(v);
        else if (strcmp(a, "--device") == 0) dev = strcmp(v, "cuda") == 0 ? DS_DEV_CUDA : DS_DEV_CPU;
        else if (strcmp(a, "--iters") == 0) fixed_iters = atoi(v);
        else if (strcmp(a, "--json") == 0) json = v;
        else if (strcmp(a, "--check") == 0) check = atoi(v);
        else {
            fprintf(stderr, "comm_bench: unknown option %s\n", a);
            return 2;
        }
        ++i;
    }
    ds_comm_options_t o;
    ds_comm_options_init(&o);
    o.check_mismatch = check;
    ds_comm_t* c = NULL;
    if (ds_comm_create(&o, &c) != DS_OK) die("ds_comm_create");
    int32_t rank = 0, n = 1, local = 0;
    ds_comm_get_rank(c, &rank);
    ds_comm_get_world_size(c, &n);
    ds_comm_get_local_rank(c, &local);
    uint64_t es = 0;
    ds_dtype_size(dtype, &es);
    FILE* out = NULL;
    if (rank == 0 && json) {
        out = fopen(json, "w");
        if (!out) {
            perror(json);
            return 1;
        }
        char* info = NULL;
        ds_comm_query_info(c, &info);
        fprintf(out, "{\"impl\": \"dsabi\", \"world_size\": %d, \"dtype\": \"%s\", \"device\": \"%s\", \"comm\": %s, \"rows\": [\n", n,
                ds_dtype_name(dtype), dev == DS_DEV_CUDA ? "cuda" : "cpu", info);
        ds_free(info);
    }
    if (rank == 0)
        printf("%-16s %12s %8s %12s %12s %12s\n", "op", "bytes", "iters", "time_us", "algbw_GB/s", "busbw_GB/s");
    int first_row = 1;
    char list[256];
    snprintf(list, sizeof list, "%s", ops);
    for (char* op = strtok(list, ","); op; op = strtok(NULL, ",")) {
        for (uint64_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
            int64_t total = (int64_t)(bytes / es);
            total -= total % n;
            if (total <= 0) continue;
            int64_t part = total / n;
            ds_tensor_t *big = NULL, *small = NULL;
            if (ds_tensor_create(dtype, 1, &total, dev, dev == DS_DEV_CUDA ? local : 0, &big) != DS_OK) die("ds_tensor_create");
            if (ds_tensor_create(dtype, 1, &part, dev, dev == DS_DEV_CUDA ? local : 0, &small) != DS_OK) die("ds_tensor_create");
            int iters = fixed_iters > 0 ? fixed_iters : (int)(((512ull << 20) / bytes) > 200 ? 200 : ((512ull << 20) / bytes));
            if (iters < 3) iters = 3;
            int warm = iters / 10 + 1;
            double t0 = 0;
            for (int it = -warm; it < iters; ++it) {
                if (it == 0) {
                    if (ds_comm_barrier(c, NULL) != DS_OK) die("barrier");
                    t0 = now_s();
                }
                ds_status_t st;
                if (strcmp(op, "all_reduce") == 0) st = ds_comm_all_reduce(c, big, DS_REDUCE_SUM, NULL);
                else if (strcmp(op, "all_gather") == 0) st = ds_comm_all_gather(c, small, big, NULL);
                else if (strcmp(op, "reduce_scatter") == 0) st = ds_comm_reduce_scatter(c, big, small, DS_REDUCE_SUM, NULL);
                else if (strcmp(op, "broadcast") == 0) st = ds_comm_broadcast(c, big, 0, NULL);
                else {
                    fprintf(stderr, "comm_bench: unknown op %s\n", op);
                    return 2;
                }
                if (st != DS_OK) die(op);
            }
            double t = (now_s() - t0) / iters;
            double sz = (double)total * (double)es;
            double alg = sz / t / 1e9;
            double bus = strcmp(op, "all_reduce") == 0 ? alg * 2 * (n - 1) / n : strcmp(op, "broadcast") == 0 ? alg : alg * (n - 1) / n;
            if (rank == 0) {
                printf("%-16s %12.0f %8d %12.1f %12.3f %12.3f\n", op, sz, iters, t * 1e6, alg, bus);
                fflush(stdout);
                if (out) {
                    fprintf(out, "%s  {\"op\": \"%s\", \"bytes\": %.0f, \"iters\": %d, \"time_us\": %.3f, \"algbw_GBps\": %.4f, \"busbw_GBps\": %.4f}",
                            first_row ? "" : ",\n", op, sz, iters, t * 1e6, alg, bus);
                    first_row = 0;
                }
            }
            ds_tensor_destroy(big);
            ds_tensor_destroy(small);
        }
    }
    if (out) {
        fprintf(out, "\n]}\n");
        fclose(out);
    }
    ds_comm_barrier(c, NULL);
    ds_comm_destroy(c);
    return 0;
}
