#include "comm/store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <list>
#include <map>

#include "core/error.hpp"
#include "core/log.hpp"

namespace ds::comm {

namespace {

// Wire protocol (little-endian host order; both ends are this library):
//   handshake: client sends kMagic (8 bytes), server answers kMagic.
//   request:   u8 op | u32 key_len | key | u64 timeout_ms | u32 value_len | value
//   response:  u8 status | u32 len | payload
constexpr char kMagic[8] = {'D', 'S', 'S', 'T', 'O', 'R', 'E', '1'};
enum Op : uint8_t { kSet = 1, kGet = 2, kWait = 3 };
enum Reply : uint8_t { kOk = 0, kTimeout = 1, kError = 2 };
constexpr uint32_t kMaxKey = 1u << 16;
constexpr uint32_t kMaxValue = 64u << 20;

void put_u32(std::vector<char>& b, uint32_t v) { b.insert(b.end(), reinterpret_cast<char*>(&v), reinterpret_cast<char*>(&v) + 4); }
void put_u64(std::vector<char>& b, uint64_t v) { b.insert(b.end(), reinterpret_cast<char*>(&v), reinterpret_cast<char*>(&v) + 8); }

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(net::Clock::now().time_since_epoch()).count();
}

}  // namespace

void PrefixStore::wait(const std::vector<std::string>& keys, int64_t timeout_ms) {
    std::vector<std::string> full;
    full.reserve(keys.size());
    for (const auto& k : keys) full.push_back(prefix_ + k);
    base_->wait(full, timeout_ms);
}

// ------------------------------------------------------------------------------------------------
// Server
// ------------------------------------------------------------------------------------------------

TcpStoreServer::TcpStoreServer(net::Fd listener) : listener_(std::move(listener)) {
    port_ = net::local_port(listener_.get());
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) fail(DS_ERR_COMM, "pipe2: %s", std::strerror(errno));
    wake_read_.reset(p[0]);
    wake_write_.reset(p[1]);
    net::set_nonblocking(listener_.get(), true);
    thread_ = std::thread([this] { run(); });
}

TcpStoreServer::~TcpStoreServer() { stop(0); }

void TcpStoreServer::stop(int64_t drain_ms) noexcept {
    if (!thread_.joinable()) return;
    drain_deadline_ms_ = now_ms() + drain_ms;
    stopping_ = true;
    char c = 1;
    (void)!::write(wake_write_.get(), &c, 1);
    thread_.join();
}

namespace {

struct Client {
    net::Fd fd;
    std::vector<char> in;
    std::vector<char> out;
    bool handshaken = false;
    bool blocked = false;  // a GET/WAIT is pending: no further requests are parsed
    bool dead = false;
};

struct Waiter {
    Client* client;
    uint8_t op;
    std::string key;
    int64_t deadline_ms;
};

void reply(Client& c, uint8_t status, const char* data, uint32_t len) {
    c.out.push_back(static_cast<char>(status));
    put_u32(c.out, len);
    c.out.insert(c.out.end(), data, data + len);
}

}  // namespace

