// Communicators: bootstrap, the ordered work queue, backend choice per tensor device, argument
// agreement checks, groups (split), abort, and the comms logger.
//
// Execution model. Every operation becomes a Task on the communicator's FIFO queue, executed by one
// worker thread (or inline on the caller's thread when the call is synchronous and nothing is
// queued), so collectives run in submission order on every rank. Point-to-point transfers are
// posted in order but complete on their own: Gloo transfers are waited on by a helper thread each,
// NCCL transfers are collected and issued as one NCCL group when something waits for them or the
// next collective starts (the batch_isend_irecv rule). A collective first waits for every earlier
// transfer of its communicator.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "comm/gloo_group.hpp"
#include "comm/logger.hpp"
#include "comm/mesh.hpp"
#include "comm/nccl_group.hpp"
#include "comm/store.hpp"
#include "device/tensor.hpp"
#include "dsabi.h"

namespace ds::comm {

// Resolved ds_comm_options_t + environment.
struct Settings {
    int32_t rank = 0;
    int32_t world_size = 1;
    int32_t local_rank = 0;
    int32_t local_world_size = 1;
    int32_t source = DS_COMM_SOURCE_DEFAULT;
    std::string master_addr = "127.0.0.1";
    int32_t master_port = 29500;
    int64_t timeout_ms = 600000;
    std::string timeout_source = "default";
    int32_t backend = DS_COMM_BACKEND_AUTO;
    int32_t check = -1;  // 1 on, 0 off, -1 auto (on for Gloo, off for NCCL)
    std::string store_dir;
    std::string store_prefix;
    std::string bind_addr;  // empty: route lookup towards master_addr
    int listen_fd = -1;     // rank 0: listening socket inherited from dsrun
};

// Read options over the environment; throws DS_ERR_INVALID_ARG naming the option or variable.
Settings resolve_settings(const ds_comm_options_t& o);
const char* source_name(int32_t source);

enum class OpKind { AllReduce, Broadcast, Reduce, AllGather, AllGatherList, ReduceScatter, AllToAll, Barrier, Send, Recv, Split, Flush };

const char* op_log_name(OpKind k);

struct Op {
    OpKind kind = OpKind::Barrier;
    const char* caller = "";
    int32_t dtype = DS_DTYPE_U8;
    int32_t red = DS_REDUCE_SUM;
    int32_t peer = 0;  // root, or the peer of send / recv
    int32_t tag = 0;
    int32_t dev_type = DS_DEV_CPU;
    int32_t dev_index = 0;
    uint64_t count = 0;  // elements: of t / in (all_gather) / out (reduce_scatter) / in (all_to_all)
    Tensor a;            // in, or in-out
    Tensor b;            // out
    std::vector<Tensor> outs;
    int32_t color = 0, key = 0;  // split
    bool sync = false;
};

class Comm;

// The shared state behind a ds_work_t (and behind every synchronous call).
struct WorkState {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    ds_status_t status = DS_OK;
    std::string message;
    bool needs_flush = false;  // an NCCL transfer still collected, not yet issued
    std::weak_ptr<Comm> comm;
    std::shared_ptr<Comm> split_result;

    void complete(ds_status_t st, std::string msg = {});
    // Wait up to timeout_ms (< 0: forever). Returns false on expiry.
    bool wait_for(int64_t timeout_ms);
};

class Comm : public std::enable_shared_from_this<Comm> {
public:
    // Join the world (blocks for the rendezvous).
    static std::shared_ptr<Comm> create(const Settings& s, const LogConfig& log);
    ~Comm();
    Comm(const Comm&) = delete;
    Comm& operator=(const Comm&) = delete;

    int32_t rank() const { return s_.rank; }
    int32_t size() const { return s_.world_size; }
    int32_t local_rank() const { return s_.local_rank; }
    const Settings& settings() const { return s_; }
    std::string info_json() const;
    CommsLogger& logger() { return logger_; }

