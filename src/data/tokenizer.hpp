// Tokenizers for building datasets: byte-level (one id per byte) and GPT-2 byte-level BPE loaded
// from the caller's vocab.json and merges.txt. Both are lossless on arbitrary bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ds::data {

class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    virtual int64_t vocab_size() const = 0;
    virtual int32_t eot() const = 0;  // -1: none
    virtual const char* name() const = 0;
    // Encode text[0, n) and append the ids to out. With final == false, text may continue in a later
    // call: only a prefix whose ids cannot change is encoded, and its length is returned (the caller
    // passes the rest again, followed by more text). With final == true everything is encoded.
    virtual size_t encode(const char* text, size_t n, bool final, std::vector<int32_t>& out) = 0;
    // Append the bytes of ids to out; throws DS_ERR_INVALID_ARG for an id out of range.
    virtual void decode(const int32_t* ids, size_t n, std::string& out) const = 0;
};

std::unique_ptr<Tokenizer> make_byte_tokenizer();
std::unique_ptr<Tokenizer> make_gpt2_tokenizer(const std::string& vocab_path, const std::string& merges_path);

// Exposed for tests: the GPT-2 pre-tokenizer's pieces of text (byte ranges), and the Unicode classes.
std::vector<std::pair<size_t, size_t>> gpt2_pretokenize(const char* text, size_t n);
bool unicode_is_letter(uint32_t cp);
bool unicode_is_number(uint32_t cp);
bool unicode_is_space(uint32_t cp);

}  // namespace ds::data
