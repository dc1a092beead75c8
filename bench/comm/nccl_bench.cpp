// ds_comm on CUDA tensors beside NCCL called directly, in the same processes on the same buffers:
//
//     dsrun -n <GPUs> --master-port 0 nccl_bench [--ops all_reduce,all_gather,reduce_scatter]
//           [--min-bytes 1024] [--max-bytes 1073741824] [--dtype bf16|f16|f32] [--rounds 5] [--json out.json]
//
// For each op and size (x4 steps) it measures, after a barrier, the mean time per call of
//   nccl_sync   ncclX + cudaStreamSynchronize per call  (what a synchronous ds call does)
//   ds_sync     ds_comm_X(..., NULL)
//   nccl_async  N calls back to back, one synchronize at the end
//   ds_async    N calls with work handles, then ds_work_wait on each
// ROUNDS times in turn (so that a change in the machine's state hits all four alike), keeping the
// best mean of each, and reports bus bandwidth with nccl-tests' formulas (bytes as nccl-tests: the all_reduce buffer,
// the all_gather output, the reduce_scatter input) and the ratio ds / NCCL of bus bandwidth.
// The NCCL unique id of the direct communicator travels through ds_comm_broadcast.
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "dsabi.h"

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

[[noreturn]] void die(const std::string& what, const std::string& why) {
    std::fprintf(stderr, "nccl_bench: %s: %s\n", what.c_str(), why.c_str());
    std::exit(1);
}
void ds_check(ds_status_t st, const char* what) {
    if (st != DS_OK) die(what, ds_last_error());
}
void cu_check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) die(what, cudaGetErrorString(e));
}
// NCCL_BENCH_NONBLOCKING=1 makes the direct communicator non-blocking (as ds_comm's is), to
// measure what that mode costs by itself: every ncclInProgress is polled to its end.
ncclComm_t g_poll_comm = nullptr;
long g_in_progress = 0;

void nc_check(ncclResult_t r, const char* what) {
    if (r == ncclInProgress && g_poll_comm) {
        ++g_in_progress;
        while (r == ncclInProgress) ncclCommGetAsyncError(g_poll_comm, &r);
    }
    if (r != ncclSuccess) die(what, ncclGetErrorString(r));
}

struct Dt {
    const char* name;
    int32_t ds;
    ncclDataType_t nccl;
    size_t size;
};
const Dt kDtypes[] = {{"bf16", DS_DTYPE_BF16, ncclBfloat16, 2}, {"f16", DS_DTYPE_F16, ncclFloat16, 2}, {"f32", DS_DTYPE_F32, ncclFloat32, 4}};

}  // namespace

