// The NCCL half of libdsabi_cuda.so: kernels/backend_comm_abi.h's table.
//
// Communicators are created non-blocking (ncclConfig_t.blocking = 0) so that no NCCL call can hang
// past the timeout: every call that returns ncclInProgress is polled with ncclCommGetAsyncError
// until it settles, the deadline passes (then the communicator is aborted: TIMEOUT) or comm_abort()
// was called (ABORTED). Work runs on one stream per communicator, created with default flags so that
// it is ordered after work on the legacy default stream. Only the thread that uses a communicator
// ever calls ncclCommAbort on it; comm_abort() from another thread only raises a flag that the user
// sees at its next poll (or aborts at once when nobody is using the communicator).
#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "backend_comm_abi.h"
#include "dsabi.h"

namespace {

using Clock = std::chrono::steady_clock;

thread_local std::string t_error;

int fail(int rc, const std::string& msg) {
    t_error = msg;
    return rc;
}

struct Comm {
    ncclComm_t nc = nullptr;
    cudaStream_t stream = nullptr;
    int32_t dev = 0;
    int32_t nranks = 1;
    int32_t rank = 0;
    int64_t timeout_ms = 600000;
    std::atomic<bool> abort_requested{false};
    bool dead = false;  // ncclCommAbort was called: nc must not be used again
    std::mutex use;     // held while a thread enqueues or waits
};

int map_nccl(ncclResult_t r) {
    switch (r) {
        case ncclSuccess: return DS_BACKEND_COMM_OK;
        case ncclRemoteError: return DS_BACKEND_COMM_PEER;
        case ncclInvalidArgument:
        case ncclInvalidUsage: return DS_BACKEND_COMM_INVALID;
        default: return DS_BACKEND_COMM_ERR;
    }
}

// Abort the communicator; the caller holds c->use.
void kill_comm(Comm* c) {
    if (!c->dead && c->nc) ncclCommAbort(c->nc);
    c->dead = true;
}

int check_alive(Comm* c, const char* what) {
    if (c->dead) return fail(DS_BACKEND_COMM_ABORTED, std::string(what) + ": the communicator was aborted");
    if (c->abort_requested) {
        kill_comm(c);
        return fail(DS_BACKEND_COMM_ABORTED, std::string(what) + ": aborted by request");
    }
    return DS_BACKEND_COMM_OK;
}

// Poll a non-blocking NCCL call to its end. The caller holds c->use.
int settle(Comm* c, ncclResult_t r, const char* what, Clock::time_point deadline) {
    // A non-blocking call usually settles within microseconds: spin (yielding) for the first 2 ms,
    // because even the shortest sleep costs ~50 us of timer slack, then back off to 50 us sleeps.
    const auto start = Clock::now();
    while (r == ncclInProgress) {
        if (int rc = check_alive(c, what)) return rc;
        const auto now = Clock::now();
        if (now >= deadline) {
            kill_comm(c);
            return fail(DS_BACKEND_COMM_TIMEOUT, std::string(what) + ": not done within " + std::to_string(c->timeout_ms) +
                                                   " ms; the communicator was aborted");
        }
        if (now - start < std::chrono::milliseconds(2))
            std::this_thread::yield();
        else
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        if (ncclCommGetAsyncError(c->nc, &r) != ncclSuccess) break;
    }
    if (r != ncclSuccess) {
        std::string msg = std::string(what) + ": " + ncclGetErrorString(r);
        const char* last = ncclGetLastError(c->nc);
        if (last && *last) msg += std::string(" (") + last + ")";
        if (r == ncclRemoteError || r == ncclSystemError) kill_comm(c);
        return fail(map_nccl(r), msg);
    }
    return DS_BACKEND_COMM_OK;
}

Clock::time_point deadline_of(const Comm* c) { return Clock::now() + std::chrono::milliseconds(c->timeout_ms); }

bool nccl_type(int32_t dtype, ncclDataType_t* out) {
    switch (dtype) {
        case DS_DTYPE_F32: *out = ncclFloat32; return true;
        case DS_DTYPE_F16: *out = ncclFloat16; return true;
        case DS_DTYPE_BF16: *out = ncclBfloat16; return true;
        case DS_DTYPE_F64: *out = ncclFloat64; return true;
        case DS_DTYPE_I8: *out = ncclInt8; return true;
        case DS_DTYPE_U8: *out = ncclUint8; return true;
        case DS_DTYPE_I32: *out = ncclInt32; return true;
        case DS_DTYPE_I64: *out = ncclInt64; return true;
        default: return false;
    }
}

bool is_integer(int32_t dtype) {
    return dtype == DS_DTYPE_I8 || dtype == DS_DTYPE_U8 || dtype == DS_DTYPE_I32 || dtype == DS_DTYPE_I64;
}

// AVG of integers is the sum divided afterwards (truncating, as the CPU path does); floating
// types use ncclAvg.
bool nccl_op(int32_t op, int32_t dtype, ncclRedOp_t* out, bool* divide_after) {
    *divide_after = false;
    switch (op) {
        case DS_REDUCE_SUM: *out = ncclSum; return true;
        case DS_REDUCE_PROD: *out = ncclProd; return true;
        case DS_REDUCE_MAX: *out = ncclMax; return true;
        case DS_REDUCE_MIN: *out = ncclMin; return true;
        case DS_REDUCE_AVG:
            if (is_integer(dtype)) {
                *out = ncclSum;
                *divide_after = true;
            } else {
                *out = ncclAvg;
            }
            return true;
        default: return false;
    }
}

template <class T>
__global__ void divide_kernel(T* p, uint64_t n, T d) {
    uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x;
    uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (; i < n; i += stride) p[i] = static_cast<T>(p[i] / d);
}

int divide(Comm* c, void* p, uint64_t n, int32_t dtype) {
    if (n == 0) return DS_BACKEND_COMM_OK;
    const int threads = 256;
    uint64_t blocks = (n + threads - 1) / threads;
    if (blocks > 65535ull * 8) blocks = 65535ull * 8;
    dim3 g(static_cast<unsigned>(blocks)), b(threads);
    switch (dtype) {
        case DS_DTYPE_I8: divide_kernel<int8_t><<<g, b, 0, c->stream>>>(static_cast<int8_t*>(p), n, static_cast<int8_t>(c->nranks)); break;
        case DS_DTYPE_U8: divide_kernel<uint8_t><<<g, b, 0, c->stream>>>(static_cast<uint8_t*>(p), n, static_cast<uint8_t>(c->nranks)); break;
        case DS_DTYPE_I32: divide_kernel<int32_t><<<g, b, 0, c->stream>>>(static_cast<int32_t*>(p), n, c->nranks); break;
        default: divide_kernel<int64_t><<<g, b, 0, c->stream>>>(static_cast<int64_t*>(p), n, static_cast<int64_t>(c->nranks)); break;
    }
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return fail(DS_BACKEND_COMM_ERR, std::string("average division kernel: ") + cudaGetErrorString(e));
    return DS_BACKEND_COMM_OK;
}

// Prologue of every call on a communicator: lock, device, liveness, dtype.
struct Use {
    Comm* c;
    std::unique_lock<std::mutex> lock;
    explicit Use(void* comm) : c(static_cast<Comm*>(comm)), lock(c->use) { cudaSetDevice(c->dev); }
};

#define DS_BAD_DTYPE(dtype) fail(DS_BACKEND_COMM_INVALID, "dtype " + std::to_string(dtype) + " has no NCCL type")

int be_version(int32_t* out) {
    int v = 0;
    ncclResult_t r = ncclGetVersion(&v);
    *out = v;
    return r == ncclSuccess ? DS_BACKEND_COMM_OK : fail(map_nccl(r), ncclGetErrorString(r));
}

int be_get_unique_id(void* out) {
    static_assert(sizeof(ncclUniqueId) == DS_BACKEND_COMM_UNIQUE_ID_BYTES, "ncclUniqueId size");
    ncclUniqueId id;
    ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) return fail(map_nccl(r), std::string("ncclGetUniqueId: ") + ncclGetErrorString(r));
    std::memcpy(out, &id, sizeof id);
    return DS_BACKEND_COMM_OK;
}

