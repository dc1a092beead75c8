/* data.i - the data pipeline (ds_data_*, ds_sampler_*) as classes and helpers every language shares.
 *
 * Handles: DataHandle (an open dataset; destroyed with ds_data_close), WriterHandle,
 * TokenizerHandle, SamplerHandle, CurriculumHandle, LoaderHandle, BatchHandle. Option structs
 * (BuildOptions, CurriculumOptions, LoaderOptions; structs.i) start from the library's defaults;
 * the pointers they hold (config, curriculum, tokenizer, strings) are arguments of the helper that
 * uses them, set for that call only.
 *
 * Arrays cross as CPU tensors: the helpers return token ids (i32), sample indices (i64) and decoded
 * bytes (u8) as new library-owned tensors, which each language turns into its own arrays (NumPy
 * without copying, Java and Go arrays by copy), and they take ids and metric values as contiguous
 * CPU tensors of the right dtype. So no language-specific array typemap is needed, and Go never
 * hands its own memory to the library.
 *
 * Callbacks are language-specific: the progress of ds_data_build and a custom curriculum
 * schedule are installed into BuildOptions / CurriculumOptions by each language's entry file (or
 * cgo code) before the helper below runs.
 */

%{
/* A new contiguous 1-D CPU tensor of n elements; *data receives its first element. */
static ds_tensor_t* dsabi_new_vector(int32_t dtype, uint64_t n, void** data) {
    int64_t dims[1] = {(int64_t)n};
    ds_tensor_t* t = NULL;
    if (!dsabi_ok(ds_tensor_create(dtype, 1, dims, DS_DEV_CPU, 0, &t))) return NULL;
    if (!dsabi_ok(ds_tensor_get_data(t, data))) {
        ds_tensor_destroy(t);
        return NULL;
    }
    return t;
}

/* The elements of a contiguous CPU tensor of dtype (any shape), for an input array. */
static int dsabi_vector_arg(const ds_tensor_t* t, int32_t dtype, const char* what, const void** data, uint64_t* n) {
    int32_t got = 0, dev = 0, index = 0, contiguous = 0;
    int64_t numel = 0;
    void* p = NULL;
    if (!dsabi_ok(ds_tensor_get_dtype(t, &got)) || !dsabi_ok(ds_tensor_get_device(t, &dev, &index)) ||
        !dsabi_ok(ds_tensor_is_contiguous(t, &contiguous)) || !dsabi_ok(ds_tensor_get_numel(t, &numel)) ||
        !dsabi_ok(ds_tensor_get_data(t, &p)))
        return 0;
    if (got != dtype || dev != DS_DEV_CPU || !contiguous) {
        dsabi_fail(DS_ERR_INVALID_ARG, "%s must be a contiguous CPU tensor of %s; got %s on %s%s", what,
                   ds_dtype_name(dtype), ds_dtype_name(got), dev == DS_DEV_CPU ? "cpu" : "cuda",
                   contiguous ? "" : " (strided)");
        return 0;
    }
    *data = p;
    *n = (uint64_t)numel;
    return 1;
}

/* One (buf, cap, &len) output of the C API, called as fill(ctx, buf, cap, &len). */
typedef ds_status_t (*dsabi_vector_fill)(const void* ctx, void* buf, uint64_t cap, uint64_t* len);

/* The two-call protocol into a new 1-D tensor of dtype: ask for the length, then fetch. */
static ds_tensor_t* dsabi_read_vector(int32_t dtype, dsabi_vector_fill fill, const void* ctx) {
    uint64_t len = 0;
    ds_status_t st = fill(ctx, NULL, 0, &len);
    if (st != DS_ERR_BUFFER_TOO_SMALL && !dsabi_ok(st)) return NULL;
    for (;;) {
        void* data = NULL;
        ds_tensor_t* t = dsabi_new_vector(dtype, len, &data);
        if (!t) return NULL;
        uint64_t need = 0;
        st = fill(ctx, data, len, &need);
        if (st == DS_OK && need == len) return t;
        ds_tensor_destroy(t);
        if (st != DS_OK && st != DS_ERR_BUFFER_TOO_SMALL) {
            dsabi_ok(st);
            return NULL;
        }
        len = need; /* the outputs are deterministic; this only guards against a changed answer */
    }
}

static const char* dsabi_or_null(const char* s) { return s && *s ? s : NULL; }

/* ---- the (buf, cap, &len) outputs, as dsabi_vector_fill ---- */

typedef struct {
    ds_data_tokenizer_t* tok;
    const void* in;
    uint64_t n;
} dsabi_codec_ctx;

static ds_status_t dsabi_fill_encode(const void* ctx, void* buf, uint64_t cap, uint64_t* len) {
    const dsabi_codec_ctx* c = (const dsabi_codec_ctx*)ctx;
    return ds_data_tokenizer_encode(c->tok, (const char*)c->in, c->n, (int32_t*)buf, cap, len);
}

static ds_status_t dsabi_fill_decode(const void* ctx, void* buf, uint64_t cap, uint64_t* len) {
    const dsabi_codec_ctx* c = (const dsabi_codec_ctx*)ctx;
    return ds_data_tokenizer_decode(c->tok, (const int32_t*)c->in, c->n, (char*)buf, cap, len);
}

typedef struct {
    const void* obj;
    int64_t arg;
} dsabi_index_ctx;

static ds_status_t dsabi_fill_document(const void* ctx, void* buf, uint64_t cap, uint64_t* len) {
    const dsabi_index_ctx* c = (const dsabi_index_ctx*)ctx;
    return ds_data_get_document((const ds_data_t*)c->obj, (uint64_t)c->arg, (int32_t*)buf, cap, len);
}

static ds_status_t dsabi_fill_indices(const void* ctx, void* buf, uint64_t cap, uint64_t* len) {
    const dsabi_index_ctx* c = (const dsabi_index_ctx*)ctx;
    return ds_sampler_get_indices((ds_sampler_t*)c->obj, c->arg, (int64_t*)buf, cap, len);
}

/* ds_data_build with the options' own callback (installed by the language), the tokenizer and the
 * delimiter set for this call only. Returns new stats, or NULL with the status pending; a build
 * that the progress callback stopped is pending DS_ABORTED. */
static ds_data_build_stats_t* dsabi_data_build_with(const char* out_path, const char* const* paths, int32_t n_paths,
                                                    ds_data_build_options_t* opts, const ds_data_tokenizer_t* tokenizer,
                                                    const char* delimiter) {
    if (n_paths < 0) return NULL; /* the path list could not be built: pending already */
    ds_data_build_stats_t* stats = (ds_data_build_stats_t*)malloc(sizeof *stats);
    if (!stats) {
        dsabi_fail(DS_ERR_NOMEM, "out of host memory");
        return NULL;
    }
    ds_data_build_stats_init(stats);
    opts->tokenizer = tokenizer;
    opts->delimiter = dsabi_or_null(delimiter);
    ds_status_t st = ds_data_build(out_path, paths, n_paths, opts, stats);
    opts->tokenizer = NULL;
    opts->delimiter = NULL;
    if (st == DS_ABORTED) {
        dsabi_fail(DS_ABORTED, "%s", ds_last_error());
    } else if (dsabi_ok(st)) {
        return stats;
    }
    free(stats);
    return NULL;
}
%}

