#include "comm/mesh.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.hpp"

namespace ds::comm {

namespace {

constexpr uint32_t kHelloMagic = 0x4453484Du;  // "DSHM"

struct Hello {
    uint32_t magic;
    int32_t rank;
    int32_t size;
    uint32_t lane;
};

[[noreturn]] void io_error(int e, int32_t peer, const char* what, const char* verb) {
    if (e == EPIPE || e == ECONNRESET || e == ENOTCONN || e == ECONNABORTED)
        fail(DS_ERR_COMM_PEER, "%s: connection to rank %d closed by the peer (%s)", what, peer, std::strerror(e));
    fail(DS_ERR_COMM, "%s: %s with rank %d: %s", what, verb, peer, std::strerror(e));
}

// Milliseconds to the deadline, rounded up (a poll that wakes a little early would spin).
int poll_ms(net::Deadline d) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(d - net::Clock::now()).count();
    if (us <= 0) return 0;
    return static_cast<int>(std::min<int64_t>((us + 999) / 1000, 60000));
}

}  // namespace

std::unique_ptr<Mesh> Mesh::connect(int32_t rank, int32_t size, Store& store, const std::string& bind_addr, int64_t timeout_ms) {
    std::unique_ptr<Mesh> m(new Mesh());
    m->rank_ = rank;
    m->size_ = size;
    m->fds_.resize(static_cast<size_t>(kLanes) * static_cast<size_t>(size));
    if (size == 1) return m;
    const net::Deadline deadline = net::deadline_in(timeout_ms);
    net::Fd lis = net::listen_any(0, kLanes * size + 1);
    const std::string mine = std::to_string(net::local_port(lis.get())) + " " + bind_addr;
    store.set(std::to_string(rank), std::vector<char>(mine.begin(), mine.end()));
    // Lower ranks: connect (the kernel completes the connection from the peer's backlog, so nobody
    // waits for anybody's accept order).
    for (int32_t q = 0; q < rank; ++q) {
        std::vector<char> v = store.get(std::to_string(q), std::max<int64_t>(1, net::ms_left(deadline)));
        const std::string s(v.begin(), v.end());
        const size_t sp = s.find(' ');
        if (sp == std::string::npos) fail(DS_ERR_COMM, "comm mesh: rank %d published a malformed address '%s'", q, s.c_str());
        const int port = std::atoi(s.substr(0, sp).c_str());
        const std::string host = s.substr(sp + 1);
        for (uint32_t lane = 0; lane < static_cast<uint32_t>(kLanes); ++lane) {
            net::Fd fd = net::connect_retry(host, port, deadline, "comm mesh");
            Hello h{kHelloMagic, rank, size, lane};
            net::send_all(fd.get(), &h, sizeof h, deadline, "comm mesh");
            m->fd_slot(static_cast<int>(lane), q) = std::move(fd);
        }
    }
    // Higher ranks: accept, and learn who it is (and which lane) from the hello.
    for (int32_t i = kLanes * (rank + 1); i < kLanes * size; ++i) {
        for (;;) {
            pollfd p{lis.get(), POLLIN, 0};
            int rc = ::poll(&p, 1, poll_ms(deadline));
            if (rc > 0) break;
            if (rc < 0 && errno == EINTR) continue;
            if (rc < 0) fail(DS_ERR_COMM, "comm mesh: poll: %s", std::strerror(errno));
            if (net::Clock::now() >= deadline)
                fail(DS_ERR_COMM_TIMEOUT, "comm mesh: rank %d waited for %d more connections until the timeout", rank,
                     kLanes * size - i);
        }
        net::Fd fd(::accept4(lis.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!fd) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) {
                --i;
                continue;
            }
            fail(DS_ERR_COMM, "comm mesh: accept: %s", std::strerror(errno));
        }
        Hello h{};
        net::recv_all(fd.get(), &h, sizeof h, deadline, "comm mesh");
        if (h.magic != kHelloMagic || h.size != size || h.rank <= rank || h.rank >= size || h.lane >= static_cast<uint32_t>(kLanes) ||
            m->fd_slot(static_cast<int>(h.lane), h.rank))
            fail(DS_ERR_COMM, "comm mesh: unexpected connection (magic %08x, rank %d of %d) on rank %d's port", h.magic, h.rank,
                 h.size, rank);
        net::set_nodelay(fd.get());
        m->fd_slot(static_cast<int>(h.lane), h.rank) = std::move(fd);
    }
    return m;
}