int be_comm_init(int32_t dev, int32_t nranks, int32_t rank, const void* unique_ids, int64_t timeout_ms, void** out) {
    *out = nullptr;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || dev < 0 || dev >= count) {
        cudaGetLastError();
        return fail(DS_BACKEND_COMM_NO_DEVICE, "CUDA device " + std::to_string(dev) + " is not present (" +
                                                   std::to_string(count) + " visible)");
    }
    cudaSetDevice(dev);
    auto* c = new Comm();
    c->dev = dev;
    c->nranks = nranks;
    c->rank = rank;
    c->timeout_ms = timeout_ms;
    e = cudaStreamCreate(&c->stream);
    if (e != cudaSuccess) {
        delete c;
        return fail(DS_BACKEND_COMM_ERR, std::string("cudaStreamCreate: ") + cudaGetErrorString(e));
    }
    // 1. Rendezvous through a non-blocking communicator: its creation can time out and be aborted.
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    ncclUniqueId id;
    std::memcpy(&id, unique_ids, sizeof id);
    std::unique_lock<std::mutex> lock(c->use);
    ncclResult_t r = ncclCommInitRankConfig(&c->nc, nranks, id, rank, &cfg);
    int rc = (r == ncclSuccess || r == ncclInProgress) && c->nc ? settle(c, r, "ncclCommInitRankConfig", deadline_of(c))
                                                               : fail(map_nccl(r), std::string("ncclCommInitRankConfig: ") + ncclGetErrorString(r));
    // 2. Every rank is known to be there: create the blocking communicator that carries the data
    // (a non-blocking one hands each call to an internal thread: ~50 us per collective on H200),
    // then release the rendezvous one. Completion and peer failures are still watched by be_wait.
    if (rc == DS_BACKEND_COMM_OK) {
        ncclComm_t boot = c->nc;
        ncclConfig_t dcfg = NCCL_CONFIG_INITIALIZER;
        dcfg.blocking = 1;
        ncclUniqueId data_id;
        std::memcpy(&data_id, static_cast<const char*>(unique_ids) + sizeof data_id, sizeof data_id);
        ncclComm_t data = nullptr;
        r = ncclCommInitRankConfig(&data, nranks, data_id, rank, &dcfg);
        if (r != ncclSuccess || !data) {
            rc = fail(map_nccl(r), std::string("ncclCommInitRankConfig (data): ") + ncclGetErrorString(r));
        } else {
            rc = settle(c, ncclCommFinalize(boot), "ncclCommFinalize (rendezvous)", deadline_of(c));
            if (rc == DS_BACKEND_COMM_OK) {
                ncclCommDestroy(boot);
                c->nc = data;
            } else {
                ncclCommAbort(data);
            }
        }
    }
    if (rc != DS_BACKEND_COMM_OK) {
        kill_comm(c);
        lock.unlock();
        cudaStreamDestroy(c->stream);
        delete c;
        return rc;
    }
    lock.unlock();
    *out = c;
    return DS_BACKEND_COMM_OK;
}

