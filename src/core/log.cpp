#include "core/log.hpp"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <mutex>

#include "core/error.hpp"

namespace ds {

namespace {
std::mutex g_log_mutex;
ds_log_fn g_sink = nullptr;
void* g_sink_user = nullptr;
std::atomic<int32_t> g_level{DS_LOG_WARN};

const char* level_name(int32_t level) {
    switch (level) {
        case DS_LOG_ERROR: return "error";
        case DS_LOG_WARN: return "warning";
        case DS_LOG_INFO: return "info";
        case DS_LOG_DEBUG: return "debug";
        default: return "log";
    }
}
}  // namespace

void log_set_sink(ds_log_fn fn, void* user_data, int32_t max_level) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_sink = fn;
    g_sink_user = user_data;
    g_level = max_level;
}

void log_set_level(int32_t max_level) { g_level = max_level; }

int32_t log_level() { return g_level; }

void log(int32_t level, const char* fmt, ...) {
    if (level > g_level || level <= DS_LOG_NONE) return;
    va_list ap;
    va_start(ap, fmt);
    std::string msg;
    try {
        msg = vformat(fmt, ap);
    } catch (...) {
        va_end(ap);
        return;
    }
    va_end(ap);
    std::lock_guard<std::mutex> lock(g_log_mutex);
    if (g_sink) {
        g_sink(level, msg.c_str(), g_sink_user);
    } else {
        std::fprintf(stderr, "[dsabi %s] %s\n", level_name(level), msg.c_str());
    }
}

}  // namespace ds
