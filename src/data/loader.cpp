#include "data/loader.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "core/lib.hpp"
#include "core/log.hpp"
#include "device/device.hpp"

namespace ds::data {

namespace {

size_t align64(size_t v) { return (v + 63) & ~size_t(63); }

}  // namespace

class BlockPool : public std::enable_shared_from_this<BlockPool> {
public:
    explicit BlockPool(bool pinned) : pinned_(pinned) {}
    ~BlockPool() {
        for (auto& f : free_) release(f.first, f.second);
    }
    std::shared_ptr<Block> get(size_t bytes) {
        bytes = align64(std::max<size_t>(bytes, 64));
        {
            std::lock_guard<std::mutex> lk(m_);
            for (size_t i = 0; i < free_.size(); ++i) {
                if (free_[i].second >= bytes) {
                    auto b = std::make_shared<Block>();
                    b->ptr = free_[i].first;
                    b->bytes = free_[i].second;
                    b->pinned = pinned_;
                    b->pool = weak_from_this();
                    free_.erase(free_.begin() + static_cast<long>(i));
                    return b;
                }
            }
        }
        auto b = std::make_shared<Block>();
        b->bytes = bytes;
        b->pinned = pinned_;
        b->pool = weak_from_this();
        if (pinned_) {
            b->ptr = device::alloc_pinned(bytes);
        } else {
            b->ptr = std::aligned_alloc(64, bytes);
            if (!b->ptr) fail(DS_ERR_NOMEM, "cannot allocate %zu bytes for a batch", bytes);
        }
        return b;
    }
    void give_back(void* p, size_t bytes) {
        std::lock_guard<std::mutex> lk(m_);
        if (free_.size() < 16) {
            free_.emplace_back(p, bytes);
            return;
        }
        release(p, bytes);
    }
    void release(void* p, size_t) const {
        if (pinned_) device::release_pinned(p);
        else std::free(p);
    }

private:
    bool pinned_;
    std::mutex m_;
    std::vector<std::pair<void*, size_t>> free_;
};

Block::~Block() {
    if (!ptr) return;
    if (auto p = pool.lock()) {
        p->give_back(ptr, bytes);
    } else if (pinned) {
        device::release_pinned(ptr);
    } else {
        std::free(ptr);
    }
}

Tensor BatchData::tensor(int32_t field, const std::shared_ptr<BatchData>& self) const {
    if (field < 0 || field > DS_DATA_FIELD_SEQUENCE_IDS)
        fail(DS_ERR_INVALID_ARG, "field=%d is not a DS_DATA_FIELD_* value (0..5)", field);
    const Field& f = fields[field];
    if (!f.present)
        fail(DS_ERR_NOT_FOUND, "field=%d is only part of packed batches (dynamic batching)", field);
    Tensor t = Tensor::wrap(static_cast<char*>(block->ptr) + f.offset, f.dtype, f.ndim, f.shape, nullptr,
                            device::Device{DS_DEV_CPU, 0});
    std::shared_ptr<BatchData> keep = self;
    t.storage->release = [keep] {};
    return t;
}

// ---- planner -------------------------------------------------------------------------------------

Planner::Planner(std::shared_ptr<const Dataset> data, const LoaderConfig& c) : data_(std::move(data)), c_(c) {
    if (c_.mode == DS_DATA_MODE_WINDOWS) {
        if (c_.seq_len <= 0) fail(DS_ERR_INVALID_ARG, "opts->seq_len=%lld must be positive in windows mode", static_cast<long long>(c_.seq_len));
        const uint64_t n = data_->n_tokens();
        if (n < static_cast<uint64_t>(c_.seq_len))
            fail(DS_ERR_INVALID_ARG, "'%s' has %llu tokens, fewer than one window of seq_len=%lld", data_->path().c_str(),
                 static_cast<unsigned long long>(n), static_cast<long long>(c_.seq_len));
        n_samples_ = static_cast<int64_t>((n - static_cast<uint64_t>(c_.seq_len)) / static_cast<uint64_t>(c_.stride)) + 1;
    } else {
        n_samples_ = static_cast<int64_t>(data_->n_documents());
        if (n_samples_ == 0) fail(DS_ERR_INVALID_ARG, "'%s' has no documents", data_->path().c_str());
        if (c_.dynamic) {
            seqlens_ = data_->document_lengths();
            if (c_.seq_len > 0)
                for (uint32_t& l : seqlens_) l = std::min<uint32_t>(l, static_cast<uint32_t>(c_.seq_len));
        }
    }
    if (c_.curriculum && c_.curriculum->has_metric_values()) {
        if (static_cast<int64_t>(c_.curriculum->metric_values().size()) != n_samples_)
            fail(DS_ERR_INVALID_ARG, "the metric file '%s' has %zu values but the loader has %lld samples (%s)",
                 c_.curriculum->metric_path().c_str(), c_.curriculum->metric_values().size(),
                 static_cast<long long>(n_samples_), c_.mode == DS_DATA_MODE_WINDOWS ? "windows" : "documents");
        if (c_.dynamic) fail(DS_ERR_INVALID_ARG, "curriculum metric buckets and dynamic batching cannot be combined");
    } else if (!c_.dynamic) {
        SamplerConfig sc;
        sc.n_samples = static_cast<uint64_t>(n_samples_);
        sc.rank = c_.rank;
        sc.world_size = c_.world;
        sc.seed = c_.seed;
        sc.shuffle = c_.shuffle;
        sc.drop_last = c_.drop_last;
        sampler_ = std::make_unique<DistributedSampler>(sc);
    }
    restart();
}

void Planner::restart() {
    epoch_ = 0;
    index_ = 0;
    total_micro_ = 0;
    epoch_ready_ = false;
    cur_difficulty_ = c_.curriculum ? c_.curriculum->schedule().min_difficulty : 0;
    if (c_.curriculum && c_.curriculum->has_metric_values())
        metric_ = std::make_unique<MetricSampler>(*c_.curriculum, c_.micro, c_.rank, c_.world, c_.gas,
                                                  static_cast<uint64_t>(c_.seed));
}

void Planner::start_epoch(int64_t epoch) {
    epoch_ = epoch;
    index_ = 0;
    if (metric_) {
        len_ = n_samples_ / (c_.micro * c_.world);
        if (len_ == 0)
            fail(DS_ERR_INVALID_ARG, "%lld samples are fewer than one micro batch (%lld) times the %d ranks",
                 static_cast<long long>(n_samples_), static_cast<long long>(c_.micro), c_.world);
    } else if (c_.dynamic) {
        const uint64_t seed = static_cast<uint64_t>(c_.seed) + (c_.picking == DS_DATA_PICK_RANDOM ? static_cast<uint64_t>(epoch) : 0);
        const int64_t per_batch = c_.micro * c_.gas * c_.world;
        plan_ = batch_by_seqlens(seqlens_, c_.max_tokens, c_.min_bs, c_.max_bs, c_.picking, seed, per_batch);
        if (plan_.packs.empty())
            fail(DS_ERR_INVALID_ARG,
                 "dynamic batching made fewer packs than one global batch needs (%lld = micro batch %lld x accumulation %d x "
                 "%d ranks) from %lld documents with max_tokens=%lld",
                 static_cast<long long>(per_batch), static_cast<long long>(c_.micro), c_.gas, c_.world,
                 static_cast<long long>(n_samples_), static_cast<long long>(c_.max_tokens));
        if (!plan_.dropped_long.empty() && epoch == 0)
            log(DS_LOG_WARN, "dynamic batching: %zu documents longer than max_tokens=%lld are left out",
                plan_.dropped_long.size(), static_cast<long long>(c_.max_tokens));
        last_dropped_long_ = static_cast<int64_t>(plan_.dropped_long.size());
        last_dropped_tail_ = plan_.dropped_tail;
        last_packs_ = static_cast<int64_t>(plan_.packs.size());
        len_ = static_cast<int64_t>(plan_.packs.size()) / c_.world / c_.micro;
    } else {
        indices_ = sampler_->indices(epoch);
        const int64_t ns = sampler_->num_samples();
        len_ = c_.drop_last ? ns / c_.micro : (ns + c_.micro - 1) / c_.micro;
        if (len_ == 0)
            fail(DS_ERR_INVALID_ARG, "with drop_last, this rank's %lld samples are fewer than one micro batch of %lld",
                 static_cast<long long>(ns), static_cast<long long>(c_.micro));
    }
    epoch_ready_ = true;
}

int64_t Planner::length(int64_t epoch) {
    if (!epoch_ready_ || epoch != epoch_) {
        if (c_.dynamic && c_.picking == DS_DATA_PICK_RANDOM && epoch != epoch_) {
            const uint64_t seed = static_cast<uint64_t>(c_.seed) + static_cast<uint64_t>(epoch);
            PackPlan p = batch_by_seqlens(seqlens_, c_.max_tokens, c_.min_bs, c_.max_bs, c_.picking, seed,
                                          c_.micro * c_.gas * c_.world);
            return static_cast<int64_t>(p.packs.size()) / c_.world / c_.micro;
        }
        if (!epoch_ready_) start_epoch(epoch_);
    }
    return len_;
}

Job Planner::next() {
    if (!epoch_ready_) start_epoch(epoch_);
    Job j;
    j.epoch = epoch_;
    j.index = index_;
    if (index_ >= len_) {
        j.end_of_epoch = true;
        epoch_ready_ = false;
        epoch_ += 1;
        index_ = 0;
        return j;
    }
    j.step = c_.start_step + total_micro_ / c_.gas;
    if (c_.curriculum && !metric_) {
        if (cur_difficulty_ < c_.curriculum->schedule().max_difficulty)
            cur_difficulty_ = c_.curriculum->schedule().difficulty(j.step + 1);
        j.difficulty = cur_difficulty_;
    }
    if (metric_) {
        std::vector<int64_t> ids = metric_->next(&j.difficulty);
        for (int64_t id : ids) j.rows.push_back({id});
    } else if (c_.dynamic) {
        j.packed = true;
        for (int64_t k = 0; k < c_.micro; ++k) {
            const int64_t pos = index_ * c_.micro + k;
            j.rows.push_back(plan_.packs[static_cast<size_t>(pos * c_.world + c_.rank)]);
        }
        const int64_t step_in_epoch = index_ / c_.gas;
        j.global_batch_samples = plan_.batch_sequences[static_cast<size_t>(step_in_epoch)];
        j.lr_scale = scale_lr(c_.lr_method, c_.micro * c_.gas * c_.world, j.global_batch_samples, 1.0);
    } else {
        const int64_t ns = static_cast<int64_t>(indices_.size());
        for (int64_t k = index_ * c_.micro; k < std::min(ns, (index_ + 1) * c_.micro); ++k)
            j.rows.push_back({indices_[static_cast<size_t>(k)]});
    }
    ++index_;
    ++total_micro_;
    return j;
}

std::string Planner::describe() const {
    std::string s = "\"sampler\": \"";
    s += metric_ ? "curriculum_metric_buckets" : (c_.dynamic ? "dynamic_batching" : "distributed");
    s += "\", \"n_samples\": " + std::to_string(n_samples_);
    if (sampler_) s += ", \"samples_per_rank\": " + std::to_string(sampler_->num_samples());
    if (c_.dynamic)
        s += ", \"dynamic_batching\": {\"max_tokens\": " + std::to_string(c_.max_tokens) + ", \"lr_scaling_method\": \"" +
             lr_scaling_name(c_.lr_method) + "\", \"sequence_picking_order\": \"" + picking_order_name(c_.picking) +
             "\", \"min_batch_size\": " + std::to_string(c_.min_bs) + ", \"max_batch_size\": " + std::to_string(c_.max_bs) +
             ", \"packs\": " + std::to_string(last_packs_) + ", \"dropped_too_long\": " + std::to_string(last_dropped_long_) +
             ", \"dropped_tail\": " + std::to_string(last_dropped_tail_) + "}";
    if (c_.curriculum) {
        const Schedule& sc = c_.curriculum->schedule();
        static const char* names[] = {"fixed_linear", "fixed_root", "fixed_discrete", "custom"};
        s += ", \"curriculum\": {\"metric\": \"" + c_.curriculum->metric() + "\", \"schedule_type\": \"" +
             names[sc.type] + "\", \"min_difficulty\": " + std::to_string(sc.min_difficulty) +
             ", \"max_difficulty\": " + std::to_string(sc.max_difficulty) + ", \"metric_buckets\": " +
             (metric_ ? "true" : "false") + ", \"truncates\": " + (c_.curriculum->truncates() ? "true" : "false") + "}";
    }
    return s;
}

// ---- loader --------------------------------------------------------------------------------------

Loader::Loader(std::shared_ptr<const Dataset> data, LoaderConfig c)
    : data_(std::move(data)), c_(std::move(c)), planner_(data_, c_) {
    const bool have_gpu = device::count(DS_DEV_CUDA) > 0;
    if (c_.pin == 1 || (c_.pin == -1 && have_gpu)) {
        pinned_ = have_gpu;
        pin_note_ = pinned_ ? "pinned host memory (CUDA backend)" : "pinned memory unavailable (no GPU): host memory";
        if (!pinned_) log(DS_LOG_INFO, "data loader: %s", pin_note_.c_str());
    } else {
        pin_note_ = "host memory";
    }
    pool_ = std::make_shared<BlockPool>(pinned_);
    start_workers();
}

Loader::~Loader() { stop_workers(); }

void Loader::start_workers() {
    stop_ = false;
    for (int32_t i = 0; i < c_.num_workers; ++i) threads_.emplace_back([this] { worker(); });
}

void Loader::stop_workers() {
    {
        std::lock_guard<std::mutex> lk(m_);
        stop_ = true;
    }
    cv_work_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
}

void Loader::worker() {
    while (true) {
        Job job;
        int64_t seq;
        Result res;
        bool have_job = true;
        {
            std::unique_lock<std::mutex> lk(m_);
            cv_work_.wait(lk, [&] { return stop_ || next_seq_ < want_seq_ + c_.depth; });
            if (stop_) return;
            seq = next_seq_++;
            try {
                job = planner_.next();
            } catch (const Error& e) {
                res.status = e.status();
                res.message = e.what();
                have_job = false;
            } catch (const std::exception& e) {
                res.status = DS_ERR_INTERNAL;
                res.message = e.what();
                have_job = false;
            }
        }
        if (have_job) {
            if (job.end_of_epoch) {
                res.end = true;
            } else {
                try {
                    res.batch = fill(job);
                    res.n_samples = res.batch->info.n_samples;
                } catch (const Error& e) {
                    res.status = e.status();
                    res.message = e.what();
                } catch (const std::bad_alloc&) {
                    res.status = DS_ERR_NOMEM;
                    res.message = "out of host memory";
                } catch (const std::exception& e) {
                    res.status = DS_ERR_INTERNAL;
                    res.message = e.what();
                }
            }
        }
        {
            std::lock_guard<std::mutex> lk(m_);
            ready_[seq] = std::move(res);
        }
        cv_ready_.notify_all();
    }
}

namespace {

template <class T>
void pad_fill(T* p, size_t n, int32_t v) {
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<T>(v);
}

}  // namespace

std::shared_ptr<BatchData> Loader::fill(const Job& job) {
    auto bd = std::make_shared<BatchData>();
    const int64_t rows = static_cast<int64_t>(job.rows.size());
    int64_t n_samples = 0;
    for (const auto& r : job.rows) n_samples += static_cast<int64_t>(r.size());
    const bool truncate = c_.curriculum && c_.curriculum->truncates() && job.difficulty > 0;
    int64_t cut = c_.seq_len > 0 ? c_.seq_len : INT64_MAX;
    if (truncate) cut = std::min(cut, job.difficulty);

    // Columns.
    int64_t T = 0;
    std::vector<uint64_t> doc_begin, doc_len;  // per sample, in row order
    if (c_.mode == DS_DATA_MODE_WINDOWS) {
        T = std::min(c_.seq_len, cut);
    } else {
        for (const auto& r : job.rows) {
            int64_t row_len = 0;
            for (int64_t id : r) {
                uint64_t b, e;
                data_->document(static_cast<uint64_t>(id), &b, &e);
                const uint64_t len = std::min<uint64_t>(e - b, static_cast<uint64_t>(job.packed ? (c_.seq_len > 0 ? c_.seq_len : INT64_MAX) : cut));
                doc_begin.push_back(b);
                doc_len.push_back(len);
                row_len += static_cast<int64_t>(len);
            }
            T = std::max(T, row_len);
        }
        if (job.packed) T = c_.max_tokens;
    }
    const size_t esz = c_.dtype == DS_DTYPE_I64 ? 8 : 4;
    size_t off = 0;
    auto place = [&](int32_t field, int32_t dtype, int32_t ndim, int64_t d0, int64_t d1, size_t elem) {
        Field& f = bd->fields[field];
        f.present = true;
        f.offset = off;
        f.dtype = dtype;
        f.ndim = ndim;
        f.shape[0] = d0;
        f.shape[1] = d1;
        off = align64(off + static_cast<size_t>(d0 * (ndim == 2 ? d1 : 1)) * elem);
    };
    place(DS_DATA_FIELD_TOKENS, c_.dtype, 2, rows, T, esz);
    place(DS_DATA_FIELD_LENGTHS, DS_DTYPE_I32, 1, rows, 0, 4);
    place(DS_DATA_FIELD_SAMPLE_IDS, DS_DTYPE_I64, 1, n_samples, 0, 8);
    int64_t n_segments = 0;
    if (job.packed) {
        n_segments = n_samples;
        place(DS_DATA_FIELD_CU_SEQLENS, DS_DTYPE_I32, 1, 0, 0, 4);  // size set below
        place(DS_DATA_FIELD_POSITION_IDS, DS_DTYPE_I32, 2, rows, T, 4);
        place(DS_DATA_FIELD_SEQUENCE_IDS, DS_DTYPE_I32, 2, rows, T, 4);
        // Padding tails are their own segments so the segments tile [0, B * T).
        size_t k = 0;
        for (const auto& r : job.rows) {
            int64_t used = 0;
            for (size_t q = 0; q < r.size(); ++q) used += static_cast<int64_t>(doc_len[k++]);
            if (used < T) ++n_segments;
        }
        // Re-place cu_seqlens with its real size at the end (offsets of the others stay).
        Field& cf = bd->fields[DS_DATA_FIELD_CU_SEQLENS];
        cf.offset = off;
        cf.shape[0] = n_segments + 1;
        off = align64(off + static_cast<size_t>(n_segments + 1) * 4);
    }
    bd->block = pool_->get(off);
    char* base = static_cast<char*>(bd->block->ptr);
    auto ptr_of = [&](int32_t field) { return base + bd->fields[field].offset; };
    int32_t* lengths = reinterpret_cast<int32_t*>(ptr_of(DS_DATA_FIELD_LENGTHS));
    int64_t* sample_ids = reinterpret_cast<int64_t*>(ptr_of(DS_DATA_FIELD_SAMPLE_IDS));
    int64_t n_tokens = 0;

    if (c_.mode == DS_DATA_MODE_WINDOWS) {
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t w = job.rows[static_cast<size_t>(r)][0];
            const uint64_t first = static_cast<uint64_t>(w) * static_cast<uint64_t>(c_.stride);
            char* dst = ptr_of(DS_DATA_FIELD_TOKENS) + static_cast<size_t>(r * T) * esz;
            if (esz == 4) data_->read(first, static_cast<uint64_t>(T), reinterpret_cast<int32_t*>(dst));
            else data_->read(first, static_cast<uint64_t>(T), reinterpret_cast<int64_t*>(dst));
            lengths[r] = static_cast<int32_t>(T);
            sample_ids[r] = w;
            n_tokens += T;
        }
    } else {
        int32_t* pos = job.packed ? reinterpret_cast<int32_t*>(ptr_of(DS_DATA_FIELD_POSITION_IDS)) : nullptr;
        int32_t* sid = job.packed ? reinterpret_cast<int32_t*>(ptr_of(DS_DATA_FIELD_SEQUENCE_IDS)) : nullptr;
        int32_t* cu = job.packed ? reinterpret_cast<int32_t*>(ptr_of(DS_DATA_FIELD_CU_SEQLENS)) : nullptr;
        int64_t seg = 0;
        if (cu) cu[0] = 0;
        size_t k = 0;
        for (int64_t r = 0; r < rows; ++r) {
            char* row = ptr_of(DS_DATA_FIELD_TOKENS) + static_cast<size_t>(r * T) * esz;
            int64_t col = 0;
            int32_t q = 0;
            for (int64_t id : job.rows[static_cast<size_t>(r)]) {
                const uint64_t len = doc_len[k], b = doc_begin[k];
                ++k;
                char* dst = row + static_cast<size_t>(col) * esz;
                if (esz == 4) data_->read(b, len, reinterpret_cast<int32_t*>(dst));
                else data_->read(b, len, reinterpret_cast<int64_t*>(dst));
                if (pos) {
                    for (uint64_t t = 0; t < len; ++t) {
                        pos[r * T + col + static_cast<int64_t>(t)] = static_cast<int32_t>(t);
                        sid[r * T + col + static_cast<int64_t>(t)] = q;
                    }
                    cu[seg + 1] = static_cast<int32_t>(r * T + col + static_cast<int64_t>(len));
                    ++seg;
                }
                col += static_cast<int64_t>(len);
                ++q;
                *sample_ids++ = id;
            }
            lengths[r] = static_cast<int32_t>(col);
            n_tokens += col;
            const size_t pad = static_cast<size_t>(T - col);
            if (esz == 4) pad_fill(reinterpret_cast<int32_t*>(row) + col, pad, c_.pad_id);
            else pad_fill(reinterpret_cast<int64_t*>(row) + col, pad, c_.pad_id);
            if (pos && pad > 0) {
                pad_fill(pos + r * T + col, pad, 0);
                pad_fill(sid + r * T + col, pad, -1);
                cu[seg + 1] = static_cast<int32_t>((r + 1) * T);
                ++seg;
            }
        }
    }
    ds_data_batch_info_t& in = bd->info;
    std::memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.abi_version = DS_ABI_VERSION;
    in.epoch = job.epoch;
    in.index = job.index;
    in.global_step = job.step;
    in.n_rows = rows;
    in.n_columns = T;
    in.n_samples = n_samples;
    in.n_tokens = n_tokens;
    in.difficulty = job.difficulty;
    in.lr_scale = job.lr_scale;
    in.global_batch_samples = job.global_batch_samples;
    in.pinned = bd->block->pinned ? 1 : 0;
    return bd;
}

