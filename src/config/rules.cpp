// Rules that do not fit in a schema row: migrations of deprecated forms, the optimizer and
// scheduler parameters (which depend on "type"), and checks that span several keys.
#include <cctype>

#include "config/schema.hpp"

namespace ds::config {

namespace {

const Value* get(const Value& root, std::initializer_list<const char*> keys) {
    const Value* cur = &root;
    for (const char* k : keys) {
        if (!cur->is_object()) return nullptr;
        cur = cur->find(k);
        if (!cur) return nullptr;
    }
    return cur;
}

Value* get(Value& root, std::initializer_list<const char*> keys) {
    return const_cast<Value*>(get(static_cast<const Value&>(root), keys));
}

bool flag(const Value& root, std::initializer_list<const char*> keys) {
    const Value* v = get(root, keys);
    return v && v->is_true();
}

// An integer setting, or fallback when it is absent or invalid (its error is reported elsewhere).
int64_t int_or(const Value& root, std::initializer_list<const char*> keys, int64_t fallback) {
    const Value* v = get(root, keys);
    return v && v->is_integer() ? v->as_int() : fallback;
}

std::string str_or(const Value& root, std::initializer_list<const char*> keys, const std::string& fallback) {
    const Value* v = get(root, keys);
    return v && v->is_string() ? v->as_string() : fallback;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// A deprecated boolean that stood for a whole block ({"device": "cpu"}).
void migrate_offload_flag(Value& zero, const std::string& path, const char* old_key, const char* new_key, Ctx& ctx) {
    const Value* found = zero.find(old_key);
    if (!found) return;
    const Value old = *found;
    zero.erase(old_key);
    const std::string old_path = join_path(path, old_key), new_path = join_path(path, new_key);
    ctx.deprecated(old_path, new_path + " {\"device\": \"cpu\"}");
    if (old.is_null()) return;
    if (old.is_auto()) {
        if (!ctx.accept_auto)
            ctx.report.error(DS_ERR_CONFIG_VALUE, old_path, "\"auto\" is not accepted (accept_auto is off); give true or false");
        return;
    }
    if (!old.is_bool()) {
        ctx.report.error(DS_ERR_CONFIG_VALUE, old_path, "expected true or false, got " + old.brief());
        return;
    }
    const Value* current = zero.find(new_key);
    if (current && !current->is_null()) {
        ctx.report.error(DS_ERR_CONFIG_VALUE, old_path, std::string("both ") + old_key + " (deprecated) and " + new_key +
                                                            " are given; keep only " + new_key);
        return;
    }
    if (old.as_bool()) {
        Value block = Value::object();
        block.set("device", Value::string("cpu"));
        zero.set(new_key, std::move(block));
    }
}

}  // namespace

// ---- top level --------------------------------------------------------------------------------

void root_pre(Value& obj, const std::string& path, Ctx& ctx) {
    // "zero_optimization": true|false is the old form of {"stage": 1|0}.
    if (Value* zero = obj.find("zero_optimization"); zero && zero->is_bool()) {
        const bool on = zero->as_bool();
        ctx.report.warning(kind::kDeprecated, join_path(path, "zero_optimization"),
                           std::string("zero_optimization: ") + (on ? "true" : "false") +
                               " is deprecated, use \"zero_optimization\": {\"stage\": " + (on ? "1" : "0") + "}");
        Value block = Value::object();
        block.set("stage", Value::integer(on ? 1 : 0));
        *zero = std::move(block);
    }
    // The top-level allgather_size went with the boolean form.
    if (const Value* found = obj.find("allgather_size")) {
        const Value size = *found;
        obj.erase("allgather_size");
        ctx.deprecated(join_path(path, "allgather_size"), "zero_optimization.allgather_bucket_size");
        Value* zero = obj.find("zero_optimization");
        if (!zero || zero->is_null()) {
            obj.set("zero_optimization", Value::object());
            zero = obj.find("zero_optimization");
        }
        if (zero->is_object()) {
            if (zero->find("allgather_bucket_size"))
                ctx.report.error(DS_ERR_CONFIG_VALUE, join_path(path, "allgather_size"),
                                 "both allgather_size (deprecated) and zero_optimization.allgather_bucket_size are given; "
                                 "keep only zero_optimization.allgather_bucket_size");
            else
                zero->set("allgather_bucket_size", size);
        }
    }
}

void root_post(Value& obj, const std::string& path, Ctx& ctx) {
    auto at = [&](const char* key) { return join_path(path, key); };
    const bool fp16 = flag(obj, {"fp16", "enabled"});
    const bool bf16 = flag(obj, {"bf16", "enabled"});
    const int64_t stage = int_or(obj, {"zero_optimization", "stage"}, -1);

    if (fp16 && bf16)
        ctx.report.error(DS_ERR_CONFIG_VALUE, at("bf16.enabled"), "fp16 and bf16 cannot both be enabled; choose one");

    if (str_or(obj, {"gradient_allreduce_op"}, "mean") == "sum" && stage == 3)
        ctx.report.error(DS_ERR_CONFIG_VALUE, at("gradient_allreduce_op"),
                         "\"sum\" cannot be used with ZeRO stage 3 (DeepSpeed rejects it too); use \"mean\"");

    if (flag(obj, {"amp", "enabled"})) {
        if (fp16) ctx.report.error(DS_ERR_CONFIG_VALUE, at("amp.enabled"), "amp and fp16 cannot both be enabled");
        if (bf16) ctx.report.error(DS_ERR_CONFIG_VALUE, at("amp.enabled"), "amp and bf16 cannot both be enabled");
        if (stage > 0) ctx.report.error(DS_ERR_CONFIG_VALUE, at("amp.enabled"), "amp cannot be combined with ZeRO (stage > 0)");
    }

    if (flag(obj, {"fp16", "fp16_master_weights_and_grads"}) && stage == 0)
        ctx.report.error(DS_ERR_CONFIG_VALUE, at("fp16.fp16_master_weights_and_grads"), "needs ZeRO stage 1, 2 or 3 (stage is 0)");
    if (flag(obj, {"bf16", "bf16_master_weights_and_grads"}) && stage == 0)
        ctx.report.error(DS_ERR_CONFIG_VALUE, at("bf16.bf16_master_weights_and_grads"), "needs ZeRO stage 1, 2 or 3 (stage is 0)");
    if (flag(obj, {"bf16", "bf16_optimizer_states"}) && !flag(obj, {"bf16", "bf16_master_weights_and_grads"}))
        ctx.report.error(DS_ERR_CONFIG_VALUE, at("bf16.bf16_optimizer_states"), "needs bf16.bf16_master_weights_and_grads: true");

    if (const Value* vocab = get(obj, {"vocabulary_size"}); vocab && vocab->is_integer() && vocab->as_int() % 8 != 0)
        ctx.report.warning(kind::kValue, at("vocabulary_size"),
                           std::to_string(vocab->as_int()) + " is not a multiple of 8; tensor cores work best with multiples of 8");

    // DeepSpeed turns the optimizer's own clipping off in fp32 training.
    if (Value* norm = get(obj, {"optimizer", "params", "max_grad_norm"});
        norm && norm->is_number() && norm->as_double() > 0 && !fp16 && !bf16) {
        ctx.report.warning(kind::kValue, at("optimizer.params.max_grad_norm"),
                           norm->brief() + " is set to 0 in fp32 training (as DeepSpeed does); use gradient_clipping instead");
        *norm = norm->is_integer() ? Value::integer(0) : Value::real(0.0);  // keep how it prints
    }
}

// ---- ZeRO -------------------------------------------------------------------------------------

void zero_pre(Value& obj, const std::string& path, Ctx& ctx) {
    migrate_offload_flag(obj, path, "cpu_offload", "offload_optimizer", ctx);
    migrate_offload_flag(obj, path, "cpu_offload_param", "offload_param", ctx);

    const Value* found = obj.find("cpu_offload_use_pin_memory");
    if (!found) return;
    const Value pin = *found;
    obj.erase("cpu_offload_use_pin_memory");
    const std::string old_path = join_path(path, "cpu_offload_use_pin_memory");
    ctx.deprecated(old_path, join_path(path, "offload_optimizer.pin_memory") + " / " + join_path(path, "offload_param.pin_memory"));
    if (pin.is_null() || pin.is_auto()) return;
    if (!pin.is_bool()) {
        ctx.report.error(DS_ERR_CONFIG_VALUE, old_path, "expected true or false, got " + pin.brief());
        return;
    }
    bool applied = false;
    for (const char* block_key : {"offload_optimizer", "offload_param"}) {
        Value* block = obj.find(block_key);
        if (!block || !block->is_object()) continue;
        if (block->find("pin_memory")) {
            ctx.report.error(DS_ERR_CONFIG_VALUE, old_path,
                             std::string("both cpu_offload_use_pin_memory (deprecated) and ") + block_key +
                                 ".pin_memory are given; keep only " + block_key + ".pin_memory");
            continue;
        }
        block->set("pin_memory", pin);
        applied = true;
    }
    if (!applied)
        ctx.report.warning(kind::kIneffective, old_path, "has no effect without offload_optimizer or offload_param");
}

void zero_post(Value& obj, const std::string& path, Ctx& ctx) {
    auto at = [&](const char* key) { return join_path(path, key); };
    const int64_t stage = int_or(obj, {"stage"}, -1);

    // overlap_comm's default depends on the stage.
    if (Value* overlap = obj.find("overlap_comm"); overlap && overlap->is_null()) *overlap = Value::boolean(stage == 3);

    const std::string param_device = str_or(obj, {"offload_param", "device"}, "none");
    const std::string opt_device = str_or(obj, {"offload_optimizer", "device"}, "none");
    if (param_device != "none" && stage >= 0 && stage != 3)
        ctx.report.warning(kind::kIneffective, at("offload_param.device"),
                           "parameter offload only works with ZeRO stage 3 (stage is " + std::to_string(stage) + "); it is ignored");
    if (opt_device != "none" && stage == 0)
        ctx.report.warning(kind::kIneffective, at("offload_optimizer.device"),
                           "optimizer offload needs ZeRO stage 1, 2 or 3 (stage is 0); it is ignored");
    if (opt_device == "nvme" && (stage == 1 || stage == 2))
        ctx.report.error(DS_ERR_CONFIG_VALUE, at("offload_optimizer.device"),
                         "\"nvme\" needs ZeRO stage 3 (stage is " + std::to_string(stage) + "); use \"cpu\" with stages 1 and 2");
    auto has_string = [&](const char* block, const char* key) {
        const Value* v = get(obj, {block, key});
        return v && v->is_string();
    };
    if (param_device == "nvme" && !has_string("offload_param", "nvme_path"))
        ctx.report.error(DS_ERR_CONFIG_VALUE, at("offload_param.nvme_path"), "required when offload_param.device is \"nvme\"");
    if (opt_device == "nvme" && !has_string("offload_optimizer", "nvme_path"))
        ctx.report.error(DS_ERR_CONFIG_VALUE, at("offload_optimizer.nvme_path"), "required when offload_optimizer.device is \"nvme\"");
    if (const Value* ratio = get(obj, {"offload_optimizer", "ratio"});
        ratio && ratio->is_number() && ratio->as_double() < 1.0 && stage >= 0 && stage != 3)
        ctx.report.error(DS_ERR_CONFIG_VALUE, at("offload_optimizer.ratio"),
                         ratio->brief() + " < 1 (partial offload) needs ZeRO stage 3 (stage is " + std::to_string(stage) + ")");

    const int64_t allgather = int_or(obj, {"allgather_bucket_size"}, 0);
    if ((stage == 1 || stage == 2) && allgather % 2 != 0)
        ctx.report.error(DS_ERR_CONFIG_VALUE, at("allgather_bucket_size"),
                         std::to_string(allgather) + " must be a multiple of 2 for ZeRO stages 1 and 2");

    if (flag(obj, {"elastic_checkpoint"}))
        ctx.report.warning(kind::kIneffective, at("elastic_checkpoint"),
                           "dsabi checkpoints load at any data-parallel size without it; it is ignored");
}

// ---- legacy curriculum learning ---------------------------------------------------------------

void curriculum_post(Value& obj, const std::string& path, Ctx& ctx) {
    if (!flag(obj, {"enabled"})) return;
    for (const char* key : {"min_difficulty", "max_difficulty", "schedule_type"}) {
        const Value* v = obj.find(key);
        if (!v || v->is_null())
            ctx.report.error(DS_ERR_CONFIG_VALUE, join_path(path, key), "required when curriculum_learning.enabled is true");
    }
    const int64_t lo = int_or(obj, {"min_difficulty"}, 0), hi = int_or(obj, {"max_difficulty"}, INT64_MAX);
    if (lo > hi)
        ctx.report.error(DS_ERR_CONFIG_VALUE, join_path(path, "min_difficulty"),
                         std::to_string(lo) + " is larger than max_difficulty " + std::to_string(hi));
}

// ---- optimizer and scheduler ------------------------------------------------------------------

void optimizer_post(Value& obj, const std::string& path, Ctx& ctx) {
    Value* type = obj.find("type");
    Value* params = obj.find("params");
    if (!type || !type->is_string() || !params) return;  // already reported
    const std::string type_path = join_path(path, "type"), params_path = join_path(path, "params");
    const std::string name = lower(type->as_string());

    const OptimizerType* known = nullptr;
    for (const OptimizerType& t : optimizer_types())
        if (name == t.name) known = &t;
    if (!known) {
        std::vector<std::string> names;
        for (const OptimizerType& t : optimizer_types()) names.push_back(t.name);
        std::string suggestion = closest(name, names);
        ctx.unsupported(type_path, "the optimizer \"" + type->as_string() + "\" (not a DeepSpeed optimizer; DeepSpeed would look it up in torch.optim" +
                                       (suggestion.empty() ? std::string(")") : "; did you mean \"" + suggestion + "\"?)"));
        return;
    }
    *type = Value::string(name);  // DeepSpeed matches optimizer names case-insensitively
    if (!known->params) {
        ctx.unsupported(type_path, known->feature);
        return;
    }
    const bool mode_given = params->find("adam_w_mode") != nullptr;
    *params = normalise_block(*known->params, *params, params_path, ctx);
    if (name == "adamw") {
        // AdamW is Adam with decoupled weight decay, whatever adam_w_mode says.
        if (Value* mode = params->find("adam_w_mode"); mode && mode->is_bool() && !mode->as_bool()) {
            if (mode_given)
                ctx.report.warning(kind::kValue, join_path(params_path, "adam_w_mode"),
                                   "false is ignored: the AdamW optimizer always uses decoupled weight decay");
            *mode = Value::boolean(true);
        }
    }
}

void scheduler_post(Value& obj, const std::string& path, Ctx& ctx) {
    Value* type = obj.find("type");
    Value* params = obj.find("params");
    if (!type || !type->is_string() || !params) return;
    const std::string type_path = join_path(path, "type"), params_path = join_path(path, "params");

    const SchedulerType* known = nullptr;
    std::vector<std::string> names;
    for (const SchedulerType& t : scheduler_types()) {
        if (type->as_string() == t.name) known = &t;
        names.push_back(t.name);
    }
    if (!known) {
        std::string suggestion = closest(type->as_string(), names);
        ctx.unsupported(type_path, "the scheduler \"" + type->as_string() +
                                       "\" (not a DeepSpeed scheduler; DeepSpeed would look it up in torch.optim.lr_scheduler" +
                                       (suggestion.empty() ? std::string(")") : "; did you mean \"" + suggestion + "\"?)"));
        return;
    }
    *params = normalise_block(*known->params, *params, params_path, ctx);

    const Value* total = params->find("total_num_steps");
    const Value* warmup = params->find("warmup_num_steps");
    if (total && warmup && total->is_integer() && warmup->is_integer() && warmup->as_int() > total->as_int())
        ctx.report.warning(kind::kValue, join_path(params_path, "warmup_num_steps"),
                           std::to_string(warmup->as_int()) + " is larger than total_num_steps " +
                               std::to_string(total->as_int()) + ": the schedule never leaves warmup");
    if (known->name == std::string("OneCycle")) {
        const Value* lo = params->find("cycle_min_lr");
        const Value* hi = params->find("cycle_max_lr");
        if (lo && hi && lo->is_number() && hi->is_number() && lo->as_double() > hi->as_double())
            ctx.report.warning(kind::kValue, join_path(params_path, "cycle_min_lr"),
                               lo->brief() + " is larger than cycle_max_lr " + hi->brief());
    }
}

}  // namespace ds::config
