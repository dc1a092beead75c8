#include "comm/comm.hpp"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>

#include "comm/mesh.hpp"
#include "comm/net.hpp"
#include "comm/reduce.hpp"
#include "core/dtype.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

namespace ds::comm {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

const device::Device kHost{DS_DEV_CPU, 0};

// Gloo writes to its sockets with writev(), which raises SIGPIPE when a peer has died: the default
// action would kill this process silently (Python ignores SIGPIPE, so torch never sees it). The
// signal goes to the thread that wrote, so every thread that runs Gloo blocks it: our worker and
// helper threads for good, Gloo's own I/O thread by inheriting the mask at its creation, and a
// caller's thread for the duration of an inline call (then a pending SIGPIPE is discarded before
// the caller's mask comes back).
class SigpipeBlock {
public:
    SigpipeBlock() {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        changed_ = pthread_sigmask(SIG_BLOCK, &s, &old_) == 0 && !sigismember(&old_, SIGPIPE);
    }
    ~SigpipeBlock() {
        if (!changed_) return;
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        const timespec zero{0, 0};
        while (sigtimedwait(&s, nullptr, &zero) > 0) {
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeBlock(const SigpipeBlock&) = delete;
    SigpipeBlock& operator=(const SigpipeBlock&) = delete;

private:
    sigset_t old_;
    bool changed_ = false;
};

// A tensor as host memory: CPU tensors directly, CUDA tensors through a staging copy (Gloo).
class Staged {
public:
    Staged(const Tensor& t, bool copy_in) : t_(t) {
        if (t.dev.type == DS_DEV_CPU) {
            ptr_ = t.data;
            return;
        }
        host_.resize(t.nbytes());
        ptr_ = host_.data();
        if (copy_in && t.nbytes()) device::copy(kHost, ptr_, t.dev, t.data, t.nbytes());
    }
    void* p() const { return ptr_; }
    void write_back() const {
        if (t_.dev.type != DS_DEV_CPU && t_.nbytes()) device::copy(t_.dev, t_.data, kHost, ptr_, t_.nbytes());
    }

private:
    const Tensor& t_;
    std::vector<char> host_;
    void* ptr_ = nullptr;
};

// Arguments every rank must agree on, exchanged before a collective when checking is on.
struct Header {
    uint32_t magic;
    int32_t kind;
    int32_t dtype;
    int32_t red;
    int32_t peer;
    int32_t dev_type;
    uint64_t count;
};
constexpr uint32_t kHeaderMagic = 0x44534348u;  // DSCH

const char* red_name(int32_t op) {
    switch (op) {
        case DS_REDUCE_SUM: return "sum";
        case DS_REDUCE_AVG: return "avg";
        case DS_REDUCE_MAX: return "max";
        case DS_REDUCE_MIN: return "min";
        case DS_REDUCE_PROD: return "prod";
        default: return "?";
    }
}

bool has_reduction(OpKind k) { return k == OpKind::AllReduce || k == OpKind::Reduce || k == OpKind::ReduceScatter; }
bool has_root(OpKind k) { return k == OpKind::Broadcast || k == OpKind::Reduce; }

std::string describe(const Header& h) {
    OpKind k = static_cast<OpKind>(h.kind);
    std::string s = op_log_name(k);
    if (k == OpKind::Barrier || k == OpKind::Split) return s;
    s += format(" %s x %llu", dtype_name(h.dtype), static_cast<unsigned long long>(h.count));
    if (has_reduction(k)) s += format(" (%s)", red_name(h.red));
    if (has_root(k)) s += format(" root %d", h.peer);
    s += h.dev_type == DS_DEV_CUDA ? " on cuda" : " on cpu";
    return s;
}

uint64_t p2p_slot(uint8_t prefix, uint32_t seq, int32_t tag) {
    return (static_cast<uint64_t>(prefix) << 56) | (static_cast<uint64_t>(seq & 0xffffffu) << 32) | static_cast<uint32_t>(tag);
}

std::mutex& listen_fd_mutex() {
    static std::mutex m;
    return m;
}

// The listening socket dsrun opened for rank 0 (no race for the port), if it is usable.
net::Fd take_inherited_listener(int fd, int port) {
    std::lock_guard<std::mutex> lock(listen_fd_mutex());
    const char* env = std::getenv("DSABI_STORE_LISTEN_FD");
    if (fd < 0 || !env) return net::Fd();
    int accepting = 0;
    socklen_t len = sizeof accepting;
    bool ok = getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting && net::local_port(fd) == port;
    unsetenv("DSABI_STORE_LISTEN_FD");  // one use: a later communicator binds the port itself
    if (!ok) {
        log(DS_LOG_DEBUG, "DSABI_STORE_LISTEN_FD=%d is not a socket listening on port %d: ignored", fd, port);
        return net::Fd();
    }
    return net::Fd(fd);
}

}  // namespace

const char* op_log_name(OpKind k) {
    switch (k) {
        case OpKind::AllReduce: return "all_reduce";
        case OpKind::Broadcast: return "broadcast";
        case OpKind::Reduce: return "reduce";
        case OpKind::AllGather: return "all_gather_into_tensor";
        case OpKind::AllGatherList: return "all_gather";
        case OpKind::ReduceScatter: return "reduce_scatter_tensor";
        case OpKind::AllToAll: return "all_to_all_single";
        case OpKind::Barrier: return "barrier";
        case OpKind::Send: return "send";
        case OpKind::Recv: return "recv";
        case OpKind::Split: return "split";
        case OpKind::Flush: return "flush";
    }
    return "?";
}

// ------------------------------------------------------------------------------------------------
// Work
// ------------------------------------------------------------------------------------------------

void WorkState::complete(ds_status_t st, std::string msg) {
    {
        std::lock_guard<std::mutex> lock(m);
        if (done) return;
        status = st;
        message = std::move(msg);
        done = true;
    }
    cv.notify_all();
}

bool WorkState::wait_for(int64_t timeout_ms) {
    std::unique_lock<std::mutex> lock(m);
    if (timeout_ms < 0) {
        cv.wait(lock, [&] { return done; });
        return true;
    }
    return cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return done; });
}

// ------------------------------------------------------------------------------------------------
// Creation and destruction
// ------------------------------------------------------------------------------------------------

