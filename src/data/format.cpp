// Token dataset files: see format.hpp and docs/data.md.
#include "data/format.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.hpp"
#include "data/crc32c.hpp"

namespace ds::data {

namespace {

const unsigned char kMagic[8] = {'D', 'S', 'T', 'O', 'K', 'E', 'N', 'S'};
const unsigned char kMetricMagic[8] = {'D', 'S', 'M', 'E', 'T', 'R', 'I', 'C'};
constexpr uint64_t kMetricHeaderBytes = 32;

void put32(unsigned char* p, uint32_t v) { std::memcpy(p, &v, 4); }  // little-endian hosts only
void put64(unsigned char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t get32(const unsigned char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
uint64_t get64(const unsigned char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

std::string errno_text(int err) { return std::strerror(err); }

std::atomic<uint64_t> g_tmp_counter{0};

}  // namespace

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the dataset format is little endian");

void Header::encode(unsigned char out[kHeaderBytes]) {
    std::memset(out, 0, kHeaderBytes);
    std::memcpy(out, kMagic, 8);
    put32(out + 8, version);
    put32(out + 12, token_bytes);
    put64(out + 16, n_documents);
    put64(out + 24, n_tokens);
    put64(out + 32, tokens_offset);
    put64(out + 40, offsets_offset);
    put64(out + 48, static_cast<uint64_t>(vocab_size));
    put32(out + 56, tokens_crc);
    header_crc = crc32c(0, out, 60);
    put32(out + 60, header_crc);
}

// ---- Writer ----------------------------------------------------------------------------------

Writer::Writer(std::string path, uint32_t token_bytes, int64_t vocab_size, uint64_t buffer_bytes)
    : path_(std::move(path)), token_bytes_(token_bytes), vocab_size_(vocab_size) {
    if (token_bytes_ != 2 && token_bytes_ != 4)
        fail(DS_ERR_INVALID_ARG, "token_bytes=%u must be 2 (u16) or 4 (u32)", token_bytes_);
    if (vocab_size_ < 0) fail(DS_ERR_INVALID_ARG, "vocab_size=%lld is negative", static_cast<long long>(vocab_size_));
    if (token_bytes_ == 2 && vocab_size_ > 65536)
        fail(DS_ERR_INVALID_ARG, "vocab_size=%lld does not fit in u16 ids; use token_bytes=4",
             static_cast<long long>(vocab_size_));
    if (buffer_bytes == 0) buffer_bytes = 8u << 20;
    if (buffer_bytes < 4096) buffer_bytes = 4096;
    buf_.resize(static_cast<size_t>(buffer_bytes));
    offsets_buf_.reserve(8192);

    tmp_path_ = path_ + ".tmp." + std::to_string(getpid()) + "." + std::to_string(g_tmp_counter++);
    fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        int err = errno;
        fail(DS_ERR_IO, "cannot create '%s' (temporary file of '%s'): %s", tmp_path_.c_str(), path_.c_str(),
             errno_text(err).c_str());
    }
    const std::string idx_path = tmp_path_ + ".offsets";
    idx_fd_ = ::open(idx_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (idx_fd_ < 0) {
        int err = errno;
        ::close(fd_);
        ::unlink(tmp_path_.c_str());
        fail(DS_ERR_IO, "cannot create '%s': %s", idx_path.c_str(), errno_text(err).c_str());
    }
    ::unlink(idx_path.c_str());  // lives until closed
    unsigned char zero[kHeaderBytes] = {};
    write_all(fd_, zero, sizeof zero, "header");
    offsets_buf_.push_back(0);
}

Writer::~Writer() {
    if (fd_ >= 0) ::close(fd_);
    if (idx_fd_ >= 0) ::close(idx_fd_);
    if (state_ != State::Committed && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

uint64_t Writer::bytes_written() const {
    const uint64_t tokens_end = kHeaderBytes + n_tokens_ * token_bytes_;
    return ((tokens_end + 7) & ~uint64_t(7)) + 8 * (n_documents_ + 1);
}

void Writer::io_fail(const std::string& what, int err) {
    state_ = State::Failed;
    fail(DS_ERR_IO, "writing %s of '%s': %s", what.c_str(), path_.c_str(), errno_text(err).c_str());
}

void Writer::write_all(int fd, const void* p, size_t n, const std::string& what) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
        ssize_t w = ::write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            io_fail(what, errno);
        }
        c += w;
        n -= static_cast<size_t>(w);
    }
}

void Writer::check_open(const char* what) const {
    if (state_ == State::Committed) fail(DS_ERR_STATE, "cannot %s: '%s' was already committed", what, path_.c_str());
    if (state_ == State::Failed) fail(DS_ERR_STATE, "cannot %s: an earlier write to '%s' failed", what, path_.c_str());
}

void Writer::flush_tokens() {
    if (buf_used_ == 0) return;
    crc_ = crc32c(crc_, buf_.data(), buf_used_);
    write_all(fd_, buf_.data(), buf_used_, "tokens");
    buf_used_ = 0;
}

void Writer::flush_offsets() {
    if (offsets_buf_.empty()) return;
    write_all(idx_fd_, offsets_buf_.data(), offsets_buf_.size() * 8, "document offsets");
    offsets_buf_.clear();
}

void Writer::append(const int32_t* ids, uint64_t n) {
    check_open("append");
    if (n > 0 && !ids) fail(DS_ERR_INVALID_ARG, "ids is NULL but n_ids=%llu", ull(n));
    const int64_t limit = vocab_size_ > 0 ? vocab_size_ : (token_bytes_ == 2 ? 65536 : (int64_t(1) << 32));
    for (uint64_t i = 0; i < n; ++i) {
        const int64_t v = ids[i];
        if (v < 0 || v >= limit)
            fail(DS_ERR_INVALID_ARG, "ids[%llu]=%lld is outside [0, %lld)%s", ull(i), static_cast<long long>(v),
                 static_cast<long long>(limit),
                 vocab_size_ > 0 ? " (the vocab_size of the dataset)" : " (the range of the token width)");
    }
    doc_open_ = true;
    uint64_t i = 0;
    while (i < n) {
        const size_t room = (buf_.size() - buf_used_) / token_bytes_;
        if (room == 0) {
            flush_tokens();
            continue;
        }
        const uint64_t take = std::min<uint64_t>(room, n - i);
        unsigned char* dst = buf_.data() + buf_used_;
        if (token_bytes_ == 2) {
            for (uint64_t k = 0; k < take; ++k) {
                const uint16_t v = static_cast<uint16_t>(ids[i + k]);
                std::memcpy(dst + 2 * k, &v, 2);
            }
        } else {
            for (uint64_t k = 0; k < take; ++k) {
                const uint32_t v = static_cast<uint32_t>(ids[i + k]);
                std::memcpy(dst + 4 * k, &v, 4);
            }
        }
        buf_used_ += static_cast<size_t>(take * token_bytes_);
        i += take;
        n_tokens_ += take;
    }
}

void Writer::end_document() {
    check_open("end a document");
    offsets_buf_.push_back(n_tokens_);
    ++n_documents_;
    doc_open_ = false;
    doc_start_ = n_tokens_;
    if (offsets_buf_.size() >= 65536) flush_offsets();
}

void Writer::commit() {
    check_open("commit");
    if (doc_open_) end_document();
    flush_tokens();
    flush_offsets();
    const uint64_t tokens_end = kHeaderBytes + n_tokens_ * token_bytes_;
    const uint64_t offsets_offset = (tokens_end + 7) & ~uint64_t(7);
    if (offsets_offset > tokens_end) {
        unsigned char pad[8] = {};
        write_all(fd_, pad, static_cast<size_t>(offsets_offset - tokens_end), "padding");
    }
    // Copy the offsets (spilled to the side file) after the tokens.
    if (::lseek(idx_fd_, 0, SEEK_SET) < 0) io_fail("document offsets", errno);
    uint64_t left = 8 * (n_documents_ + 1);
    while (left > 0) {
        const size_t chunk = static_cast<size_t>(std::min<uint64_t>(left, buf_.size()));
        ssize_t r = ::read(idx_fd_, buf_.data(), chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) io_fail("document offsets", r < 0 ? errno : EIO);
        write_all(fd_, buf_.data(), static_cast<size_t>(r), "document offsets");
        left -= static_cast<uint64_t>(r);
    }
    Header h;
    h.token_bytes = token_bytes_;
    h.n_documents = n_documents_;
    h.n_tokens = n_tokens_;
    h.offsets_offset = offsets_offset;
    h.vocab_size = vocab_size_;
    h.tokens_crc = crc_;
    unsigned char hb[kHeaderBytes];
    h.encode(hb);
    if (::pwrite(fd_, hb, sizeof hb, 0) != static_cast<ssize_t>(sizeof hb)) io_fail("header", errno ? errno : EIO);
    if (::fsync(fd_) != 0) io_fail("data (fsync)", errno);
    if (::close(fd_) != 0) {
        fd_ = -1;
        io_fail("data (close)", errno);
    }
    fd_ = -1;
    if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) io_fail("the final name (rename)", errno);
    state_ = State::Committed;
    // Make the rename durable.
    std::string dir = ".";
    const size_t slash = path_.rfind('/');
    if (slash != std::string::npos) dir = slash == 0 ? "/" : path_.substr(0, slash);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)::fsync(dfd);
        ::close(dfd);
    }
}

