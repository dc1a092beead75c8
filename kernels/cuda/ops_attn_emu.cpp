// Runs the attention kernels of ops_attn_kernels.cuh on the CPU under the host emulator of
// ops_attn_emu.hpp (every CUDA thread a fiber; ldmatrix, mma.sync, shuffles and cp.async modelled per the
// PTX specification) against a float64 reference, for development without a GPU. Not part of the build:
//
//     g++ -std=c++17 -O2 -Wno-unknown-pragmas -Ikernels kernels/cuda/ops_attn_emu.cpp -o /tmp/attn_emu
//     /tmp/attn_emu          # every case (about 2 minutes);  /tmp/attn_emu N: case N only
//
// Some cases run again under other schedules (reversed thread order; each warp running ahead to its next
// __syncthreads; cp.async data landing at issue instead of at the wait) and must give identical o, lse,
// dk and dv: a missing barrier or wait shows up as a difference or a failure. The launch code mirrors
// ops_attn.cu (keep the two in step).
#include "cuda/ops_attn_emu.hpp"
#include "cuda/ops_attn_kernels.cuh"

#include <chrono>
#include <random>

using namespace dsattn;

struct Case {
    int64_t B, S, Skv;
    int Hq, Hkv, D;
    bool causal;
    double scale;
    bool bf16;
};

static std::mt19937_64 rng(12345);
static double uni(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }

static int64_t key_limit(const Case& c, int64_t i) {
    if (!c.causal) return c.Skv;
    int64_t l = i + c.Skv - c.S + 1;
    return l < 0 ? 0 : l > c.Skv ? c.Skv : l;
}
static double sc(const Case& c) { return c.scale != 0 ? c.scale : 1.0 / std::sqrt((double)c.D); }

static void ref(const Case& c, const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                const std::vector<double>& dout, std::vector<double>& o, std::vector<double>& lse, std::vector<double>& dq,
                std::vector<double>& dk, std::vector<double>& dv) {
    const int G = c.Hq / c.Hkv, D = c.D;
    auto qa = [&](int64_t b, int64_t i, int h) { return ((b * c.S + i) * c.Hq + h) * D; };
    auto ka = [&](int64_t b, int64_t j, int h) { return ((b * c.Skv + j) * c.Hkv + h) * D; };
    o.assign(q.size(), 0);
    dq.assign(q.size(), 0);
    dk.assign(k.size(), 0);
    dv.assign(k.size(), 0);
    lse.assign(c.B * c.Hq * c.S, 0);
    std::vector<double> p(c.Skv + 1);
    for (int64_t b = 0; b < c.B; ++b)
        for (int64_t i = 0; i < c.S; ++i)
            for (int h = 0; h < c.Hq; ++h) {
                const int hk = h / G;
                const int64_t lim = key_limit(c, i);
                double m = -INFINITY, sum = 0;
                for (int64_t j = 0; j < lim; ++j) {
                    double s = 0;
                    for (int d = 0; d < D; ++d) s += q[qa(b, i, h) + d] * k[ka(b, j, hk) + d];
                    p[j] = s * sc(c);
                    m = std::max(m, p[j]);
                }
                for (int64_t j = 0; j < lim; ++j) sum += (p[j] = std::exp(p[j] - m));
                for (int64_t j = 0; j < lim; ++j) p[j] /= sum;
                lse[(b * c.Hq + h) * c.S + i] = lim ? m + std::log(sum) : -INFINITY;
                for (int64_t j = 0; j < lim; ++j)
                    for (int d = 0; d < D; ++d) o[qa(b, i, h) + d] += p[j] * v[ka(b, j, hk) + d];
                double di = 0;
                for (int d = 0; d < D; ++d) di += dout[qa(b, i, h) + d] * o[qa(b, i, h) + d];
                for (int64_t j = 0; j < lim; ++j) {
                    double dp = 0;
                    for (int d = 0; d < D; ++d) dp += dout[qa(b, i, h) + d] * v[ka(b, j, hk) + d];
                    double ds = p[j] * (dp - di);
                    for (int d = 0; d < D; ++d) {
                        dq[qa(b, i, h) + d] += sc(c) * ds * k[ka(b, j, hk) + d];
                        dk[ka(b, j, hk) + d] += sc(c) * ds * q[qa(b, i, h) + d];
                        dv[ka(b, j, hk) + d] += p[j] * dout[qa(b, i, h) + d];
                    }
                }
            }
}