std::shared_ptr<Comm> Comm::create(const Settings& s, const LogConfig& log_cfg) {
    SigpipeBlock no_sigpipe;  // also inherited by Gloo's I/O thread, created below
    std::shared_ptr<Comm> c(new Comm());
    c->s_ = s;
    c->logger_.configure(log_cfg);
    if (s.world_size > 1) {
        if (!GlooGroup::available())
            fail(DS_ERR_UNSUPPORTED, "world_size=%d needs the Gloo backend, which this build of dsabi does not have "
                 "(configure with -DDSABI_WITH_GLOO=ON); world_size=1 works without it", s.world_size);
        if (s.backend == DS_COMM_BACKEND_NCCL) {
            std::string why;
            if (!NcclGroup::table(&why))
                fail(DS_ERR_UNSUPPORTED, "options.backend=DS_COMM_BACKEND_NCCL but NCCL is not available: %s", why.c_str());
        }
        std::string where;
        try {
            if (!s.store_dir.empty()) {
                where = "file://" + s.store_dir + "/" + s.store_prefix;
                c->file_store_ = std::make_shared<FileStore>(s.store_dir, s.store_prefix, s.rank, s.timeout_ms);
                c->store_ = c->file_store_;
            } else {
                where = format("tcp://%s:%d", s.master_addr.c_str(), s.master_port);
                if (s.master_port == 0)
                    fail(DS_ERR_INVALID_ARG, "master_port=0 cannot be used for a TCP rendezvous of %d ranks: the other ranks "
                         "could not know the port (dsrun --master-port 0 picks a free port and passes it on)", s.world_size);
                if (s.rank == 0) {
                    net::Fd lfd = take_inherited_listener(s.listen_fd, s.master_port);
                    if (!lfd) lfd = net::listen_any(s.master_port);
                    c->server_ = std::make_unique<TcpStoreServer>(std::move(lfd));
                }
                // Rank 0 reaches its own server through loopback: MASTER_ADDR may be a name only the
                // other hosts resolve.
                c->tcp_client_ = std::make_shared<TcpStore>(s.rank == 0 ? "127.0.0.1" : s.master_addr, s.master_port, s.timeout_ms);
                c->store_ = c->tcp_client_;
            }
            c->bind_addr_ = s.bind_addr.empty() ? net::source_address_for(s.master_addr, s.master_port) : s.bind_addr;
            PrefixStore gs(c->store_, "w/gloo/");
            c->gloo_ = GlooGroup::connect(s.rank, s.world_size, gs, c->bind_addr_, nullptr, s.timeout_ms);
            PrefixStore ms(c->store_, "w/mesh/");
            c->mesh_ = Mesh::connect(s.rank, s.world_size, ms, c->bind_addr_, s.timeout_ms);
            // Nobody leaves the rendezvous before everybody is connected.
            c->gloo_->barrier(c->next_tag());
        } catch (const Error& e) {
            fail(e.status(), "rendezvous of rank %d of %d through %s (timeout %lld ms) failed: %s", s.rank, s.world_size,
                 where.c_str(), static_cast<long long>(s.timeout_ms), e.what());
        }
    }
    c->start_worker();
    return c;
}

void Comm::start_worker() {
    worker_ = std::thread([this] { worker_loop(); });
}

Comm::~Comm() {
    SigpipeBlock no_sigpipe;
    {
        std::unique_lock<std::mutex> lk(mu_);
        stop_ = true;
        work_cv_.notify_all();
        idle_cv_.wait(lk, [&] { return queue_.empty() && !busy_; });
    }
    work_cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    // Transfers nobody waited for still run to completion (or to the timeout).
    if (!aborted_ && !failed_) {
        try {
            flush_nccl();
        } catch (...) {
        }
    }
    drain_p2p();
    {
        std::lock_guard<std::mutex> lock(nccl_mutex_);
        nccl_.reset();
    }
    const bool healthy = !aborted_ && !failed_;
    if (file_store_ && !parent_ && healthy && gloo_) {
        // Nobody may still be reading keys (a group being set up) when rank 0 deletes them.
        try {
            gloo_->barrier(next_tag());
        } catch (...) {
        }
    }
    gloo_.reset();
    mesh_.reset();
    if (tcp_client_) tcp_client_->close();
    // Rank 0 serves the store until every other rank has let go of it (destroyed its communicator or
    // exited), so that a group another rank is still setting up does not lose its store; bounded by
    // the timeout, and not waited for at all after a failure.
    if (server_) server_->stop(healthy ? s_.timeout_ms : 0);
    if (file_store_ && s_.rank == 0 && !parent_) file_store_->remove();
}

// ------------------------------------------------------------------------------------------------
// Queue
// ------------------------------------------------------------------------------------------------

std::string Comm::state_message() const {
    if (aborted_) return "ds_comm_abort was called on this communicator; destroy it";
    return "the communicator failed earlier and cannot be used any more (" + failed_message_ + "); destroy it";
}

void Comm::fail_comm(ds_status_t st, const std::string& msg) {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_) return;
    failed_message_ = std::string(ds_status_str(st)) + ": " + msg;
    failed_ = true;
}

bool Comm::use_nccl(const Op& op) const {
    return op.dev_type == DS_DEV_CUDA && s_.world_size > 1 && s_.backend != DS_COMM_BACKEND_GLOO;
}

bool Comm::check_enabled(bool nccl) const {
    if (s_.check >= 0) return s_.check == 1;
    return !nccl;  // auto: Gloo would corrupt or abort on a size mismatch; NCCL latency matters more
}

std::shared_ptr<WorkState> Comm::submit(Op op, bool async) {
    const bool p2p = op.kind == OpKind::Send || op.kind == OpKind::Recv;
    if (op.dev_type == DS_DEV_CPU && s_.backend == DS_COMM_BACKEND_NCCL && op.kind != OpKind::Barrier && op.kind != OpKind::Split)
        fail(DS_ERR_DEVICE_MISMATCH, "the communicator was created with backend=DS_COMM_BACKEND_NCCL, which takes CUDA tensors only; "
             "this tensor is on the CPU");
    if (use_nccl(op)) {
        std::string why;
        if (!NcclGroup::table(&why))
            fail(DS_ERR_UNSUPPORTED, "CUDA tensors travel over NCCL, which is not available: %s. Create the communicator with "
                 "backend=DS_COMM_BACKEND_GLOO to stage them through host memory", why.c_str());
    }
    auto w = std::make_shared<WorkState>();
    w->comm = weak_from_this();
    op.sync = !async;
    if (async && p2p && use_nccl(op)) w->needs_flush = true;
    std::unique_lock<std::mutex> lk(mu_);
    if (aborted_ || failed_) fail(DS_ERR_STATE, "%s", state_message().c_str());
    if (stop_) fail(DS_ERR_STATE, "the communicator is being destroyed");
    if (!async && queue_.empty() && !busy_) {
        busy_ = true;
        lk.unlock();
        Task t{std::move(op), w};
        execute(t);
        lk.lock();
        busy_ = false;
        // Wake the worker only when it has something to do: a wake-up per call costs latency.
        if (!queue_.empty()) work_cv_.notify_one();
        if (stop_) idle_cv_.notify_all();
        return w;
    }
    queue_.push_back(Task{std::move(op), w});
    lk.unlock();
    work_cv_.notify_one();
    return w;
}

void Comm::request_flush() {
    std::lock_guard<std::mutex> lk(mu_);
    if (flush_requested_ || stop_) return;
    flush_requested_ = true;
    Op op;
    op.kind = OpKind::Flush;
    queue_.push_back(Task{std::move(op), std::make_shared<WorkState>()});
    work_cv_.notify_one();
}

