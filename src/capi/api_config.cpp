// Configuration: the ds_config_* functions of dsabi.h.
#include <cstdlib>
#include <cstring>
#include <memory>

#include "capi/guard.hpp"
#include "config/config.hpp"
#include "core/lib.hpp"
#include "core/options.hpp"

struct ds_config {
    static constexpr uint32_t kMagic = ds::kMagicConfig;
    static constexpr const char* kTypeName = "ds_config_t";
    std::shared_ptr<const ds::config::Config> impl;
};

using ds::capi::check_handle;
using ds::capi::check_out;
using ds::capi::guard;

namespace {

ds::config::Options read_config_options(const ds_config_options_t* opts) {
    const ds_config_options_t o = ds::read_options(opts, ds_config_options_init, "opts");
    if (o.world_size < 0)
        ds::fail(DS_ERR_INVALID_ARG, "opts->world_size=%d is negative (0 means: take it from the environment)", o.world_size);
    if (o.strict != 0 && o.strict != 1) ds::fail(DS_ERR_INVALID_ARG, "opts->strict=%d must be 0 or 1", o.strict);
    if (o.accept_auto != 0 && o.accept_auto != 1)
        ds::fail(DS_ERR_INVALID_ARG, "opts->accept_auto=%d must be 0 or 1", o.accept_auto);
    ds::config::Options out;
    out.world_size = o.world_size;
    out.strict = o.strict == 1;
    out.accept_auto = o.accept_auto == 1;
    return out;
}

// A malloc'ed copy for the caller, released with ds_free (free).
char* give_string(const std::string& s) {
    char* out = static_cast<char*>(std::malloc(s.size() + 1));
    if (!out) throw std::bad_alloc();
    std::memcpy(out, s.c_str(), s.size() + 1);
    return out;
}

const ds::config::Value& value_at(const ds_config_t* cfg, const char* path) {
    if (!path) ds::fail(DS_ERR_INVALID_ARG, "path is NULL (use \"\" for the whole config)");
    return ds::config::lookup(cfg->impl->root(), path);
}

[[noreturn]] void wrong_kind(const char* path, const ds::config::Value& v, const char* wanted) {
    ds::fail(DS_ERR_TYPE, "\"%s\" is %s (%s), not %s", path, v.brief(40).c_str(), ds::config::kind_name(v.kind()), wanted);
}

ds_config_t* publish_config(std::shared_ptr<const ds::config::Config> impl) {
    auto handle = std::make_unique<ds_config>();
    handle->impl = std::move(impl);
    return ds::capi::publish(handle.release());
}

}  // namespace

