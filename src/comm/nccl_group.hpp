// NCCL for CUDA tensors, through the comm table of the CUDA backend module
// (kernels/backend_comm_abi.h). Every call throws ds::Error; after a TIMEOUT or PEER failure the
// group is unusable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend_comm_abi.h"
#include "comm/store.hpp"

namespace ds::comm {

class NcclGroup {
public:
    // The module's comm table, or nullptr with the reason in *why (no CUDA backend, built without
    // NCCL, wrong table version).
    static const ds_backend_comm_v1_t* table(std::string* why);

    // Rank 0 makes the unique id and publishes it under store key `key`; all ranks join on device dev.
    static std::unique_ptr<NcclGroup> create(int32_t rank, int32_t size, int32_t dev, Store& store, const std::string& key,
                                             int64_t timeout_ms);
    ~NcclGroup();
    int32_t device() const { return dev_; }

    // Each enqueues on the communicator's stream and, unless deferred, waits for completion.
    void all_reduce(const void* send, void* recv, uint64_t count, int32_t dtype, int32_t op);
    void broadcast(void* buf, uint64_t count, int32_t dtype, int32_t root);
    void reduce(const void* send, void* recv, uint64_t count, int32_t dtype, int32_t op, int32_t root);
    void all_gather(const void* send, void* recv, uint64_t send_count, int32_t dtype);
    void reduce_scatter(const void* send, void* recv, uint64_t recv_count, int32_t dtype, int32_t op);
    void all_to_all(const void* send, void* recv, uint64_t count_per_rank, int32_t dtype);

    struct P2POp {
        bool send;
        void* buf;
        uint64_t count;
        int32_t dtype;
        int32_t peer;
    };
    // One NCCL group of sends and receives, then wait.
    void p2p(const std::vector<P2POp>& ops);

    void abort() noexcept;

    // Deferred: the collectives above only enqueue, and wait_all() waits for everything enqueued
    // (the worker issues a run of queued asynchronous collectives back to back this way).
    void set_deferred(bool on) { deferred_ = on; }
    void wait_all(const char* what);

private:
    NcclGroup(const ds_backend_comm_v1_t* t, void* comm, int32_t dev, int64_t timeout_ms)
        : t_(t), comm_(comm), dev_(dev), timeout_ms_(timeout_ms) {}
    void check(int rc, const char* what);
    void finish(const char* what);
    const ds_backend_comm_v1_t* t_;
    void* comm_;
    int32_t dev_;
    int64_t timeout_ms_;
    bool deferred_ = false;
};

}  // namespace ds::comm
