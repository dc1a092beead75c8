// Data pipeline: token datasets, tokenizers, writer and build, sampler, curriculum, dynamic
// batching, loader and batches (the ds_data_* and ds_sampler_* functions of dsabi.h).
#include <cjson/cJSON.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "capi/guard.hpp"
#include "capi/handles.hpp"
#include "core/lib.hpp"
#include "core/options.hpp"
#include "data/batching.hpp"
#include "data/build.hpp"
#include "data/curriculum.hpp"
#include "data/format.hpp"
#include "data/loader.hpp"
#include "data/sampler.hpp"
#include "data/tokenizer.hpp"

struct ds_data {
    static constexpr uint32_t kMagic = ds::kMagicData;
    static constexpr const char* kTypeName = "ds_data_t";
    std::shared_ptr<const ds::data::Dataset> d;
};

struct ds_data_writer {
    static constexpr uint32_t kMagic = ds::kMagicDataWriter;
    static constexpr const char* kTypeName = "ds_data_writer_t";
    std::unique_ptr<ds::data::Writer> w;
};

struct ds_data_tokenizer {
    static constexpr uint32_t kMagic = ds::kMagicTokenizer;
    static constexpr const char* kTypeName = "ds_data_tokenizer_t";
    std::unique_ptr<ds::data::Tokenizer> t;
    std::vector<int32_t> scratch;
};

struct ds_sampler {
    static constexpr uint32_t kMagic = ds::kMagicSampler;
    static constexpr const char* kTypeName = "ds_sampler_t";
    std::unique_ptr<ds::data::DistributedSampler> s;
    int64_t epoch = 0;
    int64_t position = 0;
    int64_t cached_epoch = -1;
    std::vector<int64_t> cached;
    const std::vector<int64_t>& share(int64_t e) {
        if (cached_epoch != e) {
            cached = s->indices(e);
            cached_epoch = e;
        }
        return cached;
    }
};

struct ds_data_curriculum {
    static constexpr uint32_t kMagic = ds::kMagicCurriculum;
    static constexpr const char* kTypeName = "ds_data_curriculum_t";
    std::shared_ptr<ds::data::Curriculum> c;
};

struct ds_data_loader {
    static constexpr uint32_t kMagic = ds::kMagicLoader;
    static constexpr const char* kTypeName = "ds_data_loader_t";
    std::unique_ptr<ds::data::Loader> l;
};

struct ds_data_batch {
    static constexpr uint32_t kMagic = ds::kMagicBatch;
    static constexpr const char* kTypeName = "ds_data_batch_t";
    std::shared_ptr<ds::data::BatchData> b;
};

using ds::capi::check_handle;
using ds::capi::check_out;
using ds::capi::guard;

namespace {

unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }
long long ll(int64_t v) { return static_cast<long long>(v); }

void check_flag(int32_t v, const char* name) {
    if (v != 0 && v != 1) ds::fail(DS_ERR_INVALID_ARG, "%s=%d must be 0 or 1", name, v);
}

// Versioned output structs written by the library (info, stats, cursor): check the header and copy
// only what the caller's struct holds.
template <class T>
void write_out_struct(T* user, T value, const char* name) {
    check_out(user, name);
    if (user->struct_size < 2 * sizeof(uint32_t))
        ds::fail(DS_ERR_VERSION, "%s->struct_size=%u is too small; fill it with its _init() first", name, user->struct_size);
    if (user->abi_version > DS_ABI_VERSION)
        ds::fail(DS_ERR_VERSION, "%s->abi_version=%u is newer than this library's ABI %d", name, user->abi_version,
                 DS_ABI_VERSION);
    const uint32_t n = std::min<uint32_t>(user->struct_size, sizeof(T));
    value.struct_size = user->struct_size;
    value.abi_version = user->abi_version;
    std::memcpy(static_cast<void*>(user), &value, n);
}

// ---- config access through the public getters -------------------------------------------------

class LastErrorKeeper {
public:
    LastErrorKeeper() : saved_(ds::last_error()) {}
    ~LastErrorKeeper() { ds::set_last_error(saved_); }

private:
    std::string saved_;
};

// A subtree of the config as cJSON (nullptr when absent). Owns the tree.
struct Json {
    cJSON* root = nullptr;
    ~Json() { cJSON_Delete(root); }
};

void load_json(const ds_config_t* cfg, const char* path, Json& out) {
    LastErrorKeeper keep;
    char* text = nullptr;
    const ds_status_t st = ds_config_to_json(cfg, path, 0, &text);
    if (st == DS_ERR_NOT_FOUND) return;
    if (st == DS_ERR_INVALID_HANDLE)
        ds::fail(DS_ERR_INVALID_HANDLE, "opts->config=%p is not a live ds_config_t", static_cast<const void*>(cfg));
    if (st != DS_OK) ds::fail(st, "reading config %s: %s", path, ds::last_error());
    out.root = cJSON_Parse(text);
    ds_free(text);
}

const cJSON* child(const cJSON* o, const char* key) {
    return o && cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : nullptr;
}