template <typename T>
struct Buf {
    T* p = nullptr;
    size_t n = 0;
    explicit Buf(size_t n_) : n(n_) { p = static_cast<T*>(emu::galloc(std::max<size_t>(n, 1) * sizeof(T))); }
    ~Buf() { emu::gfree(p); }
};

static uint16_t enc(bool bf, double x) { return bf ? emu::f2bf((float)x) : emu::f2h((float)x); }
static double dec(bool bf, uint16_t h) { return bf ? emu::bf2f(h) : emu::h2f(h); }

static bool close(const char* what, const std::vector<double>& got, const std::vector<double>& want, double tol) {
    double big = 1e-3, worst = 0;
    size_t at = 0;
    for (double w : want) big = std::max(big, std::fabs(w));
    for (size_t e = 0; e < got.size(); ++e) {
        double err = std::fabs(got[e] - want[e]);
        if (std::isnan(err)) err = INFINITY;
        if (err > worst) worst = err, at = e;
    }
    bool ok = worst <= tol * big;
    printf("    %-4s max err %.3g (rel %.3g)%s\n", what, worst, worst / big, ok ? "" : "   <-- FAIL");
    if (!ok) printf("      at %zu: got %.6g want %.6g\n", at, got[at], want[at]);
    return ok;
}

static int g_fwd_mt = 2;  // forward variant: 2 (4 warps x 32 rows, the default) or 1 (8 warps x 16 rows)

struct Out {
    std::vector<double> o, lse, dq, dk, dv;
};

template <typename T, int D>
static void run_kernels(const Case& c, const uint16_t* q, const uint16_t* k, const uint16_t* v, const uint16_t* dout, Out& out) {
    const int64_t nq = c.B * c.S * c.Hq * D, nk = c.B * c.Skv * c.Hkv * D, nl = c.B * c.Hq * c.S;
    Buf<uint16_t> Q(nq), K(nk), V(nk), O(nq), DO(nq), DQ(nq), DK(nk), DV(nk);
    Buf<float> L(nl), ws(nq + nl);
    memcpy(Q.p, q, nq * 2);
    memcpy(K.p, k, nk * 2);
    memcpy(V.p, v, nk * 2);
    memcpy(DO.p, dout, nq * 2);
    memset(O.p, 0xff, nq * 2);
    memset(L.p, 0xff, nl * 4);
    memset(DQ.p, 0xff, nq * 2);
    memset(DK.p, 0xff, nk * 2);
    memset(DV.p, 0xff, nk * 2);
    // ---- forward (mirrors ops_attn.cu) ----
    FwdParams p{};
    p.q = Q.p; p.k = K.p; p.v = V.p; p.o = O.p; p.lse = L.p;
    p.S = c.S; p.Skv = c.Skv; p.off = c.Skv - c.S; p.Hq = c.Hq; p.Hkv = c.Hkv; p.G = c.Hq / c.Hkv;
    const float scale = (float)sc(c);
    p.scale_log2 = scale * kLog2e;
    if (g_fwd_mt == 2) {
        using Cfg = FwdCfg<D, 4, 2>;
        uint3e grid{(unsigned)((c.S + Cfg::BM - 1) / Cfg::BM), (unsigned)c.Hq, (unsigned)c.B};
        if (c.causal) emu::launch(grid, Cfg::NT, Cfg::SMEM, [&] { attn_fwd_kernel<T, D, 4, 2, true>(p); });
        else emu::launch(grid, Cfg::NT, Cfg::SMEM, [&] { attn_fwd_kernel<T, D, 4, 2, false>(p); });
    } else {
        using Cfg = FwdCfg<D, 8, 1>;
        uint3e grid{(unsigned)((c.S + Cfg::BM - 1) / Cfg::BM), (unsigned)c.Hq, (unsigned)c.B};
        if (c.causal) emu::launch(grid, Cfg::NT, Cfg::SMEM, [&] { attn_fwd_kernel<T, D, 8, 1, true>(p); });
        else emu::launch(grid, Cfg::NT, Cfg::SMEM, [&] { attn_fwd_kernel<T, D, 8, 1, false>(p); });
    }
    // ---- backward ----
    BwdParams bp{};
    bp.q = Q.p; bp.k = K.p; bp.v = V.p; bp.dout = DO.p; bp.lse = L.p;
    bp.dq_acc = ws.p; bp.dsum = ws.p + nq; bp.dk = DK.p; bp.dv = DV.p;
    bp.S = c.S; bp.Skv = c.Skv; bp.off = c.Skv - c.S; bp.Hq = c.Hq; bp.Hkv = c.Hkv; bp.G = c.Hq / c.Hkv;
    bp.scale = scale; bp.scale_log2 = scale * kLog2e;
    memset(ws.p, 0xff, (nq + nl) * 4);  // NaN: the Dsum kernel zeroes dq_acc and writes every Dsum
    const int64_t rows = c.B * c.S * c.Hq;
    if (rows > 0) {
        uint3e grid{(unsigned)((rows * (D / 8) + 255) / 256), 1, 1};
        emu::launch(grid, 256, 0, [&] {
            attn_bwd_dsum_kernel<T, D>(reinterpret_cast<const T*>(O.p), reinterpret_cast<const T*>(DO.p), ws.p + nq, ws.p,
                                       rows, c.S, c.Hq);
        });
    }
    if (c.Skv > 0) {
        using Cfg = BwdCfg<D>;
        uint3e grid{(unsigned)((c.Skv + Cfg::BN - 1) / Cfg::BN), (unsigned)c.Hkv, (unsigned)c.B};
        if (c.causal) emu::launch(grid, Cfg::NT, Cfg::SMEM, [&] { attn_bwd_kernel<T, D, true>(bp); });
        else emu::launch(grid, Cfg::NT, Cfg::SMEM, [&] { attn_bwd_kernel<T, D, false>(bp); });
    }
    if (nq > 0) {
        uint3e grid{3, 1, 1};
        emu::launch(grid, 64, 0, [&] { attn_bwd_dq_kernel<T>(ws.p, reinterpret_cast<T*>(DQ.p), nq, scale); });
    }
    const bool bf = std::is_same<T, __nv_bfloat16>::value;
    out.o.resize(nq); out.dq.resize(nq); out.dk.resize(nk); out.dv.resize(nk); out.lse.resize(nl);
    for (int64_t e = 0; e < nq; ++e) out.o[e] = dec(bf, O.p[e]), out.dq[e] = dec(bf, DQ.p[e]);
    for (int64_t e = 0; e < nk; ++e) out.dk[e] = dec(bf, DK.p[e]), out.dv[e] = dec(bf, DV.p[e]);
    for (int64_t e = 0; e < nl; ++e) out.lse[e] = L.p[e];
}