void Comm::worker_loop() {
    SigpipeBlock no_sigpipe;
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
        work_cv_.wait(lk, [&] { return !busy_ && (!queue_.empty() || stop_); });
        if (queue_.empty()) break;  // stopping, and nothing left
        Task t = std::move(queue_.front());
        queue_.pop_front();
        busy_ = true;
        // A run of queued asynchronous NCCL collectives is enqueued back to back and waited for
        // once, as NCCL users issue them: one wait per collective would serialise host and GPU.
        std::vector<Task> batch;
        if (batchable(t.op)) {
            batch.push_back(std::move(t));
            while (!queue_.empty() && batch.size() < kMaxBatch && batchable(queue_.front().op)) {
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        lk.unlock();
        if (batch.empty())
            execute(t);
        else
            execute_batch(batch);
        t = Task{};  // release the retained tensors before taking the lock
        batch.clear();
        lk.lock();
        busy_ = false;
        if (queue_.empty()) idle_cv_.notify_all();
    }
}

void Comm::abort() noexcept {
    SigpipeBlock no_sigpipe;
    std::deque<Task> dropped;
    {
        std::lock_guard<std::mutex> lk(mu_);
        aborted_ = true;
        dropped.swap(queue_);
        idle_cv_.notify_all();
    }
    for (Task& t : dropped) t.work->complete(DS_ABORTED, "cancelled by ds_comm_abort before it started");
    if (gloo_) gloo_->close();
    if (mesh_) mesh_->close();
    std::lock_guard<std::mutex> lock(nccl_mutex_);
    if (nccl_) nccl_->abort();
}

// ------------------------------------------------------------------------------------------------
// Execution
// ------------------------------------------------------------------------------------------------

namespace {

// The status and message of the exception being handled (call inside a catch block only).
ds_status_t current_status(std::string& msg) noexcept {
    try {
        throw;
    } catch (const Error& e) {
        msg = e.what();
        return e.status();
    } catch (const std::bad_alloc&) {
        msg = "out of host memory";
        return DS_ERR_NOMEM;
    } catch (const std::exception& e) {
        msg = e.what();
        return DS_ERR_INTERNAL;
    } catch (...) {
        msg = "unknown exception";
        return DS_ERR_UNKNOWN;
    }
}

}  // namespace

void Comm::fail_work(WorkState& w, ds_status_t st, const std::string& msg) noexcept {
    if (aborted_) {
        w.complete(DS_ABORTED, "aborted by ds_comm_abort (" + msg + ")");
        return;
    }
    if (st == DS_ERR_COMM_TIMEOUT || st == DS_ERR_COMM_PEER || st == DS_ERR_COMM) fail_comm(st, msg);
    w.complete(st, msg);
}

void Comm::execute(Task& t) noexcept {
    // Gloo's sockets and the mesh's may meet a closed peer: no SIGPIPE for that (NCCL needs none).
    std::optional<SigpipeBlock> no_sigpipe;
    if (!use_nccl(t.op)) no_sigpipe.emplace();
    try {
        if (aborted_) {
            t.work->complete(DS_ABORTED, "cancelled by ds_comm_abort");
            return;
        }
        if (t.op.kind == OpKind::Flush) {
            flush_nccl();
            t.work->complete(DS_OK);
            return;
        }
        if (failed_) {
            t.work->complete(DS_ERR_STATE, state_message());
            return;
        }
        if (t.op.kind == OpKind::Send || t.op.kind == OpKind::Recv) {
            run_p2p(t);
            return;
        }
        drain_p2p();
        flush_nccl();
        if (failed_ || aborted_) {
            t.work->complete(aborted_ ? DS_ABORTED : DS_ERR_STATE, state_message());
            return;
        }
        if (t.op.kind == OpKind::Split)
            run_split(t);
        else
            run_collective(t.op);
        t.work->complete(DS_OK);
    } catch (...) {
        std::string msg;
        const ds_status_t st = current_status(msg);
        fail_work(*t.work, st, msg);
    }
}

bool Comm::batchable(const Op& op) const {
    if (!use_nccl(op) || check_enabled(true) || op.count == 0) return false;
    switch (op.kind) {
        case OpKind::AllReduce:
        case OpKind::Broadcast:
        case OpKind::Reduce:
        case OpKind::AllGather:
        case OpKind::ReduceScatter:
        case OpKind::AllToAll: return true;
        default: return false;  // list all_gather copies out of a temporary; p2p is grouped apart
    }
}

void Comm::execute_batch(std::vector<Task>& batch) noexcept {
    const auto t0 = Clock::now();
    std::vector<ds_status_t> status(batch.size(), DS_OK);
    std::vector<std::string> message(batch.size());
    std::vector<size_t> issued;  // enqueued on NCCL's stream: settled by the one wait below
    NcclGroup* group = nullptr;
    try {
        drain_p2p();
        flush_nccl();
    } catch (...) {
        std::string msg;
        const ds_status_t st = current_status(msg);
        for (Task& t : batch) fail_work(*t.work, st, msg);
        return;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
        if (aborted_ || failed_) {
            status[i] = aborted_ ? DS_ABORTED : DS_ERR_STATE;
            message[i] = aborted_ ? "cancelled by ds_comm_abort" : state_message();
            continue;
        }
        try {
            NcclGroup& g = nccl_for(batch[i].op.dev_index);
            g.set_deferred(true);
            group = &g;
            run_nccl(batch[i].op);
            issued.push_back(i);
        } catch (...) {
            status[i] = current_status(message[i]);
            // A communication error fails the communicator now: the rest of the run is not issued.
            if (status[i] == DS_ERR_COMM_TIMEOUT || status[i] == DS_ERR_COMM_PEER || status[i] == DS_ERR_COMM)
                fail_comm(status[i], message[i]);
        }
    }
    if (group) {
        group->set_deferred(false);
        if (!issued.empty()) {
            try {
                group->wait_all("collective");
            } catch (...) {
                std::string msg;
                const ds_status_t st = current_status(msg);
                for (size_t i : issued) {
                    status[i] = st;
                    message[i] = msg;
                }
            }
        }
    }
    const double ms = ms_since(t0);
    for (size_t i = 0; i < batch.size(); ++i) {
        Task& t = batch[i];
        if (status[i] == DS_OK) {
            const char* name = op_log_name(t.op.kind);
            if (logger_.wants(name))
                logger_.record(name, t.op.caller, t.op.count * dtype_size(t.op.dtype), ms, size(), rank());
            t.work->complete(DS_OK);
        } else {
            fail_work(*t.work, status[i], message[i]);
        }
    }
}

// The agreement exchange, over the mesh (comm/mesh.hpp): every rank sends every other rank its header
// (op, dtype, count, reduce op, root, device) and, when the operation's payload fits in the rest of
// a slot, the payload too; small collectives are then finished locally from the slots, with the
// check included. Each message is framed by its length and read into a slot of kSlotBytes, so ranks
// that disagree on sizes still exchange cleanly, and a disagreement is found before any data moves.
constexpr size_t kSlotBytes = 4096;
constexpr size_t kSlotPayload = kSlotBytes - sizeof(Header);
// Small reductions go through one gather of every rank's payload plus a local reduction in rank
// order (every rank computes the same bits) while payload x (n-1) is at most this: one pass instead
// of the two of a ring all_reduce (reduce-scatter, then all-gather).
constexpr uint64_t kSmallGatherBytes = 256 * 1024;
// Direct collectives (see direct_kind) above 3 ranks (broadcast) or 4 (all_gather) only up to this
// many bytes, where latency dominates; larger broadcasts run Gloo's binomial tree, larger
// all_gathers a ring on the mesh.
constexpr uint64_t kDirectMax = 1u << 20;
// Ring reductions on the mesh receive each step in segments of this many bytes, into two buffers
// in turn: one segment is reduced while the next arrives.
constexpr size_t kRingSegment = 1u << 20;
// From this size on, rings and broadcasts move two halves at once, one per mesh lane and thread.
constexpr uint64_t kTwoRingBytes = 4u << 20;

uint64_t Comm::payload_bytes(const Op& op) const {
    const uint64_t b = op.count * dtype_size(op.dtype);
    switch (op.kind) {
        case OpKind::ReduceScatter: return b * static_cast<uint64_t>(size());
        case OpKind::Barrier:
        case OpKind::Split: return 0;
        default: return b;
    }
}

namespace {

Header header_of(const Op& op) {
    Header h{};
    h.magic = kHeaderMagic;
    h.kind = static_cast<int32_t>(op.kind);
    h.dtype = op.dtype;
    h.red = has_reduction(op.kind) ? op.red : 0;
    h.peer = has_root(op.kind) ? op.peer : 0;
    h.dev_type = op.dev_type;
    h.count = op.count;
    if (op.kind == OpKind::Barrier || op.kind == OpKind::Split) {
        h.dtype = 0;
        h.dev_type = 0;
        h.count = 0;
    }
    return h;
}

Header header_at(const char* all, int r) {
    Header h;
    std::memcpy(&h, all + static_cast<size_t>(r) * kSlotBytes, sizeof h);
    return h;
}

// Direct collectives: CPU (or Gloo-staged) collectives above the slot that are a few direct
// messages over the mesh, sent as soon as the exchange has shown agreement (or at once with checks
// off). Broadcast: the root sends to every receiver. Gather: every rank sends its payload to every
// other (all_gather; small all_reduce and reduce_scatter, reduced locally in rank order). ToRoot:
// every rank sends its payload to the root (small reduce). AllToAll: chunk q to rank q.
enum class Direct { None, Broadcast, Gather, ToRoot, AllToAll };

Direct direct_kind(const Op& op, int n) {
    const uint64_t b = op.count * dtype_size(op.dtype);
    const uint64_t un = static_cast<uint64_t>(n);
    switch (op.kind) {
        case OpKind::Broadcast: return b > kSlotPayload && (n <= 3 || b <= kDirectMax) ? Direct::Broadcast : Direct::None;
        case OpKind::AllGather:
        case OpKind::AllGatherList: return b > kSlotPayload && (n <= 4 || b * un <= kDirectMax) ? Direct::Gather : Direct::None;
        case OpKind::AllToAll: return b > kSlotPayload ? Direct::AllToAll : Direct::None;
        case OpKind::AllReduce:
        case OpKind::Reduce:
        case OpKind::ReduceScatter: {
            const uint64_t payload = b * (op.kind == OpKind::ReduceScatter ? un : 1);
            if (payload <= kSlotPayload || payload * (un - 1) > kSmallGatherBytes) return Direct::None;
            return op.kind == OpKind::Reduce ? Direct::ToRoot : Direct::Gather;
        }
        default: return Direct::None;
    }
}

}  // namespace

const char* Comm::exchange(const Op& op, bool check, const void* extra, size_t extra_bytes, bool carry) {
    const int n = size(), me = rank();
    const Header mine = header_of(op);
    const uint64_t pb = carry ? payload_bytes(op) : 0;
    slots_.resize(static_cast<size_t>(n) * kSlotBytes);
    char* msg = slots_.data() + static_cast<size_t>(me) * kSlotBytes;
    std::memcpy(msg, &mine, sizeof mine);
    size_t len = sizeof mine;
    if (extra_bytes) {
        std::memcpy(msg + len, extra, extra_bytes);
        len += extra_bytes;
    }
    if (pb) {
        Staged in(op.a, true);
        std::memcpy(msg + len, in.p(), static_cast<size_t>(pb));
        len += static_cast<size_t>(pb);
    }
    std::vector<Mesh::Transfer> x;
    x.reserve(2 * static_cast<size_t>(n));
    for (int i = 1; i < n; ++i) x.push_back({(me + i) % n, true, msg, len, true, nullptr});
    for (int i = 1; i < n; ++i) {
        const int q = (me - i + n) % n;
        x.push_back({q, false, slots_.data() + static_cast<size_t>(q) * kSlotBytes, kSlotBytes, true, nullptr});
    }
    mesh_->run(x, net::deadline_in(s_.timeout_ms), "agreement exchange");
    const char* all = slots_.data();
    if (!check) return all;
    std::vector<int> differ;
    for (int r = 1; r < n; ++r)
        if (std::memcmp(all + static_cast<size_t>(r) * kSlotBytes, all, sizeof(Header)) != 0) differ.push_back(r);
    if (differ.empty()) return all;
    std::string text = "ranks disagree on the collective: rank 0: " + describe(header_at(all, 0));
    int shown = 0;
    for (int r : differ) {
        if (++shown > 6) {
            text += format("; ... (%zu ranks differ from rank 0)", differ.size());
            break;
        }
        text += format("; rank %d: %s", r, describe(header_at(all, r)).c_str());
    }
    text += format(" (this is rank %d). Nothing was transferred.", me);
    fail(DS_ERR_COMM_MISMATCH, "%s", text.c_str());
}

bool Comm::run_on_mesh(Op& op, bool check) {
    const bool data_op = op.kind != OpKind::Barrier && op.kind != OpKind::Split;
    const bool carried = data_op && payload_bytes(op) <= kSlotPayload;
    if (check || carried || op.kind == OpKind::Barrier) {
        const char* all = exchange(op, check, nullptr, 0, carried);
        if (carried) {
            finish_from_slots(op, all);
            return true;
        }
        if (op.kind == OpKind::Barrier) return true;  // the exchange is a barrier
    }
    const Direct dk = direct_kind(op, size());
    if (dk != Direct::None) {
        run_direct(op, static_cast<int>(dk));
        return true;
    }
    if (op.kind == OpKind::AllReduce || op.kind == OpKind::ReduceScatter || op.kind == OpKind::AllGather) {
        run_ring(op);
        return true;
    }
    return false;  // Gloo: reduce above the small-gather bound, broadcast of 4+ ranks above kDirectMax,
                   // all_gather_list of 5+ ranks above kDirectMax
}

void Comm::run_direct(Op& op, int kind) {
    const Direct dk = static_cast<Direct>(kind);
    const int n = size(), me = rank();
    std::vector<Mesh::Transfer> x;
    x.reserve(2 * static_cast<size_t>(n));
    const auto deadline = net::deadline_in(s_.timeout_ms);
    if (dk == Direct::Broadcast) {
        const size_t bytes = static_cast<size_t>(op.count * dtype_size(op.dtype));
        Staged b(op.a, me == op.peer);
        // Bytes [lo, hi) from the root to every other rank.
        auto part = [&](std::vector<Mesh::Transfer>& y, size_t lo, size_t hi) {
            char* p = static_cast<char*>(b.p()) + lo;
            if (me == op.peer) {
                for (int i = 1; i < n; ++i) y.push_back({(me + i) % n, true, p, hi - lo});
            } else {
                y.push_back({op.peer, false, p, hi - lo});
            }
        };
        if (bytes >= kTwoRingBytes) {
            // Large: each half on its own lane and thread (one stream per thread is what a CPU copies).
            const size_t half = bytes / 2;
            mesh_->both_lanes(
                [&](int lane, int cancel_fd) {
                    std::vector<Mesh::Transfer> y;
                    part(y, lane ? half : 0, lane ? bytes : half);
                    mesh_->run_lane(y, lane, deadline, "broadcast", {}, cancel_fd);
                },
                "broadcast");
        } else {
            part(x, 0, bytes);
            mesh_->run(x, deadline, "broadcast");
        }
        if (me != op.peer) b.write_back();
        return;
    }
    if (dk == Direct::AllToAll) {
        const size_t chunk = static_cast<size_t>(op.count * dtype_size(op.dtype)) / static_cast<size_t>(n);
        Staged in(op.a, true), out(op.b, false);
        char* ip = static_cast<char*>(in.p());
        char* outp = static_cast<char*>(out.p());
        for (int i = 1; i < n; ++i) {
            const int r = (me + i) % n, q = (me - i + n) % n;
            x.push_back({r, true, ip + static_cast<size_t>(r) * chunk, chunk});
            x.push_back({q, false, outp + static_cast<size_t>(q) * chunk, chunk});
        }
        std::memcpy(outp + static_cast<size_t>(me) * chunk, ip + static_cast<size_t>(me) * chunk, chunk);
        mesh_->run(x, deadline, "all_to_all");
        out.write_back();
        return;
    }
    // Gather / ToRoot: rank q's payload at dst + q * piece.
    const size_t piece = static_cast<size_t>(payload_bytes(op));
    Staged in(op.a, true);
    std::optional<Staged> out;
    std::vector<char> tmp;
    char* dst = nullptr;
    if (op.kind == OpKind::AllGather) {
        out.emplace(op.b, false);
        dst = static_cast<char*>(out->p());
    } else if (dk == Direct::Gather || me == op.peer) {
        tmp.resize(piece * static_cast<size_t>(n));
        dst = tmp.data();
    }
    for (int i = 1; i < n; ++i) {
        const int r = (me + i) % n;
        if (dk == Direct::Gather || r == op.peer) x.push_back({r, true, in.p(), piece});
    }
    if (dst)
        for (int i = 1; i < n; ++i) {
            const int q = (me - i + n) % n;
            x.push_back({q, false, dst + static_cast<size_t>(q) * piece, piece});
        }
    if (dst) std::memcpy(dst + static_cast<size_t>(me) * piece, in.p(), piece);
    mesh_->run(x, deadline, op_log_name(op.kind));
    if (op.kind == OpKind::AllGather) {
        out->write_back();
    } else if (op.kind == OpKind::AllGatherList) {
        for (int r = 0; r < n; ++r)
            device::copy(op.outs[static_cast<size_t>(r)].dev, op.outs[static_cast<size_t>(r)].data, kHost,
                         tmp.data() + static_cast<size_t>(r) * piece, piece);
    } else if (dst) {
        reduce_gathered(op, tmp.data(), piece);
    }
}

// Rings on the mesh: all_reduce (reduce-scatter, then all-gather), reduce_scatter, and all_gather
// of many ranks. Reduce-scatter step s (of n-1): rank r sends its partial of chunk r-s-1 to r+1 and
// receives the partial of chunk r-s-2 from r-1, adding its own input (received value first, as in
// every step, so the bits do not depend on the rank); after the last step rank r holds chunk r
// reduced. All-gather step s: rank r sends chunk r-s, receives chunk r-s-1 in place. A step's send
// goes as one transfer (it depends only on the step before); its receive comes in kRingSegment
// segments, each reduced as soon as it is complete. From kTwoRingBytes on, the two halves of every
// chunk go round two independent rings at once, one per mesh lane and thread: each ring waits for
// its neighbours at every step, and the other one moves meanwhile.

void Comm::run_ring(Op& op) {
    const int n = size(), me = rank();
    const int next = (me + 1) % n, prev = (me + n - 1) % n;
    const size_t es = dtype_size(op.dtype);
    const auto deadline = net::deadline_in(s_.timeout_ms);
    auto mod = [n](int c) { return ((c % n) + n) % n; };
    if (op.kind == OpKind::AllGather) {
        std::vector<Mesh::Transfer> x;
        const size_t piece = static_cast<size_t>(op.count) * es;
        Staged in(op.a, true), out(op.b, false);
        char* o = static_cast<char*>(out.p());
        std::memcpy(o + static_cast<size_t>(me) * piece, in.p(), piece);
        for (int st = 0; st < n - 1; ++st) {
            x.clear();
            x.push_back({next, true, o + static_cast<size_t>(mod(me - st)) * piece, piece});
            x.push_back({prev, false, o + static_cast<size_t>(mod(me - st - 1)) * piece, piece});
            mesh_->run(x, deadline, "all_gather");
        }
        out.write_back();
        return;
    }
    const bool scatter = op.kind == OpKind::ReduceScatter;
    const char* what = op_log_name(op.kind);
    ReduceFn fn = reduce_fn(op.dtype, op.red);
    Staged in(op.a, true);  // all_reduce: reduced in place; reduce_scatter: read only
    char* ip = static_cast<char*>(in.p());
    std::optional<Staged> out;
    if (scatter) out.emplace(op.b, false);
    const uint64_t un = static_cast<uint64_t>(n);

    // One ring over elements [lo, hi) of every chunk (reduce_scatter: chunk c is elements
    // [c * count, (c + 1) * count) of the input) or over elements [lo, hi) of the whole buffer cut
    // in n chunks (all_reduce). run_step moves one step's transfers.
    using Step = std::function<void(std::vector<Mesh::Transfer>&, const std::function<void(size_t)>&)>;
    auto ring = [&](uint64_t lo, uint64_t hi, const Step& run_step) {
        const uint64_t total = hi - lo;
        const uint64_t base = total / un, rem = total % un;
        auto first = [&](int c) -> size_t {
            const uint64_t cc = static_cast<uint64_t>(c);
            return static_cast<size_t>(scatter ? cc * op.count + lo : lo + cc * base + std::min(cc, rem)) * es;
        };
        auto len = [&](int c) -> size_t {
            return static_cast<size_t>(scatter ? total : base + (static_cast<uint64_t>(c) < rem ? 1 : 0)) * es;
        };
        const size_t seg = std::max(es, kRingSegment / es * es);
        const size_t maxlen = len(0);
        // reduce_scatter keeps its partials apart from its read-only input: the one being sent and
        // the one being reduced, in turn (3+ ranks).
        std::vector<char> acc[2];
        if (scatter && n > 2) {
            acc[0].resize(maxlen);
            acc[1].resize(maxlen);
        }
        std::vector<char> tmp(std::min(seg, maxlen));
        std::vector<Mesh::Transfer> x;
        for (int st = 0; st < n - 1; ++st) {
            const int sc = mod(me - st - 1), rc = mod(me - st - 2);
            const bool last = st == n - 2;
            char* src = scatter && st > 0 ? acc[(st - 1) & 1].data() : ip + first(sc);
            char* dst = !scatter ? ip + first(rc) : last ? static_cast<char*>(out->p()) + lo * es : acc[st & 1].data();
            const char* mine = ip + first(rc);
            const size_t rl = len(rc);
            x.clear();
            x.push_back({next, true, src, len(sc)});
            // Receives from one peer run in order, each reduced before the next starts: one buffer.
            for (size_t off = 0; off < rl; off += seg) x.push_back({prev, false, tmp.data(), std::min(seg, rl - off)});
            run_step(x, [&](size_t i) {
                if (i == 0) return;  // the send
                const size_t off = (i - 1) * seg;
                fn(dst + off, tmp.data(), mine + off, x[i].bytes / es);
            });
        }
        if (scatter) return;
        for (int st = 0; st < n - 1; ++st) {
            const int sc = mod(me - st), rc = mod(me - st - 1);
            x.clear();
            x.push_back({next, true, ip + first(sc), len(sc)});
            x.push_back({prev, false, ip + first(rc), len(rc)});
            run_step(x, {});
        }
    };
    const uint64_t elems = scatter ? op.count : op.count;  // per chunk (scatter) or in all (all_reduce)
    const uint64_t bytes = (scatter ? op.count * un : op.count) * es;
    if (bytes >= kTwoRingBytes && elems >= 2 * un) {
        const uint64_t half = elems / 2;
        mesh_->both_lanes(
            [&](int lane, int cancel_fd) {
                ring(lane ? half : 0, lane ? elems : half, [&](std::vector<Mesh::Transfer>& x, const std::function<void(size_t)>& done) {
                    mesh_->run_lane(x, lane, deadline, what, done, cancel_fd);
                });
            },
            what);
    } else {
        ring(0, elems, [&](std::vector<Mesh::Transfer>& x, const std::function<void(size_t)>& done) { mesh_->run(x, deadline, what, done); });
    }
    if (scatter) {
        if (op.red == DS_REDUCE_AVG) divide_by(out->p(), op.dtype, op.count, n);
        out->write_back();
        return;
    }
    if (op.red == DS_REDUCE_AVG) divide_by(ip, op.dtype, op.count, n);
    in.write_back();
}

// The result of a small collective from the slots every rank contributed (payload after the header).
void Comm::finish_from_slots(Op& op, const char* all) {
    const int n = size();
    const size_t es = dtype_size(op.dtype);
    const size_t bytes = static_cast<size_t>(op.count) * es;
    auto payload = [&](int r) { return all + static_cast<size_t>(r) * kSlotBytes + sizeof(Header); };
    switch (op.kind) {
        case OpKind::AllReduce:
        case OpKind::Reduce:
        case OpKind::ReduceScatter: {
            if (op.kind == OpKind::Reduce && rank() != op.peer) return;
            const bool scatter = op.kind == OpKind::ReduceScatter;
            const size_t off = scatter ? static_cast<size_t>(rank()) * bytes : 0;
            Staged out(scatter ? op.b : op.a, false);
            char* dst = static_cast<char*>(out.p());
            ReduceFn fn = reduce_fn(op.dtype, op.red);
            std::memcpy(dst, payload(0) + off, bytes);
            for (int r = 1; r < n; ++r) fn(dst, dst, payload(r) + off, op.count);  // rank order: same bits everywhere
            if (op.red == DS_REDUCE_AVG) divide_by(dst, op.dtype, op.count, n);
            out.write_back();
            return;
        }
        case OpKind::Broadcast: {
            if (rank() == op.peer) return;
            Staged out(op.a, false);
            std::memcpy(out.p(), payload(op.peer), bytes);
            out.write_back();
            return;
        }
        case OpKind::AllGather: {
            Staged out(op.b, false);
            for (int r = 0; r < n; ++r) std::memcpy(static_cast<char*>(out.p()) + static_cast<size_t>(r) * bytes, payload(r), bytes);
            out.write_back();
            return;
        }
        case OpKind::AllGatherList:
            for (int r = 0; r < n; ++r)
                device::copy(op.outs[static_cast<size_t>(r)].dev, op.outs[static_cast<size_t>(r)].data, kHost, payload(r), bytes);
            return;
        case OpKind::AllToAll: {
            const size_t chunk = bytes / static_cast<size_t>(n);
            Staged out(op.b, false);
            for (int r = 0; r < n; ++r)
                std::memcpy(static_cast<char*>(out.p()) + static_cast<size_t>(r) * chunk, payload(r) + static_cast<size_t>(rank()) * chunk, chunk);
            out.write_back();
            return;
        }
        default: return;
    }
}

NcclGroup& Comm::nccl_for(int32_t dev) {
    {
        std::lock_guard<std::mutex> lock(nccl_mutex_);
        if (nccl_) {
            if (nccl_->device() != dev)
                fail(DS_ERR_DEVICE_MISMATCH, "this communicator's NCCL group is on cuda:%d (its first CUDA collective), "
                     "this tensor is on cuda:%d", nccl_->device(), dev);
            return *nccl_;
        }
    }
    auto g = NcclGroup::create(rank(), size(), dev, *store_, id_ + "/nccl", s_.timeout_ms);
    std::lock_guard<std::mutex> lock(nccl_mutex_);
    nccl_ = std::move(g);
    if (aborted_) nccl_->abort();
    return *nccl_;
}

void Comm::run_collective(Op& op) {
    const int n = size();
    const bool nccl = use_nccl(op);
    const bool checked = n > 1 && check_enabled(nccl);
    const char* name = op_log_name(op.kind);
    const bool timed = logger_.wants(name);
    const auto t0 = Clock::now();
    const uint64_t es = dtype_size(op.dtype);
    const uint64_t bytes = op.count * es;
    bool done = false;
    if (n > 1 && !nccl)
        done = run_on_mesh(op, checked);
    else if (checked)
        exchange(op, true, nullptr, 0, false);  // NCCL: the check alone, then NCCL moves the data
    if (done || op.kind == OpKind::Barrier) {
        // Finished on the mesh (a barrier always is: its exchange is one; n == 1: nothing to do).
    } else if (op.count == 0) {
        // Nothing to move (every rank agrees when checking is on).
    } else if (n == 1) {
        // One rank: the result is the input (sum / avg / max / min / prod of one value).
        switch (op.kind) {
            case OpKind::AllGather:
            case OpKind::ReduceScatter:
            case OpKind::AllToAll: device::copy(op.b.dev, op.b.data, op.a.dev, op.a.data, bytes); break;
            case OpKind::AllGatherList: device::copy(op.outs[0].dev, op.outs[0].data, op.a.dev, op.a.data, bytes); break;
            default: break;
        }
    } else if (nccl) {
        run_nccl(op);
    } else {
        // What the mesh leaves to Gloo (see run_on_mesh).
        const uint32_t tag = next_tag();
        switch (op.kind) {
            case OpKind::Broadcast: {
                Staged x(op.a, rank() == op.peer);
                gloo_->broadcast(x.p(), bytes, op.peer, tag);
                x.write_back();
                break;
            }
            case OpKind::Reduce: {
                Staged x(op.a, true);
                gloo_->reduce(x.p(), op.count, op.dtype, op.red, op.peer, tag);
                if (rank() == op.peer) {
                    if (op.red == DS_REDUCE_AVG) divide_by(x.p(), op.dtype, op.count, n);
                    x.write_back();
                }
                break;
            }
            case OpKind::AllGatherList: {
                Staged in(op.a, true);
                std::vector<char> tmp(static_cast<size_t>(bytes) * static_cast<size_t>(n));
                gloo_->all_gather(in.p(), tmp.data(), bytes, tag);
                for (int r = 0; r < n; ++r)
                    device::copy(op.outs[static_cast<size_t>(r)].dev, op.outs[static_cast<size_t>(r)].data, kHost,
                                 tmp.data() + static_cast<size_t>(r) * bytes, bytes);
                break;
            }
            default: fail(DS_ERR_INTERNAL, "collective kind %d on Gloo", static_cast<int>(op.kind));
        }
    }
    if (timed) logger_.record(name, op.caller, bytes, ms_since(t0), n, rank());
}

// The data of a collective on CUDA tensors, over NCCL (enqueued; waited for unless the group is deferred).
void Comm::run_nccl(Op& op) {
    const int n = size();
    const uint64_t bytes = op.count * dtype_size(op.dtype);
    NcclGroup& g = nccl_for(op.dev_index);
    switch (op.kind) {
        case OpKind::AllReduce: g.all_reduce(op.a.data, op.a.data, op.count, op.dtype, op.red); break;
        case OpKind::Broadcast: g.broadcast(op.a.data, op.count, op.dtype, op.peer); break;
        case OpKind::Reduce: g.reduce(op.a.data, op.a.data, op.count, op.dtype, op.red, op.peer); break;
        case OpKind::AllGather: g.all_gather(op.a.data, op.b.data, op.count, op.dtype); break;
        case OpKind::AllGatherList: {
            int64_t total = static_cast<int64_t>(op.count) * n;
            Tensor tmp = Tensor::create(op.dtype, 1, &total, op.a.dev);
            g.all_gather(op.a.data, tmp.data, op.count, op.dtype);
            for (int r = 0; r < n; ++r)
                device::copy(op.outs[static_cast<size_t>(r)].dev, op.outs[static_cast<size_t>(r)].data, tmp.dev,
                             static_cast<char*>(tmp.data) + static_cast<size_t>(r) * bytes, bytes);
            break;
        }
        case OpKind::ReduceScatter: g.reduce_scatter(op.a.data, op.b.data, op.count, op.dtype, op.red); break;
        case OpKind::AllToAll: g.all_to_all(op.a.data, op.b.data, op.count / static_cast<uint64_t>(n), op.dtype); break;
        default: fail(DS_ERR_INTERNAL, "collective kind %d", static_cast<int>(op.kind));
    }
}

// The result of a small reduction from every rank's payload (rank r's at all + r * payload): in rank
// order, so every rank computes the same bits. Reduce: on the root only.
void Comm::reduce_gathered(Op& op, const char* all, size_t payload) {
    const int n = size();
    if (op.kind == OpKind::Reduce && rank() != op.peer) return;
    const uint64_t es = dtype_size(op.dtype);
    const bool scatter = op.kind == OpKind::ReduceScatter;
    ReduceFn fn = reduce_fn(op.dtype, op.red);
    // The part of each rank's contribution this rank keeps: all of it, or its chunk of a scatter.
    const size_t bytes = static_cast<size_t>(op.count * es);
    const size_t off = scatter ? static_cast<size_t>(rank()) * bytes : 0;
    const Tensor& dst_t = scatter ? op.b : op.a;
    Staged out(dst_t, false);
    char* dst = static_cast<char*>(out.p());
    std::memcpy(dst, all + off, bytes);
    for (int r = 1; r < n; ++r) fn(dst, dst, all + static_cast<size_t>(r) * payload + off, op.count);
    if (op.red == DS_REDUCE_AVG) divide_by(dst, op.dtype, op.count, n);
    out.write_back();
}

void Comm::run_split(Task& t) {
    const Op& op = t.op;
    const int n = size();
    std::vector<int32_t> ck(2 * static_cast<size_t>(n));
    if (n == 1) {
        ck[0] = op.color;
        ck[1] = op.key;
    } else {
        // Colors and keys travel in the exchange (with the agreement check when on).
        int32_t mine[2] = {op.color, op.key};
        const char* all = exchange(op, check_enabled(false), mine, sizeof mine, false);
        for (int r = 0; r < n; ++r)
            std::memcpy(&ck[2 * static_cast<size_t>(r)], all + static_cast<size_t>(r) * kSlotBytes + sizeof(Header), sizeof mine);
    }
    const uint32_t seq = ++split_seq_;
    if (op.color < 0) return;
    std::vector<int32_t> members;
    for (int r = 0; r < n; ++r)
        if (ck[2 * static_cast<size_t>(r)] == op.color) members.push_back(r);
    std::stable_sort(members.begin(), members.end(), [&](int32_t x, int32_t y) {
        int32_t kx = ck[2 * static_cast<size_t>(x) + 1], ky = ck[2 * static_cast<size_t>(y) + 1];
        return kx != ky ? kx < ky : x < y;
    });
    const int32_t new_rank = static_cast<int32_t>(std::find(members.begin(), members.end(), rank()) - members.begin());
    const int32_t new_size = static_cast<int32_t>(members.size());

    std::shared_ptr<Comm> child(new Comm());
    child->s_ = s_;
    child->s_.rank = new_rank;
    child->s_.world_size = new_size;
    child->s_.listen_fd = -1;
    child->parent_ = shared_from_this();
    child->id_ = id_ + "/" + std::to_string(seq) + "." + std::to_string(op.color);
    for (int32_t m : members)
        child->global_ranks_.push_back(global_ranks_.empty() ? m : global_ranks_[static_cast<size_t>(m)]);
    child->logger_.configure(logger_.config());
    child->store_ = store_;
    child->bind_addr_ = bind_addr_;
    if (new_size > 1) {
        PrefixStore gs(store_, child->id_ + "/gloo/");
        child->gloo_ = GlooGroup::connect(new_rank, new_size, gs, bind_addr_, gloo_->device(), s_.timeout_ms);
        PrefixStore ms(store_, child->id_ + "/mesh/");
        child->mesh_ = Mesh::connect(new_rank, new_size, ms, bind_addr_, s_.timeout_ms);
        child->gloo_->barrier(child->next_tag());
    }
    child->start_worker();
    t.work->split_result = std::move(child);
}

void Comm::run_p2p(Task& t) {
    Op op = t.op;
    std::shared_ptr<WorkState> work = t.work;
    const bool send = op.kind == OpKind::Send;
    if (use_nccl(op)) {
        nccl_p2p_.push_back(Task{std::move(op), work});
        if (t.op.sync) flush_nccl();
        return;
    }
    const auto key = std::make_pair(op.peer, op.tag);
    const uint32_t seq = (send ? send_seq_ : recv_seq_)[key]++;
    const uint64_t data_slot = p2p_slot(0xD0, seq, op.tag);
    const uint64_t head_slot = p2p_slot(0xD1, seq, op.tag);
    const bool check = check_enabled(false);
    const int64_t timeout = s_.timeout_ms;
    GlooGroup* g = gloo_.get();
    auto body = [this, g, op, work, send, data_slot, head_slot, check, timeout]() {
        SigpipeBlock no_sigpipe;
        const char* name = op_log_name(op.kind);
        const bool timed = logger_.wants(name);
        const auto t0 = Clock::now();
        const uint64_t es = dtype_size(op.dtype);
        const uint64_t bytes = op.count * es;
        try {
            uint64_t head[2] = {op.count, static_cast<uint64_t>(static_cast<uint32_t>(op.dtype)) | (uint64_t{kHeaderMagic} << 32)};
            if (send) {
                Staged x(op.a, true);
                std::unique_ptr<P2PTransfer> h, d;
                if (check) h = g->post_send(head, sizeof head, op.peer, head_slot);
                d = g->post_send(x.p(), bytes, op.peer, data_slot);
                if (h) h->wait(timeout);
                d->wait(timeout);
            } else {
                Staged x(op.a, false);
                if (check) {
                    uint64_t theirs[2] = {0, 0};
                    g->post_recv(theirs, sizeof theirs, op.peer, head_slot)->wait(timeout);
                    const int32_t their_dtype = static_cast<int32_t>(theirs[1] & 0xffffffffu);
                    if (theirs[0] != op.count || their_dtype != op.dtype) {
                        // Take the message off the wire so that the pair stays usable, then report.
                        uint64_t their_bytes = dtype_is_valid(their_dtype) ? theirs[0] * dtype_size(their_dtype) : 0;
                        if (their_bytes > 0 && their_bytes < (uint64_t{1} << 40)) {
                            std::vector<char> drain(static_cast<size_t>(their_bytes));
                            g->post_recv(drain.data(), drain.size(), op.peer, data_slot)->wait(timeout);
                        }
                        fail(DS_ERR_COMM_MISMATCH, "recv from rank %d (tag %d): the sender sent %llu x %s, this rank expects %llu x %s",
                             op.peer, op.tag, static_cast<unsigned long long>(theirs[0]), dtype_name(their_dtype),
                             static_cast<unsigned long long>(op.count), dtype_name(op.dtype));
                    }
                }
                g->post_recv(x.p(), bytes, op.peer, data_slot)->wait(timeout);
                x.write_back();
            }
            if (timed) logger_.record(name, op.caller, bytes, ms_since(t0), size(), rank());
            work->complete(DS_OK);
        } catch (const Error& e) {
            if (aborted_) {
                work->complete(DS_ABORTED, std::string("aborted by ds_comm_abort (") + e.what() + ")");
                return;
            }
            if (e.status() == DS_ERR_COMM_TIMEOUT || e.status() == DS_ERR_COMM_PEER || e.status() == DS_ERR_COMM)
                fail_comm(e.status(), e.what());
            work->complete(e.status(), e.what());
        } catch (const std::bad_alloc&) {
            work->complete(DS_ERR_NOMEM, "out of host memory");
        } catch (const std::exception& e) {
            work->complete(DS_ERR_INTERNAL, e.what());
        }
    };
    if (op.sync) {
        body();
        return;
    }
    p2p_pending_.push_back(work);
    p2p_threads_.emplace_back(std::move(body));
}

void Comm::drain_p2p() {
    for (auto& w : p2p_pending_) w->wait_for(-1);
    for (auto& th : p2p_threads_)
        if (th.joinable()) th.join();
    p2p_pending_.clear();
    p2p_threads_.clear();
}

void Comm::flush_nccl() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        flush_requested_ = false;
    }
    if (nccl_p2p_.empty()) return;
    std::vector<Task> tasks;
    tasks.swap(nccl_p2p_);
    try {
        if (aborted_) fail(DS_ABORTED, "cancelled by ds_comm_abort");
        if (failed_) fail(DS_ERR_STATE, "%s", state_message().c_str());
        const int32_t dev = tasks[0].op.dev_index;
        std::vector<NcclGroup::P2POp> ops;
        for (const Task& t : tasks) {
            if (t.op.dev_index != dev)
                fail(DS_ERR_DEVICE_MISMATCH, "point-to-point transfers of one batch are on cuda:%d and cuda:%d", dev, t.op.dev_index);
            ops.push_back({t.op.kind == OpKind::Send, t.op.a.data, t.op.count, t.op.dtype, t.op.peer});
        }
        NcclGroup& g = nccl_for(dev);
        const auto t0 = Clock::now();
        g.p2p(ops);
        const double ms = ms_since(t0);
        for (Task& t : tasks) {
            const char* name = op_log_name(t.op.kind);
            if (logger_.wants(name)) logger_.record(name, t.op.caller, t.op.count * dtype_size(t.op.dtype), ms, size(), rank());
            t.work->complete(DS_OK);
        }
    } catch (const Error& e) {
        ds_status_t st = aborted_ ? DS_ABORTED : e.status();
        if (!aborted_ && (st == DS_ERR_COMM_TIMEOUT || st == DS_ERR_COMM_PEER || st == DS_ERR_COMM)) fail_comm(st, e.what());
        for (Task& t : tasks) t.work->complete(st, e.what());
    }
}