void TcpStoreServer::run() noexcept {
    try {
        std::map<std::string, std::vector<char>> kv;
        std::list<Client> clients;
        std::list<Waiter> waiters;
        std::vector<pollfd> fds;

        auto answer_waiters = [&](const std::string& key) {
            for (auto it = waiters.begin(); it != waiters.end();) {
                if (it->key == key) {
                    const auto& v = kv[key];
                    if (it->op == kGet)
                        reply(*it->client, kOk, v.data(), static_cast<uint32_t>(v.size()));
                    else
                        reply(*it->client, kOk, nullptr, 0);
                    it->client->blocked = false;
                    it = waiters.erase(it);
                } else {
                    ++it;
                }
            }
        };

        // Parse and execute complete requests from c.in.
        auto process = [&](Client& c) {
            size_t pos = 0;
            if (!c.handshaken) {
                if (c.in.size() < sizeof kMagic) return;
                if (std::memcmp(c.in.data(), kMagic, sizeof kMagic) != 0) {
                    c.dead = true;  // not one of ours (a port clash): drop it
                    return;
                }
                c.out.insert(c.out.end(), kMagic, kMagic + sizeof kMagic);
                c.handshaken = true;
                pos = sizeof kMagic;
            }
            while (!c.blocked && !c.dead) {
                size_t avail = c.in.size() - pos;
                if (avail < 5) break;
                uint8_t op = static_cast<uint8_t>(c.in[pos]);
                uint32_t klen;
                std::memcpy(&klen, &c.in[pos + 1], 4);
                if (klen > kMaxKey) {
                    c.dead = true;
                    break;
                }
                if (avail < 5 + klen + 12) break;
                uint64_t timeout;
                uint32_t vlen;
                std::memcpy(&timeout, &c.in[pos + 5 + klen], 8);
                std::memcpy(&vlen, &c.in[pos + 13 + klen], 4);
                if (vlen > kMaxValue) {
                    c.dead = true;
                    break;
                }
                if (avail < 5 + klen + 12 + vlen) break;
                std::string key(&c.in[pos + 5], klen);
                const char* val = &c.in[pos + 17 + klen];
                pos += 17 + klen + vlen;
                if (op == kSet) {
                    kv[key].assign(val, val + vlen);
                    reply(c, kOk, nullptr, 0);
                    answer_waiters(key);
                } else if (op == kGet || op == kWait) {
                    auto it = kv.find(key);
                    if (it != kv.end()) {
                        if (op == kGet)
                            reply(c, kOk, it->second.data(), static_cast<uint32_t>(it->second.size()));
                        else
                            reply(c, kOk, nullptr, 0);
                    } else {
                        c.blocked = true;
                        waiters.push_back({&c, op, key, now_ms() + static_cast<int64_t>(timeout)});
                    }
                } else {
                    const char msg[] = "unknown store operation";
                    reply(c, kError, msg, sizeof msg - 1);
                }
            }
            c.in.erase(c.in.begin(), c.in.begin() + static_cast<long>(pos));
        };

        for (;;) {
            if (stopping_ && (clients.empty() || now_ms() >= drain_deadline_ms_)) break;
            // Expired waiters answer "timeout".
            int64_t now = now_ms();
            int64_t next = now + 1000;
            for (auto it = waiters.begin(); it != waiters.end();) {
                if (it->deadline_ms <= now) {
                    const char msg[] = "timed out waiting for the key";
                    reply(*it->client, kTimeout, msg, sizeof msg - 1);
                    it->client->blocked = false;
                    it = waiters.erase(it);
                } else {
                    next = std::min(next, it->deadline_ms);
                    ++it;
                }
            }
            if (stopping_) next = std::min<int64_t>(next, drain_deadline_ms_);
            fds.clear();
            fds.push_back({listener_.get(), POLLIN, 0});
            fds.push_back({wake_read_.get(), POLLIN, 0});
            for (auto& c : clients) {
                // A client may have become unblocked above: process what it already sent.
                if (!c.blocked && !c.in.empty()) process(c);
                short ev = POLLIN;
                if (!c.out.empty()) ev |= POLLOUT;
                fds.push_back({c.fd.get(), ev, 0});
            }
            int timeout = static_cast<int>(std::max<int64_t>(0, next - now_ms()));
            int n = ::poll(fds.data(), fds.size(), timeout);
            if (n < 0) {
                if (errno == EINTR) continue;
                log(DS_LOG_ERROR, "rendezvous store: poll failed: %s", std::strerror(errno));
                break;
            }
            if (fds[1].revents & POLLIN) {
                char buf[64];
                while (::read(wake_read_.get(), buf, sizeof buf) > 0) {
                }
            }
            if (fds[0].revents & POLLIN) {
                for (;;) {
                    int cfd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) break;
                    net::set_nodelay(cfd);
                    clients.emplace_back();
                    clients.back().fd.reset(cfd);
                }
            }
            size_t i = 2;
            for (auto& c : clients) {
                if (i >= fds.size()) break;
                const pollfd& p = fds[i++];
                if (p.fd != c.fd.get()) continue;  // accepted during this round: next round
                if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                    char buf[65536];
                    for (;;) {
                        ssize_t r = ::recv(c.fd.get(), buf, sizeof buf, 0);
                        if (r > 0) {
                            c.in.insert(c.in.end(), buf, buf + r);
                            continue;
                        }
                        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) c.dead = true;
                        break;
                    }
                    if (!c.dead) process(c);
                }
                if (!c.dead && !c.out.empty()) {
                    ssize_t w = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
                    if (w > 0)
                        c.out.erase(c.out.begin(), c.out.begin() + w);
                    else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                        c.dead = true;
                }
            }
            for (auto it = clients.begin(); it != clients.end();) {
                if (it->dead) {
                    Client* dead = &*it;
                    waiters.remove_if([dead](const Waiter& w) { return w.client == dead; });
                    it = clients.erase(it);
                } else {
                    ++it;
                }
            }
        }
    } catch (const std::exception& e) {
        log(DS_LOG_ERROR, "rendezvous store server stopped: %s", e.what());
    } catch (...) {
        log(DS_LOG_ERROR, "rendezvous store server stopped: unknown exception");
    }
}

