// Curriculum learning: DeepSpeed's CurriculumScheduler schedules and its data sampler's metric
// buckets (research/deepspeed-facts.md §9.1; no DeepSpeed code copied).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "dsabi.h"

namespace ds::data {

struct Schedule {
    int32_t type = DS_DATA_SCHEDULE_FIXED_LINEAR;
    int32_t floor_mode = DS_DATA_FLOOR_NONE;
    int64_t min_difficulty = 0, max_difficulty = 0;
    int64_t total_curriculum_step = 0, difficulty_step = 1;
    double root_degree = 0;  // fixed_root: required (> 0); fixed_linear uses 1
    std::vector<int64_t> discrete_difficulty, discrete_max_step;
    ds_data_difficulty_fn custom_fn = nullptr;
    void* custom_user_data = nullptr;

    void validate() const;               // throws DS_ERR_INVALID_ARG naming the key
    int64_t difficulty(int64_t step) const;  // get_difficulty(step)
};

class Curriculum {
public:
    Curriculum(Schedule s, std::string metric, int32_t difficulty_type, std::vector<int64_t> metric_values,
               std::string metric_path);
    const Schedule& schedule() const { return s_; }
    int64_t current() const { return current_; }
    int64_t update(int64_t step);  // update_difficulty(step)
    const std::string& metric() const { return metric_; }
    int32_t difficulty_type() const { return difficulty_type_; }
    bool has_metric_values() const { return !metric_values_.empty(); }
    const std::vector<int64_t>& metric_values() const { return metric_values_; }
    const std::string& metric_path() const { return metric_path_; }
    // Truncate sequences to the difficulty (legacy seqlen curriculum, or metric "seqlen" /
    // "seqlen_truncate" without buckets).
    bool truncates() const;

private:
    Schedule s_;
    std::string metric_;
    int32_t difficulty_type_;
    std::vector<int64_t> metric_values_;
    std::string metric_path_;
    int64_t current_;
};

// DeepSpeed's data sampler with schedule_based clustering on one metric: every difficulty increase
// adds a cluster of newly admitted samples (shuffled); each global batch draws a cluster per sample
// in proportion to cluster sizes, takes samples in order from each cluster (reshuffling a cluster
// when it wraps), shuffles the batch, and every data-parallel rank takes its slice of each
// micro-batch * dp part. Deterministic from the seed on every rank (no broadcast needed); the random
// stream is dsabi's (MT19937-64), not numpy's.
class MetricSampler {
public:
    MetricSampler(const Curriculum& c, int64_t micro_batch, int32_t dp_rank, int32_t dp_size, int32_t grad_accum,
                  uint64_t seed);
    // This rank's next micro-batch (its slice), and the difficulty it was drawn at.
    std::vector<int64_t> next(int64_t* difficulty);
    int64_t curriculum_step() const { return step_; }
    int64_t n_clusters() const { return static_cast<int64_t>(clusters_.size()); }

private:
    void add_cluster(int64_t prev, int64_t cur);
    void draw_global_batch();

    Schedule sched_;
    int32_t difficulty_type_;
    std::vector<int64_t> sorted_;          // sample ids by (metric, id)
    std::vector<int64_t> sorted_metric_;   // their metric values
    int64_t micro_, global_;
    int32_t rank_, dp_;
    std::mt19937_64 rng_;
    int64_t step_ = 0;
    bool have_difficulty_ = false;
    int64_t current_ = 0;
    std::vector<std::vector<int64_t>> clusters_;
    std::vector<size_t> positions_;
    std::vector<int64_t> batch_;
    size_t batch_pos_ = 0;
};

// Python's round(r * L / dp) (half to even) for the data sampler's slices.
int64_t round_half_even_div(int64_t num, int64_t den);

}  // namespace ds::data
