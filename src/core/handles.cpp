#include "core/handles.hpp"

#include <mutex>
#include <shared_mutex>
#include <unordered_map>

namespace ds {

namespace {
std::shared_mutex& registry_mutex() {
    static std::shared_mutex m;
    return m;
}
std::unordered_map<const void*, uint32_t>& registry() {
    static std::unordered_map<const void*, uint32_t> r;
    return r;
}
}  // namespace

void handle_register(const void* handle, uint32_t magic) {
    std::unique_lock<std::shared_mutex> lock(registry_mutex());
    registry()[handle] = magic;
}

void handle_unregister(const void* handle) {
    std::unique_lock<std::shared_mutex> lock(registry_mutex());
    registry().erase(handle);
}

bool handle_is_live(const void* handle, uint32_t magic) {
    if (!handle) return false;
    std::shared_lock<std::shared_mutex> lock(registry_mutex());
    auto it = registry().find(handle);
    return it != registry().end() && it->second == magic;
}

size_t handle_count(uint32_t magic) {
    std::shared_lock<std::shared_mutex> lock(registry_mutex());
    size_t n = 0;
    for (const auto& kv : registry())
        if (kv.second == magic) ++n;
    return n;
}

}  // namespace ds
