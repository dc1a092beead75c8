/* The loader: windows and documents, ranks, worker counts, resume from a cursor, dynamic batching
 * (token budget, every sample once, LR scale, packing metadata), curriculum truncation and metric
 * buckets, worker errors, batch lifetime. Data are fresh seeded random tokens. */
#include <stdint.h>
#include <stdlib.h>

#include "dsabi.h"
#include "minitest.h"
#include "test_data_util.h"

static char g_win[512], g_docs[512];
static uint64_t g_win_tokens;
static uint32_t g_doc_len[600];
static const int g_n_docs = 600;

static void make_datasets(void) {
    snprintf(g_win, sizeof g_win, "%s", path_in("windows.dst"));
    snprintf(g_docs, sizeof g_docs, "%s", path_in("docs.dst"));
    ds_data_writer_t* w = NULL;
    CHECK_OK(ds_data_writer_create(g_win, NULL, &w));
    int32_t ids[1000];
    g_win_tokens = 0;
    for (int d = 0; d < 40; ++d) {
        uint32_t n = 500 + rnd_below(500);
        for (uint32_t k = 0; k < n; ++k) ids[k] = (int32_t)rnd_below(50000);
        CHECK_OK(ds_data_writer_append(w, ids, n));
        CHECK_OK(ds_data_writer_end_document(w));
        g_win_tokens += n;
    }
    CHECK_OK(ds_data_writer_commit(w));
    ds_data_writer_destroy(w);
    CHECK_OK(ds_data_writer_create(g_docs, NULL, &w));
    for (int d = 0; d < g_n_docs; ++d) {
        uint32_t n = 1 + rnd_below(300);
        for (uint32_t k = 0; k < n; ++k) ids[k] = 1 + (int32_t)rnd_below(50000);
        g_doc_len[d] = n;
        CHECK_OK(ds_data_writer_append(w, ids, n));
        CHECK_OK(ds_data_writer_end_document(w));
    }
    CHECK_OK(ds_data_writer_commit(w));
    ds_data_writer_destroy(w);
}

static ds_data_t* open_data(const char* p) {
    ds_data_t* d = NULL;
    CHECK_OK(ds_data_open(p, NULL, &d));
    return d;
}

static void* field(ds_data_batch_t* b, int32_t f, int64_t* shape) {
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_data_batch_get_tensor(b, f, &t));
    void* p = NULL;
    ds_tensor_get_data(t, &p);
    uint64_t nd = 0;
    if (shape) ds_tensor_get_shape(t, shape, 2, &nd);
    ds_tensor_destroy(t); /* the memory lives as long as the batch */
    return p;
}

static ds_data_loader_options_t windows_opts(int32_t rank, int32_t world, int32_t workers) {
    ds_data_loader_options_t o;
    ds_data_loader_options_init(&o);
    o.seq_len = 65;
    o.window_stride = 64;
    o.micro_batch_size = 4;
    o.rank = rank;
    o.world_size = world;
    o.seed = 11;
    o.num_workers = workers;
    return o;
}

/* Run one epoch; append every sample id (in order) to ids; check token contents against the data. */
static int64_t run_epoch(ds_data_loader_t* l, ds_data_t* d, int64_t* ids, int check_tokens) {
    int64_t n = 0;
    int bad = 0;
    int32_t ref[70];
    ds_data_batch_t* b = NULL;
    while (ds_data_loader_next(l, &b) == DS_OK && b) {
        ds_data_batch_info_t info;
        ds_data_batch_info_init(&info);
        CHECK_OK(ds_data_batch_get_info(b, &info));
        int64_t shape[2];
        int32_t* tok = field(b, DS_DATA_FIELD_TOKENS, shape);
        int64_t* sid = field(b, DS_DATA_FIELD_SAMPLE_IDS, NULL);
        CHECK_EQ_INT(shape[0], info.n_rows);
        CHECK_EQ_INT(shape[1], info.n_columns);
        for (int64_t r = 0; r < info.n_rows; ++r) {
            ids[n++] = sid[r];
            if (check_tokens) {
                CHECK_OK(ds_data_read_tokens(d, (uint64_t)sid[r] * 64, (uint64_t)info.n_columns, ref));
                if (memcmp(ref, tok + r * info.n_columns, sizeof(int32_t) * (size_t)info.n_columns) != 0) bad++;
            }
        }
        ds_data_batch_destroy(b);
    }
    CHECK_EQ_INT(bad, 0);
    return n;
}

