// DeepSpeed's batch-size rule: train_batch_size = micro batch per GPU * gradient accumulation
// steps * data-parallel world size. Missing values are derived; unlike DeepSpeed, a division that
// does not come out even is an error instead of a silent truncation.
#include <cerrno>
#include <cstdlib>

#include "config/config.hpp"
#include "core/error.hpp"

namespace ds::config {

namespace {

struct EnvSource {
    const char* name;
    int32_t source;
};

constexpr EnvSource kEnvSources[] = {
    {"WORLD_SIZE", kWorldFromWorldSize},
    {"OMPI_COMM_WORLD_SIZE", kWorldFromOmpi},
    {"SLURM_NTASKS", kWorldFromSlurm},
};

// A positive int32 from the whole of text, or 0.
int32_t parse_positive(const char* text) {
    if (!text || !*text) return 0;
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(text, &end, 10);
    if (errno != 0 || !end || *end != '\0' || v < 1 || v > INT32_MAX) return 0;
    return static_cast<int32_t>(v);
}

const char* const kTB = "train_batch_size";
const char* const kMB = "train_micro_batch_size_per_gpu";
const char* const kGAS = "gradient_accumulation_steps";

}  // namespace

World resolve_world(int32_t requested, int64_t sequence_parallel_size, Report& report) {
    World w;
    if (requested > 0) {
        w.ranks = requested;
        w.source = kWorldFromOptions;
        w.origin = "from options";
    } else {
        for (const EnvSource& e : kEnvSources) {
            const char* text = std::getenv(e.name);
            if (!text || !*text) continue;
            int32_t n = parse_positive(text);
            if (n == 0) {
                report.warning(kind::kWorldSize, "",
                               format("$%s=\"%.40s\" is not a positive integer; it is ignored", e.name, text));
                continue;
            }
            w.ranks = n;
            w.source = e.source;
            w.origin = std::string("from $") + e.name;
            break;
        }
        if (w.origin.empty()) w.origin = "by default: no $WORLD_SIZE, $OMPI_COMM_WORLD_SIZE or $SLURM_NTASKS";
    }
    w.size = w.ranks;
    if (sequence_parallel_size > 1) {
        if (w.ranks % sequence_parallel_size != 0) {
            report.error(DS_ERR_CONFIG_BATCH, "sequence_parallel_size",
                         format("%d ranks (%s) cannot be split into sequence-parallel groups of %lld", w.ranks,
                                w.origin.c_str(), static_cast<long long>(sequence_parallel_size)));
        } else {
            w.size = static_cast<int32_t>(w.ranks / sequence_parallel_size);
            w.origin = format("%d ranks %s / sequence_parallel_size=%lld", w.ranks, w.origin.c_str(),
                              static_cast<long long>(sequence_parallel_size));
        }
    }
    return w;
}

void apply_batch_rule(Value& root, const World& world, Report& report) {
    auto read = [&](const char* key) -> int64_t {
        const Value* v = root.find(key);
        return v && v->is_integer() ? v->as_int() : 0;
    };
    int64_t tb = read(kTB), mb = read(kMB), gas = read(kGAS);
    const int64_t ws = world.size;
    const std::string where = "(world size " + world.origin + ")";
    const char* trunc = "; DeepSpeed would silently round down";

    if (!tb && !mb) {
        if (gas) {
            report.error(DS_ERR_CONFIG_BATCH, kGAS,
                         "is given without train_batch_size or train_micro_batch_size_per_gpu; give one of them too");
        } else {
            report.warning(kind::kBatch, kTB,
                           "no batch size is given (train_batch_size or train_micro_batch_size_per_gpu); the batch keys "
                           "stay unset and must be set before training");
        }
        return;
    }

    int64_t product = 0;
    if (tb && mb && gas) {
        if (__builtin_mul_overflow(mb, gas, &product) || __builtin_mul_overflow(product, ws, &product) || product != tb) {
            report.error(DS_ERR_CONFIG_BATCH, kTB,
                         format("train_batch_size=%lld != train_micro_batch_size_per_gpu=%lld * gradient_accumulation_steps=%lld "
                                "* world_size=%lld %s",
                                static_cast<long long>(tb), static_cast<long long>(mb), static_cast<long long>(gas),
                                static_cast<long long>(ws), where.c_str()));
            return;
        }
    } else if (tb && mb) {
        if (__builtin_mul_overflow(mb, ws, &product) || tb % product != 0) {
            report.error(DS_ERR_CONFIG_BATCH, kTB,
                         format("train_batch_size=%lld is not divisible by train_micro_batch_size_per_gpu=%lld * world_size=%lld "
                                "%s, so gradient_accumulation_steps cannot be derived%s",
                                static_cast<long long>(tb), static_cast<long long>(mb), static_cast<long long>(ws), where.c_str(),
                                trunc));
            return;
        }
        gas = tb / product;
    } else if (tb && gas) {
        if (__builtin_mul_overflow(gas, ws, &product) || tb % product != 0) {
            report.error(DS_ERR_CONFIG_BATCH, kTB,
                         format("train_batch_size=%lld is not divisible by gradient_accumulation_steps=%lld * world_size=%lld "
                                "%s, so train_micro_batch_size_per_gpu cannot be derived%s",
                                static_cast<long long>(tb), static_cast<long long>(gas), static_cast<long long>(ws), where.c_str(),
                                trunc));
            return;
        }
        mb = tb / product;
    } else if (mb && gas) {
        if (__builtin_mul_overflow(mb, gas, &product) || __builtin_mul_overflow(product, ws, &product)) {
            report.error(DS_ERR_CONFIG_BATCH, kMB,
                         format("train_micro_batch_size_per_gpu=%lld * gradient_accumulation_steps=%lld * world_size=%lld "
                                "overflows a 64-bit integer",
                                static_cast<long long>(mb), static_cast<long long>(gas), static_cast<long long>(ws)));
            return;
        }
        tb = product;
    } else if (tb) {
        if (tb % ws != 0) {
            report.error(DS_ERR_CONFIG_BATCH, kTB,
                         format("train_batch_size=%lld is not divisible by world_size=%lld %s, so "
                                "train_micro_batch_size_per_gpu cannot be derived%s",
                                static_cast<long long>(tb), static_cast<long long>(ws), where.c_str(), trunc));
            return;
        }
        gas = 1;
        mb = tb / ws;
    } else {  // mb only
        if (__builtin_mul_overflow(mb, ws, &tb)) {
            report.error(DS_ERR_CONFIG_BATCH, kMB,
                         format("train_micro_batch_size_per_gpu=%lld * world_size=%lld overflows a 64-bit integer",
                                static_cast<long long>(mb), static_cast<long long>(ws)));
            return;
        }
        gas = 1;
    }

    // The three keys lead the normalised config, in this order.
    Value ordered = Value::object();
    ordered.append(kTB, Value::integer(tb));
    ordered.append(kMB, Value::integer(mb));
    ordered.append(kGAS, Value::integer(gas));
    for (const Value::Member& m : root.members())
        if (m.key != kTB && m.key != kMB && m.key != kGAS) ordered.append(m.key, m.value);
    root = std::move(ordered);
}

}  // namespace ds::config
