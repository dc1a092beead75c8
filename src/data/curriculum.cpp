#include "data/curriculum.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "core/log.hpp"

namespace ds::data {

namespace {

int64_t py_mod(int64_t a, int64_t b) {  // Python's %: the sign of the divisor
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}

int64_t py_floordiv(int64_t a, int64_t b) { return (a - py_mod(a, b)) / b; }

double uniform01(std::mt19937_64& g) { return static_cast<double>(g() >> 11) * (1.0 / 9007199254740992.0); }

template <class T>
void shuffle(std::vector<T>& v, std::mt19937_64& g) {
    for (size_t i = v.size(); i > 1; --i) {
        const size_t j = static_cast<size_t>(g() % i);
        std::swap(v[i - 1], v[j]);
    }
}

}  // namespace

int64_t round_half_even_div(int64_t num, int64_t den) {
    int64_t q = num / den, r = num % den;
    if (2 * r > den || (2 * r == den && (q & 1))) ++q;
    return q;
}

void Schedule::validate() const {
    if (max_difficulty < min_difficulty)
        fail(DS_ERR_INVALID_ARG, "max_difficulty=%lld is smaller than min_difficulty=%lld", static_cast<long long>(max_difficulty),
             static_cast<long long>(min_difficulty));
    if (floor_mode < DS_DATA_FLOOR_NONE || floor_mode > DS_DATA_FLOOR_STEP_MIN)
        fail(DS_ERR_INVALID_ARG, "floor_mode=%d is not a DS_DATA_FLOOR_* value (0..2)", floor_mode);
    switch (type) {
        case DS_DATA_SCHEDULE_FIXED_ROOT:
            if (!(root_degree > 0)) fail(DS_ERR_INVALID_ARG, "schedule_config.root_degree=%g must be positive", root_degree);
            [[fallthrough]];
        case DS_DATA_SCHEDULE_FIXED_LINEAR:
            if (total_curriculum_step <= 0)
                fail(DS_ERR_INVALID_ARG, "schedule_config.total_curriculum_step=%lld must be positive",
                     static_cast<long long>(total_curriculum_step));
            if (difficulty_step <= 0)
                fail(DS_ERR_INVALID_ARG, "schedule_config.difficulty_step=%lld must be positive",
                     static_cast<long long>(difficulty_step));
            if (difficulty_step % 8 != 0)
                log(DS_LOG_WARN,
                    "curriculum: difficulty_step=%lld is not a multiple of 8; for the seqlen metric use a multiple of 8 "
                    "(FP16) or 16 (INT8) for Tensor Core speed",
                    static_cast<long long>(difficulty_step));
            break;
        case DS_DATA_SCHEDULE_FIXED_DISCRETE:
            if (discrete_max_step.empty() || discrete_difficulty.empty())
                fail(DS_ERR_INVALID_ARG, "fixed_discrete needs schedule_config.difficulty and schedule_config.max_step");
            if (discrete_difficulty.size() != discrete_max_step.size() + 1)
                fail(DS_ERR_INVALID_ARG,
                     "fixed_discrete: schedule_config.difficulty has %zu values; it needs one more than max_step (%zu)",
                     discrete_difficulty.size(), discrete_max_step.size());
            break;
        case DS_DATA_SCHEDULE_CUSTOM:
            if (!custom_fn) fail(DS_ERR_INVALID_ARG, "schedule_type custom needs custom_fn");
            break;
        default:
            fail(DS_ERR_INVALID_ARG, "schedule_type=%d is not a DS_DATA_SCHEDULE_* value (0..3)", type);
    }
}

int64_t Schedule::difficulty(int64_t step) const {
    switch (type) {
        case DS_DATA_SCHEDULE_FIXED_DISCRETE: {
            if (step > discrete_max_step.back()) return discrete_difficulty.back();
            for (size_t i = 0; i < discrete_max_step.size(); ++i)
                if (step <= discrete_max_step[i]) return discrete_difficulty[i];
            return discrete_difficulty.back();
        }
        case DS_DATA_SCHEDULE_FIXED_LINEAR:
        case DS_DATA_SCHEDULE_FIXED_ROOT: {
            const double degree = type == DS_DATA_SCHEDULE_FIXED_LINEAR ? 1.0 : root_degree;
            const double frac = std::pow(static_cast<double>(step) / static_cast<double>(total_curriculum_step), 1.0 / degree);
            int64_t d = static_cast<int64_t>(std::floor(frac * static_cast<double>(max_difficulty - min_difficulty) +
                                                        static_cast<double>(min_difficulty)));
            d -= py_mod(d, difficulty_step);
            if (floor_mode == DS_DATA_FLOOR_MIN) d = std::max(d, min_difficulty);
            if (floor_mode == DS_DATA_FLOOR_STEP_MIN) d = std::max(d, -py_floordiv(-min_difficulty, difficulty_step) * difficulty_step);
            return std::min(d, max_difficulty);
        }
        case DS_DATA_SCHEDULE_CUSTOM:
            return custom_fn(step, custom_user_data);
        default:
            return min_difficulty;
    }
}

Curriculum::Curriculum(Schedule s, std::string metric, int32_t difficulty_type, std::vector<int64_t> metric_values,
                       std::string metric_path)
    : s_(std::move(s)), metric_(std::move(metric)), difficulty_type_(difficulty_type),
      metric_values_(std::move(metric_values)), metric_path_(std::move(metric_path)), current_(s_.min_difficulty) {
    s_.validate();
    if (difficulty_type_ != DS_DATA_DIFFICULTY_VALUE && difficulty_type_ != DS_DATA_DIFFICULTY_PERCENTILE)
        fail(DS_ERR_INVALID_ARG, "difficulty_type=%d is not DS_DATA_DIFFICULTY_VALUE (0) or _PERCENTILE (1)", difficulty_type_);
    if (difficulty_type_ == DS_DATA_DIFFICULTY_PERCENTILE && !metric_values_.empty() &&
        (s_.max_difficulty <= 0 || s_.max_difficulty > 100))
        fail(DS_ERR_INVALID_ARG, "difficulty_type percentile needs max_difficulty in [1, 100], got %lld",
             static_cast<long long>(s_.max_difficulty));
}

int64_t Curriculum::update(int64_t step) {
    if (current_ < s_.max_difficulty) current_ = s_.difficulty(step);
    return current_;
}

bool Curriculum::truncates() const {
    return metric_values_.empty() && (metric_.empty() || metric_ == "seqlen" || metric_ == "seqlen_truncate");
}

// ---- metric buckets ----------------------------------------------------------------------------

MetricSampler::MetricSampler(const Curriculum& c, int64_t micro_batch, int32_t dp_rank, int32_t dp_size,
                             int32_t grad_accum, uint64_t seed)
    : sched_(c.schedule()), difficulty_type_(c.difficulty_type()), micro_(micro_batch),
      global_(micro_batch * dp_size * grad_accum), rank_(dp_rank), dp_(dp_size), rng_(seed) {
    const std::vector<int64_t>& m = c.metric_values();
    sorted_.resize(m.size());
    std::iota(sorted_.begin(), sorted_.end(), int64_t(0));
    std::stable_sort(sorted_.begin(), sorted_.end(), [&](int64_t a, int64_t b) { return m[static_cast<size_t>(a)] < m[static_cast<size_t>(b)]; });
    sorted_metric_.resize(m.size());
    for (size_t i = 0; i < m.size(); ++i) sorted_metric_[i] = m[static_cast<size_t>(sorted_[i])];
}

void MetricSampler::add_cluster(int64_t prev, int64_t cur) {
    std::vector<int64_t> cl;
    const int64_t n = static_cast<int64_t>(sorted_.size());
    if (difficulty_type_ == DS_DATA_DIFFICULTY_VALUE) {
        // metric in (prev, cur]; prev = -inf at first
        auto lo = have_difficulty_ ? std::upper_bound(sorted_metric_.begin(), sorted_metric_.end(), prev)
                                   : sorted_metric_.begin();
        auto hi = std::upper_bound(sorted_metric_.begin(), sorted_metric_.end(), cur);
        if (hi > lo) cl.assign(sorted_.begin() + (lo - sorted_metric_.begin()), sorted_.begin() + (hi - sorted_metric_.begin()));
    } else {
        const int64_t per = n / sched_.max_difficulty;
        const int64_t start = per * (have_difficulty_ ? prev : 0);
        int64_t end = per * cur;
        if (cur == sched_.max_difficulty) end = n;
        if (end > start) cl.assign(sorted_.begin() + std::min(start, n), sorted_.begin() + std::min(end, n));
    }
    if (cl.empty()) return;
    shuffle(cl, rng_);
    clusters_.push_back(std::move(cl));
    positions_.push_back(0);
}

void MetricSampler::draw_global_batch() {
    ++step_;
    const int64_t prev = current_;
    int64_t next = current_;
    if (!have_difficulty_) next = sched_.min_difficulty;
    if (next < sched_.max_difficulty) next = sched_.difficulty(step_);
    if (!have_difficulty_ || next != current_) {
        const bool first = !have_difficulty_;
        current_ = next;
        if (first) {
            have_difficulty_ = false;
            add_cluster(0, next);
        } else {
            add_cluster(prev, next);
        }
        have_difficulty_ = true;
    }
    if (clusters_.empty())
        fail(DS_ERR_INVALID_ARG, "curriculum: no sample has a metric within the difficulty %lld at step %lld (the metric "
             "values range from %lld to %lld)", static_cast<long long>(current_), static_cast<long long>(step_),
             static_cast<long long>(sorted_metric_.empty() ? 0 : sorted_metric_.front()),
             static_cast<long long>(sorted_metric_.empty() ? 0 : sorted_metric_.back()));
    // Cluster of each of the global batch's samples, in proportion to cluster sizes.
    std::vector<double> cum(clusters_.size());
    double total = 0;
    for (size_t k = 0; k < clusters_.size(); ++k) cum[k] = (total += static_cast<double>(clusters_[k].size()));
    std::vector<int64_t> counts(clusters_.size(), 0);
    for (int64_t i = 0; i < global_; ++i) {
        const double u = uniform01(rng_) * total;
        size_t k = static_cast<size_t>(std::upper_bound(cum.begin(), cum.end(), u) - cum.begin());
        if (k >= clusters_.size()) k = clusters_.size() - 1;
        ++counts[k];
    }
    batch_.clear();
    for (size_t k = 0; k < clusters_.size(); ++k) {
        std::vector<int64_t>& cl = clusters_[k];
        for (int64_t c = 0; c < counts[k]; ++c) {
            if (positions_[k] >= cl.size()) {
                shuffle(cl, rng_);
                positions_[k] = 0;
            }
            batch_.push_back(cl[positions_[k]++]);
        }
    }
    shuffle(batch_, rng_);
    batch_pos_ = 0;
}

std::vector<int64_t> MetricSampler::next(int64_t* difficulty) {
    const int64_t part = micro_ * dp_;
    if (batch_pos_ >= batch_.size()) draw_global_batch();
    const int64_t len = std::min<int64_t>(part, static_cast<int64_t>(batch_.size() - batch_pos_));
    const int64_t s = round_half_even_div(rank_ * len, dp_), e = round_half_even_div((rank_ + 1) * len, dp_);
    std::vector<int64_t> out(batch_.begin() + static_cast<int64_t>(batch_pos_) + s,
                             batch_.begin() + static_cast<int64_t>(batch_pos_) + e);
    batch_pos_ += static_cast<size_t>(len);
    if (difficulty) *difficulty = current_;
    return out;
}

}  // namespace ds::data
