// Where rank, world size, master address, timeout and the rest come from: explicit options first,
// then the launcher's environment (torchrun / DeepSpeed launcher / dsrun, then Open MPI, then Slurm).
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "comm/comm.hpp"
#include "core/error.hpp"

namespace ds::comm {

namespace {

const char* env(const char* name) {
    const char* v = std::getenv(name);
    return v && *v ? v : nullptr;
}

// Strict integer from the environment; fails naming the variable.
bool env_int(const char* name, int64_t* out, bool leading_only = false) {
    const char* v = env(name);
    if (!v) return false;
    errno = 0;
    char* end = nullptr;
    long long x = std::strtoll(v, &end, 10);
    if (errno != 0 || end == v || (!leading_only && *end != '\0'))
        fail(DS_ERR_INVALID_ARG, "environment variable %s='%s' is not an integer", name, v);
    *out = x;
    return true;
}

int32_t to_i32(int64_t v, const char* name) {
    if (v < INT32_MIN || v > INT32_MAX) fail(DS_ERR_INVALID_ARG, "%s=%lld is out of range", name, static_cast<long long>(v));
    return static_cast<int32_t>(v);
}

struct Family {
    int32_t source;
    const char* rank;
    const char* size;
};

}  // namespace

const char* source_name(int32_t source) {
    switch (source) {
        case DS_COMM_SOURCE_OPTIONS: return "options";
        case DS_COMM_SOURCE_TORCHRUN_ENV: return "torchrun_env";
        case DS_COMM_SOURCE_OMPI_ENV: return "ompi_env";
        case DS_COMM_SOURCE_SLURM_ENV: return "slurm_env";
        default: return "default";
    }
}

Settings resolve_settings(const ds_comm_options_t& o) {
    Settings s;
    std::string rank_name = "options.rank", size_name = "options.world_size";

    // ---- rank and world size: from one family, never mixed ----
    if (o.rank != DS_UNSET_I32 || o.world_size != DS_UNSET_I32) {
        if (o.rank == DS_UNSET_I32 || o.world_size == DS_UNSET_I32)
            fail(DS_ERR_INVALID_ARG, "options.rank=%d and options.world_size=%d must be set together (DS_UNSET_I32 = from the environment)",
                 o.rank, o.world_size);
        s.rank = o.rank;
        s.world_size = o.world_size;
        s.source = DS_COMM_SOURCE_OPTIONS;
    } else {
        static const Family families[] = {
            {DS_COMM_SOURCE_TORCHRUN_ENV, "RANK", "WORLD_SIZE"},
            {DS_COMM_SOURCE_OMPI_ENV, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
            {DS_COMM_SOURCE_SLURM_ENV, "SLURM_PROCID", "SLURM_NTASKS"},
        };
        bool found = false;
        for (const Family& f : families) {
            if (!env(f.rank) && !env(f.size)) continue;
            if (!env(f.rank) || !env(f.size))
                fail(DS_ERR_INVALID_ARG, "environment: %s is %s but %s is %s; a launcher sets both", f.rank,
                     env(f.rank) ? "set" : "not set", f.size, env(f.size) ? "set" : "not set");
            int64_t r = 0, n = 0;
            env_int(f.rank, &r);
            env_int(f.size, &n);
            s.rank = to_i32(r, f.rank);
            s.world_size = to_i32(n, f.size);
            s.source = f.source;
            rank_name = f.rank;
            size_name = f.size;
            found = true;
            break;
        }
        if (!found) {
            s.rank = 0;
            s.world_size = 1;
            s.source = DS_COMM_SOURCE_DEFAULT;
        }
    }
    if (s.world_size < 1) fail(DS_ERR_INVALID_ARG, "%s=%d must be at least 1", size_name.c_str(), s.world_size);
    if (s.rank < 0 || s.rank >= s.world_size)
        fail(DS_ERR_INVALID_ARG, "%s=%d is outside [0, %s=%d)", rank_name.c_str(), s.rank, size_name.c_str(), s.world_size);

    // ---- node-local rank and size ----
    int64_t v = 0;
    if (o.local_rank != DS_UNSET_I32) {
        s.local_rank = o.local_rank;
    } else if (env_int("LOCAL_RANK", &v) || env_int("OMPI_COMM_WORLD_LOCAL_RANK", &v) || env_int("SLURM_LOCALID", &v)) {
        s.local_rank = to_i32(v, "LOCAL_RANK");
    } else {
        s.local_rank = s.rank;
    }
    if (o.local_world_size != DS_UNSET_I32) {
        s.local_world_size = o.local_world_size;
    } else if (env_int("LOCAL_WORLD_SIZE", &v) || env_int("LOCAL_SIZE", &v) || env_int("OMPI_COMM_WORLD_LOCAL_SIZE", &v) ||
               env_int("SLURM_NTASKS_PER_NODE", &v, true)) {
        s.local_world_size = to_i32(v, "LOCAL_WORLD_SIZE");
    } else {
        s.local_world_size = s.world_size;
    }
    if (s.local_world_size < 1 || s.local_world_size > s.world_size)
        fail(DS_ERR_INVALID_ARG, "local_world_size=%d is outside [1, world_size=%d] (options.local_world_size or LOCAL_WORLD_SIZE)",
             s.local_world_size, s.world_size);
    if (s.local_rank < 0 || s.local_rank >= s.local_world_size)
        fail(DS_ERR_INVALID_ARG, "local_rank=%d is outside [0, local_world_size=%d) (options.local_rank or LOCAL_RANK)",
             s.local_rank, s.local_world_size);

    // ---- master ----
    if (o.master_addr)
        s.master_addr = o.master_addr;
    else if (const char* m = env("MASTER_ADDR"))
        s.master_addr = m;
    if (s.master_addr.empty()) fail(DS_ERR_INVALID_ARG, "options.master_addr is an empty string");
    if (o.master_port != DS_UNSET_I32) {
        s.master_port = o.master_port;
        if (s.master_port < 0 || s.master_port > 65535)
            fail(DS_ERR_INVALID_ARG, "options.master_port=%d is outside [0, 65535]", s.master_port);
    } else if (env_int("MASTER_PORT", &v)) {
        if (v < 0 || v > 65535) fail(DS_ERR_INVALID_ARG, "MASTER_PORT=%lld is outside [0, 65535]", static_cast<long long>(v));
        s.master_port = static_cast<int32_t>(v);
    }

    // ---- timeout: options, then DEEPSPEED_TIMEOUT (minutes), then DeepSpeed's 10 minutes ----
    if (o.timeout_ms != DS_UNSET_I32) {
        if (o.timeout_ms <= 0) fail(DS_ERR_INVALID_ARG, "options.timeout_ms=%d must be positive", o.timeout_ms);
        s.timeout_ms = o.timeout_ms;
        s.timeout_source = "options";
    } else if (env_int("DEEPSPEED_TIMEOUT", &v)) {
        if (v <= 0 || v > 35791) fail(DS_ERR_INVALID_ARG, "DEEPSPEED_TIMEOUT=%lld must be a number of minutes in [1, 35791]",
                                      static_cast<long long>(v));
        s.timeout_ms = v * 60000;
        s.timeout_source = "DEEPSPEED_TIMEOUT";
    }

    if (o.backend < DS_COMM_BACKEND_AUTO || o.backend > DS_COMM_BACKEND_NCCL)
        fail(DS_ERR_INVALID_ARG, "options.backend=%d is not a ds_comm_backend value (0 AUTO, 1 GLOO, 2 NCCL)", o.backend);
    s.backend = o.backend;

    if (o.check_mismatch != DS_UNSET_I32) {
        if (o.check_mismatch < -1 || o.check_mismatch > 1)
            fail(DS_ERR_INVALID_ARG, "options.check_mismatch=%d must be -1 (auto), 0 (off) or 1 (on)", o.check_mismatch);
        s.check = o.check_mismatch;
    } else if (env_int("DSABI_COMM_CHECK", &v)) {
        if (v < -1 || v > 1) fail(DS_ERR_INVALID_ARG, "DSABI_COMM_CHECK=%lld must be -1 (auto), 0 (off) or 1 (on)", static_cast<long long>(v));
        s.check = static_cast<int32_t>(v);
    }

    // ---- store ----
    if (o.store_dir)
        s.store_dir = o.store_dir;
    else if (const char* d = env("DSABI_STORE_DIR"))
        s.store_dir = d;
    if (o.store_prefix) {
        s.store_prefix = o.store_prefix;
    } else if (const char* p = env("DSABI_RUN_ID")) {
        s.store_prefix = p;
    } else if (const char* t = env("TORCHELASTIC_RUN_ID")) {
        s.store_prefix = t;
    } else if (const char* j = env("SLURM_JOB_ID")) {
        s.store_prefix = std::string("slurm-") + j;
        if (const char* st = env("SLURM_STEP_ID")) s.store_prefix += std::string(".") + st;
    } else {
        s.store_prefix = "dsabi";
    }
    if (s.store_prefix.empty() || s.store_prefix.find('/') != std::string::npos || s.store_prefix == "." || s.store_prefix == "..")
        fail(DS_ERR_INVALID_ARG, "store prefix '%s' must be a non-empty name without '/' (options.store_prefix or $DSABI_RUN_ID)",
             s.store_prefix.c_str());

    if (o.bind_addr)
        s.bind_addr = o.bind_addr;
    else if (const char* b = env("DSABI_BIND_ADDR"))
        s.bind_addr = b;

    if (s.rank == 0 && env_int("DSABI_STORE_LISTEN_FD", &v)) s.listen_fd = static_cast<int>(v);
    return s;
}

}  // namespace ds::comm