int be_comm_destroy(void* comm) {
    if (!comm) return DS_BACKEND_COMM_OK;
    auto* c = static_cast<Comm*>(comm);
    int rc = DS_BACKEND_COMM_OK;
    {
        Use u(comm);
        if (!c->dead && !c->abort_requested) {
            ncclResult_t r = ncclCommFinalize(c->nc);
            rc = settle(c, r, "ncclCommFinalize", deadline_of(c));
            if (rc == DS_BACKEND_COMM_OK) {
                ncclCommDestroy(c->nc);
                c->dead = true;
            }
        }
        kill_comm(c);
        cudaStreamDestroy(c->stream);
    }
    delete c;
    return rc;
}

int be_comm_abort(void* comm) {
    auto* c = static_cast<Comm*>(comm);
    c->abort_requested = true;
    std::unique_lock<std::mutex> lock(c->use, std::try_to_lock);
    if (lock.owns_lock()) kill_comm(c);  // nobody is inside: abort now; else the user sees the flag
    return DS_BACKEND_COMM_OK;
}

int be_all_reduce(void* comm, const void* send, void* recv, uint64_t count, int32_t dtype, int32_t op) {
    Use u(comm);
    if (int rc = check_alive(u.c, "ncclAllReduce")) return rc;
    ncclDataType_t t;
    ncclRedOp_t o;
    bool div;
    if (!nccl_type(dtype, &t)) return DS_BAD_DTYPE(dtype);
    if (!nccl_op(op, dtype, &o, &div)) return fail(DS_BACKEND_COMM_INVALID, "reduce op " + std::to_string(op));
    int rc = settle(u.c, ncclAllReduce(send, recv, count, t, o, u.c->nc, u.c->stream), "ncclAllReduce", deadline_of(u.c));
    if (rc == DS_BACKEND_COMM_OK && div) rc = divide(u.c, recv, count, dtype);
    return rc;
}