TEST(windows_follow_the_sampler_and_match_the_data) {
    ds_data_t* d = open_data(g_win);
    const int64_t n_windows = (int64_t)((g_win_tokens - 65) / 64 + 1);
    int64_t* ids = malloc(sizeof(int64_t) * (size_t)n_windows * 2);
    int* seen = calloc((size_t)n_windows, sizeof(int));
    for (int32_t world = 1; world <= 3; ++world) {
        memset(seen, 0, sizeof(int) * (size_t)n_windows);
        int64_t total = 0;
        for (int32_t r = 0; r < world; ++r) {
            ds_data_loader_options_t o = windows_opts(r, world, 2);
            ds_data_loader_t* l = NULL;
            CHECK_OK(ds_data_loader_create(d, &o, &l));
            int64_t len = 0;
            CHECK_OK(ds_data_loader_get_length(l, &len));
            const int64_t got = run_epoch(l, d, ids, 1);
            /* the order is the DistributedSampler's */
            ds_sampler_options_t so;
            ds_sampler_options_init(&so);
            so.n_samples = (uint64_t)n_windows;
            so.rank = r;
            so.world_size = world;
            so.seed = 11;
            ds_sampler_t* s = NULL;
            CHECK_OK(ds_sampler_create(&so, &s));
            int64_t* want = malloc(sizeof(int64_t) * (size_t)n_windows);
            uint64_t k = 0;
            CHECK_OK(ds_sampler_get_indices(s, 0, want, (uint64_t)n_windows, &k));
            CHECK_EQ_INT(got, (int64_t)k);
            CHECK(memcmp(want, ids, sizeof(int64_t) * k) == 0);
            CHECK_EQ_INT(len, ((int64_t)k + 3) / 4);
            free(want);
            ds_sampler_destroy(s);
            for (int64_t i = 0; i < got; ++i) seen[ids[i]]++;
            total += got;
            ds_data_loader_destroy(l);
        }
        int64_t missing = 0;
        for (int64_t i = 0; i < n_windows; ++i) missing += seen[i] == 0;
        CHECK_EQ_INT(missing, 0);
        CHECK_EQ_INT(total, (n_windows + world - 1) / world * world);
    }
    free(ids);
    free(seen);
    ds_data_close(d);
}

TEST(worker_count_does_not_change_the_stream) {
    ds_data_t* d = open_data(g_win);
    int64_t* a = malloc(sizeof(int64_t) * 20000);
    int64_t* b = malloc(sizeof(int64_t) * 20000);
    ds_data_loader_options_t o = windows_opts(1, 2, 1);
    ds_data_loader_t* l = NULL;
    CHECK_OK(ds_data_loader_create(d, &o, &l));
    int64_t na = run_epoch(l, d, a, 0);
    na += run_epoch(l, d, a + na, 0); /* second epoch: another permutation */
    ds_data_loader_destroy(l);
    for (int32_t workers = 2; workers <= 4; ++workers) {
        o = windows_opts(1, 2, workers);
        o.prefetch_depth = workers == 4 ? 1 : 8;
        CHECK_OK(ds_data_loader_create(d, &o, &l));
        int64_t nb = run_epoch(l, d, b, 1);
        nb += run_epoch(l, d, b + nb, 0);
        CHECK_EQ_INT(nb, na);
        CHECK(memcmp(a, b, sizeof(int64_t) * (size_t)na) == 0);
        ds_data_loader_destroy(l);
    }
    CHECK(memcmp(a, a + na / 2, sizeof(int64_t) * 16) != 0);
    free(a);
    free(b);
    ds_data_close(d);
}