// ---- Dataset -----------------------------------------------------------------------------------

void Dataset::corrupt(uint64_t offset, const std::string& what) const {
    fail(DS_ERR_CORRUPT, "'%s' at byte offset %llu: %s", path_.c_str(), ull(offset), what.c_str());
}

std::shared_ptr<Dataset> Dataset::open(const std::string& path, int verify, uint64_t max_resident_bytes) {
    std::shared_ptr<Dataset> d(new Dataset());
    d->path_ = path;
    d->max_resident_ = max_resident_bytes ? max_resident_bytes : (256ull << 20);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        fail(DS_ERR_IO, "cannot open '%s': %s", path.c_str(), errno_text(err).c_str());
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        fail(DS_ERR_IO, "cannot stat '%s': %s", path.c_str(), errno_text(err).c_str());
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(DS_ERR_IO, "'%s' is not a regular file", path.c_str());
    }
    d->size_ = static_cast<uint64_t>(st.st_size);
    if (d->size_ < kHeaderBytes) {
        ::close(fd);
        d->corrupt(d->size_, "truncated: the file has " + std::to_string(d->size_) +
                                 " bytes, fewer than the 64-byte header of a token dataset");
    }
    void* m = ::mmap(nullptr, static_cast<size_t>(d->size_), PROT_READ, MAP_SHARED, fd, 0);
    int map_err = errno;
    ::close(fd);
    if (m == MAP_FAILED) fail(DS_ERR_IO, "cannot map '%s': %s", path.c_str(), errno_text(map_err).c_str());
    d->base_ = static_cast<const unsigned char*>(m);

    const unsigned char* p = d->base_;
    Header& h = d->h_;
    if (std::memcmp(p, kMagic, 8) != 0) d->corrupt(0, "bad magic: this is not a dsabi token dataset (\"DSTOKENS\")");
    h.version = get32(p + 8);
    h.token_bytes = get32(p + 12);
    h.n_documents = get64(p + 16);
    h.n_tokens = get64(p + 24);
    h.tokens_offset = get64(p + 32);
    h.offsets_offset = get64(p + 40);
    h.vocab_size = static_cast<int64_t>(get64(p + 48));
    h.tokens_crc = get32(p + 56);
    h.header_crc = get32(p + 60);
    const uint32_t want_crc = crc32c(0, p, 60);
    if (want_crc != h.header_crc)
        d->corrupt(60, format("header checksum 0x%08x does not match the header (0x%08x): the header is damaged",
                              h.header_crc, want_crc));
    if (h.version == 0) d->corrupt(8, "format version 0 is invalid");
    if (h.version > kFormatVersion)
        fail(DS_ERR_VERSION, "'%s' at byte offset 8: format version %u is newer than this library reads (%u)",
             path.c_str(), h.version, kFormatVersion);
    if (h.token_bytes != 2 && h.token_bytes != 4)
        d->corrupt(12, "token width " + std::to_string(h.token_bytes) + " is not 2 or 4 bytes");
    if (h.tokens_offset != kHeaderBytes)
        d->corrupt(32, "tokens_offset " + std::to_string(h.tokens_offset) + " is not 64");
    if (h.vocab_size < 0) d->corrupt(48, "negative vocab_size");
    if (h.n_tokens > (UINT64_MAX - kHeaderBytes - 8) / h.token_bytes) d->corrupt(24, "token count overflows");
    const uint64_t tokens_end = kHeaderBytes + h.n_tokens * h.token_bytes;
    const uint64_t want_off = (tokens_end + 7) & ~uint64_t(7);
    if (h.offsets_offset != want_off)
        d->corrupt(40, "offsets_offset " + std::to_string(h.offsets_offset) + " does not follow the " +
                           std::to_string(h.n_tokens) + " tokens (expected " + std::to_string(want_off) + ")");
    if (h.n_documents >= (UINT64_MAX - want_off) / 8) d->corrupt(16, "document count overflows");
    const uint64_t want_size = want_off + 8 * (h.n_documents + 1);
    if (d->size_ < want_size)
        d->corrupt(d->size_, "truncated: the header describes " + std::to_string(h.n_documents) + " documents and " +
                                 std::to_string(h.n_tokens) + " tokens ending at byte " + std::to_string(want_size) +
                                 ", but the file ends at byte " + std::to_string(d->size_));
    if (d->size_ > want_size)
        d->corrupt(want_size, std::to_string(d->size_ - want_size) + " unexpected bytes after the document offsets");

    if (verify >= kOffsets) {
        uint64_t prev = 0;
        for (uint64_t i = 0; i <= h.n_documents; ++i) {
            const uint64_t v = get64(p + h.offsets_offset + 8 * i);
            const uint64_t at = h.offsets_offset + 8 * i;
            if (i == 0 && v != 0) d->corrupt(at, "offsets[0]=" + std::to_string(v) + " is not 0");
            if (v < prev)
                d->corrupt(at, "offsets[" + std::to_string(i) + "]=" + std::to_string(v) + " is smaller than offsets[" +
                                   std::to_string(i - 1) + "]=" + std::to_string(prev));
            if (v > h.n_tokens)
                d->corrupt(at, "offsets[" + std::to_string(i) + "]=" + std::to_string(v) + " is beyond the " +
                                   std::to_string(h.n_tokens) + " tokens");
            prev = v;
        }
        if (prev != h.n_tokens)
            d->corrupt(h.offsets_offset + 8 * h.n_documents,
                       "the last offset " + std::to_string(prev) + " is not the token count " + std::to_string(h.n_tokens));
    }
    if (verify >= kFull) {
        const uint64_t n_bytes = h.n_tokens * h.token_bytes;
        uint32_t crc = 0;
        const uint64_t chunk = 64ull << 20;
        for (uint64_t o = 0; o < n_bytes; o += chunk) {
            const uint64_t len = std::min(chunk, n_bytes - o);
            crc = crc32c(crc, p + kHeaderBytes + o, static_cast<size_t>(len));
            d->note_read(len);
        }
        if (crc != h.tokens_crc)
            d->corrupt(kHeaderBytes, format("the tokens' checksum 0x%08x does not match the recorded 0x%08x: the token "
                                            "data is damaged",
                                            crc, h.tokens_crc));
        if (h.vocab_size > 0) {
            for (uint64_t i = 0; i < h.n_tokens; ++i) {
                const uint64_t v = h.token_bytes == 2 ? uint64_t(get32(p + kHeaderBytes + 2 * i) & 0xFFFFu)
                                                      : uint64_t(get32(p + kHeaderBytes + 4 * i));
                if (v >= static_cast<uint64_t>(h.vocab_size))
                    d->corrupt(kHeaderBytes + i * h.token_bytes, "token " + std::to_string(v) +
                                                                     " is not below vocab_size " +
                                                                     std::to_string(h.vocab_size));
            }
        }
    }
    return d;
}