bool json_bool(const cJSON* o, const char* key, bool dflt) {
    const cJSON* v = child(o, key);
    return v && cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

// An integer at path/key; absent or null -> false. Non-integers are config errors naming the key.
bool json_i64(const cJSON* o, const char* key, const std::string& where, int64_t* out) {
    const cJSON* v = child(o, key);
    if (!v || cJSON_IsNull(v)) return false;
    if (!cJSON_IsNumber(v) || v->valuedouble != std::floor(v->valuedouble))
        ds::fail(DS_ERR_CONFIG_VALUE, "config %s.%s must be an integer", where.c_str(), key);
    *out = static_cast<int64_t>(v->valuedouble);
    return true;
}

bool json_f64(const cJSON* o, const char* key, const std::string& where, double* out) {
    const cJSON* v = child(o, key);
    if (!v || cJSON_IsNull(v)) return false;
    if (!cJSON_IsNumber(v)) ds::fail(DS_ERR_CONFIG_VALUE, "config %s.%s must be a number", where.c_str(), key);
    *out = v->valuedouble;
    return true;
}

bool json_str(const cJSON* o, const char* key, const std::string& where, std::string* out) {
    const cJSON* v = child(o, key);
    if (!v || cJSON_IsNull(v)) return false;
    if (!cJSON_IsString(v)) ds::fail(DS_ERR_CONFIG_VALUE, "config %s.%s must be a string", where.c_str(), key);
    *out = v->valuestring;
    return true;
}

std::vector<int64_t> json_i64_list(const cJSON* o, const char* key, const std::string& where) {
    std::vector<int64_t> out;
    const cJSON* v = child(o, key);
    if (!v || cJSON_IsNull(v)) return out;
    if (!cJSON_IsArray(v)) ds::fail(DS_ERR_CONFIG_VALUE, "config %s.%s must be a list of integers", where.c_str(), key);
    int i = 0;
    for (const cJSON* e = v->child; e; e = e->next, ++i) {
        if (!cJSON_IsNumber(e) || e->valuedouble != std::floor(e->valuedouble))
            ds::fail(DS_ERR_CONFIG_VALUE, "config %s.%s[%d] must be an integer", where.c_str(), key, i);
        out.push_back(static_cast<int64_t>(e->valuedouble));
    }
    return out;
}

int64_t config_i64(const ds_config_t* cfg, const char* path, int64_t dflt) {
    if (!cfg) return dflt;
    LastErrorKeeper keep;
    int64_t v = 0;
    const ds_status_t st = ds_config_get_i64(cfg, path, &v);
    if (st == DS_OK) return v;
    if (st == DS_ERR_INVALID_HANDLE)
        ds::fail(DS_ERR_INVALID_HANDLE, "opts->config=%p is not a live ds_config_t", static_cast<const void*>(cfg));
    return dflt;  // absent or null
}

bool config_bool(const ds_config_t* cfg, const char* path, bool dflt) {
    if (!cfg) return dflt;
    LastErrorKeeper keep;
    int32_t v = 0;
    const ds_status_t st = ds_config_get_bool(cfg, path, &v);
    if (st == DS_OK) return v != 0;
    if (st == DS_ERR_INVALID_HANDLE)
        ds::fail(DS_ERR_INVALID_HANDLE, "opts->config=%p is not a live ds_config_t", static_cast<const void*>(cfg));
    return dflt;
}

// A config handle is checked through the public API (its struct is private to api_config.cpp).
void check_config(const ds_config_t* cfg) {
    if (!cfg) return;
    LastErrorKeeper keep;
    int32_t kind = 0;
    if (ds_config_get_kind(cfg, "", &kind) == DS_ERR_INVALID_HANDLE)
        ds::fail(DS_ERR_INVALID_HANDLE, "opts->config=%p is not a live ds_config_t", static_cast<const void*>(cfg));
}

const char* kSchedNames[] = {"fixed_linear", "fixed_root", "fixed_discrete", "custom"};

int32_t schedule_from_name(const std::string& s, const std::string& where) {
    for (int32_t i = 0; i < 4; ++i)
        if (s == kSchedNames[i]) return i;
    ds::fail(DS_ERR_CONFIG_VALUE, "config %s.schedule_type=\"%s\" is not fixed_linear, fixed_root, fixed_discrete or custom",
             where.c_str(), s.c_str());
}

// Build a curriculum from options (+ config). Returns nullptr when the config does not enable one
// and no schedule is given (only when allow_absent).
std::shared_ptr<ds::data::Curriculum> make_curriculum(const ds_data_curriculum_options_t& o, bool allow_absent) {
    ds::data::Schedule s;
    std::string metric = o.metric ? o.metric : "";
    int32_t difficulty_type = DS_DATA_DIFFICULTY_VALUE;
    std::string metric_path = o.metric_path ? o.metric_path : "";
    bool from_config = false;
    bool have_min = false, have_max = false, have_type = false;
    if (o.config) {
        Json legacy, de;
        load_json(o.config, "curriculum_learning", legacy);
        load_json(o.config, "data_efficiency.data_sampling.curriculum_learning", de);
        const cJSON* block = nullptr;
        std::string where;
        if (!o.metric && json_bool(legacy.root, "enabled", false)) {
            block = legacy.root;
            where = "curriculum_learning";
            std::string ct = "seqlen";
            json_str(block, "curriculum_type", where, &ct);
            metric = ct;
        } else if (json_bool(de.root, "enabled", false)) {
            const cJSON* metrics = child(de.root, "curriculum_metrics");
            where = "data_efficiency.data_sampling.curriculum_learning.curriculum_metrics";
            if (!metrics || !cJSON_IsObject(metrics) || !metrics->child)
                ds::fail(DS_ERR_CONFIG_VALUE, "config %s is empty: name at least one metric", where.c_str());
            if (o.metric) {
                block = child(metrics, o.metric);
                if (!block) ds::fail(DS_ERR_NOT_FOUND, "opts->metric=\"%s\" is not in config %s", o.metric, where.c_str());
            } else {
                if (metrics->child->next) {
                    std::string names;
                    for (const cJSON* m = metrics->child; m; m = m->next) names += std::string(names.empty() ? "" : ", ") + m->string;
                    ds::fail(DS_ERR_INVALID_ARG, "config %s has several metrics (%s): set opts->metric", where.c_str(), names.c_str());
                }
                block = metrics->child;
            }
            metric = block->string;
            where += "." + metric;
            std::string dt;
            if (json_str(block, "difficulty_type", where, &dt)) {
                if (dt == "value") difficulty_type = DS_DATA_DIFFICULTY_VALUE;
                else if (dt == "percentile") difficulty_type = DS_DATA_DIFFICULTY_PERCENTILE;
                else ds::fail(DS_ERR_CONFIG_VALUE, "config %s.difficulty_type=\"%s\" is not value or percentile", where.c_str(), dt.c_str());
            }
            std::string clustering = "schedule_based";
            json_str(block, "clustering_type", where, &clustering);
            if (metric_path.empty() && clustering != "single_cluster") json_str(block, "sample_to_metric_path", where, &metric_path);
        }
        if (block) {
            from_config = true;
            have_min = json_i64(block, "min_difficulty", where, &s.min_difficulty);
            have_max = json_i64(block, "max_difficulty", where, &s.max_difficulty);
            std::string st;
            if (json_str(block, "schedule_type", where, &st)) {
                s.type = schedule_from_name(st, where);
                have_type = true;
            }
            const cJSON* sc = child(block, "schedule_config");
            const std::string scw = where + ".schedule_config";
            json_i64(sc, "total_curriculum_step", scw, &s.total_curriculum_step);
            json_i64(sc, "difficulty_step", scw, &s.difficulty_step);
            json_f64(sc, "root_degree", scw, &s.root_degree);
            s.discrete_difficulty = json_i64_list(sc, "difficulty", scw);
            s.discrete_max_step = json_i64_list(sc, "max_step", scw);
        }
    }
    if (o.schedule_type != DS_UNSET_I32) {
        s.type = o.schedule_type;
        have_type = true;
    }
    if (o.min_difficulty != DS_UNSET_I64) s.min_difficulty = o.min_difficulty, have_min = true;
    if (o.max_difficulty != DS_UNSET_I64) s.max_difficulty = o.max_difficulty, have_max = true;
    if (o.total_curriculum_step != DS_UNSET_I64) s.total_curriculum_step = o.total_curriculum_step;
    if (o.difficulty_step != DS_UNSET_I64) s.difficulty_step = o.difficulty_step;
    if (o.root_degree > 0) s.root_degree = o.root_degree;
    if (o.n_discrete < 0) ds::fail(DS_ERR_INVALID_ARG, "opts->n_discrete=%d is negative", o.n_discrete);
    if (o.discrete_difficulty || o.discrete_max_step) {
        if (!o.discrete_difficulty || !o.discrete_max_step || o.n_discrete < 1)
            ds::fail(DS_ERR_INVALID_ARG, "opts->discrete_difficulty (n_discrete + 1 values) and opts->discrete_max_step "
                     "(n_discrete values) go together, with n_discrete >= 1 (got n_discrete=%d)", o.n_discrete);
        s.discrete_difficulty.assign(o.discrete_difficulty, o.discrete_difficulty + o.n_discrete + 1);
        s.discrete_max_step.assign(o.discrete_max_step, o.discrete_max_step + o.n_discrete);
    }
    if (o.difficulty_type != DS_UNSET_I32) difficulty_type = o.difficulty_type;
    s.floor_mode = o.floor_mode;
    s.custom_fn = o.custom_fn;
    s.custom_user_data = o.custom_user_data;
    if (!from_config && !have_type) {
        if (allow_absent) return nullptr;
        ds::fail(DS_ERR_INVALID_ARG, "no schedule: set opts->schedule_type (and its fields), or pass a config that enables "
                 "curriculum_learning or data_efficiency.data_sampling.curriculum_learning");
    }
    if (!have_type) ds::fail(DS_ERR_INVALID_ARG, "the curriculum needs schedule_type");
    if (!have_min) ds::fail(DS_ERR_INVALID_ARG, "the curriculum needs min_difficulty");
    if (!have_max) ds::fail(DS_ERR_INVALID_ARG, "the curriculum needs max_difficulty");
    std::vector<int64_t> values;
    if (!metric_path.empty()) values = ds::data::read_metric_file(metric_path);
    return std::make_shared<ds::data::Curriculum>(std::move(s), metric, difficulty_type, std::move(values), metric_path);
}

}  // namespace

