#include "op/cpu.hpp"

#include <omp.h>
#include <strings.h>

#include <atomic>
#include <cstdlib>

#include "core/error.hpp"
#include "core/log.hpp"

namespace ds::op {
namespace {

bool os_has_avx512() {
    // AVX-512 needs the CPU flags and the OS saving the ZMM state (XCR0 bits 1, 2, 5, 6, 7).
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq"))
        return false;
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (eax & 0xe6u) == 0xe6u;
}

bool os_has_avx2() {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return false;
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (eax & 0x6u) == 0x6u;  // F16C ships with every AVX2 CPU
}

int32_t detect() { return os_has_avx512() ? DS_CPU_ISA_AVX512 : os_has_avx2() ? DS_CPU_ISA_AVX2 : DS_CPU_ISA_SCALAR; }

int32_t initial_isa() {
    int32_t best = detect();
    const char* env = std::getenv("DSABI_CPU_ISA");
    if (!env || !*env) return best;
    for (int32_t isa = DS_CPU_ISA_SCALAR; isa <= DS_CPU_ISA_AVX512; ++isa) {
        if (strcasecmp(env, cpu_isa_name(isa)) != 0) continue;
        if (isa <= best) return isa;
        log(DS_LOG_WARN, "DSABI_CPU_ISA=%s: this CPU lacks it; using %s", env, cpu_isa_name(best));
        return best;
    }
    log(DS_LOG_WARN, "DSABI_CPU_ISA=%s is not one of scalar, avx2, avx512; using %s", env, cpu_isa_name(best));
    return best;
}

std::atomic<int32_t>& isa_state() {
    static std::atomic<int32_t> isa{initial_isa()};
    return isa;
}

std::atomic<int32_t> g_threads{0};

}  // namespace

int32_t cpu_isa_supported() {
    static const int32_t best = detect();
    return best;
}

int32_t cpu_isa() { return isa_state().load(std::memory_order_relaxed); }

const char* cpu_isa_name(int32_t isa) {
    switch (isa) {
        case DS_CPU_ISA_SCALAR: return "scalar";
        case DS_CPU_ISA_AVX2: return "avx2";
        case DS_CPU_ISA_AVX512: return "avx512";
        default: return "unknown";
    }
}

void set_cpu_isa(int32_t isa) {
    if (isa < DS_CPU_ISA_SCALAR || isa > DS_CPU_ISA_AVX512)
        fail(DS_ERR_INVALID_ARG, "isa=%d is not a ds_cpu_isa value (0 scalar, 1 avx2, 2 avx512)", isa);
    if (isa > cpu_isa_supported())
        fail(DS_ERR_UNSUPPORTED, "isa=%s: this CPU supports up to %s", cpu_isa_name(isa),
             cpu_isa_name(cpu_isa_supported()));
    isa_state().store(isa, std::memory_order_relaxed);
}

int threads() {
    int32_t n = g_threads.load(std::memory_order_relaxed);
    if (n > 0) return n;
    static const int dflt = omp_get_max_threads() > 0 ? omp_get_max_threads() : 1;
    return dflt;
}

void set_threads(int32_t n) {
    if (n < 0) fail(DS_ERR_INVALID_ARG, "n=%d: the thread count must be >= 0 (0 restores the default)", n);
    g_threads.store(n, std::memory_order_relaxed);
}

}  // namespace ds::op