TEST(resume_from_cursor_continues_exactly) {
    ds_data_t* d = open_data(g_win);
    int64_t* full = malloc(sizeof(int64_t) * 20000);
    int64_t* part = malloc(sizeof(int64_t) * 20000);
    ds_data_loader_options_t o = windows_opts(0, 2, 2);
    o.gradient_accumulation_steps = 3;
    ds_data_loader_t* l = NULL;
    CHECK_OK(ds_data_loader_create(d, &o, &l));
    int64_t nf = run_epoch(l, d, full, 0);
    nf += run_epoch(l, d, full + nf, 0);
    ds_data_loader_destroy(l);

    CHECK_OK(ds_data_loader_create(d, &o, &l));
    int64_t np = run_epoch(l, d, part, 0);
    ds_data_batch_t* b = NULL;
    for (int i = 0; i < 7; ++i) { /* 7 micro-batches into epoch 1, with batches prefetched beyond */
        CHECK_OK(ds_data_loader_next(l, &b));
        int64_t* sid = field(b, DS_DATA_FIELD_SAMPLE_IDS, NULL);
        ds_data_batch_info_t info;
        ds_data_batch_info_init(&info);
        ds_data_batch_get_info(b, &info);
        for (int64_t r = 0; r < info.n_rows; ++r) part[np++] = sid[r];
        ds_data_batch_destroy(b);
    }
    ds_data_cursor_t cur;
    ds_data_cursor_init(&cur);
    CHECK_OK(ds_data_loader_get_cursor(l, &cur));
    CHECK_EQ_INT(cur.epoch, 1);
    CHECK_EQ_INT(cur.position, 7);
    int64_t len = 0;
    ds_data_loader_get_length(l, &len);
    CHECK_EQ_INT(cur.global_step, (len + 7) / 3);
    CHECK_EQ_INT(cur.consumed_samples, np);
    ds_data_loader_destroy(l); /* "checkpoint" */

    CHECK_OK(ds_data_loader_create(d, &o, &l));
    CHECK_OK(ds_data_loader_set_cursor(l, &cur));
    ds_data_cursor_t again;
    ds_data_cursor_init(&again);
    CHECK_OK(ds_data_loader_get_cursor(l, &again));
    CHECK(memcmp(&again, &cur, sizeof cur) == 0);
    np += run_epoch(l, d, part + np, 0);
    CHECK_EQ_INT(np, nf);
    CHECK(memcmp(full, part, sizeof(int64_t) * (size_t)nf) == 0);
    cur.position = 100000;
    CHECK_STATUS(ds_data_loader_set_cursor(l, &cur), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "cursor->position=100000 is beyond the");
    ds_data_loader_destroy(l);
    free(full);
    free(part);
    ds_data_close(d);
}

TEST(documents_are_padded_to_the_longest) {
    ds_data_t* d = open_data(g_docs);
    ds_data_loader_options_t o;
    ds_data_loader_options_init(&o);
    o.mode = DS_DATA_MODE_DOCUMENTS;
    o.micro_batch_size = 5;
    o.seq_len = 200; /* cut */
    o.pad_id = -1;
    o.dtype = DS_DTYPE_I64;
    ds_data_loader_t* l = NULL;
    CHECK_OK(ds_data_loader_create(d, &o, &l));
    ds_data_batch_t* b = NULL;
    int bad = 0, batches = 0;
    int32_t ref[300];
    while (ds_data_loader_next(l, &b) == DS_OK && b) {
        ds_data_batch_info_t info;
        ds_data_batch_info_init(&info);
        ds_data_batch_get_info(b, &info);
        int64_t shape[2];
        int64_t* tok = field(b, DS_DATA_FIELD_TOKENS, shape);
        int32_t* lens = field(b, DS_DATA_FIELD_LENGTHS, NULL);
        int64_t* sid = field(b, DS_DATA_FIELD_SAMPLE_IDS, NULL);
        int64_t longest = 0, tokens = 0;
        for (int64_t r = 0; r < info.n_rows; ++r) {
            const uint32_t want_len = g_doc_len[sid[r]] < 200 ? g_doc_len[sid[r]] : 200;
            if ((uint32_t)lens[r] != want_len) bad++;
            uint64_t n = 0;
            ds_data_get_document(d, (uint64_t)sid[r], ref, 300, &n);
            for (int64_t c = 0; c < info.n_columns; ++c) {
                const int64_t want = c < lens[r] ? ref[c] : -1;
                if (tok[r * info.n_columns + c] != want) bad++;
            }
            longest = lens[r] > longest ? lens[r] : longest;
            tokens += lens[r];
        }
        CHECK_EQ_INT(info.n_columns, longest);
        CHECK_EQ_INT(info.n_tokens, tokens);
        ds_tensor_t* t = NULL;
        CHECK_STATUS(ds_data_batch_get_tensor(b, DS_DATA_FIELD_CU_SEQLENS, &t), DS_ERR_NOT_FOUND);
        CHECK_STATUS(ds_data_batch_get_tensor(b, 9, &t), DS_ERR_INVALID_ARG);
        ds_data_batch_destroy(b);
        batches++;
    }
    CHECK_EQ_INT(batches, 120);
    CHECK_EQ_INT(bad, 0);
    ds_data_loader_destroy(l);
    ds_data_close(d);
}