int main(int argc, char** argv) {
    std::string ops = "all_reduce,all_gather,reduce_scatter", json;
    uint64_t min_bytes = 1024, max_bytes = 1ull << 30;
    int rounds = 5;
    Dt dt = kDtypes[0];
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i], v = argv[i + 1];
        if (a == "--ops") ops = v;
        else if (a == "--min-bytes") min_bytes = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--max-bytes") max_bytes = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--json") json = v;
        else if (a == "--rounds") rounds = std::max(1, std::atoi(v.c_str()));
        else if (a == "--dtype") {
            bool found = false;
            for (const Dt& d : kDtypes)
                if (v == d.name) dt = d, found = true;
            if (!found) die("--dtype", v);
        } else die("unknown option", a);
    }
    ds_comm_t* comm = nullptr;
    ds_check(ds_comm_create(nullptr, &comm), "ds_comm_create");
    int32_t rank = 0, n = 1, local = 0;
    ds_comm_get_rank(comm, &rank);
    ds_comm_get_world_size(comm, &n);
    ds_comm_get_local_rank(comm, &local);
    cu_check(cudaSetDevice(local), "cudaSetDevice");

    // The direct NCCL communicator; its id goes through ds_comm (Gloo).
    ncclUniqueId id;
    if (rank == 0) nc_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    int64_t idn = sizeof id;
    ds_tensor_t* idt = nullptr;
    ds_check(ds_tensor_wrap(&id, DS_DTYPE_U8, 1, &idn, nullptr, DS_DEV_CPU, 0, &idt), "wrap id");
    ds_check(ds_comm_broadcast(comm, idt, 0, nullptr), "broadcast id");
    ds_tensor_destroy(idt);
    ncclComm_t nc;
    const char* nb = std::getenv("NCCL_BENCH_NONBLOCKING");
    if (nb && std::strcmp(nb, "1") == 0) {
        ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
        cfg.blocking = 0;
        ncclResult_t r = ncclCommInitRankConfig(&nc, n, id, rank, &cfg);
        g_poll_comm = nc;
        nc_check(r, "ncclCommInitRankConfig (non-blocking)");
        if (rank == 0) std::printf("# direct NCCL communicator is NON-BLOCKING (as ds_comm's)\n");
    } else {
        nc_check(ncclCommInitRank(&nc, n, id, rank), "ncclCommInitRank");
    }
    cudaStream_t s;
    cu_check(cudaStreamCreate(&s), "cudaStreamCreate");
    int nv = 0;
    ncclGetVersion(&nv);
    cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, local);

    FILE* out = nullptr;
    if (rank == 0) {
        std::printf("# %d x %s, NCCL %d, dtype %s\n", n, prop.name, nv, dt.name);
        std::printf("%-15s %12s %6s %11s %11s %11s %11s %9s %9s %9s\n", "op", "bytes", "iters", "nccl_us", "ds_us", "nccl_bus",
                    "ds_bus", "ratio", "ncclA_bus", "dsA_bus");
        if (!json.empty()) {
            out = std::fopen(json.c_str(), "w");
            if (!out) die("open", json);
            std::fprintf(out, "{\"world_size\": %d, \"gpu\": \"%s\", \"nccl_version\": %d, \"dtype\": \"%s\", \"rows\": [\n", n,
                         prop.name, nv, dt.name);
        }
    }
    bool first = true;
    std::stringstream opss(ops);
    std::string op;
    while (std::getline(opss, op, ',')) {
        for (uint64_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
            int64_t total = static_cast<int64_t>(bytes / dt.size);
            total -= total % n;
            if (total <= 0) continue;
            int64_t part = total / n;
            void *big = nullptr, *small = nullptr;
            cu_check(cudaMalloc(&big, static_cast<size_t>(total) * dt.size), "cudaMalloc");
            cu_check(cudaMalloc(&small, static_cast<size_t>(part) * dt.size), "cudaMalloc");
            cu_check(cudaMemset(big, 0, static_cast<size_t>(total) * dt.size), "cudaMemset");
            cu_check(cudaMemset(small, 0, static_cast<size_t>(part) * dt.size), "cudaMemset");
            cu_check(cudaDeviceSynchronize(), "sync");
            ds_tensor_t *tb = nullptr, *ts = nullptr;
            ds_check(ds_tensor_wrap(big, dt.ds, 1, &total, nullptr, DS_DEV_CUDA, local, &tb), "wrap");
            ds_check(ds_tensor_wrap(small, dt.ds, 1, &part, nullptr, DS_DEV_CUDA, local, &ts), "wrap");
            auto nccl_op = [&]() {
                if (op == "all_reduce") nc_check(ncclAllReduce(big, big, total, dt.nccl, ncclSum, nc, s), "ncclAllReduce");
                else if (op == "all_gather") nc_check(ncclAllGather(small, big, part, dt.nccl, nc, s), "ncclAllGather");
                else nc_check(ncclReduceScatter(big, small, part, dt.nccl, ncclSum, nc, s), "ncclReduceScatter");
            };
            auto ds_op = [&](ds_work_t** w) {
                if (op == "all_reduce") ds_check(ds_comm_all_reduce(comm, tb, DS_REDUCE_SUM, w), "ds_comm_all_reduce");
                else if (op == "all_gather") ds_check(ds_comm_all_gather(comm, ts, tb, w), "ds_comm_all_gather");
                else ds_check(ds_comm_reduce_scatter(comm, tb, ts, DS_REDUCE_SUM, w), "ds_comm_reduce_scatter");
            };
            uint64_t budget = 8ull << 30;
            int iters = static_cast<int>(std::min<uint64_t>(200, std::max<uint64_t>(5, budget / bytes)));
            int warm = iters / 10 + 2;
            std::vector<ds_work_t*> works;
            auto wait_works = [&] {
                for (ds_work_t* x : works) {
                    ds_check(ds_work_wait(x, -1), "ds_work_wait");
                    ds_work_destroy(x);
                }
                works.clear();
            };
            auto timed = [&](auto&& body, bool sync_each) {
                for (int i = 0; i < warm; ++i) body();
                wait_works();
                cu_check(cudaStreamSynchronize(s), "sync");
                ds_check(ds_comm_barrier(comm, nullptr), "barrier");
                double t0 = now_s();
                for (int i = 0; i < iters; ++i) {
                    body();
                    if (sync_each) cu_check(cudaStreamSynchronize(s), "sync");
                }
                wait_works();
                cu_check(cudaStreamSynchronize(s), "sync");
                return (now_s() - t0) / iters;
            };
            double t_nccl = 1e30, t_ds = 1e30, t_nccl_a = 1e30, t_ds_a = 1e30;
            for (int round = 0; round < rounds; ++round) {
                t_nccl = std::min(t_nccl, timed([&] { nccl_op(); }, true));
                t_ds = std::min(t_ds, timed([&] { ds_op(nullptr); }, false));
                t_nccl_a = std::min(t_nccl_a, timed([&] { nccl_op(); }, false));
                t_ds_a = std::min(t_ds_a, timed(
                                              [&] {
                                                  ds_work_t* w = nullptr;
                                                  ds_op(&w);
                                                  works.push_back(w);
                                                  if (works.size() >= 64) wait_works();
                                              },
                                              false));
            }
            const double sz = static_cast<double>(total) * static_cast<double>(dt.size);
            const double factor = op == "all_reduce" ? 2.0 * (n - 1) / n : static_cast<double>(n - 1) / n;
            auto bus = [&](double t) { return sz / t / 1e9 * factor; };
            if (rank == 0) {
                std::printf("%-15s %12.0f %6d %11.2f %11.2f %11.2f %11.2f %9.3f %9.2f %9.2f\n", op.c_str(), sz, iters, t_nccl * 1e6,
                            t_ds * 1e6, bus(t_nccl), bus(t_ds), t_nccl / t_ds, bus(t_nccl_a), bus(t_ds_a));
                std::fflush(stdout);
                if (out) {
                    std::fprintf(out,
                                 "%s  {\"op\": \"%s\", \"bytes\": %.0f, \"iters\": %d, \"nccl_sync_us\": %.3f, \"ds_sync_us\": %.3f, "
                                 "\"nccl_async_us\": %.3f, \"ds_async_us\": %.3f, \"nccl_busbw_GBps\": %.3f, \"ds_busbw_GBps\": %.3f, "
                                 "\"ratio_ds_over_nccl\": %.4f, \"ratio_async_ds_over_nccl\": %.4f, \"rounds\": %d}",
                                 first ? "" : ",\n", op.c_str(), sz, iters, t_nccl * 1e6, t_ds * 1e6, t_nccl_a * 1e6, t_ds_a * 1e6,
                                 bus(t_nccl), bus(t_ds), t_nccl / t_ds, t_nccl_a / t_ds_a, rounds);
                    first = false;
                }
            }
            ds_tensor_destroy(tb);
            ds_tensor_destroy(ts);
            cudaFree(big);
            cudaFree(small);
        }
    }
    if (out) {
        std::fprintf(out, "\n]}\n");
        std::fclose(out);
    }
    ds_comm_barrier(comm, nullptr);
    if (g_poll_comm && rank == 0) std::printf("# ncclInProgress returned by %ld direct calls\n", g_in_progress);
    ncclCommDestroy(nc);
    ds_comm_destroy(comm);
    return 0;
}