/* ---- handles ---------------------------------------------------------------------------------- */

%nodefaultctor ds_data;
%nodefaultdtor ds_data;
struct ds_data {};
%nodefaultctor ds_data_writer;
%nodefaultdtor ds_data_writer;
struct ds_data_writer {};
%nodefaultctor ds_data_tokenizer;
%nodefaultdtor ds_data_tokenizer;
struct ds_data_tokenizer {};
%nodefaultctor ds_sampler;
%nodefaultdtor ds_sampler;
struct ds_sampler {};
%nodefaultctor ds_data_curriculum;
%nodefaultdtor ds_data_curriculum;
struct ds_data_curriculum {};
%nodefaultctor ds_data_loader;
%nodefaultdtor ds_data_loader;
struct ds_data_loader {};
%nodefaultctor ds_data_batch;
%nodefaultdtor ds_data_batch;
struct ds_data_batch {};

/* ---- tokenizers ------------------------------------------------------------------------------- */

%newobject ds_data_tokenizer::m_create;
%newobject ds_data_tokenizer::m_encode;
%newobject ds_data_tokenizer::m_decode;

%extend ds_data_tokenizer {
    ~ds_data_tokenizer() { ds_data_tokenizer_destroy($self); }

    /* kind DS_DATA_TOKENIZER_*; the paths ("" or NULL: none) are for GPT-2. */
    static ds_data_tokenizer_t* m_create(int32_t kind, const char* vocab_path, const char* merges_path) {
        ds_data_tokenizer_options_t opts;
        ds_data_tokenizer_options_init(&opts);
        opts.kind = kind;
        opts.vocab_path = dsabi_or_null(vocab_path);
        opts.merges_path = dsabi_or_null(merges_path);
        ds_data_tokenizer_t* tok = NULL;
        dsabi_ok(ds_data_tokenizer_create(&opts, &tok));
        return tok;
    }

    int64_t m_vocab_size() {
        int64_t n = 0;
        dsabi_ok(ds_data_tokenizer_get_vocab_size($self, &n));
        return n;
    }

    int32_t m_eot() {
        int32_t id = 0;
        dsabi_ok(ds_data_tokenizer_get_eot($self, &id));
        return id;
    }

    /* Ids of text, as a new i32 tensor. */
    ds_tensor_t* m_encode(const char* text, uint64_t text_len) {
        dsabi_codec_ctx ctx = {$self, text, text_len};
        return dsabi_read_vector(DS_DTYPE_I32, dsabi_fill_encode, &ctx);
    }

    /* The bytes of ids (a contiguous i32 CPU tensor), as a new u8 tensor. */
    ds_tensor_t* m_decode(const ds_tensor_t* ids) {
        dsabi_codec_ctx ctx = {$self, NULL, 0};
        if (!dsabi_vector_arg(ids, DS_DTYPE_I32, "ids", &ctx.in, &ctx.n)) return NULL;
        return dsabi_read_vector(DS_DTYPE_U8, dsabi_fill_decode, &ctx);
    }
}