/* Gather one epoch of dynamic batching over `world` ranks. */
typedef struct {
    int64_t step, rank, samples, n_packs_rows;
    double lr_scale;
    int64_t global_samples;
} StepRec;

TEST(dynamic_batching_budget_coverage_lr_and_packing) {
    ds_data_t* d = open_data(g_docs);
    const int32_t world = 2, micro = 2, gas = 2;
    int* seen = calloc((size_t)g_n_docs, sizeof(int));
    int64_t step_samples[1000] = {0};
    double step_scale[1000];
    int64_t step_global[1000];
    int bad = 0, over = 0, n_steps = 0;
    char* info_json = NULL;
    for (int32_t r = 0; r < world; ++r) {
        ds_data_loader_options_t o;
        ds_data_loader_options_init(&o);
        o.mode = DS_DATA_MODE_DOCUMENTS;
        o.micro_batch_size = micro;
        o.gradient_accumulation_steps = gas;
        o.rank = r;
        o.world_size = world;
        o.dynamic_batching = 1;
        o.max_tokens = 512;
        o.lr_scaling_method = DS_DATA_LR_SCALING_LINEAR;
        o.picking_order = DS_DATA_PICK_RANDOM;
        o.seed = 5;
        ds_data_loader_t* l = NULL;
        CHECK_OK(ds_data_loader_create(d, &o, &l));
        if (r == 0) CHECK_OK(ds_data_loader_query_info(l, &info_json));
        ds_data_batch_t* b = NULL;
        int32_t ref[300];
        while (ds_data_loader_next(l, &b) == DS_OK && b) {
            ds_data_batch_info_t info;
            ds_data_batch_info_init(&info);
            ds_data_batch_get_info(b, &info);
            int64_t shape[2];
            int32_t* tok = field(b, DS_DATA_FIELD_TOKENS, shape);
            int32_t* lens = field(b, DS_DATA_FIELD_LENGTHS, NULL);
            int64_t* sid = field(b, DS_DATA_FIELD_SAMPLE_IDS, NULL);
            int32_t* cu = field(b, DS_DATA_FIELD_CU_SEQLENS, shape + 0);
            int64_t n_cu = shape[0];
            int32_t* pos = field(b, DS_DATA_FIELD_POSITION_IDS, NULL);
            int32_t* seq = field(b, DS_DATA_FIELD_SEQUENCE_IDS, NULL);
            CHECK_EQ_INT(info.n_rows, micro);
            CHECK_EQ_INT(info.n_columns, 512);
            /* segments tile the flattened batch */
            CHECK_EQ_INT(cu[0], 0);
            CHECK_EQ_INT(cu[n_cu - 1], micro * 512);
            int64_t k = 0, seg = 1;
            for (int64_t row = 0; row < info.n_rows; ++row) {
                int64_t col = 0;
                int32_t q = 0;
                if (lens[row] > 512) over++;
                while (col < lens[row]) {
                    const int64_t id = sid[k++];
                    seen[id]++;
                    uint64_t n = 0;
                    ds_data_get_document(d, (uint64_t)id, ref, 300, &n);
                    if (cu[seg] - cu[seg - 1] != (int32_t)n || cu[seg - 1] != row * 512 + col) bad++;
                    for (uint64_t t = 0; t < n; ++t) {
                        const int64_t at = row * 512 + col + (int64_t)t;
                        if (tok[at] != ref[t] || pos[at] != (int32_t)t || seq[at] != q) bad++;
                    }
                    col += (int64_t)n;
                    q++;
                    seg++;
                }
                if (col < 512) {
                    if (seq[row * 512 + col] != -1 || tok[row * 512 + 511] != 0 || cu[seg] != (row + 1) * 512) bad++;
                    seg++;
                }
            }
            CHECK_EQ_INT(seg, n_cu);
            CHECK_EQ_INT(k, info.n_samples);
            if (info.global_step < 1000) {
                step_samples[info.global_step] += info.n_samples;
                step_scale[info.global_step] = info.lr_scale;
                step_global[info.global_step] = info.global_batch_samples;
                if (info.global_step + 1 > n_steps) n_steps = (int)info.global_step + 1;
            }
            ds_data_batch_destroy(b);
        }
        ds_data_loader_destroy(l);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(over, 0);
    CHECK(n_steps > 10);
    /* LR scale = sequences in the global batch / packs per global batch (micro * gas * world) */
    for (int s = 0; s < n_steps; ++s) {
        CHECK_EQ_INT(step_global[s], step_samples[s]);
        CHECK_NEAR(step_scale[s], (double)step_samples[s] / (micro * gas * world), 1e-12);
    }
    /* each document at most once; those missing are the trimmed tail reported by query_info */
    int64_t twice = 0, missing = 0;
    for (int i = 0; i < g_n_docs; ++i) {
        twice += seen[i] > 1;
        missing += seen[i] == 0;
    }
    CHECK_EQ_INT(twice, 0);
    char want[64];
    snprintf(want, sizeof want, "\"dropped_tail\": %lld", (long long)missing);
    CHECK_CONTAINS(info_json, want);
    CHECK_CONTAINS(info_json, "\"dropped_too_long\": 0");
    CHECK(missing < micro * gas * world * 3); /* less than one global batch of packs */
    ds_free(info_json);
    free(seen);
    ds_data_close(d);
}

static void first_ids(ds_data_t* d, int64_t seed, int32_t order, int64_t* out, int n) {
    ds_data_loader_options_t o;
    ds_data_loader_options_init(&o);
    o.mode = DS_DATA_MODE_DOCUMENTS;
    o.micro_batch_size = 1;
    o.dynamic_batching = 1;
    o.max_tokens = 400;
    o.picking_order = order;
    o.lr_scaling_method = DS_DATA_LR_SCALING_SQRT;
    o.seed = seed;
    ds_data_loader_t* l = NULL;
    CHECK_OK(ds_data_loader_create(d, &o, &l));
    int k = 0;
    ds_data_batch_t* b = NULL;
    while (k < n && ds_data_loader_next(l, &b) == DS_OK && b) {
        ds_data_batch_info_t info;
        ds_data_batch_info_init(&info);
        ds_data_batch_get_info(b, &info);
        CHECK_NEAR(info.lr_scale, sqrt((double)info.global_batch_samples), 1e-12);
        int64_t* sid = field(b, DS_DATA_FIELD_SAMPLE_IDS, NULL);
        for (int64_t i = 0; i < info.n_samples && k < n; ++i) out[k++] = sid[i];
        ds_data_batch_destroy(b);
    }
    ds_data_loader_destroy(l);
}

TEST(dynamic_batching_order_is_deterministic_per_seed) {
    ds_data_t* d = open_data(g_docs);
    int64_t a[64], b[64], c[64], s[64];
    first_ids(d, 5, DS_DATA_PICK_RANDOM, a, 64);
    first_ids(d, 5, DS_DATA_PICK_RANDOM, b, 64);
    first_ids(d, 6, DS_DATA_PICK_RANDOM, c, 64);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    first_ids(d, 5, DS_DATA_PICK_SEQLEN, s, 64); /* shortest first */
    for (int i = 1; i < 64; ++i) CHECK(g_doc_len[s[i - 1]] <= g_doc_len[s[i]]);
    first_ids(d, 5, DS_DATA_PICK_DATALOADER, s, 64);
    for (int i = 0; i < 64; ++i) CHECK_EQ_INT(s[i], i);
    /* windows cannot be packed */
    ds_data_loader_options_t o;
    ds_data_loader_options_init(&o);
    o.seq_len = 8;
    o.dynamic_batching = 1;
    o.max_tokens = 100;
    ds_data_loader_t* l = NULL;
    CHECK_STATUS(ds_data_loader_create(d, &o, &l), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "DS_DATA_MODE_DOCUMENTS");
    ds_data_close(d);
}

TEST(config_drives_batching_and_seqlen_curriculum) {
    ds_config_t* cfg = parse_config(
        "{\"train_batch_size\": 6, \"train_micro_batch_size_per_gpu\": 3, \"curriculum_learning\": {\"enabled\": true,"
        " \"curriculum_type\": \"seqlen\", \"min_difficulty\": 8, \"max_difficulty\": 64, \"schedule_type\": \"fixed_linear\","
        " \"schedule_config\": {\"total_curriculum_step\": 10, \"difficulty_step\": 8}}}");
    CHECK(cfg != NULL);
    ds_data_t* d = open_data(g_win);
    ds_data_loader_options_t o;
    ds_data_loader_options_init(&o);
    o.config = cfg;
    o.seq_len = 65;
    o.window_stride = 64;
    ds_data_loader_t* l = NULL;
    CHECK_OK(ds_data_loader_create(d, &o, &l));
    /* micro batch 3 and accumulation 2 come from the config; difficulty(step + 1) truncates */
    int32_t ref[70];
    for (int i = 0; i < 30; ++i) {
        ds_data_batch_t* b = NULL;
        CHECK_OK(ds_data_loader_next(l, &b));
        ds_data_batch_info_t info;
        ds_data_batch_info_init(&info);
        ds_data_batch_get_info(b, &info);
        CHECK_EQ_INT(info.n_rows, 3);
        CHECK_EQ_INT(info.global_step, i / 2);
        /* fixed_linear: floor((s+1)/10 * 56 + 8) rounded down to 8, at most 64 */
        int64_t s1 = info.global_step + 1;
        int64_t dd = (int64_t)((double)s1 / 10.0 * 56.0 + 8.0);
        dd -= dd % 8;
        if (dd > 64) dd = 64;
        CHECK_EQ_INT(info.difficulty, dd);
        CHECK_EQ_INT(info.n_columns, dd);
        int32_t* tok = field(b, DS_DATA_FIELD_TOKENS, NULL);
        int64_t* sid = field(b, DS_DATA_FIELD_SAMPLE_IDS, NULL);
        ds_data_read_tokens(d, (uint64_t)sid[1] * 64, (uint64_t)dd, ref);
        CHECK(memcmp(ref, tok + dd, sizeof(int32_t) * (size_t)dd) == 0);
        ds_data_batch_destroy(b);
    }
    char* js = NULL;
    CHECK_OK(ds_data_loader_query_info(l, &js));
    CHECK_CONTAINS(js, "\"micro_batch_size\": 3");
    CHECK_CONTAINS(js, "\"gradient_accumulation_steps\": 2");
    CHECK_CONTAINS(js, "\"truncates\": true");
    int32_t n_gpus = 0;
    ds_dev_count(DS_DEV_CUDA, &n_gpus);
    CHECK_CONTAINS(js, n_gpus > 0 ? "\"pinned\": true" : "\"pinned\": false");
    ds_free(js);
    ds_data_loader_destroy(l);
    ds_data_close(d);
    ds_config_destroy(cfg);
}

TEST(metric_buckets_admit_samples_by_difficulty) {
    ds_data_t* d = open_data(g_docs);
    /* metric: the document length; value-based difficulty growing 50 -> 300 */
    int64_t metric[600];
    for (int i = 0; i < g_n_docs; ++i) metric[i] = g_doc_len[i];
    const char* mp = path_in("len.metric");
    CHECK_OK(ds_data_metric_write(mp, metric, (uint64_t)g_n_docs));
    ds_data_curriculum_options_t co;
    ds_data_curriculum_options_init(&co);
    co.schedule_type = DS_DATA_SCHEDULE_FIXED_LINEAR;
    co.min_difficulty = 50;
    co.max_difficulty = 300;
    co.total_curriculum_step = 20;
    co.difficulty_step = 10;
    co.metric_path = mp;
    ds_data_curriculum_t* cur = NULL;
    CHECK_OK(ds_data_curriculum_create(&co, &cur));
    int64_t first_batches[2][60];
    for (int32_t r = 0; r < 2; ++r) {
        ds_data_loader_options_t o;
        ds_data_loader_options_init(&o);
        o.mode = DS_DATA_MODE_DOCUMENTS;
        o.micro_batch_size = 3;
        o.gradient_accumulation_steps = 1;
        o.rank = r;
        o.world_size = 2;
        o.curriculum = cur;
        o.seed = 3;
        ds_data_loader_t* l = NULL;
        CHECK_OK(ds_data_loader_create(d, &o, &l));
        int k = 0;
        for (int i = 0; i < 20; ++i) {
            ds_data_batch_t* b = NULL;
            CHECK_OK(ds_data_loader_next(l, &b));
            ds_data_batch_info_t info;
            ds_data_batch_info_init(&info);
            ds_data_batch_get_info(b, &info);
            int64_t step = i + 1; /* DeepSpeed's curriculum_step counts global batches from 1 */
            int64_t dd = (int64_t)((double)step / 20.0 * 250.0 + 50.0);
            dd -= dd % 10;
            if (dd > 300) dd = 300;
            CHECK_EQ_INT(info.difficulty, dd);
            int64_t* sid = field(b, DS_DATA_FIELD_SAMPLE_IDS, NULL);
            for (int64_t q = 0; q < info.n_samples; ++q) {
                CHECK(metric[sid[q]] <= dd);
                first_batches[r][k++] = sid[q];
            }
            ds_data_batch_destroy(b);
        }
        ds_data_loader_destroy(l);
    }
    /* within each global batch the two ranks' slices are disjoint */
    for (int g = 0; g < 20; ++g)
        for (int a = 0; a < 3; ++a)
            for (int b2 = 0; b2 < 3; ++b2) CHECK(first_batches[0][g * 3 + a] != first_batches[1][g * 3 + b2]);
    ds_data_curriculum_destroy(cur);
    /* a metric file of the wrong length is rejected */
    CHECK_OK(ds_data_metric_write(mp, metric, 10));
    CHECK_OK(ds_data_curriculum_create(&co, &cur));
    ds_data_loader_options_t o;
    ds_data_loader_options_init(&o);
    o.mode = DS_DATA_MODE_DOCUMENTS;
    o.micro_batch_size = 2;
    o.curriculum = cur;
    ds_data_loader_t* l = NULL;
    CHECK_STATUS(ds_data_loader_create(d, &o, &l), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "has 10 values but the loader has 600 samples");
    ds_data_curriculum_destroy(cur);
    ds_data_close(d);
}

TEST(worker_errors_surface_on_the_next_call) {
    /* a dataset whose document offset is damaged, opened without checking offsets */
    const char* p = path_in("damaged.dst");
    copy_file(g_docs, p, -1);
    const long size = file_size(p);
    uint64_t bad = 1ull << 40;
    patch_file(p, size - 8 * (g_n_docs + 1) + 8 * 300, &bad, 8);
    ds_data_options_t dopt;
    ds_data_options_init(&dopt);
    dopt.verify = DS_DATA_VERIFY_HEADER;
    ds_data_t* d = NULL;
    CHECK_OK(ds_data_open(p, &dopt, &d));
    ds_data_loader_options_t o;
    ds_data_loader_options_init(&o);
    o.mode = DS_DATA_MODE_DOCUMENTS;
    o.micro_batch_size = 600; /* one batch holds every document */
    o.shuffle = 0;
    ds_data_loader_t* l = NULL;
    CHECK_OK(ds_data_loader_create(d, &o, &l));
    ds_data_batch_t* b = NULL;
    CHECK_STATUS(ds_data_loader_next(l, &b), DS_ERR_CORRUPT);
    CHECK(b == NULL);
    CHECK_CONTAINS(ds_last_error(), "ds_data_loader_next: worker: ");
    CHECK_CONTAINS(ds_last_error(), "damaged.dst");
    CHECK_CONTAINS(ds_last_error(), "byte offset");
    CHECK_STATUS(ds_data_loader_next(l, &b), DS_ERR_STATE);
    CHECK_CONTAINS(ds_last_error(), "stopped after an error in a worker");
    ds_data_loader_destroy(l);
    ds_data_close(d);
}

TEST(batches_outlive_the_loader_and_dataset) {
    ds_data_t* d = open_data(g_win);
    ds_data_loader_options_t o = windows_opts(0, 1, 3);
    o.pin_memory = 1; /* no GPU here: falls back to host memory */
    ds_data_loader_t* l = NULL;
    CHECK_OK(ds_data_loader_create(d, &o, &l));
    ds_data_batch_t* b = NULL;
    CHECK_OK(ds_data_loader_next(l, &b));
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_data_batch_get_tensor(b, DS_DATA_FIELD_TOKENS, &t));
    int32_t* p = NULL;
    ds_tensor_get_data(t, (void**)&p);
    int64_t* sid = field(b, DS_DATA_FIELD_SAMPLE_IDS, NULL);
    int32_t ref[65];
    ds_data_read_tokens(d, (uint64_t)sid[0] * 64, 65, ref);
    /* pinned through the CUDA backend where a GPU is present, else a fallback to host memory */
    int32_t n_gpus = 0;
    ds_dev_count(DS_DEV_CUDA, &n_gpus);
    char* js = NULL;
    CHECK_OK(ds_data_loader_query_info(l, &js));
    CHECK_CONTAINS(js, n_gpus > 0 ? "pinned host memory (CUDA backend)" : "pinned memory unavailable");
    ds_free(js);
    ds_data_batch_info_t info;
    ds_data_batch_info_init(&info);
    ds_data_batch_get_info(b, &info);
    CHECK_EQ_INT(info.pinned, n_gpus > 0 ? 1 : 0);
    if (n_gpus > 0) printf("pinned batches: %d GPU(s) present, batch memory is page-locked\n", n_gpus);
    int32_t dt = 0, dev = 0, idx = 0;
    ds_tensor_get_dtype(t, &dt);
    ds_tensor_get_device(t, &dev, &idx);
    CHECK_EQ_INT(dt, DS_DTYPE_I32);
    CHECK_EQ_INT(dev, DS_DEV_CPU);
    ds_data_loader_destroy(l); /* joins the workers */
    ds_data_close(d);
    ds_data_batch_destroy(b);
    CHECK(memcmp(p, ref, sizeof ref) == 0); /* the tensor still holds the memory */
    ds_tensor_destroy(t);
    CHECK_STATUS(ds_data_loader_next(l, &b), DS_ERR_INVALID_HANDLE);
    ds_data_loader_destroy(NULL);
    ds_data_batch_destroy(NULL);
}