std::shared_ptr<BatchData> Loader::next() {
    if (failed_) fail(DS_ERR_STATE, "the loader stopped after an error in a worker (%s); set a cursor to restart it", failure_.c_str());
    Result r;
    {
        std::unique_lock<std::mutex> lk(m_);
        cv_ready_.wait(lk, [&] { return ready_.count(want_seq_) > 0; });
        r = std::move(ready_[want_seq_]);
        ready_.erase(want_seq_);
        ++want_seq_;
    }
    cv_work_.notify_all();
    if (r.status != DS_OK) {
        failed_ = true;
        failure_ = r.message;
        fail(r.status, "worker: %s", r.message.c_str());
    }
    if (r.end) {
        ++epoch_;
        position_ = 0;
        return nullptr;
    }
    ++position_;
    ++total_micro_;
    consumed_samples_ += r.n_samples;
    return r.batch;
}

int64_t Loader::length() {
    std::lock_guard<std::mutex> lk(m_);
    // The planner may be ahead in a later epoch: ask for the consumer's epoch.
    return planner_.length(epoch_);
}

ds_data_cursor_t Loader::cursor() const {
    ds_data_cursor_t c{};
    c.struct_size = sizeof c;
    c.abi_version = DS_ABI_VERSION;
    c.epoch = epoch_;
    c.position = position_;
    c.global_step = c_.start_step + total_micro_ / c_.gas;
    c.consumed_samples = consumed_samples_;
    return c;
}

