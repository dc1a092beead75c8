#include "data/sampler.hpp"

#include <numeric>
#include <random>

#include "core/error.hpp"

namespace ds::data {

std::vector<int64_t> torch_randperm(int64_t n, uint64_t seed) {
    std::vector<int64_t> r(static_cast<size_t>(n));
    // std::mt19937 seeded with a 32-bit value is the reference MT19937 (init_genrand), as PyTorch's.
    std::mt19937 gen(static_cast<uint32_t>(seed & 0xFFFFFFFFu));
    if (n < static_cast<int64_t>(UINT32_MAX / 20)) {
        std::iota(r.begin(), r.end(), int64_t(0));
        for (int64_t i = 0; i + 1 < n; ++i) {
            const int64_t z = static_cast<int64_t>(static_cast<uint32_t>(gen()) % static_cast<uint64_t>(n - i));
            std::swap(r[static_cast<size_t>(i)], r[static_cast<size_t>(z + i)]);
        }
        return r;
    }
    for (int64_t i = 0; i < n; ++i) {
        const uint64_t hi = static_cast<uint32_t>(gen()), lo = static_cast<uint32_t>(gen());
        const int64_t z = static_cast<int64_t>(((hi << 32) | lo) % static_cast<uint64_t>(i + 1));
        r[static_cast<size_t>(i)] = r[static_cast<size_t>(z)];
        r[static_cast<size_t>(z)] = i;
    }
    return r;
}

DistributedSampler::DistributedSampler(const SamplerConfig& c) : c_(c) {
    if (c.n_samples == 0) fail(DS_ERR_INVALID_ARG, "n_samples is 0: the dataset is empty");
    if (c.n_samples > static_cast<uint64_t>(INT64_MAX / 2)) fail(DS_ERR_INVALID_ARG, "n_samples=%llu is too large",
                                                                  static_cast<unsigned long long>(c.n_samples));
    if (c.world_size < 1) fail(DS_ERR_INVALID_ARG, "world_size=%d must be at least 1", c.world_size);
    if (c.rank < 0 || c.rank >= c.world_size)
        fail(DS_ERR_INVALID_ARG, "rank=%d is outside [0, world_size=%d)", c.rank, c.world_size);
    const int64_t n = static_cast<int64_t>(c.n_samples), w = c.world_size;
    if (c.drop_last && n % w != 0) {
        if (n < w)
            fail(DS_ERR_INVALID_ARG, "drop_last with n_samples=%lld < world_size=%d leaves no sample for any rank",
                 static_cast<long long>(n), c.world_size);
        num_samples_ = (n - w + w - 1) / w;  // ceil((n - w) / w)
    } else {
        num_samples_ = (n + w - 1) / w;
    }
}

std::vector<int64_t> DistributedSampler::indices(int64_t epoch) const {
    const int64_t n = static_cast<int64_t>(c_.n_samples), w = c_.world_size;
    const int64_t total = num_samples_ * w;
    std::vector<int64_t> all;
    if (c_.shuffle) {
        all = torch_randperm(n, static_cast<uint64_t>(c_.seed) + static_cast<uint64_t>(epoch));
    } else {
        all.resize(static_cast<size_t>(n));
        std::iota(all.begin(), all.end(), int64_t(0));
    }
    // Pad by repeating from the start (or cut the tail), then stride by rank.
    std::vector<int64_t> out(static_cast<size_t>(num_samples_));
    for (int64_t k = 0; k < num_samples_; ++k) {
        const int64_t pos = c_.rank + k * w;  // < total
        out[static_cast<size_t>(k)] = all[static_cast<size_t>(pos % n)];
    }
    (void)total;
    return out;
}

}  // namespace ds::data