int be_broadcast(void* comm, const void* send, void* recv, uint64_t count, int32_t dtype, int32_t root) {
    Use u(comm);
    if (int rc = check_alive(u.c, "ncclBroadcast")) return rc;
    ncclDataType_t t;
    if (!nccl_type(dtype, &t)) return DS_BAD_DTYPE(dtype);
    return settle(u.c, ncclBroadcast(send, recv, count, t, root, u.c->nc, u.c->stream), "ncclBroadcast", deadline_of(u.c));
}

int be_reduce(void* comm, const void* send, void* recv, uint64_t count, int32_t dtype, int32_t op, int32_t root) {
    Use u(comm);
    if (int rc = check_alive(u.c, "ncclReduce")) return rc;
    ncclDataType_t t;
    ncclRedOp_t o;
    bool div;
    if (!nccl_type(dtype, &t)) return DS_BAD_DTYPE(dtype);
    if (!nccl_op(op, dtype, &o, &div)) return fail(DS_BACKEND_COMM_INVALID, "reduce op " + std::to_string(op));
    int rc = settle(u.c, ncclReduce(send, recv, count, t, o, root, u.c->nc, u.c->stream), "ncclReduce", deadline_of(u.c));
    if (rc == DS_BACKEND_COMM_OK && div && u.c->rank == root) rc = divide(u.c, recv, count, dtype);
    return rc;
}

int be_all_gather(void* comm, const void* send, void* recv, uint64_t send_count, int32_t dtype) {
    Use u(comm);
    if (int rc = check_alive(u.c, "ncclAllGather")) return rc;
    ncclDataType_t t;
    if (!nccl_type(dtype, &t)) return DS_BAD_DTYPE(dtype);
    return settle(u.c, ncclAllGather(send, recv, send_count, t, u.c->nc, u.c->stream), "ncclAllGather", deadline_of(u.c));
}

int be_reduce_scatter(void* comm, const void* send, void* recv, uint64_t recv_count, int32_t dtype, int32_t op) {
    Use u(comm);
    if (int rc = check_alive(u.c, "ncclReduceScatter")) return rc;
    ncclDataType_t t;
    ncclRedOp_t o;
    bool div;
    if (!nccl_type(dtype, &t)) return DS_BAD_DTYPE(dtype);
    if (!nccl_op(op, dtype, &o, &div)) return fail(DS_BACKEND_COMM_INVALID, "reduce op " + std::to_string(op));
    int rc = settle(u.c, ncclReduceScatter(send, recv, recv_count, t, o, u.c->nc, u.c->stream), "ncclReduceScatter",
                    deadline_of(u.c));
    if (rc == DS_BACKEND_COMM_OK && div) rc = divide(u.c, recv, recv_count, dtype);
    return rc;
}

size_t type_bytes(int32_t dtype) {
    switch (dtype) {
        case DS_DTYPE_F16:
        case DS_DTYPE_BF16: return 2;
        case DS_DTYPE_F32:
        case DS_DTYPE_I32: return 4;
        case DS_DTYPE_F64:
        case DS_DTYPE_I64: return 8;
        default: return 1;
    }
}

int be_all_to_all(void* comm, const void* send, void* recv, uint64_t count_per_rank, int32_t dtype) {
    Use u(comm);
    if (int rc = check_alive(u.c, "all_to_all")) return rc;
    ncclDataType_t t;
    if (!nccl_type(dtype, &t)) return DS_BAD_DTYPE(dtype);
    const size_t chunk = count_per_rank * type_bytes(dtype);
    ncclResult_t r = ncclGroupStart();
    for (int32_t p = 0; p < u.c->nranks && r == ncclSuccess; ++p) {
        r = ncclSend(static_cast<const char*>(send) + p * chunk, count_per_rank, t, p, u.c->nc, u.c->stream);
        if (r == ncclSuccess || r == ncclInProgress)
            r = ncclRecv(static_cast<char*>(recv) + p * chunk, count_per_rank, t, p, u.c->nc, u.c->stream);
        if (r == ncclInProgress) r = ncclSuccess;
    }
    ncclResult_t e = ncclGroupEnd();
    if (r != ncclSuccess) return settle(u.c, r, "all_to_all send/recv", deadline_of(u.c));
    return settle(u.c, e, "all_to_all (ncclGroupEnd)", deadline_of(u.c));
}

