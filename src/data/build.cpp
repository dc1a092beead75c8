// ds_data_build: read text files in chunks, split them into documents, tokenize while streaming.
#include "data/build.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/error.hpp"
#include "data/format.hpp"

namespace ds::data {

namespace {

class DocSink {
public:
    DocSink(Writer& w, Tokenizer& tok, const BuildOptions& o) : w_(w), tok_(tok), o_(o) {}

    // Tokenize text that belongs to the current document; returns how many bytes were consumed
    // (all of them when final).
    size_t feed(const char* p, size_t n, bool final) {
        ids_.clear();
        const size_t used = tok_.encode(p, n, final, ids_);
        if (!ids_.empty()) {
            w_.append(ids_.data(), ids_.size());
            doc_tokens_ += ids_.size();
        }
        return used;
    }
    void end_document() {
        if (doc_tokens_ == 0 && !o_.keep_empty) return;
        if (o_.append_eot) {
            const int32_t eot = tok_.eot();
            w_.append(&eot, 1);
        }
        w_.end_document();
        doc_tokens_ = 0;
    }

private:
    Writer& w_;
    Tokenizer& tok_;
    const BuildOptions& o_;
    std::vector<int32_t> ids_;
    uint64_t doc_tokens_ = 0;
};

// Find the next document boundary in buf[from, n): its start and length, or false.
bool find_boundary(const BuildOptions& o, const std::string& buf, size_t from, size_t* at, size_t* len) {
    switch (o.split) {
        case DS_DATA_SPLIT_LINE: {
            const size_t nl = buf.find('\n', from);
            if (nl == std::string::npos) return false;
            *at = (nl > from && buf[nl - 1] == '\r') ? nl - 1 : nl;
            *len = nl + 1 - *at;
            return true;
        }
        case DS_DATA_SPLIT_PARAGRAPH: {
            // A run of two or more newlines (each optionally preceded by '\r').
            size_t s = from;
            while (true) {
                const size_t nl = buf.find('\n', s);
                if (nl == std::string::npos) return false;
                size_t e = nl + 1, count = 1;
                while (e < buf.size() && (buf[e] == '\n' || (buf[e] == '\r' && e + 1 < buf.size() && buf[e + 1] == '\n'))) {
                    if (buf[e] == '\n') ++count;
                    ++e;
                }
                if (count >= 2) {
                    // The run must be complete: at the end of the buffer more newlines may follow.
                    if (e == buf.size()) return false;
                    *at = (nl > from && buf[nl - 1] == '\r') ? nl - 1 : nl;
                    *len = e - *at;
                    return true;
                }
                s = nl + 1;
            }
        }
        case DS_DATA_SPLIT_DELIMITER: {
            const size_t d = buf.find(o.delimiter, from);
            if (d == std::string::npos) return false;
            *at = d;
            *len = o.delimiter.size();
            return true;
        }
        default:
            return false;
    }
}

// Bytes at the end of buf that must wait for more input (they may start a boundary).
size_t hold_back(const BuildOptions& o, const std::string& buf, size_t from) {
    size_t k = 0;
    switch (o.split) {
        case DS_DATA_SPLIT_LINE:
            if (buf.size() > from && buf.back() == '\r') k = 1;
            break;
        case DS_DATA_SPLIT_PARAGRAPH:
            while (buf.size() - k > from && (buf[buf.size() - 1 - k] == '\n' || buf[buf.size() - 1 - k] == '\r')) ++k;
            break;
        case DS_DATA_SPLIT_DELIMITER:
            k = std::min(buf.size() - from, o.delimiter.size() - 1);
            break;
        default:
            break;
    }
    return k;
}

}  // namespace

BuildStats build(const std::string& out_path, const std::vector<std::string>& inputs, const BuildOptions& o) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!o.tokenizer) fail(DS_ERR_INVALID_ARG, "no tokenizer");
    if (inputs.empty()) fail(DS_ERR_INVALID_ARG, "n_inputs is 0: give at least one text file");
    if (o.split < DS_DATA_SPLIT_FILE || o.split > DS_DATA_SPLIT_DELIMITER)
        fail(DS_ERR_INVALID_ARG, "opts->split=%d is not a DS_DATA_SPLIT_* value (0..3)", o.split);
    if (o.split == DS_DATA_SPLIT_DELIMITER && o.delimiter.empty())
        fail(DS_ERR_INVALID_ARG, "opts->delimiter is NULL or empty but opts->split is DS_DATA_SPLIT_DELIMITER");
    if (o.append_eot && o.tokenizer->eot() < 0)
        fail(DS_ERR_INVALID_ARG, "opts->append_eot=1 but the %s tokenizer has no end-of-text token", o.tokenizer->name());
    Tokenizer& tok = *o.tokenizer;
    uint32_t token_bytes = o.token_bytes;
    if (token_bytes == 0) token_bytes = tok.vocab_size() <= 65536 ? 2 : 4;
    if (token_bytes == 2 && tok.vocab_size() > 65536)
        fail(DS_ERR_INVALID_ARG, "opts->token_bytes=2 but the vocabulary has %lld ids (more than u16 holds)",
             static_cast<long long>(tok.vocab_size()));

    BuildStats st;
    uint64_t total = 0;
    for (const std::string& in : inputs) {
        struct stat sb;
        if (::stat(in.c_str(), &sb) != 0) {
            int err = errno;
            fail(DS_ERR_IO, "cannot read input '%s': %s", in.c_str(), std::strerror(err));
        }
        total += static_cast<uint64_t>(sb.st_size);
    }

    Writer w(out_path, token_bytes, tok.vocab_size(), 0);
    DocSink sink(w, tok, o);
    const size_t chunk = static_cast<size_t>(o.chunk_bytes ? o.chunk_bytes : (4u << 20));
    std::string buf, readbuf(chunk, '\0');
    for (const std::string& in : inputs) {
        FILE* f = std::fopen(in.c_str(), "rb");
        if (!f) {
            int err = errno;
            fail(DS_ERR_IO, "cannot open input '%s': %s", in.c_str(), std::strerror(err));
        }
        struct Closer {
            FILE* f;
            ~Closer() { std::fclose(f); }
        } closer{f};
        buf.clear();
        bool eof = false;
        while (!eof) {
            const size_t got = std::fread(&readbuf[0], 1, chunk, f);
            if (got < chunk) {
                if (std::ferror(f)) fail(DS_ERR_IO, "reading input '%s' failed: %s", in.c_str(), std::strerror(errno));
                eof = true;
            }
            buf.append(readbuf, 0, got);
            st.bytes_in += got;
            size_t pos = 0, at = 0, len = 0;
            while (find_boundary(o, buf, pos, &at, &len)) {
                sink.feed(buf.data() + pos, at - pos, true);
                sink.end_document();
                pos = at + len;
            }
            if (eof) {
                size_t end = buf.size();
                if (o.split == DS_DATA_SPLIT_LINE || o.split == DS_DATA_SPLIT_PARAGRAPH)
                    while (end > pos && (buf[end - 1] == '\n' || buf[end - 1] == '\r')) --end;
                sink.feed(buf.data() + pos, end - pos, true);
                sink.end_document();
                buf.clear();
            } else {
                const size_t safe = buf.size() - hold_back(o, buf, pos);
                pos += sink.feed(buf.data() + pos, safe - pos, false);
                buf.erase(0, pos);
            }
            if (o.progress &&
                o.progress(st.bytes_in, total, w.n_documents(), w.n_tokens(), o.progress_user_data) != 0)
                fail(DS_ABORTED, "stopped by the progress callback after %llu of %llu bytes; nothing was written",
                     static_cast<unsigned long long>(st.bytes_in), static_cast<unsigned long long>(total));
        }
        ++st.n_files;
    }
    w.commit();
    st.n_documents = w.n_documents();
    st.n_tokens = w.n_tokens();
    st.bytes_out = w.bytes_written();
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return st;
}

}  // namespace ds::data