/* ---- writing datasets -------------------------------------------------------------------------- */

%newobject ds_data_writer::m_create;

%extend ds_data_writer {
    ~ds_data_writer() { ds_data_writer_destroy($self); }

    /* token_bytes 0 keeps the default (2). */
    static ds_data_writer_t* m_create(const char* path, int32_t token_bytes, int64_t vocab_size, uint64_t buffer_bytes) {
        ds_data_writer_options_t opts;
        ds_data_writer_options_init(&opts);
        if (token_bytes) opts.token_bytes = token_bytes;
        opts.vocab_size = vocab_size;
        opts.buffer_bytes = buffer_bytes;
        ds_data_writer_t* w = NULL;
        dsabi_ok(ds_data_writer_create(path, &opts, &w));
        return w;
    }

    /* Append ids (a contiguous i32 CPU tensor) to the current document. */
    void m_append(const ds_tensor_t* ids) {
        const void* data = NULL;
        uint64_t n = 0;
        if (dsabi_vector_arg(ids, DS_DTYPE_I32, "ids", &data, &n)) dsabi_ok(ds_data_writer_append($self, (const int32_t*)data, n));
    }

    void m_end_document() { dsabi_ok(ds_data_writer_end_document($self)); }

    void m_commit() { dsabi_ok(ds_data_writer_commit($self)); }
}

%inline %{
/* A per-sample metric file from values (a contiguous i64 CPU tensor). */
void dsabi_data_metric_write(const char* path, const ds_tensor_t* values) {
    const void* data = NULL;
    uint64_t n = 0;
    if (dsabi_vector_arg(values, DS_DTYPE_I64, "values", &data, &n)) dsabi_ok(ds_data_metric_write(path, (const int64_t*)data, n));
}

/* DeepSpeed's scale_lr. */
double dsabi_data_scale_lr(int32_t method, int64_t base_batch_size, int64_t batch_size, double base_lr) {
    double lr = 0;
    dsabi_ok(ds_data_scale_lr(method, base_batch_size, batch_size, base_lr, &lr));
    return lr;
}
%}

