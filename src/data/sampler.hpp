// Distributed sampling in PyTorch's exact order.
//
// torch.randperm(n, generator=g) on the CPU, g = torch.Generator().manual_seed(s): the generator is a
// 32-bit Mersenne Twister (MT19937) initialised with the low 32 bits of s. For n < 2^32 / 20 the
// permutation is a forward Fisher-Yates: start from 0..n-1 and for i = 0..n-2 swap element i with
// element i + (next 32-bit output % (n - i)). For larger n, PyTorch 2.x uses the "inside-out" variant
// with 64-bit draws (high word first): for i = 0..n-1, z = draw64 % (i + 1), r[i] = r[z], r[z] = i.
// (PyTorch 1.x used the 32-bit forward variant for every n.)
//
// torch.utils.data.DistributedSampler(shuffle, seed, drop_last): indices = randperm(n, seed + epoch)
// (or 0..n-1); without drop_last, pad to num_samples * world = ceil(n / world) * world by repeating
// the list from its start (as often as needed); with drop_last, num_samples = ceil((n - world) / world)
// when n % world != 0 (else n / world) and the tail is cut. Rank r takes indices[r::world].
#pragma once

#include <cstdint>
#include <vector>

namespace ds::data {

std::vector<int64_t> torch_randperm(int64_t n, uint64_t seed);

struct SamplerConfig {
    uint64_t n_samples = 0;
    int32_t rank = 0;
    int32_t world_size = 1;
    int64_t seed = 0;
    bool shuffle = true;
    bool drop_last = false;
};

class DistributedSampler {
public:
    explicit DistributedSampler(const SamplerConfig& c);  // throws DS_ERR_INVALID_ARG
    int64_t num_samples() const { return num_samples_; }
    // This rank's indices for an epoch (num_samples values).
    std::vector<int64_t> indices(int64_t epoch) const;
    const SamplerConfig& config() const { return c_; }

private:
    SamplerConfig c_;
    int64_t num_samples_ = 0;
};

}  // namespace ds::data
