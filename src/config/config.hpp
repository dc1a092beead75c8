// A parsed, validated and normalised DeepSpeed config (what a ds_config_t holds).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/report.hpp"
#include "dsabi.h"
#include "config/value.hpp"

namespace ds::config {

struct Options {
    int32_t world_size = 0;  // 0: from the environment
    bool strict = false;
    bool accept_auto = true;
};

// Where the data-parallel world size came from (the out_source of ds_config_get_world_size).
enum WorldSource : int32_t {
    kWorldFromOptions = DS_WORLD_FROM_OPTIONS,
    kWorldFromWorldSize = DS_WORLD_FROM_WORLD_SIZE,  // $WORLD_SIZE
    kWorldFromOmpi = DS_WORLD_FROM_OMPI,             // $OMPI_COMM_WORLD_SIZE
    kWorldFromSlurm = DS_WORLD_FROM_SLURM,           // $SLURM_NTASKS
    kWorldDefault = DS_WORLD_DEFAULT,
};

struct World {
    int32_t ranks = 1;        // processes, before sequence parallelism
    int32_t size = 1;         // data-parallel size: ranks / sequence_parallel_size
    int32_t source = kWorldDefault;
    std::string origin;       // "from options", "from $WORLD_SIZE", ...
};

class Config {
public:
    Config(Value root, std::vector<Diagnostic> diagnostics, World world)
        : root_(std::move(root)), diagnostics_(std::move(diagnostics)), world_(std::move(world)) {}

    const Value& root() const { return root_; }
    const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }
    const World& world() const { return world_; }

    // The diagnostics as the JSON array documented for ds_config_query_diagnostics.
    std::string diagnostics_json() const;

private:
    Value root_;
    std::vector<Diagnostic> diagnostics_;
    World world_;
};

// Parse, validate and normalise. Throws ds::Error (DS_ERR_CONFIG_*) listing every problem; origin
// (a file name, or "") starts each message. Diagnostics are logged once through ds::log.
std::shared_ptr<const Config> parse(std::string_view text, const Options& options, const std::string& origin);
// Read a file and parse it; DS_ERR_IO when it cannot be read.
std::shared_ptr<const Config> load_file(const std::string& path, const Options& options);

// The batch-size rule (batch.cpp).
World resolve_world(int32_t requested, int64_t sequence_parallel_size, Report& report);
// Check and complete train_batch_size / train_micro_batch_size_per_gpu /
// gradient_accumulation_steps in root (which is normalised) for the world.
void apply_batch_rule(Value& root, const World& world, Report& report);

}  // namespace ds::config
