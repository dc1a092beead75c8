// A full mesh of plain TCP connections among the ranks of a communicator, driven by the calling
// thread (non-blocking sends and receives, poll), with one helper thread for large transfers: the
// agreement exchange, collectives small enough to travel with it, and the data of the CPU
// collectives (direct messages and rings; see Comm::run_on_mesh).
//
// Why not Gloo for these: Gloo's TCP transport hands every incoming message to its I/O thread,
// which wakes the waiting thread, and both take the pair's lock; the I/O thread only try-locks and
// polls again on failure, so when the lock holder is preempted it spins until the scheduler tick.
// On a loaded host of few cores that turns a 50 us message into 4, 8, 12 ms (measured on the 2-core
// CI machine: a 4 KiB Gloo broadcast had its 90th percentile at 4-16 ms in some runs). Here a
// message is one send() on one side and wakes exactly the one thread that waits for it on the
// other.
//
// Every call throws ds::Error: DS_ERR_COMM_TIMEOUT past the deadline, DS_ERR_COMM_PEER when a
// connection closes or resets (a peer died, or close() was called here), DS_ERR_COMM otherwise.
// After such a failure the byte streams are out of step and the mesh must not be used again (the
// communicator fails as a whole).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/net.hpp"
#include "comm/store.hpp"

namespace ds::comm {

class Mesh {
public:
    // Connect to every other rank, kLanes connections each: each rank listens on an ephemeral port,
    // publishes "<port> <bind_addr>" under key <rank> of store, connects to every lower rank and
    // accepts every higher one (a hello names the rank and the lane).
    static std::unique_ptr<Mesh> connect(int32_t rank, int32_t size, Store& store, const std::string& bind_addr,
                                         int64_t timeout_ms);
    ~Mesh();
    Mesh(const Mesh&) = delete;
    Mesh& operator=(const Mesh&) = delete;

    int32_t rank() const { return rank_; }
    int32_t size() const { return size_; }

    // One transfer of a batch. A framed receive reads a 4-byte length first, then that many bytes
    // (at most `bytes`; the length read lands in *got); a framed send writes the length first.
    struct Transfer {
        int32_t peer;
        bool send;
        void* buf;
        size_t bytes;
        bool framed = false;
        size_t* got = nullptr;
    };
    // Run a batch to completion: every transfer progresses whenever its socket is ready, so ranks
    // that send to each other while receiving never wait on each other's buffers. Transfers with
    // the same peer and direction run in the order given. done(i), when given, runs as transfer i
    // completes, before the next of its peer and direction starts (a ring reduces a segment there).
    // A batch that moves at least kDuplexMin bytes each way receives on the mesh's helper thread
    // while the caller sends (a root sending 2 x kDuplexMin or more to several peers splits them
    // the same way); done() runs on the thread that moved the transfer. On loopback every byte is
    // copied by the CPU at both ends, and one thread per process cannot copy in and out at once.
    void run(std::vector<Transfer>& batch, net::Deadline deadline, const char* what,
             const std::function<void(size_t)>& done = {});
    static constexpr size_t kDuplexMin = 128 * 1024;

    // Two connections ("lanes") join every pair. run() uses lane 0 (its helper half too);
    // both_lanes(f) runs f(0, c) here and f(1, c) on the helper thread at once (two independent
    // rings on two halves of a buffer: while one waits for a neighbour, the other moves), where
    // f moves data with run_lane(..., lane, ..., c) only. A failure on either side stops the other.
    static constexpr int kLanes = 2;
    void run_lane(std::vector<Transfer>& batch, int lane, net::Deadline deadline, const char* what,
                  const std::function<void(size_t)>& done, int cancel_fd);
    void both_lanes(const std::function<void(int lane, int cancel_fd)>& f, const char* what);

    // Shut every connection down: a call blocked on another thread fails at once, and the peers
    // see their connections close (ds_comm_abort).
    void close() noexcept;

private:
    Mesh() = default;
    void run_here(std::vector<Transfer>& batch, int lane, net::Deadline deadline, const char* what,
                  const std::function<void(size_t)>& done, int cancel_fd = -1);
    void two_threads(const std::function<void(int)>& here, const std::function<void(int)>& there, const char* what);
    net::Fd& fd_slot(int lane, int32_t peer) { return fds_[static_cast<size_t>(lane) * static_cast<size_t>(size_) + static_cast<size_t>(peer)]; }
    int32_t rank_ = 0, size_ = 1;
    std::vector<net::Fd> fds_;  // lane * size + peer; this rank's own are empty
    // The helper thread of duplex batches (started at the first one).
    struct Helper;
    std::unique_ptr<Helper> helper_;
};

}  // namespace ds::comm