// One task at a time: run() hands it the receiving half of a duplex batch and waits for it.
struct Mesh::Helper {
    net::Fd cancel_read, cancel_write;  // a byte here stops the other half of a split batch
    std::mutex m;
    std::condition_variable cv;
    std::function<void()> task;
    std::exception_ptr error;
    bool busy = false, stop = false;
    std::thread th;

    Helper() {
        int p[2];
        if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) fail(DS_ERR_COMM, "comm mesh: pipe: %s", std::strerror(errno));
        cancel_read.reset(p[0]);
        cancel_write.reset(p[1]);
        // SIGPIPE cannot come from the mesh (MSG_NOSIGNAL); block it anyway, as every thread that
        // touches sockets in dsabi does.
        sigset_t s, old;
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &s, &old);
        th = std::thread([this] { loop(); });
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
    ~Helper() {
        {
            std::lock_guard<std::mutex> lk(m);
            stop = true;
        }
        cv.notify_all();
        th.join();
    }
    void loop() {
        std::unique_lock<std::mutex> lk(m);
        for (;;) {
            cv.wait(lk, [&] { return stop || (busy && task); });
            if (stop) return;
            auto f = std::move(task);
            task = nullptr;
            lk.unlock();
            std::exception_ptr e;
            try {
                f();
            } catch (...) {
                e = std::current_exception();
            }
            lk.lock();
            error = e;
            busy = false;
            cv.notify_all();
        }
    }
    void start(std::function<void()> f) {
        {
            std::lock_guard<std::mutex> lk(m);
            task = std::move(f);
            error = nullptr;
            busy = true;
        }
        cv.notify_all();
    }
    std::exception_ptr wait() {
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return !busy; });
        return error;
    }
    void cancel() noexcept {
        const char c = 1;
        ssize_t rc = ::write(cancel_write.get(), &c, 1);
        (void)rc;
    }
    void reset_cancel() noexcept {
        char buf[16];
        while (::read(cancel_read.get(), buf, sizeof buf) > 0) {
        }
    }
};

namespace {
// Thrown by the half of a split batch that the other half's failure stopped.
struct Cancelled {};
}  // namespace

Mesh::~Mesh() = default;

void Mesh::run(std::vector<Transfer>& batch, net::Deadline deadline, const char* what, const std::function<void(size_t)>& done) {
    // Two halves for two threads: receives and sends when each way has kDuplexMin bytes, else the
    // peers of the one direction in two sets (a broadcast root of 3+ ranks). Transfers of one peer
    // and direction stay in one half (they run in order).
    size_t out = 0, in = 0;
    for (const Transfer& t : batch) (t.send ? out : in) += t.bytes;
    std::vector<char> side(batch.size(), 0);  // 1: the helper's half
    bool split = false;
    if (out >= kDuplexMin && in >= kDuplexMin) {
        for (size_t i = 0; i < batch.size(); ++i) side[i] = batch[i].send ? 0 : 1;
        split = true;
    } else if (out + in >= 2 * kDuplexMin) {
        std::vector<size_t> load[2];
        load[0].assign(static_cast<size_t>(size_), 0);
        load[1].assign(static_cast<size_t>(size_), 0);
        for (const Transfer& t : batch) load[t.send ? 1 : 0][static_cast<size_t>(t.peer)] += t.bytes;
        size_t half[2] = {0, 0};
        std::vector<char> peer_side[2] = {std::vector<char>(static_cast<size_t>(size_), 0), std::vector<char>(static_cast<size_t>(size_), 0)};
        for (int d = 0; d < 2; ++d)
            for (size_t p = 0; p < load[d].size(); ++p) {
                if (!load[d][p]) continue;
                const int h = half[1] < half[0] ? 1 : 0;
                peer_side[d][p] = static_cast<char>(h);
                half[h] += load[d][p];
            }
        if (half[0] >= kDuplexMin && half[1] >= kDuplexMin) {
            for (size_t i = 0; i < batch.size(); ++i) side[i] = peer_side[batch[i].send ? 1 : 0][static_cast<size_t>(batch[i].peer)];
            split = true;
        }
    }
    if (!split) {
        run_here(batch, 0, deadline, what, done);
        return;
    }
    std::vector<Transfer> here, there;  // the caller's half, the helper's half
    std::vector<size_t> here_index, there_index;
    for (size_t i = 0; i < batch.size(); ++i) {
        (side[i] ? there : here).push_back(batch[i]);
        (side[i] ? there_index : here_index).push_back(i);
    }
    std::function<void(size_t)> done_there, done_here;
    if (done) {
        done_there = [&](size_t j) { done(there_index[j]); };
        done_here = [&](size_t j) { done(here_index[j]); };
    }
    two_threads([&](int cancel_fd) { run_here(here, 0, deadline, what, done_here, cancel_fd); },
                [&](int cancel_fd) { run_here(there, 0, deadline, what, done_there, cancel_fd); }, what);
}

