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
        lk.unlock();
        execute(t);
        t = Task{};  // release the retained tensors before taking the lock
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
    std::lock_guard<std::mutex> lock(nccl_mutex_);
    if (nccl_) nccl_->abort();
}

// ------------------------------------------------------------------------------------------------
// Execution
// ------------------------------------------------------------------------------------------------

void Comm::execute(Task& t) noexcept {
    SigpipeBlock no_sigpipe;
    auto finish_error = [&](ds_status_t st, const std::string& msg) {
        if (aborted_) {
            t.work->complete(DS_ABORTED, "aborted by ds_comm_abort (" + msg + ")");
            return;
        }
        if (st == DS_ERR_COMM_TIMEOUT || st == DS_ERR_COMM_PEER || st == DS_ERR_COMM) fail_comm(st, msg);
        t.work->complete(st, msg);
    };
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
    } catch (const Error& e) {
        finish_error(e.status(), e.what());
    } catch (const std::bad_alloc&) {
        t.work->complete(DS_ERR_NOMEM, "out of host memory");
    } catch (const std::exception& e) {
        finish_error(DS_ERR_INTERNAL, e.what());
    } catch (...) {
        finish_error(DS_ERR_UNKNOWN, "unknown exception");
    }
}

// The agreement exchange. Every rank contributes one slot of kSlotBytes, always that size whatever
// the operation, so that ranks that disagree on sizes still exchange equal-sized messages (Gloo
// aborts or truncates on a size mismatch): the slot holds the header (op, dtype, count, reduce op,
// root, device) and, when the operation's payload fits in the rest, the payload too. Small
// collectives are then done in this one all_gather, with the check included.
constexpr size_t kSlotBytes = 4096;
constexpr size_t kSlotPayload = kSlotBytes - sizeof(Header);

uint64_t Comm::payload_bytes(const Op& op) const {
    const uint64_t b = op.count * dtype_size(op.dtype);
    switch (op.kind) {
        case OpKind::ReduceScatter: return b * static_cast<uint64_t>(size());
        case OpKind::Barrier:
        case OpKind::Split: return 0;
        default: return b;
    }
}

bool Comm::exchange_slots(const Op& op, const void* payload, std::vector<char>& all, bool check) {
    Header mine{};
    mine.magic = kHeaderMagic;
    mine.kind = static_cast<int32_t>(op.kind);
    mine.dtype = op.dtype;
    mine.red = has_reduction(op.kind) ? op.red : 0;
    mine.peer = has_root(op.kind) ? op.peer : 0;
    mine.dev_type = op.dev_type;
    mine.count = op.count;
    if (op.kind == OpKind::Barrier || op.kind == OpKind::Split) {
        mine.dtype = 0;
        mine.dev_type = 0;
        mine.count = 0;
    }
    const size_t n = static_cast<size_t>(size());
    std::vector<char> slot(kSlotBytes);
    std::memcpy(slot.data(), &mine, sizeof mine);
    const uint64_t pb = payload_bytes(op);
    const bool carried = payload && pb <= kSlotPayload;
    if (carried && pb) std::memcpy(slot.data() + sizeof mine, payload, static_cast<size_t>(pb));
    all.resize(n * kSlotBytes);
    gloo_->all_gather(slot.data(), all.data(), kSlotBytes, next_tag());
    if (!check) return carried;
    auto head = [&](size_t r) {
        Header h;
        std::memcpy(&h, all.data() + r * kSlotBytes, sizeof h);
        return h;
    };
    std::vector<int> differ;
    for (size_t r = 1; r < n; ++r)
        if (std::memcmp(all.data() + r * kSlotBytes, all.data(), sizeof(Header)) != 0) differ.push_back(static_cast<int>(r));
    if (differ.empty()) return carried;
    std::string msg = "ranks disagree on the collective: rank 0: " + describe(head(0));
    int shown = 0;
    for (int r : differ) {
        if (++shown > 6) {
            msg += format("; ... (%zu ranks differ from rank 0)", differ.size());
            break;
        }
        msg += format("; rank %d: %s", r, describe(head(static_cast<size_t>(r))).c_str());
    }
    msg += format(" (this is rank %d). Nothing was transferred.", rank());
    fail(DS_ERR_COMM_MISMATCH, "%s", msg.c_str());
}

void Comm::check_agreement(const Op& op) {
    std::vector<char> all;
    exchange_slots(op, nullptr, all, true);
}

