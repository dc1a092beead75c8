#include "comm/gloo_group.hpp"

#include "core/dtype.hpp"
#include "core/error.hpp"

#if DSABI_HAVE_GLOO

#include <gloo/allgather.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/reduce.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <typeinfo>
#include <vector>

#include "comm/reduce.hpp"

namespace ds::comm {

namespace {

using std::chrono::milliseconds;

// Gloo reports failures as exceptions whose text is the only description: classify by text.
ds_status_t classify(const std::string& m) {
    auto has = [&](const char* s) { return m.find(s) != std::string::npos; };
    if (has("Timed out") || has("timed out") || has("Timeout") || has("timeout")) return DS_ERR_COMM_TIMEOUT;
    if (has("closed") || has("reset") || has("Broken pipe") || has("Connection refused") || has("EOF") ||
        has("ECONNRESET") || has("EPIPE"))
        return DS_ERR_COMM_PEER;
    if (has("mismatch") || has("doesn't match")) return DS_ERR_COMM_MISMATCH;
    return DS_ERR_COMM;
}

template <class F>
void guarded(const char* what, F&& f) {
    try {
        f();
    } catch (const Error&) {
        throw;
    } catch (const std::bad_alloc&) {
        throw;
    } catch (const std::exception& e) {
        std::string m = e.what();
        fail(classify(m), "gloo %s: %s", what, m.c_str());
    }
}

// Our Store seen through Gloo's rendezvous interface.
class StoreAdapter final : public gloo::rendezvous::Store {
public:
    StoreAdapter(comm::Store& s, int64_t timeout_ms) : s_(s), timeout_ms_(timeout_ms) {}
    void set(const std::string& key, const std::vector<char>& data) override { s_.set(key, data); }
    std::vector<char> get(const std::string& key) override { return s_.get(key, timeout_ms_); }
    void wait(const std::vector<std::string>& keys) override { s_.wait(keys, timeout_ms_); }
    void wait(const std::vector<std::string>& keys, const milliseconds& timeout) override {
        s_.wait(keys, std::min<int64_t>(timeout.count(), timeout_ms_));
    }

private:
    comm::Store& s_;
    int64_t timeout_ms_;
};

class Transfer final : public P2PTransfer {
public:
    Transfer(std::unique_ptr<gloo::transport::UnboundBuffer> buf, bool send, int32_t peer)
        : buf_(std::move(buf)), send_(send), peer_(peer) {}
    void wait(int64_t timeout_ms) override {
        bool ok = true;
        guarded(send_ ? "send" : "recv", [&] {
            ok = send_ ? buf_->waitSend(milliseconds(timeout_ms)) : buf_->waitRecv(milliseconds(timeout_ms));
        });
        if (!ok) fail(DS_ABORTED, "%s with rank %d was aborted", send_ ? "send" : "recv", peer_);
    }

private:
    std::unique_ptr<gloo::transport::UnboundBuffer> buf_;
    bool send_;
    int32_t peer_;
};

// Run `body` typed by element size (Gloo only needs the size to keep segments whole).
template <class F>
void by_size(uint32_t es, F&& body) {
    switch (es) {
        case 1: body(uint8_t{}); return;
        case 2: body(uint16_t{}); return;
        case 4: body(uint32_t{}); return;
        case 8: body(uint64_t{}); return;
        default: fail(DS_ERR_INTERNAL, "element size %u", es);
    }
}

// The rendezvous context, with its transport context reachable (to abort it).
class RdvContext final : public gloo::rendezvous::Context {
public:
    using gloo::rendezvous::Context::Context;
    std::shared_ptr<gloo::transport::Context> transport() const { return transportContext_; }
};

}  // namespace
}  // namespace ds::comm

// gloo::transport::tcp::Context::signalException(const std::string&) sets an exception on every pair
// of a context and on every operation pending on them, which wakes blocked waits at once (it is what
// a timed-out wait does to its context). Pair::close() alone does not wake them in this Gloo
// (2022-05 snapshot), so ds_comm_abort needs it. It is a protected member and the Debian package
// does not ship the header that declares it (gloo/transport/tcp/context.h includes the missing
// gloo/common/memory.h), so it is bound here by its exported symbol: a non-virtual member function
// is called like a free function taking `this` first (Itanium C++ ABI).
extern "C++" void dsabi_gloo_tcp_signal_exception(void* self, const std::string& msg) __asm__(
    "_ZN4gloo9transport3tcp7Context15signalExceptionERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE");

namespace ds::comm {
namespace {

// Wake every operation blocked on ctx's pairs with an exception. transport::Context is the first
// (primary, non-virtual) base of tcp::Context, so the pointer is the tcp::Context's `this`.
void signal_all_pairs(gloo::transport::Context* tc, const std::string& msg) {
    if (!tc || std::strcmp(typeid(*tc).name(), "N4gloo9transport3tcp7ContextE") != 0) return;
    dsabi_gloo_tcp_signal_exception(static_cast<void*>(tc), msg);
}

class GlooImpl final : public GlooGroup {
public:
    GlooImpl(std::shared_ptr<RdvContext> ctx, std::shared_ptr<gloo::transport::Device> dev, int64_t timeout_ms)
        : ctx_(std::move(ctx)), dev_(std::move(dev)), timeout_(timeout_ms) {}

