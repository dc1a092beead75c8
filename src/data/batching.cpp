#include "data/batching.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/error.hpp"
#include "dsabi.h"

namespace ds::data {

PackPlan batch_by_seqlens(const std::vector<uint32_t>& seqlens, int64_t max_tokens, int32_t min_batch_size,
                          int32_t max_batch_size, int32_t picking_order, uint64_t seed, int64_t packs_per_batch) {
    if (max_tokens <= 0) fail(DS_ERR_INVALID_ARG, "max_tokens=%lld must be positive", static_cast<long long>(max_tokens));
    if (packs_per_batch <= 0) fail(DS_ERR_INVALID_ARG, "packs per batch %lld must be positive", static_cast<long long>(packs_per_batch));
    std::vector<int64_t> order(seqlens.size());
    std::iota(order.begin(), order.end(), int64_t(0));
    if (picking_order == DS_DATA_PICK_SEQLEN) {
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t a, int64_t b) { return seqlens[static_cast<size_t>(a)] < seqlens[static_cast<size_t>(b)]; });
    } else if (picking_order == DS_DATA_PICK_RANDOM) {
        std::mt19937_64 g(seed);
        for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[static_cast<size_t>(g() % i)]);
    } else if (picking_order != DS_DATA_PICK_DATALOADER) {
        fail(DS_ERR_INVALID_ARG, "picking_order=%d is not a DS_DATA_PICK_* value (0..2)", picking_order);
    }
    PackPlan plan;
    std::vector<int64_t> kept;
    kept.reserve(order.size());
    for (int64_t id : order) {
        if (static_cast<int64_t>(seqlens[static_cast<size_t>(id)]) > max_tokens) plan.dropped_long.push_back(id);
        else kept.push_back(id);
    }
    const size_t max_bs = max_batch_size > 0 ? static_cast<size_t>(max_batch_size) : SIZE_MAX;
    const size_t min_bs = min_batch_size > 0 ? static_cast<size_t>(min_batch_size) : 0;
    size_t i = 0;
    while (i < kept.size()) {
        std::vector<int64_t> pack;
        int64_t sum = 0;
        while (i < kept.size() && pack.size() < max_bs &&
               sum + static_cast<int64_t>(seqlens[static_cast<size_t>(kept[i])]) <= max_tokens) {
            sum += seqlens[static_cast<size_t>(kept[i])];
            pack.push_back(kept[i++]);
        }
        if (pack.size() < min_bs || pack.empty()) {
            plan.dropped_tail += static_cast<int64_t>(kept.size() - (i - pack.size()));
            break;
        }
        plan.packs.push_back(std::move(pack));
    }
    const size_t keep = plan.packs.size() - plan.packs.size() % static_cast<size_t>(packs_per_batch);
    for (size_t k = keep; k < plan.packs.size(); ++k) plan.dropped_tail += static_cast<int64_t>(plan.packs[k].size());
    plan.packs.resize(keep);
    for (size_t b = 0; b < keep; b += static_cast<size_t>(packs_per_batch)) {
        int64_t n = 0;
        for (size_t k = b; k < b + static_cast<size_t>(packs_per_batch); ++k) n += static_cast<int64_t>(plan.packs[k].size());
        plan.batch_sequences.push_back(n);
    }
    return plan;
}

double scale_lr(int32_t method, int64_t base_batch_size, int64_t batch_size, double base_lr) {
    if (base_batch_size <= 0)
        fail(DS_ERR_INVALID_ARG, "base_batch_size=%lld must be positive", static_cast<long long>(base_batch_size));
    switch (method) {
        case DS_DATA_LR_SCALING_LINEAR:
            return base_lr * static_cast<double>(batch_size) / static_cast<double>(base_batch_size);
        case DS_DATA_LR_SCALING_SQRT:
            return base_lr * std::sqrt(static_cast<double>(batch_size) / static_cast<double>(base_batch_size));
        case DS_DATA_LR_SCALING_NONE:
            return base_lr;
        default:
            fail(DS_ERR_INVALID_ARG, "method=%d is not a DS_DATA_LR_SCALING_* value (0 linear, 1 sqrt, 2 none)", method);
    }
}

const char* lr_scaling_name(int32_t method) {
    switch (method) {
        case DS_DATA_LR_SCALING_LINEAR: return "linear";
        case DS_DATA_LR_SCALING_SQRT: return "sqrt";
        case DS_DATA_LR_SCALING_NONE: return "none";
        default: return "invalid";
    }
}

const char* picking_order_name(int32_t order) {
    switch (order) {
        case DS_DATA_PICK_DATALOADER: return "dataloader";
        case DS_DATA_PICK_SEQLEN: return "seqlen";
        case DS_DATA_PICK_RANDOM: return "random";
        default: return "invalid";
    }
}

}  // namespace ds::data
