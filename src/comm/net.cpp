#include "comm/net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "core/error.hpp"

namespace ds::comm::net {

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
}

void Fd::reset(int fd) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

void set_nonblocking(int fd, bool on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) fail(DS_ERR_COMM, "fcntl(F_GETFL): %s", std::strerror(errno));
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (fcntl(fd, F_SETFL, flags) < 0) fail(DS_ERR_COMM, "fcntl(F_SETFL): %s", std::strerror(errno));
}

void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Fd listen_any(int port, int backlog) {
    int one = 1;
    // Dual-stack first, so that clients resolving the master to an IPv6 address also reach us.
    Fd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd) {
        int zero = 0;
        setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_addr = in6addr_any;
        a.sin6_port = htons(static_cast<uint16_t>(port));
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd.get(), backlog) == 0)
            return fd;
        if (errno == EADDRINUSE)
            fail(DS_ERR_COMM, "port %d is already in use on this host (another job, or a previous run still in TIME_WAIT?); "
                 "choose another MASTER_PORT", port);
        fd.reset();
    }
    fd = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) fail(DS_ERR_COMM, "socket(): %s", std::strerror(errno));
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        int e = errno;
        if (e == EADDRINUSE)
            fail(DS_ERR_COMM, "port %d is already in use on this host; choose another MASTER_PORT", port);
        fail(DS_ERR_COMM, "bind to port %d: %s", port, std::strerror(e));
    }
    if (::listen(fd.get(), backlog) != 0) fail(DS_ERR_COMM, "listen on port %d: %s", port, std::strerror(errno));
    return fd;
}

int local_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return -1;
}

namespace {

struct AddrInfo {
    addrinfo* list = nullptr;
    ~AddrInfo() {
        if (list) freeaddrinfo(list);
    }
};

int resolve(const std::string& host, int port, int socktype, AddrInfo& out) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    std::string service = std::to_string(port);
    return getaddrinfo(host.c_str(), service.c_str(), &hints, &out.list);
}

// Non-blocking connect bounded by the deadline. Returns 0 or an errno value.
int connect_one(int fd, const sockaddr* addr, socklen_t len, Deadline deadline) {
    set_nonblocking(fd, true);
    int rc = ::connect(fd, addr, len);
    if (rc != 0 && errno != EINPROGRESS) return errno;
    if (rc != 0) {
        pollfd p{fd, POLLOUT, 0};
        int64_t left = ms_left(deadline);
        int n = ::poll(&p, 1, static_cast<int>(left > 1000 ? 1000 : left));
        if (n == 0) return ETIMEDOUT;
        if (n < 0) return errno;
        int err = 0;
        socklen_t elen = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) return err;
    }
    set_nonblocking(fd, false);
    return 0;
}

}  // namespace

Fd connect_retry(const std::string& host, int port, Deadline deadline, const char* what) {
    std::string last = "no attempt was made";
    auto sleep_ms = std::chrono::milliseconds(5);
    for (;;) {
        AddrInfo ai;
        int grc = resolve(host, port, SOCK_STREAM, ai);
        if (grc != 0) {
            last = format("cannot resolve '%s': %s", host.c_str(), gai_strerror(grc));
        } else {
            for (addrinfo* p = ai.list; p; p = p->ai_next) {
                Fd fd(::socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol));
                if (!fd) {
                    last = format("socket(): %s", std::strerror(errno));
                    continue;
                }
                int err = connect_one(fd.get(), p->ai_addr, p->ai_addrlen, deadline);
                if (err == 0) {
                    set_nodelay(fd.get());
                    return fd;
                }
                last = std::strerror(err);
            }
        }
        if (Clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(sleep_ms, std::chrono::milliseconds(ms_left(deadline) + 1)));
        if (sleep_ms < std::chrono::milliseconds(200)) sleep_ms *= 2;
        if (Clock::now() >= deadline) break;
    }
    fail(DS_ERR_COMM_TIMEOUT, "%s: could not connect to %s:%d before the timeout (last error: %s)", what, host.c_str(), port,
         last.c_str());
}

namespace {

// Wait until fd is readable/writable or the deadline passes.
void wait_io(int fd, short events, Deadline deadline, const char* what, const char* verb) {
    for (;;) {
        int64_t left = ms_left(deadline);
        pollfd p{fd, events, 0};
        int n = ::poll(&p, 1, static_cast<int>(left > 60000 ? 60000 : left));
        if (n > 0) return;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(DS_ERR_COMM, "%s: poll: %s", what, std::strerror(errno));
        if (Clock::now() >= deadline) fail(DS_ERR_COMM_TIMEOUT, "%s: timed out waiting to %s", what, verb);
    }
}

}  // namespace

void send_all(int fd, const void* data, size_t n, Deadline deadline, const char* what) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t rc = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (rc > 0) {
            p += rc;
            n -= static_cast<size_t>(rc);
            continue;
        }
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wait_io(fd, POLLOUT, deadline, what, "send");
            continue;
        }
        int e = errno;
        if (e == EPIPE || e == ECONNRESET || e == ENOTCONN)
            fail(DS_ERR_COMM_PEER, "%s: connection closed by the peer (%s)", what, std::strerror(e));
        fail(DS_ERR_COMM, "%s: send: %s", what, std::strerror(e));
    }
}

void recv_all(int fd, void* data, size_t n, Deadline deadline, const char* what) {
    char* p = static_cast<char*>(data);
    while (n > 0) {
        ssize_t rc = ::recv(fd, p, n, MSG_DONTWAIT);
        if (rc > 0) {
            p += rc;
            n -= static_cast<size_t>(rc);
            continue;
        }
        if (rc == 0) fail(DS_ERR_COMM_PEER, "%s: connection closed by the peer", what);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            wait_io(fd, POLLIN, deadline, what, "receive");
            continue;
        }
        int e = errno;
        if (e == ECONNRESET || e == ENOTCONN) fail(DS_ERR_COMM_PEER, "%s: connection reset by the peer (%s)", what, std::strerror(e));
        fail(DS_ERR_COMM, "%s: recv: %s", what, std::strerror(e));
    }
}

std::string source_address_for(const std::string& host, int port) {
    AddrInfo ai;
    int grc = resolve(host, port > 0 ? port : 9, SOCK_DGRAM, ai);
    if (grc != 0) fail(DS_ERR_COMM, "cannot resolve master address '%s': %s", host.c_str(), gai_strerror(grc));
    for (addrinfo* p = ai.list; p; p = p->ai_next) {
        Fd fd(::socket(p->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!fd) continue;
        // A UDP connect sends nothing: it only asks the kernel which route (and source) it would use.
        if (::connect(fd.get(), p->ai_addr, p->ai_addrlen) != 0) continue;
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) continue;
        char buf[INET6_ADDRSTRLEN] = {0};
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
        else
            continue;
        return buf;
    }
    fail(DS_ERR_COMM, "no route from this host to the master address '%s'", host.c_str());
}

}  // namespace ds::comm::net