// ------------------------------------------------------------------------------------------------
// Info
// ------------------------------------------------------------------------------------------------

std::string Comm::info_json() const {
    cJSON* root = cJSON_CreateObject();
    if (!root) throw std::bad_alloc();
    cJSON_AddStringToObject(root, "id", id_.c_str());
    cJSON_AddNumberToObject(root, "rank", s_.rank);
    cJSON_AddNumberToObject(root, "world_size", s_.world_size);
    cJSON_AddNumberToObject(root, "local_rank", s_.local_rank);
    cJSON_AddNumberToObject(root, "local_world_size", s_.local_world_size);
    cJSON_AddStringToObject(root, "source", source_name(s_.source));
    cJSON_AddNumberToObject(root, "source_code", s_.source);
    cJSON_AddStringToObject(root, "master_addr", s_.master_addr.c_str());
    cJSON_AddNumberToObject(root, "master_port", s_.master_port);
    cJSON_AddStringToObject(root, "store", store_ ? store_->describe().c_str() : "none");
    cJSON_AddStringToObject(root, "bind_addr", bind_addr_.c_str());
    cJSON_AddStringToObject(root, "gloo_address", gloo_ ? gloo_->address().c_str() : "");
    cJSON_AddNumberToObject(root, "timeout_ms", static_cast<double>(s_.timeout_ms));
    cJSON_AddStringToObject(root, "timeout_source", s_.timeout_source.c_str());
    static const char* const backends[] = {"auto", "gloo", "nccl"};
    cJSON_AddStringToObject(root, "backend", backends[s_.backend]);
    cJSON_AddStringToObject(root, "check_mismatch", s_.check < 0 ? "auto" : s_.check ? "on" : "off");
    cJSON* b = cJSON_AddObjectToObject(root, "backends");
    cJSON_AddBoolToObject(b, "gloo", gloo_ != nullptr);
    std::string why;
    cJSON_AddBoolToObject(b, "nccl_available", NcclGroup::table(&why) != nullptr);
    if (!why.empty()) cJSON_AddStringToObject(b, "nccl_why_not", why.c_str());
    {
        std::lock_guard<std::mutex> lock(nccl_mutex_);
        cJSON_AddBoolToObject(b, "nccl_active", nccl_ != nullptr);
        if (nccl_) cJSON_AddNumberToObject(b, "nccl_device", nccl_->device());
    }
    if (parent_) {
        cJSON* g = cJSON_AddArrayToObject(root, "global_ranks");
        for (int32_t r : global_ranks_) cJSON_AddItemToArray(g, cJSON_CreateNumber(r));
    }
    LogConfig lc = logger_.config();
    cJSON* l = cJSON_AddObjectToObject(root, "comms_logger");
    cJSON_AddBoolToObject(l, "enabled", lc.enabled);
    cJSON_AddBoolToObject(l, "verbose", lc.verbose);
    cJSON_AddBoolToObject(l, "prof_all", lc.prof_all);
    cJSON_AddBoolToObject(l, "debug", lc.debug);
    cJSON* po = cJSON_AddArrayToObject(l, "prof_ops");
    for (const auto& s : lc.prof_ops) cJSON_AddItemToArray(po, cJSON_CreateString(s.c_str()));
    cJSON_AddStringToObject(root, "state", aborted_ ? "aborted" : failed_ ? "failed" : "ok");
    char* text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) throw std::bad_alloc();
    std::string out = text;
    cJSON_free(text);
    return out;
}

}  // namespace ds::comm