int be_group_start() {
    ncclResult_t r = ncclGroupStart();
    return r == ncclSuccess ? DS_BACKEND_COMM_OK : fail(map_nccl(r), std::string("ncclGroupStart: ") + ncclGetErrorString(r));
}

int be_group_end(void* comm) {
    Use u(comm);
    ncclResult_t r = ncclGroupEnd();
    if (u.c->dead) return fail(DS_BACKEND_COMM_ABORTED, "ncclGroupEnd: the communicator was aborted");
    return settle(u.c, r, "ncclGroupEnd", deadline_of(u.c));
}

int be_send(void* comm, const void* buf, uint64_t count, int32_t dtype, int32_t peer) {
    Use u(comm);
    if (int rc = check_alive(u.c, "ncclSend")) return rc;
    ncclDataType_t t;
    if (!nccl_type(dtype, &t)) return DS_BAD_DTYPE(dtype);
    ncclResult_t r = ncclSend(buf, count, t, peer, u.c->nc, u.c->stream);
    if (r == ncclInProgress) r = ncclSuccess;  // inside a group: settled at ncclGroupEnd
    return r == ncclSuccess ? DS_BACKEND_COMM_OK : settle(u.c, r, "ncclSend", deadline_of(u.c));
}

int be_recv(void* comm, void* buf, uint64_t count, int32_t dtype, int32_t peer) {
    Use u(comm);
    if (int rc = check_alive(u.c, "ncclRecv")) return rc;
    ncclDataType_t t;
    if (!nccl_type(dtype, &t)) return DS_BAD_DTYPE(dtype);
    ncclResult_t r = ncclRecv(buf, count, t, peer, u.c->nc, u.c->stream);
    if (r == ncclInProgress) r = ncclSuccess;
    return r == ncclSuccess ? DS_BACKEND_COMM_OK : settle(u.c, r, "ncclRecv", deadline_of(u.c));
}

int be_wait(void* comm, int64_t timeout_ms) {
    Use u(comm);
    Comm* c = u.c;
    auto start = Clock::now();
    auto deadline = start + std::chrono::milliseconds(timeout_ms);
    long polls = 0;
    for (;;) {
        if (int rc = check_alive(c, "wait")) return rc;
        cudaError_t e = cudaStreamQuery(c->stream);
        if (e == cudaSuccess) break;
        if (e != cudaErrorNotReady) {
            kill_comm(c);
            return fail(DS_BACKEND_COMM_ERR, std::string("CUDA stream of the communicator: ") + cudaGetErrorString(e));
        }
        // Every few polls: has NCCL seen a failure (a peer that went away)?
        if ((++polls & 63) == 0) {
            ncclResult_t r = ncclSuccess;
            ncclCommGetAsyncError(c->nc, &r);
            if (r != ncclSuccess && r != ncclInProgress) return settle(c, r, "collective", deadline);
        }
        auto now = Clock::now();
        if (now >= deadline) {
            kill_comm(c);
            return fail(DS_BACKEND_COMM_TIMEOUT, "collective not finished within " + std::to_string(timeout_ms) +
                                                   " ms; the communicator was aborted");
        }
        // Spin for the first 2 ms (small messages finish in microseconds), then back off.
        if (now - start > std::chrono::milliseconds(2)) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    ncclResult_t r = ncclSuccess;
    ncclCommGetAsyncError(c->nc, &r);
    if (r != ncclSuccess && r != ncclInProgress) return settle(c, r, "collective", deadline);
    return DS_BACKEND_COMM_OK;
}

const char* be_last_error() { return t_error.c_str(); }

const ds_backend_comm_v1_t k_comm_table = {
    DS_BACKEND_COMM_API_VERSION,
    sizeof(ds_backend_comm_v1_t),
    "nccl",
    be_version,
    be_get_unique_id,
    be_comm_init,
    be_comm_destroy,
    be_comm_abort,
    be_all_reduce,
    be_broadcast,
    be_reduce,
    be_all_gather,
    be_reduce_scatter,
    be_all_to_all,
    be_group_start,
    be_group_end,
    be_send,
    be_recv,
    be_wait,
    be_last_error,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const ds_backend_comm_v1_t* ds_backend_comm_entry(void) {
    return &k_comm_table;
}