void Mesh::close() noexcept {
    for (auto& fd : fds_)
        if (fd) ::shutdown(fd.get(), SHUT_RDWR);
}

void Mesh::run_lane(std::vector<Transfer>& batch, int lane, net::Deadline deadline, const char* what,
                    const std::function<void(size_t)>& done, int cancel_fd) {
    run_here(batch, lane, deadline, what, done, cancel_fd);
}

void Mesh::both_lanes(const std::function<void(int lane, int cancel_fd)>& f, const char* what) {
    two_threads([&](int cancel_fd) { f(0, cancel_fd); }, [&](int cancel_fd) { f(1, cancel_fd); }, what);
}

void Mesh::two_threads(const std::function<void(int)>& here, const std::function<void(int)>& there, const char* what) {
    if (!helper_) helper_ = std::make_unique<Helper>();
    // A failure of either side stops the other at once (not at the deadline); the error reported
    // is the one that came first. Nothing shows on the wire: the peers find out by themselves.
    const int cancel_fd = helper_->cancel_read.get();
    helper_->start([&] {
        try {
            there(cancel_fd);
        } catch (const Cancelled&) {
            throw;
        } catch (...) {
            helper_->cancel();
            throw;
        }
    });
    std::exception_ptr mine;
    bool mine_cancelled = false;
    try {
        here(cancel_fd);
    } catch (const Cancelled&) {
        mine_cancelled = true;
    } catch (...) {
        mine = std::current_exception();
        helper_->cancel();
    }
    // Always wait: the helper's side reads and writes the caller's buffers.
    std::exception_ptr theirs = helper_->wait();
    helper_->reset_cancel();
    if (mine) std::rethrow_exception(mine);
    if (theirs) {
        try {
            std::rethrow_exception(theirs);
        } catch (const Cancelled&) {
        }
    }
    if (mine_cancelled) fail(DS_ERR_INTERNAL, "%s: cancelled without an error", what);
}