/* ---- building datasets ------------------------------------------------------------------------- */

%extend ds_data_build_options {
    ds_data_build_options() {
        ds_data_build_options_t* opts = (ds_data_build_options_t*)malloc(sizeof *opts);
        if (opts) ds_data_build_options_init(opts);
        else dsabi_fail(DS_ERR_NOMEM, "out of host memory");
        return opts;
    }
    ~ds_data_build_options() { free($self); }
}

%extend ds_data_build_stats {
    ~ds_data_build_stats() { free($self); }
}

%newobject dsabi_data_build;
%inline %{
/* ds_data_build with opts as they are (a language that reports progress installs its callback in
 * opts first). tokenizer NULL: byte-level; delimiter "" or NULL: none. */
ds_data_build_stats_t* dsabi_data_build(const char* out_path, const char* const* paths, int32_t n_paths,
                                        ds_data_build_options_t* opts, const ds_data_tokenizer_t* tokenizer,
                                        const char* delimiter) {
    return dsabi_data_build_with(out_path, paths, n_paths, opts, tokenizer, delimiter);
}
%}

/* ---- reading datasets --------------------------------------------------------------------------- */

%newobject ds_data::m_open;
%newobject ds_data::m_document;
%newobject ds_data::m_read_tokens;

%extend ds_data {
    ~ds_data() { ds_data_close($self); }

    /* verify DS_DATA_VERIFY_*; max_resident_bytes 0: the default. */
    static ds_data_t* m_open(const char* path, int32_t verify, uint64_t max_resident_bytes) {
        ds_data_options_t opts;
        ds_data_options_init(&opts);
        opts.verify = verify;
        opts.max_resident_bytes = max_resident_bytes;
        ds_data_t* data = NULL;
        dsabi_ok(ds_data_open(path, &opts, &data));
        return data;
    }

    /* Document index's ids, as a new i32 tensor. */
    ds_tensor_t* m_document(uint64_t index) {
        dsabi_index_ctx ctx = {$self, (int64_t)index};
        return dsabi_read_vector(DS_DTYPE_I32, dsabi_fill_document, &ctx);
    }

    /* n ids of the concatenated stream from position first, as a new i32 tensor. */
    ds_tensor_t* m_read_tokens(uint64_t first, uint64_t n) {
        void* data = NULL;
        ds_tensor_t* t = dsabi_new_vector(DS_DTYPE_I32, n, &data);
        if (t && !dsabi_ok(ds_data_read_tokens($self, first, n, (int32_t*)data))) {
            ds_tensor_destroy(t);
            return NULL;
        }
        return t;
    }
}

%extend ds_data_info {
    /* The header facts of an open dataset. */
    ds_data_info(const ds_data_t* data) {
        ds_data_info_t* info = (ds_data_info_t*)malloc(sizeof *info);
        if (!info) {
            dsabi_fail(DS_ERR_NOMEM, "out of host memory");
            return NULL;
        }
        ds_data_info_init(info);
        if (!dsabi_ok(ds_data_get_info(data, info))) {
            free(info);
            return NULL;
        }
        return info;
    }
    ~ds_data_info() { free($self); }
}

/* ---- distributed sampler ----------------------------------------------------------------------- */

%newobject ds_sampler::m_create;
%newobject ds_sampler::m_indices;
%newobject ds_sampler::m_next;

