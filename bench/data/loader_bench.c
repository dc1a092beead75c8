/* Data loader throughput (tokens/s handed out) with 1 and 2 worker threads, beside the token
 * consumption rate of the GPT-2 124M training peer of PEERS.md (torch.compile on one H100:
 * 454k tokens/s at B16 T1024). The engine does not exist yet, so the comparison is against that
 * published peer figure, not a run of the engine: the loader must outrun what a fast trainer eats.
 *
 *   loader_bench [--tokens N] [--dir D] [--seconds S] [--json PATH]
 *
 * Builds a synthetic u16 dataset of N tokens (default 2^28, 512 MiB) in D (default $TMPDIR or /tmp),
 * then for each configuration runs the loader for S seconds (default 3) after a warm-up, three times,
 * and reports the median. Uses only the public API. */
#include <dsabi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char* what) {
    fprintf(stderr, "loader_bench: %s: %s\n", what, ds_last_error());
    exit(1);
}

static int cmp_d(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    const char* name;
    int32_t mode, workers, dynamic;
    double tokens_per_s[3];
    double median;
} Run;

static double measure(ds_data_t* d, const Run* r, double seconds) {
    ds_data_loader_options_t o;
    ds_data_loader_options_init(&o);
    o.mode = r->mode;
    o.num_workers = r->workers;
    o.prefetch_depth = 8;
    o.micro_batch_size = 16;
    o.seed = 1;
    o.pin_memory = -1;
    if (r->mode == DS_DATA_MODE_WINDOWS) {
        o.seq_len = 1025;
        o.window_stride = 1024;
    } else {
        o.seq_len = 1024;
        o.dynamic_batching = r->dynamic;
        o.max_tokens = 1024;
        o.micro_batch_size = 16;
    }
    ds_data_loader_t* l = NULL;
    if (ds_data_loader_create(d, &o, &l) != DS_OK) die("loader");
    ds_data_batch_t* b = NULL;
    for (int i = 0; i < 50; ++i) { /* warm-up: threads started, buffers pooled, pages cached */
        if (ds_data_loader_next(l, &b) != DS_OK) die("next");
        ds_data_batch_destroy(b);
    }
    double tokens = 0;
    const double t0 = now();
    double t = t0;
    while (t - t0 < seconds) {
        if (ds_data_loader_next(l, &b) != DS_OK) die("next");
        if (!b) continue; /* end of an epoch */
        ds_data_batch_info_t info;
        ds_data_batch_info_init(&info);
        ds_data_batch_get_info(b, &info);
        /* count the model's input tokens: T - 1 per window row (inputs/targets share one), packed: real tokens */
        tokens += r->mode == DS_DATA_MODE_WINDOWS ? (double)info.n_rows * (double)(info.n_columns - 1) : (double)info.n_tokens;
        ds_data_batch_destroy(b);
        t = now();
    }
    ds_data_loader_destroy(l);
    return tokens / (t - t0);
}