    // Queue (or run inline) an operation. Throws DS_ERR_STATE after abort or failure.
    std::shared_ptr<WorkState> submit(Op op, bool async);
    // Ask the worker to issue collected NCCL transfers (ds_work_wait / ds_work_test on one).
    void request_flush();
    void abort() noexcept;

private:
    Comm() = default;
    struct Task {
        Op op;
        std::shared_ptr<WorkState> work;
    };
    void start_worker();
    void worker_loop();
    void execute(Task& t) noexcept;
    // Complete w with an error (DS_ABORTED after ds_comm_abort); a communication error also fails
    // the communicator.
    void fail_work(WorkState& w, ds_status_t st, const std::string& msg) noexcept;
    // An NCCL collective the worker may enqueue back to back with the queued ones after it and wait
    // for once (CUDA tensors, no agreement check, one NCCL call), and that run's execution.
    bool batchable(const Op& op) const;
    void execute_batch(std::vector<Task>& batch) noexcept;
    static constexpr size_t kMaxBatch = 64;
    void run_nccl(Op& op);
    void run_collective(Op& op);
    void reduce_gathered(Op& op, const char* all, size_t payload);
    void run_split(Task& t);
    void run_p2p(Task& t);
    void drain_p2p();
    void flush_nccl();
    bool use_nccl(const Op& op) const;
    bool check_enabled(bool nccl) const;
    uint64_t payload_bytes(const Op& op) const;
    // The exchange over the mesh: every rank's header (then `extra`, then the payload when `carry`)
    // to every other rank. Returns the slots (rank r's message at r * 4096), valid until the next
    // exchange; with `check`, throws DS_ERR_COMM_MISMATCH on every rank when the headers differ.
    const char* exchange(const Op& op, bool check, const void* extra, size_t extra_bytes, bool carry);
    // A collective of CPU (or Gloo-staged) tensors on the mesh: exchange, then a small one finished
    // from the slots or a direct one (run_direct). Returns false when Gloo moves the data.
    bool run_on_mesh(Op& op, bool check);
    void run_direct(Op& op, int kind);
    void run_ring(Op& op);
    void finish_from_slots(Op& op, const char* all);
    NcclGroup& nccl_for(int32_t dev);
    uint32_t next_tag() { return tag_++; }
    void fail_comm(ds_status_t st, const std::string& msg);
    std::string state_message() const;

    Settings s_;
    std::string id_ = "w";
    std::shared_ptr<Comm> parent_;
    std::vector<int32_t> global_ranks_;  // parent ranks of the members (children only)
    std::shared_ptr<Store> store_;
    std::shared_ptr<FileStore> file_store_;          // world comm of a file-store job
    std::unique_ptr<TcpStoreServer> server_;         // world rank 0 of a TCP-store job
    std::shared_ptr<TcpStore> tcp_client_;
    std::unique_ptr<GlooGroup> gloo_;
    std::unique_ptr<Mesh> mesh_;  // world_size > 1: the exchange and direct collectives
    std::vector<char> slots_;           // the last exchange
    mutable std::mutex nccl_mutex_;
    std::unique_ptr<NcclGroup> nccl_;
    std::string bind_addr_;
    CommsLogger logger_;

    // Queue.
    mutable std::mutex mu_;
    std::condition_variable work_cv_;  // the worker waits for tasks
    std::condition_variable idle_cv_;  // destruction waits for the queue to drain
    std::deque<Task> queue_;
    bool busy_ = false;
    bool stop_ = false;
    std::thread worker_;
    std::atomic<bool> aborted_{false};
    std::atomic<bool> failed_{false};
    std::string failed_message_;
    bool flush_requested_ = false;

    // Worker-thread state.
    uint32_t tag_ = 1;
    uint32_t split_seq_ = 0;
    std::map<std::pair<int32_t, int32_t>, uint32_t> send_seq_, recv_seq_;
    std::vector<std::shared_ptr<WorkState>> p2p_pending_;
    std::vector<std::thread> p2p_threads_;
    std::vector<Task> nccl_p2p_;
};

}  // namespace ds::comm