// The result of a small collective from the slots every rank contributed (payload after the header).
void Comm::finish_from_slots(Op& op, const std::vector<char>& all) {
    const int n = size();
    const size_t es = dtype_size(op.dtype);
    const size_t bytes = static_cast<size_t>(op.count) * es;
    auto payload = [&](int r) { return all.data() + static_cast<size_t>(r) * kSlotBytes + sizeof(Header); };
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
    if (checked && (nccl || payload_bytes(op) > kSlotPayload)) {
        check_agreement(op);
    } else if (n > 1 && !nccl && payload_bytes(op) <= kSlotPayload) {
        // Small on Gloo: one all_gather of fixed-size slots moves the data and checks agreement.
        std::vector<char> all;
        Staged in(op.a, op.kind != OpKind::Barrier && op.count > 0);
        exchange_slots(op, op.kind == OpKind::Barrier ? nullptr : in.p(), all, checked);
        if (op.kind != OpKind::Barrier) finish_from_slots(op, all);
        done = true;
    }

    if (done) {
        // finished in the slot exchange
    } else if (op.kind == OpKind::Barrier) {
        // The agreement check is an all_gather, which is a barrier already.
        if (n > 1 && !checked) gloo_->barrier(next_tag());
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
    } else if (small_reduction(op)) {
        reduce_by_all_gather(op);
    } else {
        const uint32_t tag = next_tag();
        switch (op.kind) {
            case OpKind::AllReduce: {
                Staged x(op.a, true);
                gloo_->all_reduce(x.p(), op.count, op.dtype, op.red, tag);
                if (op.red == DS_REDUCE_AVG) divide_by(x.p(), op.dtype, op.count, n);
                x.write_back();
                break;
            }
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
            case OpKind::AllGather: {
                Staged in(op.a, true), out(op.b, false);
                gloo_->all_gather(in.p(), out.p(), bytes, tag);
                out.write_back();
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
            case OpKind::ReduceScatter: {
                Staged in(op.a, true), out(op.b, false);
                gloo_->reduce_scatter(in.p(), out.p(), op.count, op.dtype, op.red, tag);
                if (op.red == DS_REDUCE_AVG) divide_by(out.p(), op.dtype, op.count, n);
                out.write_back();
                break;
            }
            case OpKind::AllToAll: {
                Staged in(op.a, true), out(op.b, false);
                gloo_->all_to_all(in.p(), out.p(), bytes / static_cast<uint64_t>(n), tag);
                out.write_back();
                break;
            }
            default: fail(DS_ERR_INTERNAL, "collective kind %d", static_cast<int>(op.kind));
        }
    }
    if (timed) logger_.record(name, op.caller, bytes, ms_since(t0), n, rank());
}

// Small reductions as one all_gather plus a local reduction in rank order (every rank computes the
// same bits): one ring pass instead of the two of a ring all_reduce (reduce-scatter, then
// all-gather), so half the latency where latency dominates. Sizes agree on every rank (the
// agreement check guarantees it when on; Gloo requires it anyway).
constexpr uint64_t kSmallGatherBytes = 256 * 1024;

bool Comm::small_reduction(const Op& op) const {
    if (op.kind != OpKind::AllReduce && op.kind != OpKind::Reduce && op.kind != OpKind::ReduceScatter) return false;
    const uint64_t n = static_cast<uint64_t>(size());
    uint64_t payload = op.count * dtype_size(op.dtype) * (op.kind == OpKind::ReduceScatter ? n : 1);
    return payload * (n - 1) <= kSmallGatherBytes;
}

void Comm::reduce_by_all_gather(Op& op) {
    const int n = size();
    const uint64_t es = dtype_size(op.dtype);
    const bool scatter = op.kind == OpKind::ReduceScatter;
    const size_t payload = static_cast<size_t>(op.count * es) * (scatter ? static_cast<size_t>(n) : 1);
    Staged in(op.a, true);
    std::vector<char> all(payload * static_cast<size_t>(n));
    gloo_->all_gather(in.p(), all.data(), payload, next_tag());
    if (op.kind == OpKind::Reduce && rank() != op.peer) return;
    ReduceFn fn = reduce_fn(op.dtype, op.red);
    // The part of each rank's contribution this rank keeps: all of it, or its chunk of a scatter.
    const size_t off = scatter ? static_cast<size_t>(rank()) * static_cast<size_t>(op.count * es) : 0;
    const size_t bytes = static_cast<size_t>(op.count * es);
    const Tensor& dst_t = scatter ? op.b : op.a;
    Staged out(dst_t, false);
    char* dst = static_cast<char*>(out.p());
    std::memcpy(dst, all.data() + off, bytes);
    for (int r = 1; r < n; ++r) fn(dst, dst, all.data() + static_cast<size_t>(r) * payload + off, op.count);
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
        if (check_enabled(false)) check_agreement(op);
        int32_t mine[2] = {op.color, op.key};
        gloo_->all_gather(mine, ck.data(), sizeof mine, next_tag());
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