int main(int argc, char** argv) {
    uint64_t n_tokens = 1ull << 28;
    double seconds = 3;
    const char* dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    const char* json = NULL;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--tokens") && i + 1 < argc) n_tokens = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
        else {
            fprintf(stderr, "usage: loader_bench [--tokens N] [--dir D] [--seconds S] [--json PATH]\n");
            return 2;
        }
    }
    char path[512];
    snprintf(path, sizeof path, "%s/dsabi-loader-bench-%d.dst", dir, (int)getpid());

    /* the dataset: documents of 64..2048 tokens, ids < 50257 (GPT-2's vocabulary) */
    const double tw = now();
    ds_data_writer_options_t wo;
    ds_data_writer_options_init(&wo);
    wo.vocab_size = 50257;
    ds_data_writer_t* w = NULL;
    if (ds_data_writer_create(path, &wo, &w) != DS_OK) die("writer");
    int32_t* buf = malloc(sizeof(int32_t) * 2048);
    uint64_t s = 88172645463325252ull, written = 0, docs = 0;
    while (written < n_tokens) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint64_t len = 64 + s % 1985;
        if (len > n_tokens - written) len = n_tokens - written;
        for (uint64_t k = 0; k < len; ++k) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            buf[k] = (int32_t)(s % 50257);
        }
        if (ds_data_writer_append(w, buf, len) != DS_OK || ds_data_writer_end_document(w) != DS_OK) die("append");
        written += len;
        docs++;
    }
    if (ds_data_writer_commit(w) != DS_OK) die("commit");
    ds_data_writer_destroy(w);
    free(buf);
    const double write_s = now() - tw;
    ds_data_t* d = NULL;
    if (ds_data_open(path, NULL, &d) != DS_OK) die("open");

    Run runs[] = {
        {"windows T=1024 B=16, 1 worker", DS_DATA_MODE_WINDOWS, 1, 0, {0}, 0},
        {"windows T=1024 B=16, 2 workers", DS_DATA_MODE_WINDOWS, 2, 0, {0}, 0},
        {"documents packed 1024 B=16, 1 worker", DS_DATA_MODE_DOCUMENTS, 1, 1, {0}, 0},
        {"documents packed 1024 B=16, 2 workers", DS_DATA_MODE_DOCUMENTS, 2, 1, {0}, 0},
    };
    const int n_runs = (int)(sizeof runs / sizeof runs[0]);
    for (int rep = 0; rep < 3; ++rep)
        for (int i = 0; i < n_runs; ++i) runs[i].tokens_per_s[rep] = measure(d, &runs[i], seconds);
    const double peer = 454000.0; /* PEERS.md: GPT-2 124M, B16 T1024, bf16, torch.compile, one H100 */
    char host[128] = "";
    gethostname(host, sizeof host);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int32_t n_gpus = 0;
    ds_dev_count(DS_DEV_CUDA, &n_gpus); /* with a GPU the batches are pinned (page-locked) */
    printf("dataset: %llu tokens (%.0f MiB u16) in %llu documents, written in %.1f s (%.0f MB/s)\n",
           (unsigned long long)n_tokens, n_tokens * 2 / 1048576.0, (unsigned long long)docs, write_s,
           n_tokens * 2 / 1e6 / write_s);
    printf("machine: %s, %ld cores, %d GPU(s) (batches %s); median of 3 runs of %.0f s each\n\n", host, cores, n_gpus,
           n_gpus > 0 ? "pinned" : "in plain host memory", seconds);
    printf("| configuration | M tokens/s (median) | runs (M tokens/s) | vs GPT-2 124M peer (0.454 M tokens/s, H100, torch.compile) |\n");
    printf("|---|---|---|---|\n");
    for (int i = 0; i < n_runs; ++i) {
        double v[3] = {runs[i].tokens_per_s[0], runs[i].tokens_per_s[1], runs[i].tokens_per_s[2]};
        qsort(v, 3, sizeof(double), cmp_d);
        runs[i].median = v[1];
        printf("| %s | %.1f | %.1f / %.1f / %.1f | %.0fx |\n", runs[i].name, v[1] / 1e6, runs[i].tokens_per_s[0] / 1e6,
               runs[i].tokens_per_s[1] / 1e6, runs[i].tokens_per_s[2] / 1e6, v[1] / peer);
    }
    printf("\nThe peer figure is the consumption rate of a training step (PEERS.md), not measured in this run: dsabi's\n"
           "engine does not exist yet. A ratio above 1 means the loader hands out tokens faster than that trainer eats them.\n");
    if (json) {
        time_t tt = time(NULL);
        char date[32];
        strftime(date, sizeof date, "%Y-%m-%d", gmtime(&tt));
        FILE* f = fopen(json, "w");
        if (!f) {
            perror(json);
            return 1;
        }
        fprintf(f, "{\n  \"benchmark\": \"data-loader\",\n  \"date\": \"%s\",\n  \"dsabi_version\": \"%s\",\n", date, ds_version_string());
        fprintf(f, "  \"machine\": {\"host\": \"%s\", \"cores\": %ld, \"gpus\": %d, \"pinned_batches\": %s},\n", host, cores,
                n_gpus, n_gpus > 0 ? "true" : "false");
        fprintf(f, "  \"dataset\": {\"tokens\": %llu, \"documents\": %llu, \"token_bytes\": 2, \"write_seconds\": %.3f},\n",
                (unsigned long long)n_tokens, (unsigned long long)docs, write_s);
        fprintf(f, "  \"method\": \"median of 3 runs of %.1f s after 50 warm-up batches; tokens = model input tokens handed out\",\n", seconds);
        fprintf(f, "  \"peer\": {\"name\": \"GPT-2 124M training step, B16 T1024, bf16, torch.compile, one H100 (PEERS.md)\","
                   " \"tokens_per_s\": %.0f, \"measured_in_this_run\": false},\n", peer);
        fprintf(f, "  \"results\": [\n");
        for (int i = 0; i < n_runs; ++i)
            fprintf(f, "    {\"configuration\": \"%s\", \"workers\": %d, \"tokens_per_s\": %.0f, \"runs\": [%.0f, %.0f, %.0f], \"ratio_to_peer\": %.2f}%s\n",
                    runs[i].name, runs[i].workers, runs[i].median, runs[i].tokens_per_s[0], runs[i].tokens_per_s[1],
                    runs[i].tokens_per_s[2], runs[i].median / peer, i + 1 < n_runs ? "," : "");
        fprintf(f, "  ]\n}\n");
        fclose(f);
        printf("wrote %s\n", json);
    }
    ds_data_close(d);
    remove(path);
    return 0;
}
