#include "comm/logger.hpp"

#include <cjson/cJSON.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "core/error.hpp"
#include "core/log.hpp"

namespace ds::comm {

void comm_bandwidth(const std::string& op, uint64_t msg_bytes, double ms, int32_t n, double* algbw, double* busbw) {
    *algbw = 0;
    *busbw = 0;
    if (!(ms > 0)) return;
    const double size = static_cast<double>(msg_bytes);
    const double nn = static_cast<double>(n);
    const double to_gbps = 8.0 / 1e6;  // bytes per ms -> Gbit/s
    if (op == "all_to_all_single" || op == "all_to_all") {
        *algbw = size / ms;
        *busbw = *algbw * (nn - 1) / nn;
    } else if (op == "all_gather" || op == "all_gather_into_tensor" || op == "reduce_scatter" ||
               op == "reduce_scatter_tensor") {
        *algbw = size * nn / ms;
        *busbw = *algbw * (nn - 1) / nn;
    } else if (op == "all_reduce" || op == "all_reduce_coalesced" || op == "inference_all_reduce") {
        *algbw = 2 * size / ms;
        *busbw = size / ms * (2 * (nn - 1) / nn);
    } else {
        *algbw = size / ms;
        *busbw = *algbw;
    }
    *algbw *= to_gbps;
    *busbw *= to_gbps;
}

double trimmed_mean(std::vector<double> v, double trim) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    // Python's round(): halves go to the even neighbour.
    double x = static_cast<double>(n) * trim;
    double k = std::nearbyint(x);
    size_t cut = static_cast<size_t>(k);
    size_t lo = cut, hi = n >= cut ? n - cut : 0;
    if (lo >= hi) {
        lo = 0;
        hi = n;
    }
    double sum = 0;
    for (size_t i = lo; i < hi; ++i) sum += v[i];
    return sum / static_cast<double>(hi - lo);
}

std::string format_size(uint64_t bytes) {
    static const char* const units[] = {"B", "KB", "MB", "GB", "TB", "PB"};
    if (bytes == 0) return "0B";
    int i = static_cast<int>(std::floor(std::log(static_cast<double>(bytes)) / std::log(1024.0)));
    if (i < 0) i = 0;
    if (i > 5) i = 5;
    double s = std::round(static_cast<double>(bytes) / std::pow(1024.0, i) * 100.0) / 100.0;
    // Python prints floats with the shortest repr: 1.0, 1.5, 1.25.
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f", s);
    std::string t = buf;
    while (t.size() > 2 && t.back() == '0' && t[t.size() - 2] != '.') t.pop_back();
    return t + " " + units[i];
}

void CommsLogger::configure(const LogConfig& cfg) {
    std::lock_guard<std::mutex> lock(mutex_);
    cfg_ = cfg;
}

LogConfig CommsLogger::config() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cfg_;
}

bool CommsLogger::enabled() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cfg_.enabled;
}

bool CommsLogger::wants(const char* op) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!cfg_.enabled) return false;
    if (cfg_.prof_all) return true;
    return std::find(cfg_.prof_ops.begin(), cfg_.prof_ops.end(), op) != cfg_.prof_ops.end();
}

void CommsLogger::record(const char* op, const char* caller, uint64_t msg_bytes, double ms, int32_t n, int32_t rank) {
    double alg = 0, bus = 0;
    comm_bandwidth(op, msg_bytes, ms, n, &alg, &bus);
    std::string name = op;
    bool verbose;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (cfg_.debug && caller) name += std::string(" | [Caller Func: ") + caller + "]";
        Entry& e = ops_[name][msg_bytes];
        e.latency_ms.push_back(ms);
        e.algbw.push_back(alg);
        e.busbw.push_back(bus);
        verbose = cfg_.verbose;
    }
    if (verbose) {
        std::string line = format("rank=%d | comm op: %s | time (ms): %.2f | msg size: %s | algbw (Gbps): %.2f | busbw (Gbps): %.2f",
                                  rank, name.c_str(), ms, format_size(msg_bytes).c_str(), alg, bus);
        // DeepSpeed prints these lines; when the log filter would drop them, print them anyway.
        if (log_level() >= DS_LOG_INFO)
            log(DS_LOG_INFO, "%s", line.c_str());
        else
            std::fprintf(stderr, "[dsabi comms] %s\n", line.c_str());
    }
}

void CommsLogger::reset() {
    std::lock_guard<std::mutex> lock(mutex_);
    ops_.clear();
}

std::string CommsLogger::summary_text() const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto cell = [](const std::string& s) {
        std::string t = s;
        if (t.size() < 20) t.append(20 - t.size(), ' ');
        return t + " ";
    };
    std::string out = cell("Comm. Op") + cell("Message Size") + cell("Count") + cell("Total Latency(ms)") +
                      cell("Avg Latency(ms)") + cell("tput_avg (Gbps)") + cell("busbw_avg (Gbps)");
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += "\n";
    for (const auto& [op, sizes] : ops_) {
        out += op + "\n";
        for (const auto& [size, e] : sizes) {
            double total = 0;
            for (double v : e.latency_ms) total += v;
            std::string row = cell("") + cell(format_size(size)) + cell(std::to_string(e.latency_ms.size())) +
                              cell(format("%.2f", total)) + cell(format("%.2f", trimmed_mean(e.latency_ms))) +
                              cell(format("%.2f", trimmed_mean(e.algbw))) + cell(format("%.2f", trimmed_mean(e.busbw)));
            while (!row.empty() && row.back() == ' ') row.pop_back();
            out += row + "\n";
        }
    }
    return out;
}

std::string CommsLogger::summary_json(int32_t rank, int32_t n) const {
    std::lock_guard<std::mutex> lock(mutex_);
    cJSON* root = cJSON_CreateObject();
    if (!root) throw std::bad_alloc();
    cJSON_AddNumberToObject(root, "rank", rank);
    cJSON_AddNumberToObject(root, "world_size", n);
    cJSON_AddStringToObject(root, "units", "latency in ms, bandwidth in Gbps (bytes/ms * 8 / 1e6), averages are 10% trimmed means");
    cJSON* ops = cJSON_AddArrayToObject(root, "ops");
    for (const auto& [op, sizes] : ops_) {
        for (const auto& [size, e] : sizes) {
            cJSON* row = cJSON_CreateObject();
            cJSON_AddStringToObject(row, "op", op.c_str());
            cJSON_AddNumberToObject(row, "msg_size_bytes", static_cast<double>(size));
            cJSON_AddStringToObject(row, "msg_size", format_size(size).c_str());
            cJSON_AddNumberToObject(row, "count", static_cast<double>(e.latency_ms.size()));
            double total = 0;
            for (double v : e.latency_ms) total += v;
            cJSON_AddNumberToObject(row, "total_latency_ms", total);
            cJSON_AddNumberToObject(row, "avg_latency_ms", trimmed_mean(e.latency_ms));
            cJSON_AddNumberToObject(row, "algbw_gbps", trimmed_mean(e.algbw));
            cJSON_AddNumberToObject(row, "busbw_gbps", trimmed_mean(e.busbw));
            cJSON* lat = cJSON_AddArrayToObject(row, "latencies_ms");
            for (double v : e.latency_ms) cJSON_AddItemToArray(lat, cJSON_CreateNumber(v));
            cJSON_AddItemToArray(ops, row);
        }
    }
    char* text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) throw std::bad_alloc();
    std::string s = text;
    cJSON_free(text);
    return s;
}

}  // namespace ds::comm
