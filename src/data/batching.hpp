// Dynamic batching: DeepSpeed's batch_by_seqlens packing and scale_lr (research/deepspeed-facts.md
// §9.3; no DeepSpeed code copied).
//
// Samples are taken in the picking order (dataset, shortest first, or a seeded shuffle); samples
// longer than max_tokens are dropped; each pack is the longest run of following samples whose
// lengths sum to at most max_tokens with at most max_batch_size sequences; a pack with fewer than
// min_batch_size sequences ends the packing (as in DeepSpeed). Packs are trimmed to a multiple of
// packs_per_batch (= micro batch * accumulation * data-parallel size, DeepSpeed's
// effective_batch_size), and batch b's LR scale uses the number of sequences in its packs against
// packs_per_batch. Difference from DeepSpeed 0.19: DeepSpeed's search never packs the very last
// sample of the order; dsabi does, so every sample of an epoch appears exactly once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ds::data {

struct PackPlan {
    std::vector<std::vector<int64_t>> packs;  // sample ids
    std::vector<int64_t> batch_sequences;     // per global batch
    std::vector<int64_t> dropped_long;        // samples longer than max_tokens
    int64_t dropped_tail = 0;                 // samples left out by trimming or min_batch_size
};

PackPlan batch_by_seqlens(const std::vector<uint32_t>& seqlens, int64_t max_tokens, int32_t min_batch_size,
                          int32_t max_batch_size, int32_t picking_order, uint64_t seed, int64_t packs_per_batch);

// DeepSpeed's scale_lr; throws DS_ERR_INVALID_ARG for an unknown method or base_batch_size <= 0.
double scale_lr(int32_t method, int64_t base_batch_size, int64_t batch_size, double base_lr);
const char* lr_scaling_name(int32_t method);
const char* picking_order_name(int32_t order);

}  // namespace ds::data