Dataset::~Dataset() {
    if (base_) ::munmap(const_cast<unsigned char*>(base_), static_cast<size_t>(size_));
}

uint64_t Dataset::offset_at(uint64_t i) const { return get64(base_ + h_.offsets_offset + 8 * i); }

void Dataset::document(uint64_t i, uint64_t* begin, uint64_t* end) const {
    const uint64_t b = offset_at(i), e = offset_at(i + 1);
    if (b > e || e > h_.n_tokens)
        corrupt(h_.offsets_offset + 8 * i, "document " + std::to_string(i) + " spans [" + std::to_string(b) + ", " +
                                               std::to_string(e) + "), outside the " + std::to_string(h_.n_tokens) +
                                               " tokens");
    *begin = b;
    *end = e;
}

std::vector<uint32_t> Dataset::document_lengths() const {
    std::vector<uint32_t> out(static_cast<size_t>(h_.n_documents));
    for (uint64_t i = 0; i < h_.n_documents; ++i) {
        const uint64_t len = document_length(i);
        out[i] = len > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(len);
    }
    note_read(8 * h_.n_documents);
    return out;
}

void Dataset::note_read(uint64_t bytes) const {
    const uint64_t total = since_trim_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    if (total < max_resident_) return;
    // One thread wins the trim. The pages stay in the page cache and fault back in cheaply; for a
    // read-only file mapping MADV_DONTNEED only drops them from this process's resident set.
    if (since_trim_.exchange(0, std::memory_order_relaxed) >= max_resident_)
        ::madvise(const_cast<unsigned char*>(base_), static_cast<size_t>(size_), MADV_DONTNEED);
}