%extend ds_sampler {
    ~ds_sampler() { ds_sampler_destroy($self); }

    static ds_sampler_t* m_create(uint64_t n_samples, int32_t rank, int32_t world_size, int64_t seed, bool shuffle,
                                  bool drop_last) {
        ds_sampler_options_t opts;
        ds_sampler_options_init(&opts);
        opts.n_samples = n_samples;
        opts.rank = rank;
        opts.world_size = world_size;
        opts.seed = seed;
        opts.shuffle = shuffle ? 1 : 0;
        opts.drop_last = drop_last ? 1 : 0;
        ds_sampler_t* s = NULL;
        dsabi_ok(ds_sampler_create(&opts, &s));
        return s;
    }

    int64_t m_length() {
        int64_t n = 0;
        dsabi_ok(ds_sampler_get_length($self, &n));
        return n;
    }

    /* This rank's whole share of an epoch, as a new i64 tensor. */
    ds_tensor_t* m_indices(int64_t epoch) {
        dsabi_index_ctx ctx = {$self, epoch};
        return dsabi_read_vector(DS_DTYPE_I64, dsabi_fill_indices, &ctx);
    }

    /* Up to max_n next indices of the current epoch, as a new i64 tensor (empty at its end). */
    ds_tensor_t* m_next(uint64_t max_n) {
        int64_t* buf = (int64_t*)malloc(sizeof(int64_t) * (size_t)(max_n ? max_n : 1));
        if (!buf) {
            dsabi_fail(DS_ERR_NOMEM, "out of host memory for %llu indices", (unsigned long long)max_n);
            return NULL;
        }
        uint64_t n = 0;
        void* data = NULL;
        ds_tensor_t* t = NULL;
        if (dsabi_ok(ds_sampler_next($self, buf, max_n, &n)) && (t = dsabi_new_vector(DS_DTYPE_I64, n, &data)) && n)
            memcpy(data, buf, sizeof(int64_t) * (size_t)n);
        free(buf);
        return t;
    }

    void m_set_epoch(int64_t epoch) { dsabi_ok(ds_sampler_set_epoch($self, epoch)); }

    int64_t m_epoch() {
        int64_t epoch = 0, position = 0;
        dsabi_ok(ds_sampler_get_cursor($self, &epoch, &position));
        return epoch;
    }

    int64_t m_position() {
        int64_t epoch = 0, position = 0;
        dsabi_ok(ds_sampler_get_cursor($self, &epoch, &position));
        return position;
    }

    void m_set_cursor(int64_t epoch, int64_t position) { dsabi_ok(ds_sampler_set_cursor($self, epoch, position)); }
}

/* ---- curriculum learning ----------------------------------------------------------------------- */

%extend ds_data_curriculum_options {
    ds_data_curriculum_options() {
        ds_data_curriculum_options_t* opts = (ds_data_curriculum_options_t*)malloc(sizeof *opts);
        if (opts) ds_data_curriculum_options_init(opts);
        else dsabi_fail(DS_ERR_NOMEM, "out of host memory");
        return opts;
    }
    ~ds_data_curriculum_options() { free($self); }
}

%newobject ds_data_curriculum::m_create;

%extend ds_data_curriculum {
    ~ds_data_curriculum() { ds_data_curriculum_destroy($self); }

    /* opts as they are (with a custom schedule installed by the language, if any); config, metric
     * and metric_path ("" or NULL: none) and the discrete schedule (difficulty: one more value than
     * max_step; both empty: from the config) are set for this call. */
    static ds_data_curriculum_t* m_create(ds_data_curriculum_options_t* opts, const ds_config_t* config, const char* metric,
                                          const char* metric_path, const int64_t* difficulty, int32_t n_difficulty,
                                          const int64_t* max_step, int32_t n_max_step) {
        if ((n_difficulty || n_max_step) && n_difficulty != n_max_step + 1) {
            dsabi_fail(DS_ERR_INVALID_ARG, "a discrete schedule needs one more difficulty than max_step; got %d and %d",
                       n_difficulty, n_max_step);
            return NULL;
        }
        ds_data_curriculum_options_t o = *opts;
        o.config = config;
        o.metric = dsabi_or_null(metric);
        o.metric_path = dsabi_or_null(metric_path);
        if (n_difficulty) {
            o.discrete_difficulty = difficulty;
            o.discrete_max_step = max_step;
            o.n_discrete = n_max_step;
        }
        ds_data_curriculum_t* c = NULL;
        dsabi_ok(ds_data_curriculum_create(&o, &c));
        return c;
    }

    int64_t m_difficulty(int64_t step) {
        int64_t d = 0;
        dsabi_ok(ds_data_curriculum_get_difficulty($self, step, &d));
        return d;
    }

    int64_t m_update(int64_t step) {
        int64_t d = 0;
        dsabi_ok(ds_data_curriculum_update($self, step, &d));
        return d;
    }

    int64_t m_current() {
        int64_t d = 0;
        dsabi_ok(ds_data_curriculum_get_current($self, &d));
        return d;
    }
}

