// The data loader: plans micro-batches (distributed sampler, dynamic-batching packs, or curriculum
// metric buckets) in order, fills them on background threads into recycled (pinned when a GPU is
// used) host buffers, and hands them out in order.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/batching.hpp"
#include "data/curriculum.hpp"
#include "data/format.hpp"
#include "data/sampler.hpp"
#include "device/tensor.hpp"
#include "dsabi.h"

namespace ds::data {

struct LoaderConfig {
    int32_t mode = DS_DATA_MODE_WINDOWS;
    int64_t seq_len = 0;
    int64_t stride = 0;
    int64_t micro = 1;
    int32_t gas = 1;
    int32_t rank = 0, world = 1;
    bool shuffle = true, drop_last = false;
    int64_t seed = 0;
    int32_t num_workers = 1, depth = 4;
    int32_t pin = -1;
    int32_t dtype = DS_DTYPE_I32;
    int32_t pad_id = 0;
    bool dynamic = false;
    int64_t max_tokens = 0;
    int32_t lr_method = DS_DATA_LR_SCALING_LINEAR;
    int32_t min_bs = 1, max_bs = 0;
    int32_t picking = DS_DATA_PICK_DATALOADER;
    std::shared_ptr<Curriculum> curriculum;
    int64_t start_step = 0;
};

// Host memory for batches: pinned through the CUDA runtime when asked and possible.
class BlockPool;
struct Block {
    void* ptr = nullptr;
    size_t bytes = 0;
    bool pinned = false;
    std::weak_ptr<BlockPool> pool;
    ~Block();
};

struct Field {
    bool present = false;
    size_t offset = 0;
    int32_t dtype = DS_DTYPE_I32;
    int32_t ndim = 1;
    int64_t shape[2] = {0, 0};
};

struct BatchData {
    std::shared_ptr<Block> block;
    Field fields[6];
    ds_data_batch_info_t info{};
    Tensor tensor(int32_t field, const std::shared_ptr<BatchData>& self) const;  // throws NOT_FOUND
};

struct Job {
    bool end_of_epoch = false;
    int64_t epoch = 0, index = 0, step = 0;
    int64_t difficulty = 0;
    double lr_scale = 1.0;
    int64_t global_batch_samples = 0;
    bool packed = false;
    std::vector<std::vector<int64_t>> rows;  // sample ids per row
};

class Planner {
public:
    Planner(std::shared_ptr<const Dataset> data, const LoaderConfig& c);
    Job next();
    void restart();  // to epoch 0, position 0
    int64_t length(int64_t epoch);
    int64_t n_samples() const { return n_samples_; }
    std::string describe() const;
    const std::vector<uint32_t>& seqlens() const { return seqlens_; }

private:
    void start_epoch(int64_t epoch);
    std::shared_ptr<const Dataset> data_;
    LoaderConfig c_;
    int64_t n_samples_ = 0;
    std::vector<uint32_t> seqlens_;  // documents mode: lengths after the seq_len cut
    std::unique_ptr<DistributedSampler> sampler_;
    std::unique_ptr<MetricSampler> metric_;
    int64_t epoch_ = 0, index_ = 0, len_ = 0, total_micro_ = 0;
    bool epoch_ready_ = false;
    std::vector<int64_t> indices_;  // sampler: this rank's share for the epoch
    PackPlan plan_;                  // dynamic batching: this epoch's packs
    int64_t cur_difficulty_ = 0;
    int64_t last_dropped_long_ = 0, last_dropped_tail_ = 0, last_packs_ = 0;
};

class Loader {
public:
    Loader(std::shared_ptr<const Dataset> data, LoaderConfig c);
    ~Loader();
    // nullptr at the end of an epoch. Throws the worker's error (then the loader is failed).
    std::shared_ptr<BatchData> next();
    int64_t length();
    ds_data_cursor_t cursor() const;
    void set_cursor(int64_t epoch, int64_t position);
    std::string info_json();
    bool pinned() const { return pinned_; }

private:
    struct Result {
        bool end = false;
        ds_status_t status = DS_OK;
        std::string message;
        std::shared_ptr<BatchData> batch;
        int64_t n_samples = 0;
    };
    void start_workers();
    void stop_workers();
    void worker();
    std::shared_ptr<BatchData> fill(const Job& job);

    std::shared_ptr<const Dataset> data_;
    LoaderConfig c_;
    std::shared_ptr<BlockPool> pool_;
    bool pinned_ = false;
    std::string pin_note_;

    mutable std::mutex m_;
    std::condition_variable cv_work_, cv_ready_;
    Planner planner_;
    std::vector<std::thread> threads_;
    bool stop_ = false;
    int64_t next_seq_ = 0, want_seq_ = 0;
    std::map<int64_t, Result> ready_;

    // consumed cursor
    int64_t epoch_ = 0, position_ = 0, total_micro_ = 0, consumed_samples_ = 0;
    bool failed_ = false;
    std::string failure_;
};

}  // namespace ds::data
