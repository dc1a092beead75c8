// Host emulation of the CUDA execution model for ops_attn_kernels.cuh: every CUDA thread is a fiber
// (ucontext), __syncthreads / warp collectives are barriers, ldmatrix / mma.sync / shfl are computed from
// the operands of all 32 lanes per the PTX fragment layouts, cp.async writes land only at
// cp.async.wait_group (so a missing wait reads stale data), global buffers carry guard pages, shared
// memory is poisoned with NaN bytes at CTA start and bounds-checked in every primitive.
#pragma once

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#define DSATTN_EMULATE 1

struct __nv_bfloat16 {
    uint16_t x;
};
struct __half {
    uint16_t x;
};
struct uint4 {
    uint32_t x, y, z, w;
};
struct uint3e {
    unsigned x, y, z;
};

#define EMU_FAIL(...)                                  \
    do {                                               \
        fprintf(stderr, "EMU FAIL %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                  \
        fprintf(stderr, "\n");                         \
        abort();                                       \
    } while (0)

namespace emu {

struct Pending {
    unsigned char* dst;
    unsigned char bytes[16];
};

struct Fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    int tid = 0;
    bool done = false;
    std::vector<std::vector<Pending>> groups;
    std::vector<Pending> open;
    uint3e tidx{};
};

struct WarpSlots {
    int op[32];
    const unsigned char* addr[32];
    uint32_t a[32][4];
    uint32_t b[32][2];
    float c[32][4];
    float v[32];
};

inline std::vector<Fiber>* g_fibers = nullptr;
inline int g_cur = -1;
inline ucontext_t g_main;
inline int g_nthreads = 0;
inline uint3e g_block{}, g_grid{}, g_blockdim{};
inline unsigned char* g_smem = nullptr;
inline size_t g_smem_bytes = 0;
inline std::function<void()>* g_body = nullptr;
inline int g_alive = 0;
// barriers
inline long g_block_gen = 0;
inline int g_block_arrived = 0;
inline std::vector<long> g_warp_gen;
inline std::vector<int> g_warp_arrived;
inline std::vector<WarpSlots> g_slots;
inline long g_progress = 0;
inline bool g_reverse = false;
inline int g_sched = 0;       // 0: round robin over threads; 1: greedy by warp (each warp runs to its next __syncthreads)
inline bool g_eager = false;  // cp.async lands at issue (true) or only at wait_group (false)
inline long g_yields = 0;

inline Fiber& me() { return (*g_fibers)[g_cur]; }
inline void yield() {
    ++g_yields;
    swapcontext(&me().ctx, &g_main);
}

inline void syncthreads() {
    long gen = g_block_gen;
    ++g_progress;
    if (++g_block_arrived == g_alive) {
        g_block_arrived = 0;
        ++g_block_gen;
        ++g_progress;
        return;
    }
    while (g_block_gen == gen) yield();
}

inline void warp_barrier() {
    const int w = me().tid / 32;
    long gen = g_warp_gen[w];
    ++g_progress;
    if (++g_warp_arrived[w] == 32) {
        g_warp_arrived[w] = 0;
        ++g_warp_gen[w];
        ++g_progress;
        return;
    }
    while (g_warp_gen[w] == gen) yield();
}

inline int lane() { return me().tid & 31; }
inline WarpSlots& slots() { return g_slots[me().tid / 32]; }

// Enter a warp collective: record op, barrier, check that every lane is in the same op.
inline void enter(int op) {
    slots().op[lane()] = op;
    warp_barrier();
    for (int l = 0; l < 32; ++l)
        if (slots().op[l] != op) EMU_FAIL("warp collective divergence: lane %d op %d vs %d", l, slots().op[l], op);
}
inline void leave() { warp_barrier(); }

// ---- memory ------------------------------------------------------------------------------------------

struct Alloc {
    unsigned char* base;
    size_t total;
    unsigned char* user;
    size_t bytes;
};
inline std::vector<Alloc>& allocs() {
    static std::vector<Alloc> a;
    return a;
}
// bytes of memory whose end touches a PROT_NONE page (and a guard page before it).
inline void* galloc(size_t bytes, size_t align = 16) {
    const size_t pg = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t body = (bytes + pg - 1) / pg * pg;
    size_t total = body + 2 * pg;
    unsigned char* base = static_cast<unsigned char*>(mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base == MAP_FAILED) EMU_FAIL("mmap");
    mprotect(base, pg, PROT_NONE);
    mprotect(base + pg + body, pg, PROT_NONE);
    uintptr_t end = reinterpret_cast<uintptr_t>(base + pg + body);
    uintptr_t start = (end - bytes) & ~(static_cast<uintptr_t>(align) - 1);
    allocs().push_back({base, total, reinterpret_cast<unsigned char*>(start), bytes});
    return reinterpret_cast<void*>(start);
}
inline void gfree(void* p) {
    auto& v = allocs();
    for (size_t i = 0; i < v.size(); ++i)
        if (v[i].user == p) {
            munmap(v[i].base, v[i].total);
            v.erase(v.begin() + static_cast<long>(i));
            return;
        }
}

inline void check_smem(const void* p, size_t n, size_t align, const char* what) {
    const unsigned char* c = static_cast<const unsigned char*>(p);
    if (c < g_smem || c + n > g_smem + g_smem_bytes) EMU_FAIL("%s: shared address out of range (offset %ld)", what, (long)(c - g_smem));
    if ((reinterpret_cast<uintptr_t>(c) - reinterpret_cast<uintptr_t>(g_smem)) % align) EMU_FAIL("%s: misaligned shared address", what);
}

// ---- scheduler ---------------------------------------------------------------------------------------

inline void fiber_entry() {
    (*g_body)();
    me().done = true;
    --g_alive;
    // a finished thread no longer takes part in __syncthreads
    if (g_block_arrived > 0 && g_block_arrived == g_alive) {
        g_block_arrived = 0;
        ++g_block_gen;
    }
    ++g_progress;
    swapcontext(&me().ctx, &g_main);
}

inline void run_block(std::function<void()>& body, int nthreads) {
    std::vector<Fiber> fibers(static_cast<size_t>(nthreads));
    g_fibers = &fibers;
    g_body = &body;
    g_nthreads = nthreads;
    g_alive = nthreads;
    g_block_arrived = 0;
    g_warp_gen.assign(static_cast<size_t>((nthreads + 31) / 32), 0);
    g_warp_arrived.assign(static_cast<size_t>((nthreads + 31) / 32), 0);
    g_slots.assign(static_cast<size_t>((nthreads + 31) / 32), WarpSlots{});
    for (int t = 0; t < nthreads; ++t) {
        Fiber& f = fibers[static_cast<size_t>(t)];
        f.tid = t;
        f.tidx = {static_cast<unsigned>(t), 0, 0};
        f.stack.resize(96 * 1024);
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack.data();
        f.ctx.uc_stack.ss_size = f.stack.size();
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, fiber_entry, 0);
    }
    const int nwarps = (nthreads + 31) / 32;
    for (;;) {
        long before = g_progress;
        bool any = false;
        if (g_sched == 0) {
            for (int k = 0; k < nthreads; ++k) {
                int t = g_reverse ? nthreads - 1 - k : k;
                if (fibers[static_cast<size_t>(t)].done) continue;
                any = true;
                g_cur = t;
                swapcontext(&g_main, &fibers[static_cast<size_t>(t)].ctx);
            }
        } else {
            for (int wk = 0; wk < nwarps; ++wk) {
                const int w = g_reverse ? nwarps - 1 - wk : wk;
                for (;;) {
                    long b2 = g_progress;
                    for (int t = w * 32; t < nthreads && t < w * 32 + 32; ++t) {
                        if (fibers[static_cast<size_t>(t)].done) continue;
                        any = true;
                        g_cur = t;
                        swapcontext(&g_main, &fibers[static_cast<size_t>(t)].ctx);
                    }
                    if (g_progress == b2) break;
                }
            }
        }
        if (!any) break;
        if (g_progress == before) EMU_FAIL("deadlock: no barrier progress (block %u %u %u)", g_block.x, g_block.y, g_block.z);
    }
    g_fibers = nullptr;
    g_cur = -1;
}

// Run a kernel body over a grid.
inline void launch(uint3e grid, int nthreads, size_t smem_bytes, std::function<void()> body) {
    g_grid = grid;
    g_blockdim = {static_cast<unsigned>(nthreads), 1, 1};
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                g_block = {x, y, z};
                g_smem_bytes = smem_bytes;
                g_smem = smem_bytes ? static_cast<unsigned char*>(galloc(smem_bytes, 128)) : nullptr;
                if (g_smem) memset(g_smem, 0xff, smem_bytes);  // NaN in every 16-bit and 32-bit float format
                run_block(body, nthreads);
                if (g_smem) gfree(g_smem);
                g_smem = nullptr;
            }
}