/* ---- loader ------------------------------------------------------------------------------------ */

%extend ds_data_loader_options {
    ds_data_loader_options() {
        ds_data_loader_options_t* opts = (ds_data_loader_options_t*)malloc(sizeof *opts);
        if (opts) ds_data_loader_options_init(opts);
        else dsabi_fail(DS_ERR_NOMEM, "out of host memory");
        return opts;
    }
    ~ds_data_loader_options() { free($self); }
}

%extend ds_data_cursor {
    ds_data_cursor() {
        ds_data_cursor_t* cursor = (ds_data_cursor_t*)malloc(sizeof *cursor);
        if (cursor) ds_data_cursor_init(cursor);
        else dsabi_fail(DS_ERR_NOMEM, "out of host memory");
        return cursor;
    }
    ~ds_data_cursor() { free($self); }
}

%newobject ds_data_loader::m_create;
%newobject ds_data_loader::m_next;
%newobject ds_data_loader::m_cursor;
%newobject ds_data_loader::m_info_json;

%extend ds_data_loader {
    ~ds_data_loader() { ds_data_loader_destroy($self); }

    /* config and curriculum (NULL: none) are set for this call; the loader retains data and the
     * curriculum. */
    static ds_data_loader_t* m_create(ds_data_t* data, ds_data_loader_options_t* opts, const ds_config_t* config,
                                      const ds_data_curriculum_t* curriculum) {
        ds_data_loader_options_t o = *opts;
        o.config = config;
        o.curriculum = curriculum;
        ds_data_loader_t* loader = NULL;
        dsabi_ok(ds_data_loader_create(data, &o, &loader));
        return loader;
    }

    /* The next micro-batch, or NULL (no error) once at the end of each epoch. */
    ds_data_batch_t* m_next() {
        ds_data_batch_t* batch = NULL;
        dsabi_ok(ds_data_loader_next($self, &batch));
        return batch;
    }

    int64_t m_length() {
        int64_t n = 0;
        dsabi_ok(ds_data_loader_get_length($self, &n));
        return n;
    }

    ds_data_cursor_t* m_cursor() {
        ds_data_cursor_t* cursor = (ds_data_cursor_t*)malloc(sizeof *cursor);
        if (!cursor) {
            dsabi_fail(DS_ERR_NOMEM, "out of host memory");
            return NULL;
        }
        ds_data_cursor_init(cursor);
        if (!dsabi_ok(ds_data_loader_get_cursor($self, cursor))) {
            free(cursor);
            return NULL;
        }
        return cursor;
    }

    void m_set_cursor(const ds_data_cursor_t* cursor) { dsabi_ok(ds_data_loader_set_cursor($self, cursor)); }

    char* m_info_json() {
        char* json = NULL;
        return dsabi_ok(ds_data_loader_query_info($self, &json)) ? dsabi_adopt_string(json) : NULL;
    }
}

%newobject ds_data_batch::m_tensor;

%extend ds_data_batch {
    ~ds_data_batch() { ds_data_batch_destroy($self); }

    /* A new tensor on one field (DS_DATA_FIELD_*), sharing the batch's memory. */
    ds_tensor_t* m_tensor(int32_t field) {
        ds_tensor_t* t = NULL;
        dsabi_ok(ds_data_batch_get_tensor($self, field, &t));
        return t;
    }
}

%extend ds_data_batch_info {
    ds_data_batch_info(const ds_data_batch_t* batch) {
        ds_data_batch_info_t* info = (ds_data_batch_info_t*)malloc(sizeof *info);
        if (!info) {
            dsabi_fail(DS_ERR_NOMEM, "out of host memory");
            return NULL;
        }
        ds_data_batch_info_init(info);
        if (!dsabi_ok(ds_data_batch_get_info(batch, info))) {
            free(info);
            return NULL;
        }
        return info;
    }
    ~ds_data_batch_info() { free($self); }
}
