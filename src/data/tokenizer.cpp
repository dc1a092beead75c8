// Byte-level and GPT-2 BPE tokenizers.
//
// GPT-2 facts used (from the published tokenizer, no code copied): bytes map to printable code points
// ("bytes_to_unicode": the 188 printable Latin-1 bytes map to themselves, the other 68 to U+0100..);
// text is first split by the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// and each piece is merged pairwise by merges.txt rank (lowest first, all occurrences left to right)
// until no ranked pair remains; the pieces' ids come from vocab.json.
#include "data/tokenizer.hpp"

#include <cjson/cJSON.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "core/error.hpp"

namespace ds::data {

namespace {

struct CodeRange {
    uint32_t lo, hi;
};
#include "data/unicode_tables.inc"

template <size_t N>
bool in_ranges(const CodeRange (&r)[N], uint32_t cp) {
    size_t lo = 0, hi = N;
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

constexpr uint32_t kInvalid = 0xFFFFFFFFu;  // an undecodable byte: classified as "other"

// Decode one UTF-8 code point at p (n bytes left); sets *len (>= 1). Invalid sequences give kInvalid
// with *len = 1, so every byte is kept.
uint32_t utf8_next(const unsigned char* p, size_t n, size_t* len) {
    const unsigned char c = p[0];
    if (c < 0x80) {
        *len = 1;
        return c;
    }
    size_t need;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) need = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) need = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) need = 4, cp = c & 0x07, min = 0x10000;
    else {
        *len = 1;
        return kInvalid;
    }
    if (n < need) {
        *len = 1;
        return kInvalid;
    }
    for (size_t k = 1; k < need; ++k) {
        if ((p[k] & 0xC0) != 0x80) {
            *len = 1;
            return kInvalid;
        }
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        *len = 1;
        return kInvalid;
    }
    *len = need;
    return cp;
}

enum Class { kLetter, kNumber, kSpace, kOther };

Class classify(uint32_t cp) {
    if (cp == kInvalid) return kOther;
    if (unicode_is_space(cp)) return kSpace;
    if (unicode_is_letter(cp)) return kLetter;
    if (unicode_is_number(cp)) return kNumber;
    return kOther;
}

std::string read_file(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        int err = errno;
        fail(DS_ERR_IO, "cannot open %s '%s': %s", what, path.c_str(), std::strerror(err));
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// ---- byte-level --------------------------------------------------------------------------------

const char* const kEotText = "<|endoftext|>";

class ByteTokenizer final : public Tokenizer {
public:
    int64_t vocab_size() const override { return 257; }
    int32_t eot() const override { return 256; }
    const char* name() const override { return "bytes"; }
    size_t encode(const char* text, size_t n, bool, std::vector<int32_t>& out) override {
        const size_t base = out.size();
        out.resize(base + n);
        const unsigned char* p = reinterpret_cast<const unsigned char*>(text);
        for (size_t i = 0; i < n; ++i) out[base + i] = p[i];
        return n;
    }
    void decode(const int32_t* ids, size_t n, std::string& out) const override {
        for (size_t i = 0; i < n; ++i) {
            if (ids[i] < 0 || ids[i] > 256)
                fail(DS_ERR_INVALID_ARG, "ids[%zu]=%d is outside [0, 257) of the byte-level tokenizer", i, ids[i]);
            if (ids[i] == 256) out += kEotText;
            else out += static_cast<char>(ids[i]);
        }
    }
};

// ---- GPT-2 BPE ---------------------------------------------------------------------------------

class Gpt2Tokenizer final : public Tokenizer {
public:
    Gpt2Tokenizer(const std::string& vocab_path, const std::string& merges_path);
    int64_t vocab_size() const override { return static_cast<int64_t>(decoder_.size()); }
    int32_t eot() const override { return eot_; }
    const char* name() const override { return "gpt2"; }
    size_t encode(const char* text, size_t n, bool final, std::vector<int32_t>& out) override;
    void decode(const int32_t* ids, size_t n, std::string& out) const override {
        for (size_t i = 0; i < n; ++i) {
            if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= decoder_.size() || !known_[static_cast<size_t>(ids[i])])
                fail(DS_ERR_INVALID_ARG, "ids[%zu]=%d is not an id of the vocabulary (%zu entries)", i, ids[i],
                     decoder_.size());
            out += decoder_[static_cast<size_t>(ids[i])];
        }
    }

private:
    void bpe(const unsigned char* p, size_t n, std::vector<int32_t>& out);

    uint32_t byte_to_cp_[256];
    std::unordered_map<uint32_t, unsigned char> cp_to_byte_;
    std::unordered_map<std::string, int32_t> encoder_;  // token bytes -> id
    std::vector<std::string> decoder_;                  // id -> token bytes
    std::vector<char> known_;
    int32_t byte_id_[256];
    struct Merge {
        uint32_t rank;
        int32_t id;
    };
    std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> rank, merged id
    std::unordered_map<std::string, std::vector<int32_t>> cache_;
    int32_t eot_ = -1;
    std::vector<int32_t> work_;
};

