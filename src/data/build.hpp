// Streaming dataset build: text files -> tokenizer -> Writer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.hpp"
#include "dsabi.h"

namespace ds::data {

struct BuildOptions {
    Tokenizer* tokenizer = nullptr;  // required
    int32_t split = DS_DATA_SPLIT_FILE;
    bool append_eot = false;
    std::string delimiter;
    uint32_t token_bytes = 0;  // 0: auto
    bool keep_empty = false;
    uint64_t chunk_bytes = 4u << 20;
    ds_data_progress_fn progress = nullptr;
    void* progress_user_data = nullptr;
};

struct BuildStats {
    uint64_t n_files = 0, n_documents = 0, n_tokens = 0, bytes_in = 0, bytes_out = 0;
    double seconds = 0;
};

// Throws ds::Error; DS_ABORTED when the progress callback asks to stop (nothing is left behind).
BuildStats build(const std::string& out_path, const std::vector<std::string>& inputs, const BuildOptions& opts);

}  // namespace ds::data
