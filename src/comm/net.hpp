// Small POSIX socket helpers for the rendezvous store and the launcher-facing bootstrap.
// Every function throws ds::Error; timeouts are absolute deadlines on the steady clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ds::comm::net {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

inline Deadline deadline_in(int64_t ms) { return Clock::now() + std::chrono::milliseconds(ms); }
inline int64_t ms_left(Deadline d) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(d - Clock::now()).count();
    return left > 0 ? left : 0;
}

// Owning file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& o) noexcept : fd_(o.release()) {}
    Fd& operator=(Fd&& o) noexcept;
    ~Fd() { reset(); }
    int get() const { return fd_; }
    int release() {
        int f = fd_;
        fd_ = -1;
        return f;
    }
    void reset(int fd = -1) noexcept;
    explicit operator bool() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

// Listen on all interfaces (IPv6 dual-stack when available, else IPv4) at port (0: ephemeral).
// Throws DS_ERR_COMM naming the port when it is taken.
Fd listen_any(int port, int backlog = 128);
// Port a bound socket listens on.
int local_port(int fd);

// Connect to host:port, retrying refused / unreachable connections until the deadline. Throws
// DS_ERR_COMM_TIMEOUT naming what it tried and the last error.
Fd connect_retry(const std::string& host, int port, Deadline deadline, const char* what);

// Send / receive exactly n bytes before the deadline. A closed or reset connection throws
// DS_ERR_COMM_PEER, an expired deadline DS_ERR_COMM_TIMEOUT; `what` names the peer in messages.
void send_all(int fd, const void* data, size_t n, Deadline deadline, const char* what);
void recv_all(int fd, void* data, size_t n, Deadline deadline, const char* what);

// The local address this host uses to reach host (the source address of a route lookup), as text.
std::string source_address_for(const std::string& host, int port);

void set_nonblocking(int fd, bool on);
void set_nodelay(int fd);

}  // namespace ds::comm::net