Gpt2Tokenizer::Gpt2Tokenizer(const std::string& vocab_path, const std::string& merges_path) {
    // bytes_to_unicode
    int n_extra = 0;
    for (int b = 0; b < 256; ++b) {
        const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_to_cp_[b] = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n_extra++);
        cp_to_byte_[byte_to_cp_[b]] = static_cast<unsigned char>(b);
    }
    // Token text (code points of the byte alphabet) -> raw bytes; false if a code point is outside it.
    auto to_bytes = [&](const std::string& s, std::string& out) {
        out.clear();
        size_t i = 0;
        bool ok = true;
        while (i < s.size()) {
            size_t len;
            const uint32_t cp = utf8_next(reinterpret_cast<const unsigned char*>(s.data()) + i, s.size() - i, &len);
            auto it = cp_to_byte_.find(cp);
            if (it == cp_to_byte_.end()) ok = false;
            else out += static_cast<char>(it->second);
            i += len;
        }
        return ok;
    };

    const std::string vocab_text = read_file(vocab_path, "vocab.json");
    cJSON* root = cJSON_ParseWithLength(vocab_text.data(), vocab_text.size());
    if (!root || !cJSON_IsObject(root)) {
        const char* where = cJSON_GetErrorPtr();
        const size_t off = where && where >= vocab_text.data() && where <= vocab_text.data() + vocab_text.size()
                               ? static_cast<size_t>(where - vocab_text.data())
                               : 0;
        cJSON_Delete(root);
        fail(DS_ERR_CORRUPT, "'%s' at byte offset %zu: not a JSON object of token -> id", vocab_path.c_str(), off);
    }
    int64_t max_id = -1;
    for (cJSON* it = root->child; it; it = it->next) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 2147483647.0 ||
            it->valuedouble != static_cast<double>(static_cast<int64_t>(it->valuedouble))) {
            std::string key = it->string ? it->string : "";
            cJSON_Delete(root);
            fail(DS_ERR_CORRUPT, "'%s': the id of token \"%s\" is not a non-negative integer", vocab_path.c_str(),
                 key.c_str());
        }
        max_id = std::max<int64_t>(max_id, static_cast<int64_t>(it->valuedouble));
    }
    if (max_id < 0) {
        cJSON_Delete(root);
        fail(DS_ERR_CORRUPT, "'%s': the vocabulary is empty", vocab_path.c_str());
    }
    decoder_.assign(static_cast<size_t>(max_id + 1), std::string());
    known_.assign(static_cast<size_t>(max_id + 1), 0);
    std::string bytes;
    for (cJSON* it = root->child; it; it = it->next) {
        const int32_t id = static_cast<int32_t>(it->valuedouble);
        const std::string key = it->string ? it->string : "";
        if (known_[static_cast<size_t>(id)]) {
            cJSON_Delete(root);
            fail(DS_ERR_CORRUPT, "'%s': id %d is given to two tokens (the second is \"%s\")", vocab_path.c_str(), id,
                 key.c_str());
        }
        known_[static_cast<size_t>(id)] = 1;
        if (to_bytes(key, bytes)) {
            decoder_[static_cast<size_t>(id)] = bytes;
            encoder_.emplace(bytes, id);
        } else {
            decoder_[static_cast<size_t>(id)] = key;  // a special token outside the byte alphabet
        }
        if (key == kEotText) eot_ = id;
    }
    cJSON_Delete(root);
    for (int b = 0; b < 256; ++b) {
        auto it = encoder_.find(std::string(1, static_cast<char>(b)));
        if (it == encoder_.end())
            fail(DS_ERR_CORRUPT, "'%s': the vocabulary has no token for the byte 0x%02X (byte-level BPE needs all 256)",
                 vocab_path.c_str(), b);
        byte_id_[b] = it->second;
    }

    const std::string merges_text = read_file(merges_path, "merges.txt");
    size_t pos = 0, line_no = 0;
    uint32_t rank = 0;
    std::string a, b;
    while (pos < merges_text.size()) {
        size_t eol = merges_text.find('\n', pos);
        if (eol == std::string::npos) eol = merges_text.size();
        std::string line = merges_text.substr(pos, eol - pos);
        pos = eol + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
        const size_t sp = line.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
            fail(DS_ERR_CORRUPT, "'%s' line %zu: \"%s\" is not two tokens separated by one space", merges_path.c_str(),
                 line_no, line.c_str());
        if (!to_bytes(line.substr(0, sp), a) || !to_bytes(line.substr(sp + 1), b))
            fail(DS_ERR_CORRUPT, "'%s' line %zu: \"%s\" has characters outside GPT-2's byte alphabet",
                 merges_path.c_str(), line_no, line.c_str());
        auto ia = encoder_.find(a), ib = encoder_.find(b), iab = encoder_.find(a + b);
        if (ia == encoder_.end() || ib == encoder_.end() || iab == encoder_.end())
            fail(DS_ERR_CORRUPT, "'%s' line %zu: the merge \"%s\" needs its parts and their concatenation in %s",
                 merges_path.c_str(), line_no, line.c_str(), vocab_path.c_str());
        const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(ia->second)) << 32) |
                             static_cast<uint32_t>(ib->second);
        merges_.emplace(key, Merge{rank++, iab->second});  // the first (lowest) rank of a pair wins
    }
}