// ---- number formats ------------------------------------------------------------------------------------

inline float bf2f(uint16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline uint16_t f2bf(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}
inline float h2f(uint16_t h) {
    _Float16 x;
    memcpy(&x, &h, 2);
    return static_cast<float>(x);
}
inline uint16_t f2h(float f) {
    _Float16 x = static_cast<_Float16>(f);
    uint16_t h;
    memcpy(&h, &x, 2);
    return h;
}

}  // namespace emu

// ---- CUDA names ----------------------------------------------------------------------------------------

#define threadIdx (emu::me().tidx)
#define blockIdx (emu::g_block)
#define gridDim (emu::g_grid)
#define blockDim (emu::g_blockdim)
#define __global__
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __syncthreads() emu::syncthreads()
#define __syncwarp() emu::warp_barrier()
#define DSATTN_DEV inline
#define DSATTN_SMEM(name) unsigned char* name = emu::g_smem

inline float __shfl_xor_sync(unsigned, float v, int mask) {
    emu::enter(100);
    emu::slots().v[emu::lane()] = v;
    emu::warp_barrier();
    float r = emu::slots().v[emu::lane() ^ mask];
    emu::leave();
    return r;
}

namespace dsattn {

inline void cp_async16(void* dst, const void* src, bool valid) {
    emu::check_smem(dst, 16, 16, "cp.async dst");
    if ((reinterpret_cast<uintptr_t>(src) & 15u) != 0) EMU_FAIL("cp.async: misaligned global source");
    emu::Pending pd;
    pd.dst = static_cast<unsigned char*>(dst);
    if (valid) memcpy(pd.bytes, src, 16);  // guard pages catch out-of-range sources
    else memset(pd.bytes, 0, 16);
    if (emu::g_eager) memcpy(pd.dst, pd.bytes, 16);
    else emu::me().open.push_back(pd);
}
inline void cp_async_commit() {
    emu::me().groups.push_back(emu::me().open);
    emu::me().open.clear();
}
template <int N>
inline void cp_async_wait() {
    auto& gs = emu::me().groups;
    while (gs.size() > static_cast<size_t>(N)) {
        for (const emu::Pending& pd : gs.front()) memcpy(pd.dst, pd.bytes, 16);
        gs.erase(gs.begin());
    }
}

inline void ldsm_common(uint32_t (&r)[4], const void* p, bool trans) {
    emu::check_smem(p, 16, 16, "ldmatrix row");
    emu::enter(trans ? 201 : 200);
    emu::WarpSlots& s = emu::slots();
    const int l = emu::lane();
    s.addr[l] = static_cast<const unsigned char*>(p);
    emu::warp_barrier();
    for (int i = 0; i < 4; ++i) {
        if (!trans) {
            memcpy(&r[i], s.addr[i * 8 + l / 4] + 4 * (l % 4), 4);
        } else {
            uint16_t lo, hi;
            memcpy(&lo, s.addr[i * 8 + 2 * (l % 4)] + 2 * (l / 4), 2);
            memcpy(&hi, s.addr[i * 8 + 2 * (l % 4) + 1] + 2 * (l / 4), 2);
            r[i] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
        }
    }
    emu::leave();
}
inline void ldsm_x4(uint32_t (&r)[4], const void* p) { ldsm_common(r, p, false); }
inline void ldsm_x4_t(uint32_t (&r)[4], const void* p) { ldsm_common(r, p, true); }

template <typename T>
inline float elem(uint16_t h);
template <>
inline float elem<__nv_bfloat16>(uint16_t h) {
    return emu::bf2f(h);
}
template <>
inline float elem<__half>(uint16_t h) {
    return emu::h2f(h);
}

template <typename T>
inline void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    emu::enter(300);
    emu::WarpSlots& s = emu::slots();
    const int l = emu::lane();
    for (int i = 0; i < 4; ++i) s.a[l][i] = a[i], s.c[l][i] = d[i];
    s.b[l][0] = b0;
    s.b[l][1] = b1;
    emu::warp_barrier();
    float A[16][16], B[16][8];
    for (int L = 0; L < 32; ++L) {
        const int g = L / 4, t = L % 4;
        auto lo = [](uint32_t w) { return static_cast<uint16_t>(w & 0xffffu); };
        auto hi = [](uint32_t w) { return static_cast<uint16_t>(w >> 16); };
        A[g][2 * t] = elem<T>(lo(s.a[L][0]));
        A[g][2 * t + 1] = elem<T>(hi(s.a[L][0]));
        A[g + 8][2 * t] = elem<T>(lo(s.a[L][1]));
        A[g + 8][2 * t + 1] = elem<T>(hi(s.a[L][1]));
        A[g][2 * t + 8] = elem<T>(lo(s.a[L][2]));
        A[g][2 * t + 9] = elem<T>(hi(s.a[L][2]));
        A[g + 8][2 * t + 8] = elem<T>(lo(s.a[L][3]));
        A[g + 8][2 * t + 9] = elem<T>(hi(s.a[L][3]));
        B[2 * t][g] = elem<T>(lo(s.b[L][0]));
        B[2 * t + 1][g] = elem<T>(hi(s.b[L][0]));
        B[2 * t + 8][g] = elem<T>(lo(s.b[L][1]));
        B[2 * t + 9][g] = elem<T>(hi(s.b[L][1]));
    }
    const int g = l / 4, t = l % 4;
    for (int e = 0; e < 4; ++e) {
        const int row = g + (e >> 1) * 8, col = 2 * t + (e & 1);
        double acc = 0;
        for (int k = 0; k < 16; ++k) acc += static_cast<double>(A[row][k]) * B[k][col];
        d[e] = static_cast<float>(acc + s.c[l][e]);
    }
    emu::leave();
}