void Mesh::run_here(std::vector<Transfer>& batch, int lane, net::Deadline deadline, const char* what,
                    const std::function<void(size_t)>& done, int cancel_fd) {
    struct State {
        size_t done = 0;  // bytes of the stream moved: the length word (framed), then the data
        uint32_t len = 0;
        bool fin = false;
    };
    const size_t nt = batch.size();
    std::vector<State> st(nt);
    size_t left = 0;
    for (size_t i = 0; i < nt; ++i) {
        Transfer& t = batch[i];
        if (t.peer < 0 || t.peer >= size_ || t.peer == rank_ || !fd_slot(lane, t.peer))
            fail(DS_ERR_INTERNAL, "comm mesh: transfer with rank %d", t.peer);
        if (t.framed) {
            if (t.send) st[i].len = static_cast<uint32_t>(t.bytes);
        } else if (t.bytes == 0) {
            st[i].fin = true;
            if (t.got) *t.got = 0;
            if (done) done(i);
            continue;
        }
        ++left;
    }
    // The transfer of (peer, direction) whose turn it is: the first unfinished one in batch order.
    auto current = [&](int32_t peer, bool send) -> long {
        for (size_t i = 0; i < nt; ++i)
            if (!st[i].fin && batch[i].peer == peer && batch[i].send == send) return static_cast<long>(i);
        return -1;
    };
    // Move what the socket takes or has now. Returns true when something moved.
    auto step = [&](size_t i) -> bool {
        Transfer& t = batch[i];
        State& s = st[i];
        const int fd = fd_slot(lane, t.peer).get();
        const size_t hdr = t.framed ? sizeof(uint32_t) : 0;
        bool moved = false;
        for (;;) {
            const size_t total = hdr + (t.framed && !t.send ? (s.done >= hdr ? s.len : 0) : t.bytes);
            if (s.done >= hdr && s.done == total) {
                s.fin = true;
                --left;
                if (t.got) *t.got = t.framed ? s.len : t.bytes;
                if (done) done(i);
                return true;
            }
            iovec iov[2];
            int nio = 0;
            if (s.done < hdr) {
                iov[nio++] = {reinterpret_cast<char*>(&s.len) + s.done, hdr - s.done};
                // A framed receive reads the length alone (the data's size depends on it).
                if (t.send && t.bytes) iov[nio++] = {t.buf, t.bytes};
            } else {
                iov[nio++] = {static_cast<char*>(t.buf) + (s.done - hdr), total - s.done};
            }
            ssize_t rc;
            if (t.send) {
                msghdr mh{};
                mh.msg_iov = iov;
                mh.msg_iovlen = static_cast<size_t>(nio);
                rc = ::sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
            } else {
                rc = ::recv(fd, iov[0].iov_base, iov[0].iov_len, MSG_DONTWAIT);
                if (rc == 0) fail(DS_ERR_COMM_PEER, "%s: connection to rank %d closed by the peer", what, t.peer);
            }
            if (rc < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) return moved;
                io_error(errno, t.peer, what, t.send ? "send" : "receive");
            }
            moved = true;
            s.done += static_cast<size_t>(rc);
            if (!t.send && t.framed && s.done == hdr && s.len > t.bytes)
                fail(DS_ERR_COMM, "%s: rank %d sent a message of %u bytes where at most %zu were expected", what, t.peer, s.len,
                     t.bytes);
        }
    };
    // First pass: sends go out at once, receives take what is there already.
    for (size_t i = 0; i < nt && left; ++i) {
        if (st[i].fin) continue;
        if (current(batch[i].peer, batch[i].send) == static_cast<long>(i)) step(i);
    }
    std::vector<pollfd> pfd;
    std::vector<int32_t> pfd_peer;
    while (left) {
        pfd.clear();
        pfd_peer.clear();
        for (int32_t p = 0; p < size_; ++p) {
            if (p == rank_) continue;
            short ev = 0;
            if (current(p, true) >= 0) ev |= POLLOUT;
            if (current(p, false) >= 0) ev |= POLLIN;
            if (!ev) continue;
            pfd.push_back({fd_slot(lane, p).get(), ev, 0});
            pfd_peer.push_back(p);
        }
        if (cancel_fd >= 0) {
            pfd.push_back({cancel_fd, POLLIN, 0});
            pfd_peer.push_back(-1);
        }
        int rc = ::poll(pfd.data(), pfd.size(), poll_ms(deadline));
        if (rc < 0) {
            if (errno == EINTR) continue;
            fail(DS_ERR_COMM, "%s: poll: %s", what, std::strerror(errno));
        }
        if (rc == 0) {
            if (net::Clock::now() < deadline) continue;
            std::string waiting;
            for (int32_t p : pfd_peer)
                if (p >= 0) waiting += (waiting.empty() ? "" : ", ") + std::to_string(p);
            fail(DS_ERR_COMM_TIMEOUT, "%s: timed out waiting for rank(s) %s", what, waiting.c_str());
        }
        for (size_t k = 0; k < pfd.size(); ++k) {
            const short re = pfd[k].revents;
            if (!re) continue;
            const int32_t p = pfd_peer[k];
            if (p < 0) throw Cancelled{};
            // An error or hang-up shows in the I/O call itself, which reports it.
            if (re & (POLLIN | POLLERR | POLLHUP))
                for (long i; (i = current(p, false)) >= 0;)
                    if (!step(static_cast<size_t>(i))) break;
            if (re & (POLLOUT | POLLERR | POLLHUP))
                for (long i; (i = current(p, true)) >= 0;)
                    if (!step(static_cast<size_t>(i))) break;
        }
    }
}

}  // namespace ds::comm