void Gpt2Tokenizer::bpe(const unsigned char* p, size_t n, std::vector<int32_t>& out) {
    std::string key(reinterpret_cast<const char*>(p), n);
    auto hit = cache_.find(key);
    if (hit != cache_.end()) {
        out.insert(out.end(), hit->second.begin(), hit->second.end());
        return;
    }
    std::vector<int32_t>& w = work_;
    w.resize(n);
    for (size_t i = 0; i < n; ++i) w[i] = byte_id_[p[i]];
    while (w.size() > 1) {
        uint32_t best = UINT32_MAX;
        int32_t best_l = 0, best_r = 0, merged = 0;
        for (size_t i = 0; i + 1 < w.size(); ++i) {
            auto it = merges_.find((static_cast<uint64_t>(static_cast<uint32_t>(w[i])) << 32) | static_cast<uint32_t>(w[i + 1]));
            if (it != merges_.end() && it->second.rank < best) {
                best = it->second.rank;
                best_l = w[i];
                best_r = w[i + 1];
                merged = it->second.id;
            }
        }
        if (best == UINT32_MAX) break;
        size_t o = 0;
        for (size_t i = 0; i < w.size();) {
            if (i + 1 < w.size() && w[i] == best_l && w[i + 1] == best_r) {
                w[o++] = merged;
                i += 2;
            } else {
                w[o++] = w[i++];
            }
        }
        w.resize(o);
    }
    if (cache_.size() >= 200000) cache_.clear();
    cache_.emplace(std::move(key), w);
    out.insert(out.end(), w.begin(), w.end());
}

size_t Gpt2Tokenizer::encode(const char* text, size_t n, bool final, std::vector<int32_t>& out) {
    const auto pieces = gpt2_pretokenize(text, n);
    size_t emit = pieces.size();
    // Without final, the last piece may grow with more text: keep it back, unless it is huge.
    if (!final && emit > 0 && pieces.back().second - pieces.back().first < (1u << 20)) --emit;
    const unsigned char* p = reinterpret_cast<const unsigned char*>(text);
    for (size_t k = 0; k < emit; ++k) bpe(p + pieces[k].first, pieces[k].second - pieces[k].first, out);
    return emit == pieces.size() ? n : pieces[emit].first;
}

}  // namespace

bool unicode_is_letter(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    return in_ranges(kLetterRanges, cp);
}

bool unicode_is_number(uint32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    return in_ranges(kNumberRanges, cp);
}

bool unicode_is_space(uint32_t cp) {  // the White_Space property
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

std::vector<std::pair<size_t, size_t>> gpt2_pretokenize(const char* text, size_t n) {
    // Decode once: code points, their classes and byte offsets (offs has one extra entry: n).
    const unsigned char* p = reinterpret_cast<const unsigned char*>(text);
    std::vector<uint32_t> cps;
    std::vector<size_t> offs;
    cps.reserve(n);
    offs.reserve(n + 1);
    for (size_t i = 0; i < n;) {
        size_t len;
        cps.push_back(utf8_next(p + i, n - i, &len));
        offs.push_back(i);
        i += len;
    }
    offs.push_back(n);
    const size_t m = cps.size();
    std::vector<unsigned char> cls(m);
    for (size_t i = 0; i < m; ++i) cls[i] = static_cast<unsigned char>(classify(cps[i]));

    std::vector<std::pair<size_t, size_t>> out;
    size_t i = 0;
    while (i < m) {
        const uint32_t c = cps[i];
        size_t j = i;
        // 's 't 're 've 'm 'll 'd
        if (c == '\'' && i + 1 < m) {
            const uint32_t c1 = cps[i + 1], c2 = i + 2 < m ? cps[i + 2] : 0;
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') j = i + 2;
            else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) j = i + 3;
        }
        if (j == i) {
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            size_t k = i;
            if (c == ' ' && i + 1 < m && cls[i + 1] != kSpace) k = i + 1;
            if (cls[k] != kSpace) {
                const unsigned char want = cls[k];
                j = k;
                while (j < m && cls[j] == want) ++j;
            }
        }
        if (j == i) {
            // `\s+(?!\S)` then `\s+`
            size_t e = i;
            while (e < m && cls[e] == kSpace) ++e;
            if (e == m || e - i == 1) j = e;  // to the end, or a single space before a non-space
            else j = e - 1;                   // leave the last space to start the next piece
        }
        out.emplace_back(offs[i], offs[j]);
        i = j;
    }
    return out;
}

std::unique_ptr<Tokenizer> make_byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

std::unique_ptr<Tokenizer> make_gpt2_tokenizer(const std::string& vocab_path, const std::string& merges_path) {
    return std::make_unique<Gpt2Tokenizer>(vocab_path, merges_path);
}

}  // namespace ds::data