// ------------------------------------------------------------------------------------------------
// Client
// ------------------------------------------------------------------------------------------------

TcpStore::TcpStore(std::string host, int port, int64_t connect_timeout_ms) : host_(std::move(host)), port_(port) {
    std::string what = "rendezvous store " + describe();
    auto deadline = net::deadline_in(connect_timeout_ms);
    for (;;) {
        fd_ = net::connect_retry(host_, port_, deadline, what.c_str());
        try {
            net::send_all(fd_.get(), kMagic, sizeof kMagic, deadline, what.c_str());
            char answer[sizeof kMagic];
            net::recv_all(fd_.get(), answer, sizeof answer, deadline, what.c_str());
            if (std::memcmp(answer, kMagic, sizeof kMagic) != 0)
                fail(DS_ERR_COMM, "%s: the server at this port is not a dsabi rendezvous store (wrong MASTER_PORT?)", what.c_str());
            return;
        } catch (const Error& e) {
            // The listener of a store that is shutting down, or a half-open connection: retry.
            if (e.status() != DS_ERR_COMM_PEER || net::Clock::now() >= deadline) throw;
        }
    }
}

std::string TcpStore::describe() const { return format("tcp://%s:%d", host_.c_str(), port_); }

void TcpStore::close() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    fd_.reset();
}

std::vector<char> TcpStore::request(uint8_t op, const std::string& key, const std::vector<char>& value, int64_t timeout_ms) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!fd_) fail(DS_ERR_STATE, "the rendezvous store connection is closed");
    std::string what = "rendezvous store " + describe();
    std::vector<char> msg;
    msg.reserve(17 + key.size() + value.size());
    msg.push_back(static_cast<char>(op));
    put_u32(msg, static_cast<uint32_t>(key.size()));
    msg.insert(msg.end(), key.begin(), key.end());
    put_u64(msg, static_cast<uint64_t>(timeout_ms < 0 ? 0 : timeout_ms));
    put_u32(msg, static_cast<uint32_t>(value.size()));
    msg.insert(msg.end(), value.begin(), value.end());
    // The server answers "timeout" itself; the extra margin covers a slow or dead server.
    auto deadline = net::deadline_in((timeout_ms < 0 ? 0 : timeout_ms) + 10000);
    try {
        net::send_all(fd_.get(), msg.data(), msg.size(), deadline, what.c_str());
        char head[5];
        net::recv_all(fd_.get(), head, 5, deadline, what.c_str());
        uint32_t len;
        std::memcpy(&len, head + 1, 4);
        if (len > kMaxValue) fail(DS_ERR_COMM, "%s: malformed reply (length %u)", what.c_str(), len);
        std::vector<char> payload(len);
        if (len) net::recv_all(fd_.get(), payload.data(), len, deadline, what.c_str());
        if (head[0] == kTimeout)
            fail(DS_ERR_COMM_TIMEOUT, "%s: key '%s' did not appear within %lld ms (a rank did not arrive?)", what.c_str(),
                 key.c_str(), static_cast<long long>(timeout_ms));
        if (head[0] != kOk)
            fail(DS_ERR_COMM, "%s: %.*s", what.c_str(), static_cast<int>(payload.size()), payload.data());
        return payload;
    } catch (const Error& e) {
        if (e.status() == DS_ERR_COMM_PEER)
            fail(DS_ERR_COMM_PEER, "%s (rank 0, which serves the store, exited or closed it)", e.what());
        throw;
    }
}

void TcpStore::set(const std::string& key, const std::vector<char>& value) { request(kSet, key, value, 0); }

