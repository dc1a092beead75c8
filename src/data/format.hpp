// The token dataset file (docs/data.md): writer, memory-mapped reader, and per-sample metric files.
//
//   bytes 0..63   header: magic "DSTOKENS", version, token width, n_documents, n_tokens,
//                 tokens_offset (64), offsets_offset, vocab_size, tokens CRC-32C, header CRC-32C
//   64 ..         n_tokens ids, little endian u16 or u32
//   offsets_offset (8-aligned)   n_documents + 1 u64 token positions: offsets[0] = 0, non-decreasing,
//                 offsets[n_documents] = n_tokens; document i is [offsets[i], offsets[i+1])
//   the file ends right after the offsets.
//
// The offsets follow the tokens so that a writer streams in one pass with bounded memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ds::data {

constexpr uint32_t kFormatVersion = 1;
constexpr uint64_t kHeaderBytes = 64;

struct Header {
    uint32_t version = kFormatVersion;
    uint32_t token_bytes = 2;
    uint64_t n_documents = 0;
    uint64_t n_tokens = 0;
    uint64_t tokens_offset = kHeaderBytes;
    uint64_t offsets_offset = 0;
    int64_t vocab_size = 0;
    uint32_t tokens_crc = 0;
    uint32_t header_crc = 0;

    void encode(unsigned char out[kHeaderBytes]);  // computes header_crc
};

// Writes a dataset through a temporary file; commit() renames it into place. Throws ds::Error.
class Writer {
public:
    Writer(std::string path, uint32_t token_bytes, int64_t vocab_size, uint64_t buffer_bytes);
    ~Writer();  // removes the temporary files unless committed
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    void append(const int32_t* ids, uint64_t n);
    void end_document();
    void commit();

    bool committed() const { return state_ == State::Committed; }
    uint64_t n_documents() const { return n_documents_; }
    uint64_t n_tokens() const { return n_tokens_; }
    uint64_t bytes_written() const;
    const std::string& path() const { return path_; }

private:
    enum class State { Open, Committed, Failed };
    void check_open(const char* what) const;
    void flush_tokens();
    void flush_offsets();
    void write_all(int fd, const void* p, size_t n, const std::string& what);
    [[noreturn]] void io_fail(const std::string& what, int err);

    std::string path_, tmp_path_;
    int fd_ = -1, idx_fd_ = -1;
    uint32_t token_bytes_;
    int64_t vocab_size_;
    std::vector<unsigned char> buf_;
    size_t buf_used_ = 0;
    std::vector<uint64_t> offsets_buf_;
    uint64_t n_documents_ = 0, n_tokens_ = 0;
    uint64_t doc_start_ = 0;
    bool doc_open_ = false;
    uint32_t crc_ = 0;
    State state_ = State::Open;
};

// A read-only, memory-mapped dataset. Immutable; reads are thread-safe.
class Dataset {
public:
    enum Verify { kHeader = 0, kOffsets = 1, kFull = 2 };
    static std::shared_ptr<Dataset> open(const std::string& path, int verify, uint64_t max_resident_bytes);
    ~Dataset();
    Dataset(const Dataset&) = delete;
    Dataset& operator=(const Dataset&) = delete;

    const std::string& path() const { return path_; }
    const Header& header() const { return h_; }
    uint64_t n_documents() const { return h_.n_documents; }
    uint64_t n_tokens() const { return h_.n_tokens; }
    uint64_t file_bytes() const { return size_; }

    // Token range [begin, end) of document i; throws DS_ERR_CORRUPT for bad offsets.
    void document(uint64_t i, uint64_t* begin, uint64_t* end) const;
    uint64_t document_length(uint64_t i) const {
        uint64_t b, e;
        document(i, &b, &e);
        return e - b;
    }
    // Copy n ids from position first (caller checked the range) into out, widened.
    void read(uint64_t first, uint64_t n, int32_t* out) const;
    void read(uint64_t first, uint64_t n, int64_t* out) const;
    // All document lengths (n_documents values).
    std::vector<uint32_t> document_lengths() const;

private:
    Dataset() = default;
    template <class T>
    void read_impl(uint64_t first, uint64_t n, T* out) const;
    void note_read(uint64_t bytes) const;
    [[noreturn]] void corrupt(uint64_t offset, const std::string& what) const;
    uint64_t offset_at(uint64_t i) const;

    std::string path_;
    Header h_;
    const unsigned char* base_ = nullptr;
    uint64_t size_ = 0;
    uint64_t max_resident_ = 0;
    mutable std::atomic<uint64_t> since_trim_{0};
};

// Per-sample int64 metric files ("DSMETRIC"): write and read whole.
void write_metric_file(const std::string& path, const int64_t* values, uint64_t n);
std::vector<int64_t> read_metric_file(const std::string& path);

}  // namespace ds::data