extern "C" {

void ds_config_options_init(ds_config_options_t* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->abi_version = DS_ABI_VERSION;
    opts->world_size = 0;
    opts->strict = 0;
    opts->accept_auto = 1;
}

ds_status_t ds_config_parse(const char* text, uint64_t len, const ds_config_options_t* opts, ds_config_t** out) {
    return guard("ds_config_parse", [&] {
        check_out(out, "out");
        *out = nullptr;
        if (!text) ds::fail(DS_ERR_INVALID_ARG, "text is NULL");
        const ds::config::Options options = read_config_options(opts);
        ds::lib::ensure_init();
        const size_t n = len == 0 ? std::strlen(text) : static_cast<size_t>(len);
        *out = publish_config(ds::config::parse(std::string_view(text, n), options, ""));
    });
}

ds_status_t ds_config_load_file(const char* path, const ds_config_options_t* opts, ds_config_t** out) {
    return guard("ds_config_load_file", [&] {
        check_out(out, "out");
        *out = nullptr;
        if (!path) ds::fail(DS_ERR_INVALID_ARG, "path is NULL");
        const ds::config::Options options = read_config_options(opts);
        ds::lib::ensure_init();
        *out = publish_config(ds::config::load_file(path, options));
    });
}

void ds_config_destroy(ds_config_t* cfg) { ds::capi::retire(cfg); }

ds_status_t ds_config_get_kind(const ds_config_t* cfg, const char* path, int32_t* out_kind) {
    return guard("ds_config_get_kind", [&] {
        check_handle(cfg, "cfg");
        check_out(out_kind, "out_kind");
        *out_kind = ds::config::json_kind(value_at(cfg, path));
    });
}

ds_status_t ds_config_get_i64(const ds_config_t* cfg, const char* path, int64_t* out) {
    return guard("ds_config_get_i64", [&] {
        check_handle(cfg, "cfg");
        check_out(out, "out");
        const ds::config::Value& v = value_at(cfg, path);
        if (!v.is_integer()) wrong_kind(path, v, "an integer that fits in 64 bits");
        *out = v.as_int();
    });
}

ds_status_t ds_config_get_f64(const ds_config_t* cfg, const char* path, double* out) {
    return guard("ds_config_get_f64", [&] {
        check_handle(cfg, "cfg");
        check_out(out, "out");
        const ds::config::Value& v = value_at(cfg, path);
        if (!v.is_number()) wrong_kind(path, v, "a number");
        *out = v.as_double();
    });
}

ds_status_t ds_config_get_bool(const ds_config_t* cfg, const char* path, int32_t* out) {
    return guard("ds_config_get_bool", [&] {
        check_handle(cfg, "cfg");
        check_out(out, "out");
        const ds::config::Value& v = value_at(cfg, path);
        if (!v.is_bool()) wrong_kind(path, v, "a boolean");
        *out = v.as_bool() ? 1 : 0;
    });
}

ds_status_t ds_config_get_str(const ds_config_t* cfg, const char* path, char* buf, uint64_t cap, uint64_t* len) {
    return guard("ds_config_get_str", [&] {
        check_handle(cfg, "cfg");
        check_out(len, "len");
        const ds::config::Value& v = value_at(cfg, path);
        if (!v.is_string()) wrong_kind(path, v, "a string");
        const uint64_t needed = static_cast<uint64_t>(v.as_string().size()) + 1;
        *len = needed;
        if (cap < needed)
            ds::fail(DS_ERR_BUFFER_TOO_SMALL, "cap=%llu but \"%s\" needs %llu bytes (with the terminating NUL)",
                     static_cast<unsigned long long>(cap), path, static_cast<unsigned long long>(needed));
        if (!buf) ds::fail(DS_ERR_INVALID_ARG, "buf is NULL but cap=%llu", static_cast<unsigned long long>(cap));
        std::memcpy(buf, v.as_string().c_str(), static_cast<size_t>(needed));
    });
}

ds_status_t ds_config_get_count(const ds_config_t* cfg, const char* path, int64_t* out) {
    return guard("ds_config_get_count", [&] {
        check_handle(cfg, "cfg");
        check_out(out, "out");
        const ds::config::Value& v = value_at(cfg, path);
        if (!v.is_array() && !v.is_object()) wrong_kind(path, v, "an array or an object");
        *out = static_cast<int64_t>(v.size());
    });
}

ds_status_t ds_config_to_json(const ds_config_t* cfg, const char* path, int32_t pretty, char** out_json) {
    return guard("ds_config_to_json", [&] {
        check_handle(cfg, "cfg");
        check_out(out_json, "out_json");
        *out_json = nullptr;
        if (pretty != 0 && pretty != 1) ds::fail(DS_ERR_INVALID_ARG, "pretty=%d must be 0 or 1", pretty);
        const ds::config::Value& v = value_at(cfg, path ? path : "");
        *out_json = give_string(v.to_json(pretty ? 2 : -1));
    });
}

ds_status_t ds_config_query_diagnostics(const ds_config_t* cfg, char** out_json) {
    return guard("ds_config_query_diagnostics", [&] {
        check_handle(cfg, "cfg");
        check_out(out_json, "out_json");
        *out_json = nullptr;
        *out_json = give_string(cfg->impl->diagnostics_json());
    });
}

ds_status_t ds_config_get_world_size(const ds_config_t* cfg, int32_t* out_world_size, int32_t* out_source) {
    return guard("ds_config_get_world_size", [&] {
        check_handle(cfg, "cfg");
        check_out(out_world_size, "out_world_size");
        check_out(out_source, "out_source");
        *out_world_size = cfg->impl->world().size;
        *out_source = cfg->impl->world().source;
    });
}

}  // extern "C"
