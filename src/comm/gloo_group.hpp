// Gloo (TCP) for CPU tensors and for every control-plane exchange. This header does not include
// Gloo: comm.cpp compiles the same with or without it (DSABI_HAVE_GLOO).
//
// Every function blocks until done and throws ds::Error: DS_ERR_COMM_TIMEOUT when a peer does not
// answer within the timeout, DS_ERR_COMM_PEER when a connection was closed or reset (a peer died),
// DS_ERR_COMM for other transport failures. After such a failure the group is unusable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "comm/store.hpp"

namespace ds::comm {

// A posted point-to-point transfer; wait() blocks until it completed or throws.
class P2PTransfer {
public:
    virtual ~P2PTransfer() = default;
    virtual void wait(int64_t timeout_ms) = 0;
};

class GlooGroup {
public:
    virtual ~GlooGroup() = default;

    // Whether this build has Gloo.
    static bool available();
    // Join a full mesh of `size` ranks through store. device: a transport device to share (from a
    // parent group), or nullptr to create one listening on bind_addr.
    static std::unique_ptr<GlooGroup> connect(int32_t rank, int32_t size, Store& store, const std::string& bind_addr,
                                              const std::shared_ptr<void>& device, int64_t timeout_ms);

    virtual std::shared_ptr<void> device() const = 0;
    virtual std::string address() const = 0;  // host:port this rank's pairs use

    // The collectives the mesh (comm/mesh.hpp) leaves to Gloo: large broadcasts of 4+ ranks, large
    // reduces, large list all_gathers of 5+ ranks; the barrier ends the rendezvous.
    virtual void broadcast(void* buf, size_t bytes, int32_t root, uint32_t tag) = 0;
    // Result on root; other ranks' buf is scratch. AVG is summed: the caller divides.
    virtual void reduce(void* buf, size_t count, int32_t dtype, int32_t op, int32_t root, uint32_t tag) = 0;
    virtual void all_gather(const void* in, void* out, size_t bytes_per_rank, uint32_t tag) = 0;
    virtual void barrier(uint32_t tag) = 0;

    // Post a transfer now (never blocks); slot identifies the message on both sides.
    virtual std::unique_ptr<P2PTransfer> post_send(const void* buf, size_t bytes, int32_t peer, uint64_t slot) = 0;
    virtual std::unique_ptr<P2PTransfer> post_recv(void* buf, size_t bytes, int32_t peer, uint64_t slot) = 0;

    // Close every connection: blocked operations on other threads fail at once (ds_comm_abort).
    virtual void close() noexcept = 0;
};

}  // namespace ds::comm