template <class T>
void Dataset::read_impl(uint64_t first, uint64_t n, T* out) const {
    const unsigned char* src = base_ + kHeaderBytes + first * h_.token_bytes;
    if (h_.token_bytes == 2) {
        const uint16_t* s = reinterpret_cast<const uint16_t*>(src);  // 64 + 2k: 2-aligned
        for (uint64_t i = 0; i < n; ++i) out[i] = static_cast<T>(s[i]);
    } else {
        const uint32_t* s = reinterpret_cast<const uint32_t*>(src);
        for (uint64_t i = 0; i < n; ++i) out[i] = static_cast<T>(s[i]);
    }
    // Count what a read can map: a fault maps pages around it (fault-around) or the whole large folio
    // of the page cache (up to 2 MiB), so each read counts at least that much.
    note_read(n * h_.token_bytes + (2u << 20));
}

void Dataset::read(uint64_t first, uint64_t n, int32_t* out) const { read_impl(first, n, out); }
void Dataset::read(uint64_t first, uint64_t n, int64_t* out) const { read_impl(first, n, out); }

// ---- metric files ------------------------------------------------------------------------------

void write_metric_file(const std::string& path, const int64_t* values, uint64_t n) {
    if (n > 0 && !values) fail(DS_ERR_INVALID_ARG, "values is NULL but n_values=%llu", ull(n));
    unsigned char h[kMetricHeaderBytes] = {};
    std::memcpy(h, kMetricMagic, 8);
    put32(h + 8, 1);
    put64(h + 16, n);
    put32(h + 24, crc32c(0, values, static_cast<size_t>(n * 8)));
    put32(h + 28, crc32c(0, h, 28));
    const std::string tmp = path + ".tmp." + std::to_string(getpid());
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) {
        int err = errno;
        fail(DS_ERR_IO, "cannot create '%s': %s", tmp.c_str(), errno_text(err).c_str());
    }
    bool ok = std::fwrite(h, 1, sizeof h, f) == sizeof h;
    if (ok && n > 0) ok = std::fwrite(values, 8, static_cast<size_t>(n), f) == n;
    int err = ok ? 0 : errno;
    if (std::fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        if (ok) err = errno;
        std::remove(tmp.c_str());
        fail(DS_ERR_IO, "cannot write '%s': %s", path.c_str(), errno_text(err).c_str());
    }
}

