#include "core/lib.hpp"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/error.hpp"
#include "core/log.hpp"

namespace ds::lib {

namespace {

struct State {
    std::mutex mutex;
    std::atomic<bool> initialised{false};
    void* cuda_module = nullptr;
    const ds_backend_v1_t* cuda = nullptr;
    std::string cuda_status = "not initialised";
    std::atomic<long> device_allocs{0};
};

State& state() {
    static State* s = new State();  // never destroyed: safe to use from other static destructors
    return *s;
}

// Directory holding libdsabi itself, found from the address of one of its functions.
std::string own_directory() {
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&ensure_init), &info) && info.dli_fname) {
        std::string path = info.dli_fname;
        size_t slash = path.rfind('/');
        if (slash != std::string::npos) return path.substr(0, slash);
    }
    return ".";
}

void load_cuda(State& s, const ds_lib_options_t& opts) {
    if (!opts.load_cuda) {
        s.cuda_status = "disabled by ds_lib_options_t.load_cuda=0";
        return;
    }
    std::string path;
    if (opts.cuda_backend_path)
        path = opts.cuda_backend_path;
    else if (const char* env = std::getenv("DSABI_CUDA_BACKEND"); env && *env)
        path = env;
    else
        path = own_directory() + "/libdsabi_cuda.so";

    void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!module) {
        const char* err = dlerror();
        s.cuda_status = "not loaded: " + std::string(err ? err : path.c_str());
        log(DS_LOG_INFO, "CUDA backend %s", s.cuda_status.c_str());
        return;
    }
    auto entry = reinterpret_cast<ds_backend_entry_fn>(dlsym(module, "ds_backend_entry"));
    const ds_backend_v1_t* table = entry ? entry() : nullptr;
    if (!table || table->api_version != DS_BACKEND_API_VERSION || table->struct_size < sizeof(ds_backend_v1_t)) {
        s.cuda_status = format("not loaded: %s is not a backend of API version %d", path.c_str(), DS_BACKEND_API_VERSION);
        log(DS_LOG_WARN, "CUDA backend %s", s.cuda_status.c_str());
        dlclose(module);
        return;
    }
    if (table->init() != DS_BACKEND_OK) {
        s.cuda_status = format("not loaded: init failed: %s", table->last_error());
        log(DS_LOG_WARN, "CUDA backend %s", s.cuda_status.c_str());
        dlclose(module);
        return;
    }
    s.cuda_module = module;
    s.cuda = table;
    s.cuda_status = "loaded from " + path;
    log(DS_LOG_INFO, "CUDA backend %s", s.cuda_status.c_str());
}

int32_t level_from_env() {
    const char* env = std::getenv("DSABI_LOG_LEVEL");
    if (!env || !*env) return DS_LOG_WARN;
    static const char* const names[] = {"none", "error", "warn", "info", "debug"};
    for (int32_t i = 0; i <= DS_LOG_DEBUG; ++i)
        if (strcasecmp(env, names[i]) == 0) return i;
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end && *end == '\0' && v >= DS_LOG_NONE && v <= DS_LOG_DEBUG) return static_cast<int32_t>(v);
    return DS_LOG_WARN;
}

}  // namespace

void init(const ds_lib_options_t& opts) {
    State& s = state();
    if (s.initialised.load(std::memory_order_acquire)) return;
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.initialised.load(std::memory_order_relaxed)) return;
    log_set_level(opts.log_level == DS_UNSET_I32 ? level_from_env() : opts.log_level);
    load_cuda(s, opts);
    s.initialised.store(true, std::memory_order_release);
}

void ensure_init() {
    if (state().initialised.load(std::memory_order_acquire)) return;
    ds_lib_options_t opts;
    ds_lib_options_init(&opts);
    init(opts);
}

void shutdown() {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.initialised) return;
    long live = s.device_allocs.load();
    if (live > 0)
        fail(DS_ERR_STATE, "%ld CUDA allocation(s) are still alive; destroy their tensors first", live);
    if (s.cuda_module) dlclose(s.cuda_module);
    s.cuda_module = nullptr;
    s.cuda = nullptr;
    s.cuda_status = "unloaded by ds_lib_shutdown";
    s.initialised = false;
}

const ds_backend_v1_t* cuda() {
    ensure_init();
    return state().cuda;
}

std::string cuda_status() {
    ensure_init();
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    return s.cuda_status;
}

void note_device_alloc() { state().device_allocs.fetch_add(1); }
void note_device_free() { state().device_allocs.fetch_sub(1); }

}  // namespace ds::lib