template <typename T>
inline uint32_t pack2(float lo, float hi);
template <>
inline uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
    return static_cast<uint32_t>(emu::f2bf(lo)) | (static_cast<uint32_t>(emu::f2bf(hi)) << 16);
}
template <>
inline uint32_t pack2<__half>(float lo, float hi) {
    return static_cast<uint32_t>(emu::f2h(lo)) | (static_cast<uint32_t>(emu::f2h(hi)) << 16);
}
template <typename T>
inline float to_f32(T x);
template <>
inline float to_f32<__nv_bfloat16>(__nv_bfloat16 x) {
    return emu::bf2f(x.x);
}
template <>
inline float to_f32<__half>(__half x) {
    return emu::h2f(x.x);
}
struct float2 {
    float x, y;
};
template <typename T>
inline float2 unpack2(uint32_t v);
template <>
inline float2 unpack2<__nv_bfloat16>(uint32_t v) {
    return {emu::bf2f(static_cast<uint16_t>(v)), emu::bf2f(static_cast<uint16_t>(v >> 16))};
}
template <>
inline float2 unpack2<__half>(uint32_t v) {
    return {emu::h2f(static_cast<uint16_t>(v)), emu::h2f(static_cast<uint16_t>(v >> 16))};
}
template <typename T>
inline T from_f32(float x);
template <>
inline __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
    return __nv_bfloat16{emu::f2bf(x)};
}
template <>
inline __half from_f32<__half>(float x) {
    return __half{emu::f2h(x)};
}

inline float exp2_approx(float x) { return std::exp2(x); }
inline float shfl_xor(float v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask); }
inline void grid_dep_wait() {}
inline void grid_dep_launch() {}
inline bool warp_any(bool v) {
    float f = v ? 1.0f : 0.0f;
    for (int m = 1; m < 32; m <<= 1) {
        const float o = shfl_xor(f, m);
        f = o > f ? o : f;
    }
    return f != 0.0f;
}
inline void atomic_add2(float* p, float a, float b) {
    p[0] += a;
    p[1] += b;
}
inline int lane_id() { return emu::lane(); }
inline int warp_id() { return emu::me().tid >> 5; }

}  // namespace dsattn

using std::fmaxf;
using std::log2f;