TEST(loader_options_are_checked) {
    ds_data_t* d = open_data(g_win);
    ds_data_loader_t* l = NULL;
    ds_data_loader_options_t o = windows_opts(0, 1, 1);
    o.seq_len = 0;
    CHECK_STATUS(ds_data_loader_create(d, &o, &l), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opts->seq_len=0");
    o = windows_opts(3, 2, 1);
    CHECK_STATUS(ds_data_loader_create(d, &o, &l), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opts->rank=3");
    o = windows_opts(0, 1, 1);
    o.num_workers = 0;
    CHECK_STATUS(ds_data_loader_create(d, &o, &l), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opts->num_workers=0");
    o = windows_opts(0, 1, 1);
    o.dtype = DS_DTYPE_F32;
    CHECK_STATUS(ds_data_loader_create(d, &o, &l), DS_ERR_INVALID_ARG);
    o = windows_opts(0, 1, 1);
    o.seq_len = 1 << 30;
    CHECK_STATUS(ds_data_loader_create(d, &o, &l), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "fewer than one window");
    o = windows_opts(0, 1, 1);
    CHECK_STATUS(ds_data_loader_create(NULL, &o, &l), DS_ERR_INVALID_HANDLE);
    o.struct_size = 3;
    CHECK_STATUS(ds_data_loader_create(d, &o, &l), DS_ERR_VERSION);
    CHECK(l == NULL);
    ds_data_close(d);
}

int main(void) {
    ds_lib_options_t lo;
    ds_lib_options_init(&lo);
    lo.log_level = DS_LOG_ERROR; /* expected warnings (difficulty_step 10) stay quiet */
    ds_lib_init(&lo);
    scratch_init("data-loader");
    make_datasets();
    RUN(windows_follow_the_sampler_and_match_the_data);
    RUN(worker_count_does_not_change_the_stream);
    RUN(resume_from_cursor_continues_exactly);
    RUN(documents_are_padded_to_the_longest);
    RUN(dynamic_batching_budget_coverage_lr_and_packing);
    RUN(dynamic_batching_order_is_deterministic_per_seed);
    RUN(config_drives_batching_and_seqlen_curriculum);
    RUN(metric_buckets_admit_samples_by_difficulty);
    RUN(worker_errors_surface_on_the_next_call);
    RUN(batches_outlive_the_loader_and_dataset);
    RUN(loader_options_are_checked);
    scratch_cleanup();
    return minitest_report();
}