static bool run_case(const Case& c, bool also_reverse) {
    printf("case B%ld S%ld Skv%ld Hq%d Hkv%d D%d %s%s %s\n", (long)c.B, (long)c.S, (long)c.Skv, c.Hq, c.Hkv, c.D,
           c.causal ? "causal" : "full", c.scale ? " scale" : "", c.bf16 ? "bf16" : "f16");
    const int64_t nq = c.B * c.S * c.Hq * c.D, nk = c.B * c.Skv * c.Hkv * c.D;
    std::vector<uint16_t> q(nq), k(nk), v(nk), dout(nq);
    std::vector<double> qd(nq), kd(nk), vd(nk), dod(nq);
    for (int64_t e = 0; e < nq; ++e) q[e] = enc(c.bf16, uni(-2, 2)), qd[e] = dec(c.bf16, q[e]);
    for (int64_t e = 0; e < nk; ++e) k[e] = enc(c.bf16, uni(-2, 2)), kd[e] = dec(c.bf16, k[e]);
    for (int64_t e = 0; e < nk; ++e) v[e] = enc(c.bf16, uni(-1, 1)), vd[e] = dec(c.bf16, v[e]);
    for (int64_t e = 0; e < nq; ++e) dout[e] = enc(c.bf16, uni(-1, 1)), dod[e] = dec(c.bf16, dout[e]);
    Out r;
    ref(c, qd, kd, vd, dod, r.o, r.lse, r.dq, r.dk, r.dv);
    Out g;
    auto t0 = std::chrono::steady_clock::now();
    emu::g_reverse = false;
    if (c.bf16) {
        if (c.D == 64) run_kernels<__nv_bfloat16, 64>(c, q.data(), k.data(), v.data(), dout.data(), g);
        else run_kernels<__nv_bfloat16, 128>(c, q.data(), k.data(), v.data(), dout.data(), g);
    } else {
        if (c.D == 64) run_kernels<__half, 64>(c, q.data(), k.data(), v.data(), dout.data(), g);
        else run_kernels<__half, 128>(c, q.data(), k.data(), v.data(), dout.data(), g);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tf = c.bf16 ? 2e-2 : 4e-3, tg = c.bf16 ? 4e-2 : 1e-2;
    bool ok = close("o", g.o, r.o, tf);
    // lse
    double worst = 0;
    bool lse_ok = true;
    for (size_t e = 0; e < r.lse.size(); ++e) {
        if (std::isinf(r.lse[e])) {
            if (!(std::isinf(g.lse[e]) && g.lse[e] < 0)) lse_ok = false;
        } else {
            double err = std::fabs(g.lse[e] - r.lse[e]);
            if (!(err <= 2e-4 * (1 + std::fabs(r.lse[e])))) lse_ok = false;
            worst = std::max(worst, err);
        }
    }
    printf("    lse  max err %.3g%s\n", worst, lse_ok ? "" : "   <-- FAIL");
    ok = ok && lse_ok;
    // empty rows exactly zero
    for (int64_t b = 0; b < c.B; ++b)
        for (int64_t i = 0; i < c.S; ++i)
            if (key_limit(c, i) == 0)
                for (int h = 0; h < c.Hq; ++h)
                    for (int d = 0; d < c.D; ++d)
                        if (g.o[((b * c.S + i) * c.Hq + h) * c.D + d] != 0) { ok = false; }
    ok = close("dq", g.dq, r.dq, tg) && ok;
    ok = close("dk", g.dk, r.dk, tg) && ok;
    ok = close("dv", g.dv, r.dv, tg) && ok;
    printf("    %.1f s emulated, %ld yields\n", secs, emu::g_yields);
    for (int mode = 1; also_reverse && mode < 5; ++mode) {
        Out g2;
        emu::g_reverse = mode & 1;
        emu::g_sched = mode >= 2 ? 1 : 0;
        emu::g_eager = mode >= 3;
        if (c.bf16) {
            if (c.D == 64) run_kernels<__nv_bfloat16, 64>(c, q.data(), k.data(), v.data(), dout.data(), g2);
            else run_kernels<__nv_bfloat16, 128>(c, q.data(), k.data(), v.data(), dout.data(), g2);
        } else {
            if (c.D == 64) run_kernels<__half, 64>(c, q.data(), k.data(), v.data(), dout.data(), g2);
            else run_kernels<__half, 128>(c, q.data(), k.data(), v.data(), dout.data(), g2);
        }
        emu::g_reverse = false;
        emu::g_sched = 0;
        emu::g_eager = false;
        bool same = g2.o == g.o && g2.dk == g.dk && g2.dv == g.dv;
        for (size_t e = 0; e < g.lse.size(); ++e) same = same && (g.lse[e] == g2.lse[e] || (std::isinf(g.lse[e]) && std::isinf(g2.lse[e])));
        same = close("dq'", g2.dq, r.dq, tg) && same;
        printf("    schedule mode %d (reverse %d, greedy %d, eager %d): %s\n", mode, mode & 1, mode >= 2, mode >= 3,
               same ? "identical o, lse, dk, dv" : "DIFFERENT  <-- FAIL");
        ok = ok && same;
    }
    printf("  %s\n", ok ? "OK" : "FAILED");
    return ok;
}

int main(int argc, char** argv) {
    std::vector<Case> cases = {
        {1, 1, 1, 2, 1, 64, false, 0, true},
        {1, 33, 33, 2, 2, 64, true, 0, false},
        {1, 33, 130, 4, 1, 128, true, 0, true},
        {1, 130, 33, 2, 1, 64, true, 0, true},
        {2, 70, 70, 2, 2, 128, false, 0.3, false},
        {1, 129, 200, 2, 1, 128, true, 0, true},
        {1, 5, 0, 2, 1, 64, false, 0, true},
        {1, 200, 129, 4, 2, 64, false, 0, false},
        {1, 70, 150, 2, 1, 64, true, 0, true},    /* 8: several key tiles, schedules */
        {1, 130, 130, 2, 2, 128, true, 0, false}, /* 9: several key and query tiles, schedules */
        {1, 300, 300, 1, 1, 64, true, 0, true},   /* 10: three query blocks */
        {1, 257, 64, 2, 1, 128, true, 0, true},   /* 11: whole query blocks see no key */
        {2, 65, 1, 2, 2, 64, true, 0, false},     /* 12: one key */
    };
    int only = argc > 1 ? atoi(argv[1]) : -1;
    if (const char* e = getenv("DSABI_ATTN_FWD_MT")) g_fwd_mt = atoi(e) == 1 ? 1 : 2;
    printf("forward variant: MT=%d\n", g_fwd_mt);
    int failed = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        if (only >= 0 && (int)i != only) continue;
        if (!run_case(cases[i], i == 1 || i == 3 || i == 8 || i == 9 || i == 11)) ++failed;
    }
    printf("%d failed\n", failed);
    return failed != 0;
}
