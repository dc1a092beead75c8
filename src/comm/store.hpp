// Rendezvous key-value stores. Rank 0 serves a TCP store; every rank (rank 0 included) is a client.
// A file store in a shared directory is the alternative for clusters with a shared filesystem.
// Gloo's rendezvous sees these through an adapter (gloo_backend.cpp); the NCCL unique id travels
// through the same store.
//
// All calls throw ds::Error: DS_ERR_COMM_TIMEOUT when a key does not appear in time, DS_ERR_COMM_PEER
// when the server went away, DS_ERR_COMM / DS_ERR_IO otherwise.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "comm/net.hpp"

namespace ds::comm {

class Store {
public:
    virtual ~Store() = default;
    virtual void set(const std::string& key, const std::vector<char>& value) = 0;
    // Blocks until key exists (or throws DS_ERR_COMM_TIMEOUT after timeout_ms).
    virtual std::vector<char> get(const std::string& key, int64_t timeout_ms) = 0;
    virtual void wait(const std::vector<std::string>& keys, int64_t timeout_ms) = 0;
    // "tcp://host:port" or "file:///dir/prefix", for messages.
    virtual std::string describe() const = 0;
};

// Every key is prefixed (sub-communicators and backends get their own namespace).
class PrefixStore final : public Store {
public:
    PrefixStore(std::shared_ptr<Store> base, std::string prefix) : base_(std::move(base)), prefix_(std::move(prefix)) {}
    void set(const std::string& key, const std::vector<char>& value) override { base_->set(prefix_ + key, value); }
    std::vector<char> get(const std::string& key, int64_t timeout_ms) override { return base_->get(prefix_ + key, timeout_ms); }
    void wait(const std::vector<std::string>& keys, int64_t timeout_ms) override;
    std::string describe() const override { return base_->describe() + " [" + prefix_ + "]"; }

private:
    std::shared_ptr<Store> base_;
    std::string prefix_;
};

// The server half of the TCP store, run by rank 0 on its own thread.
class TcpStoreServer {
public:
    // Serves on an already listening socket (from listen_any, or inherited from dsrun).
    explicit TcpStoreServer(net::Fd listener);
    ~TcpStoreServer();
    int port() const { return port_; }
    // Stop accepting work once every client has disconnected, or after drain_ms at the latest.
    void stop(int64_t drain_ms) noexcept;

private:
    void run() noexcept;
    net::Fd listener_;
    net::Fd wake_read_, wake_write_;
    int port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<int64_t> drain_deadline_ms_{0};
    std::thread thread_;
};

// Client of a TcpStoreServer. One persistent connection; requests are serialised.
class TcpStore final : public Store {
public:
    // Connects (retrying until connect_timeout_ms: the server may start later than this client).
    TcpStore(std::string host, int port, int64_t connect_timeout_ms);
    void set(const std::string& key, const std::vector<char>& value) override;
    std::vector<char> get(const std::string& key, int64_t timeout_ms) override;
    void wait(const std::vector<std::string>& keys, int64_t timeout_ms) override;
    std::string describe() const override;
    // Close the connection (the server counts it as gone). Later calls fail with DS_ERR_STATE.
    void close() noexcept;

private:
    std::vector<char> request(uint8_t op, const std::string& key, const std::vector<char>& value, int64_t timeout_ms);
    std::string host_;
    int port_;
    std::mutex mutex_;
    net::Fd fd_;
};

// Keys are files in <dir>/<prefix>/, written to a temporary name and renamed (atomic on POSIX
// filesystems, NFS included). Rank 0 creates the prefix directory and fails if it exists already
// (a previous job with the same run id); remove() deletes it when the job is done.
class FileStore final : public Store {
public:
    FileStore(const std::string& dir, const std::string& prefix, int32_t rank, int64_t timeout_ms);
    void set(const std::string& key, const std::vector<char>& value) override;
    std::vector<char> get(const std::string& key, int64_t timeout_ms) override;
    void wait(const std::vector<std::string>& keys, int64_t timeout_ms) override;
    std::string describe() const override { return "file://" + path_; }
    // Delete the prefix directory and its keys (rank 0, after the last use by every rank).
    void remove() noexcept;

private:
    std::string file_for(const std::string& key) const;
    std::string path_;
    int32_t rank_;
};

}  // namespace ds::comm