std::vector<int64_t> read_metric_file(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        int err = errno;
        fail(DS_ERR_IO, "cannot open metric file '%s': %s", path.c_str(), errno_text(err).c_str());
    }
    struct Closer {
        FILE* f;
        ~Closer() { std::fclose(f); }
    } closer{f};
    unsigned char h[kMetricHeaderBytes];
    const size_t got = std::fread(h, 1, sizeof h, f);
    if (got < sizeof h)
        fail(DS_ERR_CORRUPT, "'%s' at byte offset %zu: truncated: fewer than the 32-byte metric header", path.c_str(), got);
    if (std::memcmp(h, kMetricMagic, 8) != 0)
        fail(DS_ERR_CORRUPT, "'%s' at byte offset 0: bad magic: not a dsabi metric file (\"DSMETRIC\")", path.c_str());
    if (get32(h + 28) != crc32c(0, h, 28))
        fail(DS_ERR_CORRUPT, "'%s' at byte offset 28: header checksum does not match", path.c_str());
    if (get32(h + 8) != 1)
        fail(DS_ERR_VERSION, "'%s' at byte offset 8: metric format version %u is not 1", path.c_str(), get32(h + 8));
    const uint64_t n = get64(h + 16);
    if (std::fseek(f, 0, SEEK_END) != 0) fail(DS_ERR_IO, "cannot seek '%s'", path.c_str());
    const uint64_t size = static_cast<uint64_t>(std::ftell(f));
    if (n > (UINT64_MAX - kMetricHeaderBytes) / 8 || size != kMetricHeaderBytes + 8 * n)
        fail(DS_ERR_CORRUPT, "'%s' at byte offset %llu: the header promises %llu values (%llu bytes) but the file has %llu bytes",
             path.c_str(), ull(std::min(size, kMetricHeaderBytes + 8 * n)), ull(n), ull(kMetricHeaderBytes + 8 * n), ull(size));
    std::vector<int64_t> v(static_cast<size_t>(n));
    std::fseek(f, static_cast<long>(kMetricHeaderBytes), SEEK_SET);
    if (n > 0 && std::fread(v.data(), 8, static_cast<size_t>(n), f) != n)
        fail(DS_ERR_IO, "cannot read '%s'", path.c_str());
    if (crc32c(0, v.data(), static_cast<size_t>(n * 8)) != get32(h + 24))
        fail(DS_ERR_CORRUPT, "'%s' at byte offset 32: the values' checksum does not match", path.c_str());
    return v;
}

}  // namespace ds::data