std::vector<char> TcpStore::get(const std::string& key, int64_t timeout_ms) { return request(kGet, key, {}, timeout_ms); }

void TcpStore::wait(const std::vector<std::string>& keys, int64_t timeout_ms) {
    auto deadline = net::deadline_in(timeout_ms);
    for (const auto& k : keys) request(kWait, k, {}, net::ms_left(deadline));
}

// ------------------------------------------------------------------------------------------------
// File store
// ------------------------------------------------------------------------------------------------

FileStore::FileStore(const std::string& dir, const std::string& prefix, int32_t rank, int64_t timeout_ms) : rank_(rank) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        fail(DS_ERR_IO, "store_dir '%s' is not an existing directory", dir.c_str());
    path_ = dir + "/" + prefix;
    if (rank == 0) {
        if (::mkdir(path_.c_str(), 0777) != 0) {
            if (errno == EEXIST)
                fail(DS_ERR_COMM, "store directory '%s' exists already: a previous job used the run id '%s'. Remove it, or "
                     "give every job a unique run id (options.store_prefix / $DSABI_RUN_ID)", path_.c_str(), prefix.c_str());
            fail(DS_ERR_IO, "cannot create the store directory '%s': %s", path_.c_str(), std::strerror(errno));
        }
        set("__ready", {'1'});
    } else {
        get("__ready", timeout_ms);
    }
}

std::string FileStore::file_for(const std::string& key) const {
    std::string name;
    name.reserve(key.size() + 8);
    static const char hex[] = "0123456789abcdef";
    for (unsigned char c : key) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-') {
            name.push_back(static_cast<char>(c));
        } else {
            name.push_back('%');
            name.push_back(hex[c >> 4]);
            name.push_back(hex[c & 15]);
        }
    }
    return path_ + "/" + name;
}

void FileStore::set(const std::string& key, const std::vector<char>& value) {
    std::string final_path = file_for(key);
    std::string tmp = format("%s.tmp.%d.%d", final_path.c_str(), rank_, static_cast<int>(::getpid()));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) fail(DS_ERR_IO, "file store: cannot create '%s': %s", tmp.c_str(), std::strerror(errno));
    size_t off = 0;
    while (off < value.size()) {
        ssize_t w = ::write(fd, value.data() + off, value.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            int e = errno;
            ::close(fd);
            fail(DS_ERR_IO, "file store: write '%s': %s", tmp.c_str(), std::strerror(e));
        }
        off += static_cast<size_t>(w);
    }
    ::fsync(fd);
    ::close(fd);
    if (::rename(tmp.c_str(), final_path.c_str()) != 0)
        fail(DS_ERR_IO, "file store: rename '%s': %s", tmp.c_str(), std::strerror(errno));
}

std::vector<char> FileStore::get(const std::string& key, int64_t timeout_ms) {
    std::string p = file_for(key);
    auto deadline = net::deadline_in(timeout_ms);
    auto sleep = std::chrono::milliseconds(1);
    for (;;) {
        int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            std::vector<char> out;
            char buf[65536];
            for (;;) {
                ssize_t r = ::read(fd, buf, sizeof buf);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) break;
                out.insert(out.end(), buf, buf + r);
            }
            ::close(fd);
            return out;
        }
        if (errno != ENOENT) fail(DS_ERR_IO, "file store: open '%s': %s", p.c_str(), std::strerror(errno));
        if (net::Clock::now() >= deadline)
            fail(DS_ERR_COMM_TIMEOUT, "file store %s: key '%s' did not appear within %lld ms (a rank did not arrive?)",
                 describe().c_str(), key.c_str(), static_cast<long long>(timeout_ms));
        std::this_thread::sleep_for(sleep);
        if (sleep < std::chrono::milliseconds(50)) sleep *= 2;
    }
}

void FileStore::wait(const std::vector<std::string>& keys, int64_t timeout_ms) {
    auto deadline = net::deadline_in(timeout_ms);
    for (const auto& k : keys) get(k, net::ms_left(deadline));
}

void FileStore::remove() noexcept {
    DIR* d = ::opendir(path_.c_str());
    if (!d) return;
    while (dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        ::unlink((path_ + "/" + e->d_name).c_str());
    }
    ::closedir(d);
    ::rmdir(path_.c_str());
}

}  // namespace ds::comm