extern "C" {

// ---- tokenizers ----------------------------------------------------------------------------------

void ds_data_tokenizer_options_init(ds_data_tokenizer_options_t* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->abi_version = DS_ABI_VERSION;
    opts->kind = DS_DATA_TOKENIZER_BYTES;
}

ds_status_t ds_data_tokenizer_create(const ds_data_tokenizer_options_t* opts, ds_data_tokenizer_t** out) {
    return guard("ds_data_tokenizer_create", [&] {
        check_out(out, "out");
        *out = nullptr;
        const auto o = ds::read_options(opts, ds_data_tokenizer_options_init, "opts");
        auto h = std::make_unique<ds_data_tokenizer>();
        if (o.kind == DS_DATA_TOKENIZER_BYTES) {
            h->t = ds::data::make_byte_tokenizer();
        } else if (o.kind == DS_DATA_TOKENIZER_GPT2) {
            if (!o.vocab_path || !*o.vocab_path)
                ds::fail(DS_ERR_INVALID_ARG, "opts->vocab_path is NULL: the GPT-2 tokenizer needs vocab.json (nothing is downloaded)");
            if (!o.merges_path || !*o.merges_path)
                ds::fail(DS_ERR_INVALID_ARG, "opts->merges_path is NULL: the GPT-2 tokenizer needs merges.txt (nothing is downloaded)");
            h->t = ds::data::make_gpt2_tokenizer(o.vocab_path, o.merges_path);
        } else {
            ds::fail(DS_ERR_INVALID_ARG, "opts->kind=%d is not DS_DATA_TOKENIZER_BYTES (0) or DS_DATA_TOKENIZER_GPT2 (1)", o.kind);
        }
        *out = ds::capi::publish(h.release());
    });
}

void ds_data_tokenizer_destroy(ds_data_tokenizer_t* tok) { ds::capi::retire(tok); }

ds_status_t ds_data_tokenizer_get_vocab_size(const ds_data_tokenizer_t* tok, int64_t* out) {
    return guard("ds_data_tokenizer_get_vocab_size", [&] {
        check_out(out, "out");
        *out = check_handle(tok, "tok")->t->vocab_size();
    });
}

ds_status_t ds_data_tokenizer_get_eot(const ds_data_tokenizer_t* tok, int32_t* out) {
    return guard("ds_data_tokenizer_get_eot", [&] {
        check_out(out, "out");
        const int32_t e = check_handle(tok, "tok")->t->eot();
        if (e < 0) ds::fail(DS_ERR_NOT_FOUND, "the vocabulary has no \"<|endoftext|>\" token");
        *out = e;
    });
}

ds_status_t ds_data_tokenizer_encode(ds_data_tokenizer_t* tok, const char* text, uint64_t text_len, int32_t* buf,
                                     uint64_t cap, uint64_t* len) {
    return guard("ds_data_tokenizer_encode", [&] {
        ds_data_tokenizer* h = check_handle(tok, "tok");
        check_out(len, "len");
        if (!text && text_len > 0) ds::fail(DS_ERR_INVALID_ARG, "text is NULL but text_len=%llu", ull(text_len));
        if (!buf && cap > 0) ds::fail(DS_ERR_INVALID_ARG, "buf is NULL but cap=%llu", ull(cap));
        h->scratch.clear();
        h->t->encode(text ? text : "", static_cast<size_t>(text_len), true, h->scratch);
        *len = h->scratch.size();
        if (cap < h->scratch.size())
            ds::fail(DS_ERR_BUFFER_TOO_SMALL, "cap=%llu but the text encodes to %zu ids", ull(cap), h->scratch.size());
        if (!h->scratch.empty()) std::memcpy(buf, h->scratch.data(), h->scratch.size() * sizeof(int32_t));
    });
}

ds_status_t ds_data_tokenizer_decode(ds_data_tokenizer_t* tok, const int32_t* ids, uint64_t n_ids, char* buf,
                                     uint64_t cap, uint64_t* len) {
    return guard("ds_data_tokenizer_decode", [&] {
        ds_data_tokenizer* h = check_handle(tok, "tok");
        check_out(len, "len");
        if (!ids && n_ids > 0) ds::fail(DS_ERR_INVALID_ARG, "ids is NULL but n_ids=%llu", ull(n_ids));
        if (!buf && cap > 0) ds::fail(DS_ERR_INVALID_ARG, "buf is NULL but cap=%llu", ull(cap));
        std::string out;
        h->t->decode(ids, static_cast<size_t>(n_ids), out);
        *len = out.size();
        if (cap < out.size()) ds::fail(DS_ERR_BUFFER_TOO_SMALL, "cap=%llu but the ids decode to %zu bytes", ull(cap), out.size());
        if (!out.empty()) std::memcpy(buf, out.data(), out.size());
    });
}

// ---- writer and build ------------------------------------------------------------------------------

void ds_data_writer_options_init(ds_data_writer_options_t* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->abi_version = DS_ABI_VERSION;
    opts->token_bytes = 2;
}

ds_status_t ds_data_writer_create(const char* path, const ds_data_writer_options_t* opts, ds_data_writer_t** out) {
    return guard("ds_data_writer_create", [&] {
        check_out(out, "out");
        *out = nullptr;
        if (!path || !*path) ds::fail(DS_ERR_INVALID_ARG, "path is NULL or empty");
        const auto o = ds::read_options(opts, ds_data_writer_options_init, "opts");
        if (o.token_bytes != 2 && o.token_bytes != 4)
            ds::fail(DS_ERR_INVALID_ARG, "opts->token_bytes=%d must be 2 (u16) or 4 (u32)", o.token_bytes);
        auto h = std::make_unique<ds_data_writer>();
        h->w = std::make_unique<ds::data::Writer>(path, static_cast<uint32_t>(o.token_bytes), o.vocab_size, o.buffer_bytes);
        *out = ds::capi::publish(h.release());
    });
}

ds_status_t ds_data_writer_append(ds_data_writer_t* w, const int32_t* ids, uint64_t n_ids) {
    return guard("ds_data_writer_append", [&] { check_handle(w, "w")->w->append(ids, n_ids); });
}

ds_status_t ds_data_writer_end_document(ds_data_writer_t* w) {
    return guard("ds_data_writer_end_document", [&] { check_handle(w, "w")->w->end_document(); });
}

ds_status_t ds_data_writer_commit(ds_data_writer_t* w) {
    return guard("ds_data_writer_commit", [&] { check_handle(w, "w")->w->commit(); });
}

void ds_data_writer_destroy(ds_data_writer_t* w) { ds::capi::retire(w); }

void ds_data_build_options_init(ds_data_build_options_t* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->abi_version = DS_ABI_VERSION;
    opts->split = DS_DATA_SPLIT_FILE;
}

void ds_data_build_stats_init(ds_data_build_stats_t* stats) {
    if (!stats) return;
    std::memset(stats, 0, sizeof *stats);
    stats->struct_size = sizeof *stats;
    stats->abi_version = DS_ABI_VERSION;
}

ds_status_t ds_data_build(const char* out_path, const char* const* inputs, int32_t n_inputs,
                          const ds_data_build_options_t* opts, ds_data_build_stats_t* stats) {
    return guard("ds_data_build", [&] {
        if (!out_path || !*out_path) ds::fail(DS_ERR_INVALID_ARG, "out_path is NULL or empty");
        if (n_inputs < 1) ds::fail(DS_ERR_INVALID_ARG, "n_inputs=%d: give at least one input file", n_inputs);
        if (!inputs) ds::fail(DS_ERR_INVALID_ARG, "inputs is NULL but n_inputs=%d", n_inputs);
        std::vector<std::string> in;
        for (int32_t i = 0; i < n_inputs; ++i) {
            if (!inputs[i]) ds::fail(DS_ERR_INVALID_ARG, "inputs[%d] is NULL", i);
            in.emplace_back(inputs[i]);
        }
        const auto o = ds::read_options(opts, ds_data_build_options_init, "opts");
        if (stats) {
            if (stats->struct_size < 2 * sizeof(uint32_t))
                ds::fail(DS_ERR_VERSION, "stats->struct_size=%u is too small; call ds_data_build_stats_init first", stats->struct_size);
        }
        check_flag(o.append_eot, "opts->append_eot");
        check_flag(o.keep_empty, "opts->keep_empty");
        if (o.token_bytes != 0 && o.token_bytes != 2 && o.token_bytes != 4)
            ds::fail(DS_ERR_INVALID_ARG, "opts->token_bytes=%d must be 0 (auto), 2 or 4", o.token_bytes);
        std::unique_ptr<ds::data::Tokenizer> own;
        ds::data::Tokenizer* tok = nullptr;
        if (o.tokenizer) {
            tok = check_handle(o.tokenizer, "opts->tokenizer")->t.get();
        } else {
            own = ds::data::make_byte_tokenizer();
            tok = own.get();
        }
        ds::data::BuildOptions bo;
        bo.tokenizer = tok;
        bo.split = o.split;
        bo.append_eot = o.append_eot == 1;
        bo.delimiter = o.delimiter ? o.delimiter : "";
        bo.token_bytes = static_cast<uint32_t>(o.token_bytes);
        bo.keep_empty = o.keep_empty == 1;
        bo.chunk_bytes = o.chunk_bytes;
        bo.progress = o.progress;
        bo.progress_user_data = o.progress_user_data;
        const ds::data::BuildStats st = ds::data::build(out_path, in, bo);
        if (stats) {
            ds_data_build_stats_t v;
            ds_data_build_stats_init(&v);
            v.n_files = st.n_files;
            v.n_documents = st.n_documents;
            v.n_tokens = st.n_tokens;
            v.bytes_in = st.bytes_in;
            v.bytes_out = st.bytes_out;
            v.seconds = st.seconds;
            write_out_struct(stats, v, "stats");
        }
    });
}

// ---- datasets --------------------------------------------------------------------------------------

void ds_data_options_init(ds_data_options_t* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->abi_version = DS_ABI_VERSION;
    opts->verify = DS_DATA_VERIFY_OFFSETS;
}

void ds_data_info_init(ds_data_info_t* info) {
    if (!info) return;
    std::memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
    info->abi_version = DS_ABI_VERSION;
}

ds_status_t ds_data_open(const char* path, const ds_data_options_t* opts, ds_data_t** out) {
    return guard("ds_data_open", [&] {
        check_out(out, "out");
        *out = nullptr;
        if (!path || !*path) ds::fail(DS_ERR_INVALID_ARG, "path is NULL or empty");
        const auto o = ds::read_options(opts, ds_data_options_init, "opts");
        if (o.verify < DS_DATA_VERIFY_HEADER || o.verify > DS_DATA_VERIFY_FULL)
            ds::fail(DS_ERR_INVALID_ARG, "opts->verify=%d is not a DS_DATA_VERIFY_* value (0..2)", o.verify);
        auto h = std::make_unique<ds_data>();
        h->d = ds::data::Dataset::open(path, o.verify, o.max_resident_bytes);
        *out = ds::capi::publish(h.release());
    });
}

void ds_data_close(ds_data_t* data) { ds::capi::retire(data); }

ds_status_t ds_data_get_info(const ds_data_t* data, ds_data_info_t* info) {
    return guard("ds_data_get_info", [&] {
        const ds::data::Dataset& d = *check_handle(data, "data")->d;
        ds_data_info_t v;
        ds_data_info_init(&v);
        v.format_version = d.header().version;
        v.token_bytes = static_cast<int32_t>(d.header().token_bytes);
        v.n_documents = d.n_documents();
        v.n_tokens = d.n_tokens();
        v.file_bytes = d.file_bytes();
        v.vocab_size = d.header().vocab_size;
        v.tokens_crc32c = d.header().tokens_crc;
        write_out_struct(info, v, "info");
    });
}

ds_status_t ds_data_get_document(const ds_data_t* data, uint64_t index, int32_t* buf, uint64_t cap, uint64_t* len) {
    return guard("ds_data_get_document", [&] {
        const ds::data::Dataset& d = *check_handle(data, "data")->d;
        check_out(len, "len");
        if (index >= d.n_documents())
            ds::fail(DS_ERR_INVALID_ARG, "index=%llu is outside [0, %llu) documents of '%s'", ull(index), ull(d.n_documents()),
                     d.path().c_str());
        uint64_t b, e;
        d.document(index, &b, &e);
        *len = e - b;
        if (cap < e - b) ds::fail(DS_ERR_BUFFER_TOO_SMALL, "cap=%llu but document %llu has %llu ids", ull(cap), ull(index), ull(e - b));
        if (e > b && !buf) ds::fail(DS_ERR_INVALID_ARG, "buf is NULL but cap=%llu", ull(cap));
        d.read(b, e - b, buf);
    });
}

ds_status_t ds_data_read_tokens(const ds_data_t* data, uint64_t first, uint64_t n, int32_t* out) {
    return guard("ds_data_read_tokens", [&] {
        const ds::data::Dataset& d = *check_handle(data, "data")->d;
        if (n > 0 && !out) ds::fail(DS_ERR_INVALID_ARG, "out is NULL but n=%llu", ull(n));
        if (first > d.n_tokens() || n > d.n_tokens() - first)
            ds::fail(DS_ERR_INVALID_ARG, "first=%llu + n=%llu is beyond the %llu tokens of '%s'", ull(first), ull(n),
                     ull(d.n_tokens()), d.path().c_str());
        d.read(first, n, out);
    });
}

ds_status_t ds_data_metric_write(const char* path, const int64_t* values, uint64_t n_values) {
    return guard("ds_data_metric_write", [&] {
        if (!path || !*path) ds::fail(DS_ERR_INVALID_ARG, "path is NULL or empty");
        ds::data::write_metric_file(path, values, n_values);
    });
}

// ---- sampler ---------------------------------------------------------------------------------------

void ds_sampler_options_init(ds_sampler_options_t* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->abi_version = DS_ABI_VERSION;
    opts->world_size = 1;
    opts->shuffle = 1;
}

ds_status_t ds_sampler_create(const ds_sampler_options_t* opts, ds_sampler_t** out) {
    return guard("ds_sampler_create", [&] {
        check_out(out, "out");
        *out = nullptr;
        if (!opts) ds::fail(DS_ERR_INVALID_ARG, "opts is NULL: n_samples is required");
        const auto o = ds::read_options(opts, ds_sampler_options_init, "opts");
        check_flag(o.shuffle, "opts->shuffle");
        check_flag(o.drop_last, "opts->drop_last");
        ds::data::SamplerConfig c;
        c.n_samples = o.n_samples;
        c.rank = o.rank;
        c.world_size = o.world_size;
        c.seed = o.seed;
        c.shuffle = o.shuffle == 1;
        c.drop_last = o.drop_last == 1;
        auto h = std::make_unique<ds_sampler>();
        h->s = std::make_unique<ds::data::DistributedSampler>(c);
        *out = ds::capi::publish(h.release());
    });
}

void ds_sampler_destroy(ds_sampler_t* s) { ds::capi::retire(s); }

ds_status_t ds_sampler_get_length(const ds_sampler_t* s, int64_t* out) {
    return guard("ds_sampler_get_length", [&] {
        check_out(out, "out");
        *out = check_handle(s, "s")->s->num_samples();
    });
}

ds_status_t ds_sampler_get_indices(ds_sampler_t* s, int64_t epoch, int64_t* buf, uint64_t cap, uint64_t* len) {
    return guard("ds_sampler_get_indices", [&] {
        ds_sampler* h = check_handle(s, "s");
        check_out(len, "len");
        if (epoch < 0) ds::fail(DS_ERR_INVALID_ARG, "epoch=%lld is negative", ll(epoch));
        const uint64_t n = static_cast<uint64_t>(h->s->num_samples());
        *len = n;
        if (cap < n) ds::fail(DS_ERR_BUFFER_TOO_SMALL, "cap=%llu but this rank gets %llu indices per epoch", ull(cap), ull(n));
        if (!buf) ds::fail(DS_ERR_INVALID_ARG, "buf is NULL but cap=%llu", ull(cap));
        const std::vector<int64_t>& v = h->share(epoch);
        std::memcpy(buf, v.data(), v.size() * sizeof(int64_t));
    });
}

ds_status_t ds_sampler_next(ds_sampler_t* s, int64_t* out, uint64_t max_n, uint64_t* out_n) {
    return guard("ds_sampler_next", [&] {
        ds_sampler* h = check_handle(s, "s");
        check_out(out_n, "out_n");
        if (max_n > 0 && !out) ds::fail(DS_ERR_INVALID_ARG, "out is NULL but max_n=%llu", ull(max_n));
        const std::vector<int64_t>& v = h->share(h->epoch);
        const uint64_t left = static_cast<uint64_t>(static_cast<int64_t>(v.size()) - h->position);
        const uint64_t n = std::min(left, max_n);
        if (n > 0) std::memcpy(out, v.data() + h->position, n * sizeof(int64_t));
        h->position += static_cast<int64_t>(n);
        *out_n = n;
    });
}

ds_status_t ds_sampler_set_epoch(ds_sampler_t* s, int64_t epoch) {
    return guard("ds_sampler_set_epoch", [&] {
        ds_sampler* h = check_handle(s, "s");
        if (epoch < 0) ds::fail(DS_ERR_INVALID_ARG, "epoch=%lld is negative", ll(epoch));
        h->epoch = epoch;
        h->position = 0;
    });
}

ds_status_t ds_sampler_get_cursor(const ds_sampler_t* s, int64_t* out_epoch, int64_t* out_position) {
    return guard("ds_sampler_get_cursor", [&] {
        check_out(out_epoch, "out_epoch");
        check_out(out_position, "out_position");
        const ds_sampler* h = check_handle(s, "s");
        *out_epoch = h->epoch;
        *out_position = h->position;
    });
}

ds_status_t ds_sampler_set_cursor(ds_sampler_t* s, int64_t epoch, int64_t position) {
    return guard("ds_sampler_set_cursor", [&] {
        ds_sampler* h = check_handle(s, "s");
        if (epoch < 0) ds::fail(DS_ERR_INVALID_ARG, "epoch=%lld is negative", ll(epoch));
        if (position < 0 || position > h->s->num_samples())
            ds::fail(DS_ERR_INVALID_ARG, "position=%lld is outside [0, %lld] (this rank's samples per epoch)", ll(position),
                     ll(h->s->num_samples()));
        h->epoch = epoch;
        h->position = position;
    });
}

// ---- curriculum ------------------------------------------------------------------------------------

void ds_data_curriculum_options_init(ds_data_curriculum_options_t* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->abi_version = DS_ABI_VERSION;
    opts->schedule_type = DS_UNSET_I32;
    opts->floor_mode = DS_DATA_FLOOR_NONE;
    opts->min_difficulty = DS_UNSET_I64;
    opts->max_difficulty = DS_UNSET_I64;
    opts->total_curriculum_step = DS_UNSET_I64;
    opts->difficulty_step = DS_UNSET_I64;
    opts->root_degree = 0;
    opts->difficulty_type = DS_UNSET_I32;
}

ds_status_t ds_data_curriculum_create(const ds_data_curriculum_options_t* opts, ds_data_curriculum_t** out) {
    return guard("ds_data_curriculum_create", [&] {
        check_out(out, "out");
        *out = nullptr;
        const auto o = ds::read_options(opts, ds_data_curriculum_options_init, "opts");
        check_config(o.config);
        auto h = std::make_unique<ds_data_curriculum>();
        h->c = make_curriculum(o, false);
        *out = ds::capi::publish(h.release());
    });
}

void ds_data_curriculum_destroy(ds_data_curriculum_t* c) { ds::capi::retire(c); }

ds_status_t ds_data_curriculum_get_difficulty(ds_data_curriculum_t* c, int64_t step, int64_t* out) {
    return guard("ds_data_curriculum_get_difficulty", [&] {
        check_out(out, "out");
        *out = check_handle(c, "c")->c->schedule().difficulty(step);
    });
}

ds_status_t ds_data_curriculum_update(ds_data_curriculum_t* c, int64_t step, int64_t* out) {
    return guard("ds_data_curriculum_update", [&] {
        check_out(out, "out");
        *out = check_handle(c, "c")->c->update(step);
    });
}

ds_status_t ds_data_curriculum_get_current(const ds_data_curriculum_t* c, int64_t* out) {
    return guard("ds_data_curriculum_get_current", [&] {
        check_out(out, "out");
        *out = check_handle(c, "c")->c->current();
    });
}

ds_status_t ds_data_scale_lr(int32_t method, int64_t base_batch_size, int64_t batch_size, double base_lr, double* out) {
    return guard("ds_data_scale_lr", [&] {
        check_out(out, "out");
        *out = ds::data::scale_lr(method, base_batch_size, batch_size, base_lr);
    });
}

// ---- loader ----------------------------------------------------------------------------------------

void ds_data_loader_options_init(ds_data_loader_options_t* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->abi_version = DS_ABI_VERSION;
    opts->mode = DS_DATA_MODE_WINDOWS;
    opts->micro_batch_size = DS_UNSET_I32;
    opts->gradient_accumulation_steps = DS_UNSET_I32;
    opts->world_size = 1;
    opts->shuffle = 1;
    opts->drop_last = DS_UNSET_I32;
    opts->seed = DS_UNSET_I64;
    opts->num_workers = DS_UNSET_I32;
    opts->prefetch_depth = 4;
    opts->pin_memory = -1;
    opts->dtype = DS_DTYPE_I32;
    opts->dynamic_batching = DS_UNSET_I32;
    opts->max_tokens = DS_UNSET_I64;
    opts->lr_scaling_method = DS_UNSET_I32;
    opts->min_batch_size = DS_UNSET_I32;
    opts->max_batch_size = DS_UNSET_I32;
    opts->picking_order = DS_UNSET_I32;
}

void ds_data_cursor_init(ds_data_cursor_t* cursor) {
    if (!cursor) return;
    std::memset(cursor, 0, sizeof *cursor);
    cursor->struct_size = sizeof *cursor;
    cursor->abi_version = DS_ABI_VERSION;
}

void ds_data_batch_info_init(ds_data_batch_info_t* info) {
    if (!info) return;
    std::memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
    info->abi_version = DS_ABI_VERSION;
}

ds_status_t ds_data_loader_create(ds_data_t* data, const ds_data_loader_options_t* opts, ds_data_loader_t** out) {
    return guard("ds_data_loader_create", [&] {
        check_out(out, "out");
        *out = nullptr;
        const ds_data* dh = check_handle(data, "data");
        const auto o = ds::read_options(opts, ds_data_loader_options_init, "opts");
        const ds_config_t* cfg = o.config;
        check_config(cfg);
        ds::lib::ensure_init();
        ds::data::LoaderConfig c;
        if (o.mode != DS_DATA_MODE_WINDOWS && o.mode != DS_DATA_MODE_DOCUMENTS)
            ds::fail(DS_ERR_INVALID_ARG, "opts->mode=%d is not DS_DATA_MODE_WINDOWS (0) or DS_DATA_MODE_DOCUMENTS (1)", o.mode);
        c.mode = o.mode;
        if (o.seq_len < 0) ds::fail(DS_ERR_INVALID_ARG, "opts->seq_len=%d is negative", o.seq_len);
        if (o.mode == DS_DATA_MODE_WINDOWS && o.seq_len == 0)
            ds::fail(DS_ERR_INVALID_ARG, "opts->seq_len=0: windows mode needs the number of ids per sample");
        c.seq_len = o.seq_len;
        if (o.window_stride < 0) ds::fail(DS_ERR_INVALID_ARG, "opts->window_stride=%d is negative", o.window_stride);
        c.stride = o.window_stride > 0 ? o.window_stride : o.seq_len;
        c.micro = o.micro_batch_size != DS_UNSET_I32 ? o.micro_batch_size : config_i64(cfg, "train_micro_batch_size_per_gpu", 1);
        if (c.micro < 1) ds::fail(DS_ERR_INVALID_ARG, "micro batch size %lld must be at least 1 (opts->micro_batch_size or "
                                  "train_micro_batch_size_per_gpu)", ll(c.micro));
        const int64_t gas = o.gradient_accumulation_steps != DS_UNSET_I32 ? o.gradient_accumulation_steps
                                                                          : config_i64(cfg, "gradient_accumulation_steps", 1);
        if (gas < 1 || gas > INT32_MAX)
            ds::fail(DS_ERR_INVALID_ARG, "gradient accumulation steps %lld must be at least 1", ll(gas));
        c.gas = static_cast<int32_t>(gas);
        if (o.world_size < 1) ds::fail(DS_ERR_INVALID_ARG, "opts->world_size=%d must be at least 1", o.world_size);
        if (o.rank < 0 || o.rank >= o.world_size)
            ds::fail(DS_ERR_INVALID_ARG, "opts->rank=%d is outside [0, world_size=%d)", o.rank, o.world_size);
        c.rank = o.rank;
        c.world = o.world_size;
        check_flag(o.shuffle, "opts->shuffle");
        c.shuffle = o.shuffle == 1;
        if (o.drop_last != DS_UNSET_I32) check_flag(o.drop_last, "opts->drop_last");
        c.drop_last = o.drop_last != DS_UNSET_I32 ? o.drop_last == 1 : config_bool(cfg, "dataloader_drop_last", false);
        if (o.prefetch_depth < 1 || o.prefetch_depth > 1024)
            ds::fail(DS_ERR_INVALID_ARG, "opts->prefetch_depth=%d is outside [1, 1024]", o.prefetch_depth);
        c.depth = o.prefetch_depth;
        int64_t workers = o.num_workers;
        if (workers == DS_UNSET_I32) {
            workers = config_i64(cfg, "data_efficiency.data_sampling.num_workers", 0);
            if (workers < 1) workers = 1;
        }
        if (workers < 1 || workers > 64) ds::fail(DS_ERR_INVALID_ARG, "opts->num_workers=%lld is outside [1, 64]", ll(workers));
        c.num_workers = static_cast<int32_t>(workers);
        if (o.pin_memory < -1 || o.pin_memory > 1)
            ds::fail(DS_ERR_INVALID_ARG, "opts->pin_memory=%d must be -1 (auto), 0 or 1", o.pin_memory);
        c.pin = o.pin_memory;
        if (c.pin == -1 && config_bool(cfg, "data_efficiency.data_sampling.pin_memory", false)) c.pin = 1;
        if (o.dtype != DS_DTYPE_I32 && o.dtype != DS_DTYPE_I64)
            ds::fail(DS_ERR_INVALID_ARG, "opts->dtype=%d must be DS_DTYPE_I32 (6) or DS_DTYPE_I64 (7)", o.dtype);
        c.dtype = o.dtype;
        c.pad_id = o.pad_id;
        if (o.start_step < 0) ds::fail(DS_ERR_INVALID_ARG, "opts->start_step=%lld is negative", ll(o.start_step));
        c.start_step = o.start_step;

        // Dynamic batching.
        Json db;
        if (cfg) load_json(cfg, "data_efficiency.data_sampling.dynamic_batching", db);
        const std::string dbw = "data_efficiency.data_sampling.dynamic_batching";
        if (o.dynamic_batching != DS_UNSET_I32) check_flag(o.dynamic_batching, "opts->dynamic_batching");
        c.dynamic = o.dynamic_batching != DS_UNSET_I32 ? o.dynamic_batching == 1 : json_bool(db.root, "enabled", false);
        if (c.dynamic) {
            if (c.mode != DS_DATA_MODE_DOCUMENTS)
                ds::fail(DS_ERR_INVALID_ARG, "dynamic batching packs variable-length documents: it needs opts->mode = "
                         "DS_DATA_MODE_DOCUMENTS (windows all have seq_len ids)");
            int64_t v = 0;
            c.max_tokens = o.max_tokens;
            if (c.max_tokens == DS_UNSET_I64) {
                if (!json_i64(db.root, "max_tokens", dbw, &c.max_tokens))
                    ds::fail(DS_ERR_INVALID_ARG, "dynamic batching needs max_tokens (opts->max_tokens or config %s.max_tokens)", dbw.c_str());
            }
            if (c.max_tokens < 1 || c.max_tokens > INT32_MAX)
                ds::fail(DS_ERR_INVALID_ARG, "dynamic batching max_tokens=%lld is outside [1, 2^31)", ll(c.max_tokens));
            c.lr_method = DS_DATA_LR_SCALING_LINEAR;
            if (o.lr_scaling_method != DS_UNSET_I32) {
                c.lr_method = o.lr_scaling_method;
            } else {
                std::string m;
                if (json_str(db.root, "lr_scaling_method", dbw, &m)) {
                    if (m == "linear") c.lr_method = DS_DATA_LR_SCALING_LINEAR;
                    else if (m == "sqrt") c.lr_method = DS_DATA_LR_SCALING_SQRT;
                    else if (m == "none" || m == "NONE" || m == "None") c.lr_method = DS_DATA_LR_SCALING_NONE;
                    else ds::fail(DS_ERR_CONFIG_VALUE, "config %s.lr_scaling_method=\"%s\" is not linear, sqrt or none", dbw.c_str(), m.c_str());
                }
            }
            (void)ds::data::scale_lr(c.lr_method, 1, 1, 1.0);  // validates the method
            c.min_bs = 1;
            if (o.min_batch_size != DS_UNSET_I32) c.min_bs = o.min_batch_size;
            else if (json_i64(db.root, "min_batch_size", dbw, &v)) c.min_bs = static_cast<int32_t>(v);
            c.max_bs = 0;
            if (o.max_batch_size != DS_UNSET_I32) c.max_bs = o.max_batch_size;
            else if (json_i64(db.root, "max_batch_size", dbw, &v)) c.max_bs = static_cast<int32_t>(v);
            if (c.min_bs < 0 || c.max_bs < 0 || (c.max_bs > 0 && c.max_bs < c.min_bs))
                ds::fail(DS_ERR_INVALID_ARG, "dynamic batching min_batch_size=%d / max_batch_size=%d are inconsistent", c.min_bs, c.max_bs);
            c.picking = DS_DATA_PICK_DATALOADER;
            if (o.picking_order != DS_UNSET_I32) {
                c.picking = o.picking_order;
            } else {
                std::string p;
                if (json_str(db.root, "sequence_picking_order", dbw, &p) || json_str(db.root, "sentence_picking_order", dbw, &p)) {
                    if (p == "dataloader") c.picking = DS_DATA_PICK_DATALOADER;
                    else if (p == "seqlen") c.picking = DS_DATA_PICK_SEQLEN;
                    else if (p == "random") c.picking = DS_DATA_PICK_RANDOM;
                    else ds::fail(DS_ERR_CONFIG_VALUE, "config %s.sequence_picking_order=\"%s\" is not dataloader, seqlen or random", dbw.c_str(), p.c_str());
                }
            }
            if (c.picking < DS_DATA_PICK_DATALOADER || c.picking > DS_DATA_PICK_RANDOM)
                ds::fail(DS_ERR_INVALID_ARG, "opts->picking_order=%d is not a DS_DATA_PICK_* value (0..2)", c.picking);
        }

        // Curriculum.
        if (o.curriculum) {
            c.curriculum = check_handle(o.curriculum, "opts->curriculum")->c;
        } else if (cfg) {
            ds_data_curriculum_options_t co;
            ds_data_curriculum_options_init(&co);
            co.config = cfg;
            c.curriculum = make_curriculum(co, true);
        }
        if (c.curriculum && c.dynamic && c.curriculum->has_metric_values())
            ds::fail(DS_ERR_INVALID_ARG, "curriculum metric buckets and dynamic batching cannot be combined");
        c.seed = o.seed != DS_UNSET_I64 ? o.seed
                                        : ((c.curriculum || c.dynamic) ? config_i64(cfg, "data_efficiency.seed", 1234) : 0);
        auto h = std::make_unique<ds_data_loader>();
        h->l = std::make_unique<ds::data::Loader>(dh->d, std::move(c));
        *out = ds::capi::publish(h.release());
    });
}

void ds_data_loader_destroy(ds_data_loader_t* loader) { ds::capi::retire(loader); }

ds_status_t ds_data_loader_next(ds_data_loader_t* loader, ds_data_batch_t** out) {
    return guard("ds_data_loader_next", [&] {
        check_out(out, "out");
        *out = nullptr;
        ds_data_loader* h = check_handle(loader, "loader");
        std::shared_ptr<ds::data::BatchData> b = h->l->next();
        if (!b) return;
        auto bh = std::make_unique<ds_data_batch>();
        bh->b = std::move(b);
        *out = ds::capi::publish(bh.release());
    });
}

ds_status_t ds_data_loader_get_length(ds_data_loader_t* loader, int64_t* out) {
    return guard("ds_data_loader_get_length", [&] {
        check_out(out, "out");
        *out = check_handle(loader, "loader")->l->length();
    });
}

ds_status_t ds_data_loader_get_cursor(const ds_data_loader_t* loader, ds_data_cursor_t* cursor) {
    return guard("ds_data_loader_get_cursor", [&] {
        const ds_data_loader* h = check_handle(loader, "loader");
        write_out_struct(cursor, h->l->cursor(), "cursor");
    });
}

ds_status_t ds_data_loader_set_cursor(ds_data_loader_t* loader, const ds_data_cursor_t* cursor) {
    return guard("ds_data_loader_set_cursor", [&] {
        ds_data_loader* h = check_handle(loader, "loader");
        if (!cursor) ds::fail(DS_ERR_INVALID_ARG, "cursor is NULL");
        const auto c = ds::read_options(cursor, ds_data_cursor_init, "cursor");
        h->l->set_cursor(c.epoch, c.position);
    });
}

ds_status_t ds_data_loader_query_info(const ds_data_loader_t* loader, char** out_json) {
    return guard("ds_data_loader_query_info", [&] {
        check_out(out_json, "out_json");
        *out_json = nullptr;
        const std::string s = check_handle(loader, "loader")->l->info_json();
        char* p = static_cast<char*>(std::malloc(s.size() + 1));
        if (!p) throw std::bad_alloc();
        std::memcpy(p, s.c_str(), s.size() + 1);
        *out_json = p;
    });
}

ds_status_t ds_data_batch_get_info(const ds_data_batch_t* batch, ds_data_batch_info_t* info) {
    return guard("ds_data_batch_get_info", [&] {
        const ds_data_batch* h = check_handle(batch, "batch");
        write_out_struct(info, h->b->info, "info");
    });
}

ds_status_t ds_data_batch_get_tensor(const ds_data_batch_t* batch, int32_t field, ds_tensor_t** out) {
    return guard("ds_data_batch_get_tensor", [&] {
        check_out(out, "out");
        *out = nullptr;
        const ds_data_batch* h = check_handle(batch, "batch");
        ds::Tensor t = h->b->tensor(field, h->b);
        *out = ds::capi::publish(new ds_tensor{std::move(t)});
    });
}

void ds_data_batch_destroy(ds_data_batch_t* batch) { ds::capi::retire(batch); }

}  // extern "C"