    std::shared_ptr<void> device() const override { return dev_; }
    std::string address() const override { return dev_->str(); }

    void broadcast(void* buf, size_t bytes, int32_t root, uint32_t tag) override {
        guarded("broadcast", [&] {
            gloo::BroadcastOptions o(ctx_);
            o.setOutput(static_cast<uint8_t*>(buf), bytes);
            o.setRoot(root);
            o.setTag(tag);
            o.setTimeout(timeout_);
            gloo::broadcast(o);
        });
    }

    void reduce(void* buf, size_t count, int32_t dtype, int32_t op, int32_t root, uint32_t tag) override {
        ReduceFn fn = reduce_fn(dtype, op);
        guarded("reduce", [&] {
            by_size(dtype_size(dtype), [&](auto t) {
                using T = decltype(t);
                gloo::ReduceOptions o(ctx_);
                o.setOutput(static_cast<T*>(buf), count);
                o.setRoot(root);
                o.setReduceFunction(fn);
                o.setTag(tag);
                o.setTimeout(timeout_);
                gloo::reduce(o);
            });
        });
    }

    void all_gather(const void* in, void* out, size_t bytes_per_rank, uint32_t tag) override {
        guarded("all_gather", [&] {
            gloo::AllgatherOptions o(ctx_);
            o.setInput(static_cast<uint8_t*>(const_cast<void*>(in)), bytes_per_rank);
            o.setOutput(static_cast<uint8_t*>(out), bytes_per_rank * static_cast<size_t>(ctx_->size));
            o.setTag(tag);
            o.setTimeout(timeout_);
            gloo::allgather(o);
        });
    }

    void barrier(uint32_t tag) override {
        guarded("barrier", [&] {
            gloo::BarrierOptions o(ctx_);
            o.setTag(tag);
            o.setTimeout(timeout_);
            gloo::barrier(o);
        });
    }

    std::unique_ptr<P2PTransfer> post_send(const void* buf, size_t bytes, int32_t peer, uint64_t slot) override {
        std::unique_ptr<P2PTransfer> t;
        guarded("send", [&] {
            auto ub = ctx_->createUnboundBuffer(const_cast<void*>(buf), bytes);
            ub->send(peer, slot);
            t = std::make_unique<Transfer>(std::move(ub), true, peer);
        });
        return t;
    }

    std::unique_ptr<P2PTransfer> post_recv(void* buf, size_t bytes, int32_t peer, uint64_t slot) override {
        std::unique_ptr<P2PTransfer> t;
        guarded("recv", [&] {
            auto ub = ctx_->createUnboundBuffer(buf, bytes);
            ub->recv(peer, slot);
            t = std::make_unique<Transfer>(std::move(ub), false, peer);
        });
        return t;
    }

    void close() noexcept override {
        try {
            // Pair::close() alone does not wake operations blocked in this Gloo version: signal
            // them an exception first, then close.
            signal_all_pairs(ctx_->transport().get(), "aborted by ds_comm_abort");
            ctx_->closeConnections();
        } catch (...) {
        }
    }

private:
    std::shared_ptr<RdvContext> ctx_;
    std::shared_ptr<gloo::transport::Device> dev_;
    milliseconds timeout_;
};

}  // namespace

bool GlooGroup::available() { return true; }

std::unique_ptr<GlooGroup> GlooGroup::connect(int32_t rank, int32_t size, Store& store, const std::string& bind_addr,
                                              const std::shared_ptr<void>& device, int64_t timeout_ms) {
    std::shared_ptr<gloo::transport::Device> dev;
    guarded("device", [&] {
        if (device) {
            dev = std::static_pointer_cast<gloo::transport::Device>(device);
        } else {
            gloo::transport::tcp::attr attr;
            attr.hostname = bind_addr;
            dev = gloo::transport::tcp::CreateDevice(attr);
        }
    });
    auto ctx = std::make_shared<RdvContext>(rank, size);
    ctx->setTimeout(milliseconds(timeout_ms));
    StoreAdapter adapter(store, timeout_ms);
    guarded("connect", [&] { ctx->connectFullMesh(adapter, dev); });
    return std::make_unique<GlooImpl>(std::move(ctx), std::move(dev), timeout_ms);
}

}  // namespace ds::comm

#else  // !DSABI_HAVE_GLOO

namespace ds::comm {

bool GlooGroup::available() { return false; }

std::unique_ptr<GlooGroup> GlooGroup::connect(int32_t, int32_t, Store&, const std::string&, const std::shared_ptr<void>&,
                                              int64_t) {
    fail(DS_ERR_UNSUPPORTED, "this build of dsabi has no Gloo backend (configure with DSABI_WITH_GLOO=ON)");
}

}  // namespace ds::comm

#endif