void Loader::set_cursor(int64_t epoch, int64_t position) {
    if (epoch < 0) fail(DS_ERR_INVALID_ARG, "cursor->epoch=%lld is negative", static_cast<long long>(epoch));
    if (position < 0) fail(DS_ERR_INVALID_ARG, "cursor->position=%lld is negative", static_cast<long long>(position));
    stop_workers();
    ready_.clear();
    next_seq_ = want_seq_ = 0;
    failed_ = false;
    failure_.clear();
    planner_.restart();
    epoch_ = position_ = total_micro_ = consumed_samples_ = 0;
    // Replay the plan (no token reads) up to the cursor: deterministic, so it lands exactly there.
    try {
        while (epoch_ < epoch || (epoch_ == epoch && position_ < position)) {
            Job j = planner_.next();
            if (j.end_of_epoch) {
                if (epoch_ == epoch)
                    fail(DS_ERR_INVALID_ARG, "cursor->position=%lld is beyond the %lld micro-batches of epoch %lld",
                         static_cast<long long>(position), static_cast<long long>(position_), static_cast<long long>(epoch));
                ++epoch_;
                position_ = 0;
                continue;
            }
            ++position_;
            ++total_micro_;
            for (const auto& r : j.rows) consumed_samples_ += static_cast<int64_t>(r.size());
        }
    } catch (...) {
        start_workers();
        throw;
    }
    start_workers();
}

