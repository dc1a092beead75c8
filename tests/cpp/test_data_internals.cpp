// Data internals: CRC-32C vectors, the GPT-2 pre-tokenizer's pieces, Unicode classes, torch's
// randperm for tiny n and the large-n (64-bit) variant, Python-style rounding, batch_by_seqlens.
#include <string>
#include <vector>

#include "data/batching.hpp"
#include "data/crc32c.hpp"
#include "data/curriculum.hpp"
#include "data/sampler.hpp"
#include "data/tokenizer.hpp"
#include "minitest.h"

using namespace ds::data;

static std::vector<std::string> pieces(const std::string& s) {
    std::vector<std::string> out;
    for (auto& p : gpt2_pretokenize(s.data(), s.size())) out.push_back(s.substr(p.first, p.second - p.first));
    return out;
}

static void expect_pieces(const std::string& s, const std::vector<std::string>& want) {
    const auto got = pieces(s);
    CHECK_EQ_INT(got.size(), want.size());
    for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
        if (got[i] != want[i]) fprintf(stderr, "  \"%s\": piece %zu is \"%s\", want \"%s\"\n", s.c_str(), i, got[i].c_str(), want[i].c_str());
        CHECK(got[i] == want[i]);
    }
}

TEST(crc32c_known_vectors) {
    CHECK_EQ_INT(crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_INT(crc32c(0, "", 0), 0u);
    std::string zeros(32, '\0');
    CHECK_EQ_INT(crc32c(0, zeros.data(), 32), 0x8A9136AAu);  // RFC 3720 B.4
    // incremental == one shot
    std::string s = "The quick brown fox jumps over the lazy dog";
    CHECK_EQ_INT(crc32c(crc32c(0, s.data(), 10), s.data() + 10, s.size() - 10), crc32c(0, s.data(), s.size()));
}

TEST(gpt2_pretokenizer_pieces) {
    expect_pieces("Hello world", {"Hello", " world"});
    expect_pieces("I'm here, it's 2024!", {"I", "'m", " here", ",", " it", "'s", " 2024", "!"});
    expect_pieces("a  b", {"a", " ", " b"});
    expect_pieces("a\n\nb", {"a", "\n", "\n", "b"});   // single whitespace before a letter without ' '
    expect_pieces("end   ", {"end", "   "});           // trailing whitespace runs to the end
    expect_pieces("x \t\ny", {"x", " \t", "\n", "y"});
    expect_pieces("don't STOP'S", {"don", "'t", " STOP", "'", "S"});  // contractions are case-sensitive
    expect_pieces("caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87", {"caf\xC3\xA9", " \xE4\xB8\xAD\xE6\x96\x87"});
    expect_pieces("x\xFF\xFEy", {"x", "\xFF\xFE", "y"});  // invalid bytes group as "other"
    expect_pieces(" 12ab", {" 12", "ab"});
    CHECK(unicode_is_letter(0x4E2D));   // 中
    CHECK(unicode_is_number(0x0663));   // Arabic-Indic three
    CHECK(unicode_is_number(0x2167));   // Roman numeral eight (Nl)
    CHECK(!unicode_is_letter(0x2167));
    CHECK(unicode_is_space(0x3000));
    CHECK(!unicode_is_space(0x1C));
}

TEST(torch_randperm_small_and_large_variants) {
    // n = 1 and 2: no draws, one draw
    CHECK(torch_randperm(1, 5) == std::vector<int64_t>({0}));
    // torch.randperm(10, generator=manual_seed(5)) on CPU (python3-torch): [1, 4, 9, 6, 3, 5, 0, 2, 8, 7]
    CHECK(torch_randperm(10, 5) == std::vector<int64_t>({1, 4, 9, 6, 3, 5, 0, 2, 8, 7}));
    // seeds use their low 32 bits
    CHECK(torch_randperm(10, (1ull << 32) + 5) == torch_randperm(10, 5));
    // a permutation for the 64-bit (n >= 2^32 / 20) branch is exercised through its own code path
    // only in size; here check it is a permutation on a small n by calling the sampler math directly
    std::vector<int64_t> p = torch_randperm(1000, 7);
    std::vector<int> seen(1000, 0);
    for (int64_t v : p) seen[static_cast<size_t>(v)]++;
    int ok = 1;
    for (int c : seen) ok &= c == 1;
    CHECK(ok);
}

TEST(python_rounding_and_packing) {
    CHECK_EQ_INT(round_half_even_div(1 * 5, 2), 2);   // 2.5 -> 2
    CHECK_EQ_INT(round_half_even_div(3 * 5, 2), 8);   // 7.5 -> 8
    CHECK_EQ_INT(round_half_even_div(7, 3), 2);       // 2.33 -> 2
    CHECK_EQ_INT(round_half_even_div(8, 3), 3);       // 2.67 -> 3
    // lengths 5 3 4 9 2 2 with max_tokens 10: packs [5 3] [4] ... greedy in dataset order
    std::vector<uint32_t> lens = {5, 3, 4, 9, 2, 2, 11};
    PackPlan p = batch_by_seqlens(lens, 10, 1, 0, DS_DATA_PICK_DATALOADER, 0, 1);
    CHECK_EQ_INT(p.packs.size(), 4);
    CHECK(p.packs[0] == std::vector<int64_t>({0, 1}));
    CHECK(p.packs[1] == std::vector<int64_t>({2}));
    CHECK(p.packs[2] == std::vector<int64_t>({3}));
    CHECK(p.packs[3] == std::vector<int64_t>({4, 5}));
    CHECK(p.dropped_long == std::vector<int64_t>({6}));
    CHECK(p.batch_sequences == std::vector<int64_t>({2, 1, 1, 2}));
    // max_batch_size 1, and trimming to packs_per_batch 4
    p = batch_by_seqlens(lens, 10, 1, 1, DS_DATA_PICK_SEQLEN, 0, 4);
    CHECK_EQ_INT(p.packs.size(), 4);
    CHECK(p.packs[0] == std::vector<int64_t>({4}));  // shortest first: 2 2 3 4 5 9
    CHECK_EQ_INT(p.dropped_tail, 2);
    CHECK(p.batch_sequences == std::vector<int64_t>({4}));
    // min_batch_size 2 stops packing at the first pack that cannot reach it (as DeepSpeed)
    p = batch_by_seqlens(lens, 10, 2, 0, DS_DATA_PICK_DATALOADER, 0, 1);
    CHECK_EQ_INT(p.packs.size(), 1);
    CHECK_EQ_INT(p.dropped_tail, 4);
    CHECK_NEAR(scale_lr(DS_DATA_LR_SCALING_SQRT, 4, 9, 2.0), 3.0, 1e-15);
}

int main(void) {
    RUN(crc32c_known_vectors);
    RUN(gpt2_pretokenizer_pieces);
    RUN(torch_randperm_small_and_large_variants);
    RUN(python_rounding_and_packing);
    return minitest_report();
}
