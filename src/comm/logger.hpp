// The comms logger (DeepSpeed's comms_logger block): per-op counts, message sizes, latencies, and
// algorithmic / bus bandwidth with DeepSpeed's formulas, summarised with 10% trimmed means.
//
// Message size is this rank's contribution in bytes: the tensor of all_reduce / broadcast / reduce /
// send / recv, the input of all_gather, the output chunk of reduce_scatter, the whole input of
// all_to_all. Bandwidths (Gbps = bytes/ms * 8 / 1e6), n = the communicator's size:
//   all_to_all_single                     algbw = size/t            busbw = algbw * (n-1)/n
//   all_gather*, reduce_scatter*           algbw = size*n/t          busbw = algbw * (n-1)/n
//   all_reduce                             algbw = 2*size/t          busbw = size/t * 2(n-1)/n
//   broadcast, reduce, send, recv, barrier algbw = busbw = size/t
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ds::comm {

struct LogConfig {
    bool enabled = false;
    bool verbose = false;
    bool prof_all = true;
    bool debug = false;
    std::vector<std::string> prof_ops;
};

// Bandwidths in Gbps for one op of msg_bytes that took ms milliseconds on n ranks.
void comm_bandwidth(const std::string& op, uint64_t msg_bytes, double ms, int32_t n, double* algbw, double* busbw);
// Mean of the values left after dropping round(10%) of them at each end (all of them if that is
// nothing), as DeepSpeed's trim_mean.
double trimmed_mean(std::vector<double> values, double trim = 0.1);
// "1.0 KB", "256.0 MB": DeepSpeed's size formatting (powers of 1024, two decimals at most).
std::string format_size(uint64_t bytes);

class CommsLogger {
public:
    void configure(const LogConfig& cfg);
    LogConfig config() const;
    bool enabled() const;
    // Whether this op is profiled (enabled and prof_all, or listed in prof_ops).
    bool wants(const char* op) const;
    void record(const char* op, const char* caller, uint64_t msg_bytes, double ms, int32_t n, int32_t rank);
    std::string summary_text() const;
    std::string summary_json(int32_t rank, int32_t n) const;
    void reset();

private:
    struct Entry {
        std::vector<double> latency_ms, algbw, busbw;
    };
    mutable std::mutex mutex_;
    LogConfig cfg_;
    std::map<std::string, std::map<uint64_t, Entry>> ops_;
};

}  // namespace ds::comm