std::string Loader::info_json() {
    std::lock_guard<std::mutex> lk(m_);
    const int64_t len = planner_.length(epoch_);  // also plans the epoch, so its numbers are known
    static const char* modes[] = {"windows", "documents"};
    std::string s = "{\"dataset\": \"" + data_->path() + "\", \"mode\": \"" + modes[c_.mode] + "\"";
    s += ", \"seq_len\": " + std::to_string(c_.seq_len) + ", \"window_stride\": " + std::to_string(c_.stride);
    s += ", \"micro_batch_size\": " + std::to_string(c_.micro) + ", \"gradient_accumulation_steps\": " + std::to_string(c_.gas);
    s += ", \"rank\": " + std::to_string(c_.rank) + ", \"world_size\": " + std::to_string(c_.world);
    s += ", \"shuffle\": " + std::string(c_.shuffle ? "true" : "false") + ", \"drop_last\": " + (c_.drop_last ? "true" : "false");
    s += ", \"seed\": " + std::to_string(c_.seed) + ", \"num_workers\": " + std::to_string(c_.num_workers);
    s += ", \"prefetch_depth\": " + std::to_string(c_.depth) + ", \"pinned\": " + (pinned_ ? "true" : "false");
    s += ", \"memory\": \"" + pin_note_ + "\", \"dtype\": \"" + (c_.dtype == DS_DTYPE_I64 ? "i64" : "i32") + "\"";
    s += ", \"micro_batches_per_epoch\": " + std::to_string(len);
    s += ", \"pad_id\": " + std::to_string(c_.pad_id) + ", " + planner_.describe() + "}";
    return s;
}

}  // namespace ds::data
