// The DeepSpeed config schema dsabi validates against, with DeepSpeed 0.19.6's defaults.
// Sources: research/deepspeed-facts.md §0-§1 (names, defaults, ranges; no DeepSpeed code).
// Each block is built once, on first use, by a function holding a static.
#include "config/schema.hpp"

namespace ds::config {

// ---- row builders -----------------------------------------------------------------------------

namespace {

Field row(const char* key, Type type) {
    Field f;
    f.key = key;
    f.type = type;
    return f;
}

Field with_default(Field f, Value v) {
    f.default_kind = Field::Default::Value;
    f.default_value = std::move(v);
    return f;
}

Field with_null_default(Field f) {
    f.default_kind = Field::Default::Null;
    f.nullable = true;
    return f;
}

}  // namespace

Field B(const char* key, bool dflt) { return with_default(row(key, Type::Bool), Value::boolean(dflt)); }
Field B_null(const char* key) { return with_null_default(row(key, Type::Bool)); }
Field I(const char* key, int64_t dflt) { return with_default(row(key, Type::Int), Value::integer(dflt)); }
Field I_null(const char* key) { return with_null_default(row(key, Type::Int)); }
Field I_none(const char* key) { return row(key, Type::Int); }
Field F(const char* key, double dflt) { return with_default(row(key, Type::Float), Value::real(dflt)); }
Field F_null(const char* key) { return with_null_default(row(key, Type::Float)); }
Field F_none(const char* key) { return row(key, Type::Float); }

Field S(const char* key, const char* dflt) {
    Field f = row(key, Type::String);
    return dflt ? with_default(f, Value::string(dflt)) : with_null_default(f);
}

Field S_none(const char* key) { return row(key, Type::String); }

Field E(const char* key, const char* dflt, std::initializer_list<const char*> choices) {
    Field f = row(key, Type::Enum);
    f.choices.assign(choices.begin(), choices.end());
    return dflt ? with_default(f, Value::string(dflt)) : with_null_default(f);
}

Field A(const char* key, Type elem, Value dflt) {
    Field f = row(key, Type::Array);
    f.elem = elem;
    return dflt.is_null() ? with_null_default(f) : with_default(f, std::move(dflt));
}

Field O(const char* key, const Block& block) {
    Field f = row(key, Type::Object);
    f.block = &block;
    f.default_kind = Field::Default::Block;
    f.nullable = true;  // null means "the defaults", as an absent block does
    return f;
}

Field M(const char* key) { return with_null_default(row(key, Type::Map)); }

Field M_obj(const char* key) { return with_default(row(key, Type::Map), Value::object()); }

Field X(const char* key, Value dflt) {
    Field f = row(key, Type::Any);
    f.nullable = true;
    return dflt.is_null() ? f : with_default(f, std::move(dflt));
}

// ---- predicates -------------------------------------------------------------------------------

bool is_true(const Value& v) { return v.is_true(); }
bool is_present(const Value& v) { return !v.is_null(); }
bool is_positive(const Value& v) { return v.is_number() && v.as_double() > 0; }
bool is_above_one(const Value& v) { return v.is_number() && v.as_double() > 1; }
bool is_below_one(const Value& v) { return v.is_number() && v.as_double() < 1; }

bool has_enabled_true(const Value& v) {
    if (v.is_object()) {
        for (const Value::Member& m : v.members()) {
            if (m.key == "enabled" && m.value.is_true()) return true;
            if (has_enabled_true(m.value)) return true;
        }
    } else if (v.is_array()) {
        for (const Value& item : v.items())
            if (has_enabled_true(item)) return true;
    }
    return false;
}

bool is_not_disabled(const Value& v) {
    if (v.is_null() || (v.is_bool() && !v.as_bool())) return false;
    if (v.is_object()) {
        const Value* enabled = v.find("enabled");
        if (enabled && enabled->is_bool()) return enabled->as_bool();
        return !v.members().empty();
    }
    return true;
}

namespace {

Value floats(std::initializer_list<double> xs) {
    Value a = Value::array();
    for (double x : xs) a.push(Value::real(x));
    return a;
}

Value ints(std::initializer_list<int64_t> xs) {
    Value a = Value::array();
    for (int64_t x : xs) a.push(Value::integer(x));
    return a;
}

const char* const kDtypes[] = {"fp16", "bf16", "fp32"};

Field dtype(const char* key) { return E(key, nullptr, {kDtypes[0], kDtypes[1], kDtypes[2]}); }

// quantize_training (MoQ) has no top-level switch in older configs: a non-empty block without
// "enabled": false is taken as on.
bool quantize_training_on(const Value& v) { return is_not_disabled(v); }

// ---- precision --------------------------------------------------------------------------------

const Block& fp16_block() {
    static const Block b{"fp16", true, false, {
        B("enabled", false),
        B("auto_cast", false),
        F("loss_scale", 0.0).min(0).note("(0 means dynamic loss scaling)"),
        I("initial_scale_power", 16).range(0, 127),
        I("loss_scale_window", 1000).min(1),
        I("hysteresis", 2).min(1),
        B("consecutive_hysteresis", false),
        F("min_loss_scale", 1.0).above(0),
        B("fp16_master_weights_and_grads", false),
    }};
    return b;
}

const Block& bf16_block() {
    static const Block b{"bf16", true, false, {
        B("enabled", false),
        B("immediate_grad_update", false),
        B("check_grad_overflow", true),
        B("bf16_master_weights_and_grads", false),
        B("bf16_optimizer_states", false),
    }};
    return b;
}

const Block& amp_block() {
    // Everything besides "enabled" is passed to apex amp.initialize.
    static const Block b{"amp", false, true, {
        B("enabled", false).unsupported(is_true, "Apex AMP"),
    }};
    return b;
}

const Block& torch_autocast_block() {
    static const Block b{"torch_autocast", false, false, {
        B("enabled", false).unsupported(is_true, "torch.autocast mixed precision"),
        S("dtype", nullptr),
        A("lower_precision_safe_modules", Type::String, Value::null()),
    }};
    return b;
}

const Block& data_types_block() {
    static const Block b{"data_types", false, false, {
        dtype("grad_accum_dtype"),
        dtype("param_dtype").unsupported(is_present, "data_types.param_dtype (FSDP-style parameter dtype)"),
        dtype("buffer_dtype").unsupported(is_present, "data_types.buffer_dtype (FSDP-style buffer dtype)"),
    }};
    return b;
}

// ---- ZeRO -------------------------------------------------------------------------------------

const Block& offload_param_block() {
    static const Block b{"offload_param", true, false, {
        E("device", "none", {"none", "cpu", "nvme"}),
        S("nvme_path", nullptr),
        I("buffer_count", 5).min(0),
        I("buffer_size", 100000000).min(0),
        I("max_in_cpu", 1000000000).min(0),
        B("pin_memory", true),
    }};
    return b;
}

const Block& offload_optimizer_block() {
    static const Block b{"offload_optimizer", true, false, {
        E("device", "none", {"none", "cpu", "nvme"}),
        S("nvme_path", nullptr),
        I("buffer_count", 4).min(0),
        B("pin_memory", true),
        B("pipeline_read", false),
        B("pipeline_write", false),
        B("fast_init", false),
        F("ratio", 1.0).range(0, 1).unsupported(is_below_one, "partial optimizer offload (ratio < 1, Twin-Flow)"),
        B("super_offload", false).unsupported(is_true, "SuperOffload"),
        B("convert_grad_on_cpu", true),
        F("cpuadam_cores_perc", 0.8).range(0, 1),
    }};
    return b;
}

const Block& leaf_module_block() {
    static const Block b{"leaf_module", true, false, {
        A("classes", Type::String, Value::null()),
        A("names", Type::String, Value::null()),
        A("name_suffixes", Type::String, Value::null()),
    }};
    return b;
}

const Block& zero_block() {
    static const Block b{"zero_optimization", true, false, {
        I("stage", 0).range(0, 3).note("(DeepSpeed's ZeRO stages are 0, 1, 2 and 3)"),
        B("contiguous_gradients", true),
        B("reduce_scatter", true),
        I("reduce_bucket_size", 500000000).min(0),
        B("use_multi_rank_bucket_allreduce", true),
        B("allgather_partitions", true),
        I("allgather_bucket_size", 500000000).min(0),
        B_null("overlap_comm"),  // null: true for stage 3, false otherwise (set by zero_post)
        B("load_from_fp32_weights", true),
        B("elastic_checkpoint", false),
        O("offload_param", offload_param_block()),
        O("offload_optimizer", offload_optimizer_block()),
        M("zenflow").unsupported(is_present, "ZenFlow"),
        I("sub_group_size", 1000000000).min(0),
        I("stage3_prefetch_bucket_size", 50000000).min(0).alias({"prefetch_bucket_size"}),
        I("stage3_param_persistence_threshold", 100000).min(0).alias({"param_persistence_threshold"}),
        I("stage3_model_persistence_threshold", INT64_MAX).min(0).alias({"model_persistence_threshold"}),
        I("stage3_max_live_parameters", 1000000000).min(0).alias({"max_live_parameters"}),
        I("stage3_max_reuse_distance", 1000000000).min(0).alias({"max_reuse_distance"}),
        B("stage3_gather_16bit_weights_on_model_save", false)
            .alias({"gather_16bit_weights_on_model_save"})
            .was({"stage3_gather_fp16_weights_on_model_save"}),
        I("stage3_module_granularity_threshold", 0).min(0).alias({"module_granularity_threshold"}),
        B("stage3_use_all_reduce_for_fetch_params", false).alias({"use_all_reduce_for_fetch_params"}),
        B("stage3_allgather_sequential", false).alias({"allgather_sequential"}),
        I("stage3_partition_stream_chunk_size", 0).min(0).alias({"partition_stream_chunk_size"}),
        B("ignore_unused_parameters", true),
        B("legacy_stage1", false).unsupported(is_true, "the legacy ZeRO stage 1 implementation"),
        B("round_robin_gradients", false),
        I("zero_hpz_partition_size", 1).min(0).unsupported(is_above_one, "ZeRO++ hierarchical partitioning (hpZ)"),
        B("zero_quantized_weights", false).unsupported(is_true, "ZeRO++ quantized weights (qwZ)"),
        B("zero_quantized_nontrainable_weights", false).unsupported(is_true, "ZeRO++ quantized non-trainable weights"),
        B("zero_quantized_gradients", false).unsupported(is_true, "ZeRO++ quantized gradients (qgZ)"),
        M("zeropp_loco_param").unsupported(is_present, "LoCo-ZeRO++"),
        I("mics_shard_size", -1).min(-1).unsupported(is_positive, "MiCS"),
        B("mics_hierarchical_params_gather", false).unsupported(is_true, "MiCS hierarchical parameter gather"),
        B("memory_efficient_linear", true),
        B("pipeline_loading_checkpoint", false),
        B("override_module_apply", true),
        B("log_trace_cache_warnings", false),
        B("enable_sanity_checks", false),
        B("save_muon_momentum_buffer_in_memory", false),
        O("leaf_module", leaf_module_block()),
    }, zero_pre, zero_post};
    return b;
}

// ---- I/O, activation checkpointing, logging ---------------------------------------------------

const Block& aio_block() {
    static const Block b{"aio", true, false, {
        I("block_size", 1048576).min(1),
        I("queue_depth", 8).min(1),
        I("intra_op_parallelism", 1).min(1).was({"thread_count"}),
        B("single_submit", false),
        B("overlap_events", true),
        B("use_gds", false).unsupported(is_true, "GPUDirect Storage (aio.use_gds)"),
    }};
    return b;
}

const Block& activation_checkpointing_block() {
    static const Block b{"activation_checkpointing", true, false, {
        B("partition_activations", false).unsupported(is_true, "partitioned activation checkpoints (needs model parallelism)"),
        B("cpu_checkpointing", false).unsupported(is_true, "CPU activation checkpointing"),
        B("contiguous_memory_optimization", false).unsupported(is_true, "contiguous activation checkpoint buffers"),
        I_null("number_checkpoints").min(1),
        B("synchronize_checkpoint_boundary", false),
        B("profile", false),
    }};
    return b;
}

const Block& comms_logger_block() {
    static const Block b{"comms_logger", true, false, {
        B("enabled", false),
        B("verbose", false),
        B("prof_all", true),
        B("debug", false),
        A("prof_ops", Type::String, Value::array()),
    }};
    return b;
}

const Block& flops_profiler_block() {
    static const Block b{"flops_profiler", false, false, {
        B("enabled", false).unsupported(is_true, "the FLOPS profiler"),
        I("profile_step", 1).min(1),
        I("module_depth", -1).min(-1),
        I("top_modules", 1).min(1),
        B("detailed", true),
        S("output_file", nullptr),
    }};
    return b;
}

const Block& tensorboard_block() {
    static const Block b{"tensorboard", true, false, {
        B("enabled", false).unsupported(is_true, "TensorBoard monitoring"),
        S("output_path", nullptr),
        S("job_name", "DeepSpeedJobName"),
    }};
    return b;
}

const Block& csv_monitor_block() {
    static const Block b{"csv_monitor", true, false, {
        B("enabled", false).unsupported(is_true, "CSV monitoring"),
        S("output_path", nullptr),
        S("job_name", "DeepSpeedJobName"),
    }};
    return b;
}

const Block& wandb_block() {
    static const Block b{"wandb", true, false, {
        B("enabled", false).unsupported(is_true, "Weights & Biases monitoring"),
        S("group", nullptr),
        S("team", nullptr),
        S("project", "deepspeed"),
    }};
    return b;
}

const Block& comet_block() {
    static const Block b{"comet", true, false, {
        B("enabled", false).unsupported(is_true, "Comet monitoring"),
        I("samples_log_interval", 100).min(1),
        S("project", nullptr),
        S("workspace", nullptr),
        S("api_key", nullptr),
        S("experiment_name", nullptr),
        S("experiment_key", nullptr),
        B_null("online"),
        S("mode", nullptr),
    }};
    return b;
}

const Block& throughput_timer_block() {
    static const Block b{"timers.throughput", true, false, {
        B("enabled", true),
        B("synchronized", true),
    }};
    return b;
}

const Block& timers_block() {
    static const Block b{"timers", true, false, {
        O("throughput", throughput_timer_block()),
    }};
    return b;
}

const Block& eigenvalue_block() {
    static const Block b{"eigenvalue", false, false, {
        B("enabled", false).unsupported(is_true, "eigenvalue computation"),
        B("verbose", false),
        I("max_iter", 100).min(1),
        F("tol", 1e-2).min(0),
        F("stability", 1e-6).min(0),
        I("gas_boundary_resolution", 1).min(1),
        S("layer_name", "bert.encoder.layer"),
        I("layer_num", 0).min(0),
    }};
    return b;
}

// ---- checkpoints ------------------------------------------------------------------------------

const Block& parallel_write_block() {
    static const Block b{"checkpoint.parallel_write", true, false, {
        B("pipeline_stage", false),
    }};
    return b;
}

const Block& checkpoint_writer_block() {
    static const Block b{"checkpoint.writer", true, false, {
        E("type", "FAST", {"FAST", "PYTHON", "MOCK"}).case_insensitive(),
        B("decoupled", false),
        I("io_buffer_size", 64 * 1024 * 1024).min(1),
        B("io_buffer_double", true),
        B("show_statistics", false),
        E("data_parallel", nullptr, {"replica", "socket", "machine"}),
        I("io_multiplier", 1).min(1),
    }};
    return b;
}

const Block& checkpoint_block() {
    static const Block b{"checkpoint", true, false, {
        E("tag_validation", "Warn", {"Ignore", "Warn", "Fail"}).case_insensitive(),
        B("load_universal", false),
        B("use_node_local_storage", false),
        O("parallel_write", parallel_write_block()),
        B("checkpoint_serialization", true),
        O("writer", checkpoint_writer_block()).null_default().unsupported(is_present, "FastPersist checkpoint writers (checkpoint.writer)"),
    }};
    return b;
}

const Block& nebula_block() {
    static const Block b{"nebula", false, false, {
        B("enabled", false).unsupported(is_true, "Nebula checkpointing"),
        S("persistent_storage_path", nullptr),
        I("persistent_time_interval", 100).min(1),
        I("num_of_version_in_retention", 2).min(1),
        B("enable_nebula_load", true),
        S("nebula_load_path", nullptr),
    }};
    return b;
}

// ---- autotuning and data efficiency -----------------------------------------------------------

const Block& autotuning_model_info_block() {
    static const Block b{"autotuning.model_info", false, false, {
        B("profile", false),
        I_null("num_params").min(0),
        I_null("hidden_size").min(1),
        I_null("num_layers").min(1),
    }};
    return b;
}

const Block& autotuning_block() {
    static const Block b{"autotuning", false, false, {
        B("enabled", false),
        B("fast", true),
        S("results_dir", "autotuning_results"),
        S("exps_dir", "autotuning_exps"),
        B("overwrite", true),
        I("start_profile_step", 3).min(0),
        I("end_profile_step", 5).min(1),
        E("metric", "throughput", {"latency", "throughput", "flops"}),
        S("metric_path", nullptr),
        S("model_info_path", nullptr),
        E("tuner_type", "gridsearch", {"gridsearch", "random", "model_based"}),
        I("tuner_early_stopping", 5).min(1),
        I("tuner_num_trials", 50).min(1),
        M("arg_mappings"),
        I_null("max_train_batch_size").min(1),
        I("min_train_batch_size", 1).min(1),
        I("max_train_micro_batch_size_per_gpu", 1024).min(1),
        I("min_train_micro_batch_size_per_gpu", 1).min(1),
        I("num_tuning_micro_batch_sizes", 3).min(1),
        I("mp_size", 1).min(1),
        O("model_info", autotuning_model_info_block()),
    }};
    return b;
}

const Block& de_curriculum_block() {
    static const Block b{"data_efficiency.data_sampling.curriculum_learning", false, true, {
        B("enabled", false),
        S("data_cluster_path", nullptr),
        M("curriculum_metrics"),  // {metric: {difficulty_type, schedule_type, ...}}: read by the data module
    }};
    return b;
}

const Block& de_dynamic_batching_block() {
    static const Block b{"data_efficiency.data_sampling.dynamic_batching", false, true, {
        B("enabled", false),
        I_null("max_tokens").min(1),
        S("metrics_path", nullptr),
        E("lr_scaling_method", "linear", {"linear", "sqrt", "none"}),
        I("min_batch_size", 1).min(1),
        I_null("max_batch_size").min(1),
        E("sequence_picking_order", "dataloader", {"dataloader", "seqlen", "random"}),
        B("verbose", false),
    }};
    return b;
}

const Block& data_sampling_block() {
    static const Block b{"data_efficiency.data_sampling", false, false, {
        B("enabled", false),
        I("num_epochs", 1000).min(1),
        I("num_workers", 0).min(0),
        B("pin_memory", false),
        O("curriculum_learning", de_curriculum_block()),
        O("dynamic_batching", de_dynamic_batching_block()),
    }};
    return b;
}

const Block& random_ltd_block() {
    static const Block b{"data_efficiency.data_routing.random_ltd", false, true, {
        B("enabled", false).unsupported(is_true, "random-LTD (random layerwise token dropping)"),
    }};
    return b;
}

const Block& data_routing_block() {
    static const Block b{"data_efficiency.data_routing", false, false, {
        B("enabled", false),
        O("random_ltd", random_ltd_block()),
    }};
    return b;
}

const Block& data_efficiency_block() {
    static const Block b{"data_efficiency", false, false, {
        B("enabled", false),
        I("seed", 1234),
        O("data_sampling", data_sampling_block()),
        O("data_routing", data_routing_block()),
    }};
    return b;
}

const Block& curriculum_legacy_block() {
    static const Block b{"curriculum_learning", false, false, {
        B("enabled", false),
        S("curriculum_type", "seqlen"),
        I_none("min_difficulty").min(0),
        I_none("max_difficulty").min(0),
        E("schedule_type", nullptr, {"fixed_linear", "fixed_root", "fixed_discrete", "custom"}),
        M("schedule_config"),
    }, nullptr, curriculum_post};
    return b;
}

// ---- features dsabi does not implement (recognised, validated, reported) ----------------------

const Block& progressive_layer_drop_block() {
    static const Block b{"progressive_layer_drop", false, false, {
        B("enabled", false).unsupported(is_true, "progressive layer drop"),
        F("theta", 1.0),
        F("gamma", 0.001),
    }};
    return b;
}

const Block& elasticity_block() {
    static const Block b{"elasticity", false, false, {
        B("enabled", false).unsupported(is_true, "elastic training"),
        I("max_train_batch_size", 2000).min(1),
        A("micro_batch_sizes", Type::Int, ints({2, 4, 6})),
        I("min_gpus", 1).min(1),
        I("max_gpus", 10000).min(1),
        F("min_time", 0).min(0),
        B("prefer_large_batch", true),
        F("version", 0.2),
        B("ignore_non_elastic_batch_info", false),
        I("num_gpus_per_node", 1).min(1),
        I("model_parallel_size", 1).min(1),
    }};
    return b;
}

const Block& hybrid_engine_block() {
    static const Block b{"hybrid_engine", true, false, {
        B("enabled", false).unsupported(is_true, "the hybrid engine (RLHF generation)"),
        I("max_out_tokens", 512).min(1),
        I("inference_tp_size", 1).min(1),
        B("release_inference_cache", false),
        B("pin_parameters", true),
        I("tp_gather_partition_size", 8).min(1),
    }};
    return b;
}

const Block& pipeline_block() {
    static const Block b{"pipeline", false, false, {
        X("stages", Value::string("auto")).auto_value(),
        S("partition", "best"),
        B("seed_layers", false),
        I("activation_checkpoint_interval", 0).min(0),
        B("pipe_partitioned", true),
        B("grad_partitioned", true),
    }};
    return b;
}

const Block& sparse_attention_block() {
    static const Block b{"sparse_attention", false, false, {
        E("mode", "fixed", {"dense", "fixed", "variable", "bigbird", "bslongformer"}),
        I("block", 16).min(1),
        B("different_layout_per_head", false),
        I("num_local_blocks", 4).min(1),
        I("num_global_blocks", 1).min(0),
        E("attention", "bidirectional", {"unidirectional", "bidirectional"}),
        B("horizontal_global_attention", false),
        I("num_different_global_patterns", 1).min(1),
        I("num_random_blocks", 0).min(0),
        A("local_window_blocks", Type::Int, ints({4})),
        A("global_block_indices", Type::Int, ints({0})),
        A("global_block_end_indices", Type::Int, Value::null()),
        I("num_sliding_window_blocks", 3).min(1),
    }};
    return b;
}

const Block& tensor_parallel_block() {
    static const Block b{"tensor_parallel", false, true, {
        I("autotp_size", 0).min(0).unsupported(is_positive, "training tensor parallelism (AutoTP)"),
    }};
    return b;
}

const Block& compile_block() {
    static const Block b{"compile", false, true, {
        B("deepcompile", false).unsupported(is_true, "DeepCompile"),
    }};
    return b;
}

// ---- optimizer and scheduler parameters -------------------------------------------------------

Field betas(double b1, double b2) { return A("betas", Type::Float, floats({b1, b2})).length(2).range(0, 1).below(1); }

const Block& adam_params() {
    static const Block b{"Adam params", false, false, {
        F("lr", 1e-3).min(0),
        betas(0.9, 0.999),
        F("eps", 1e-8).min(0),
        F("weight_decay", 0.0).min(0),
        B("bias_correction", true),
        B("adam_w_mode", true),
        B("amsgrad", false).unsupported(is_true, "AMSGrad"),
        B("torch_adam", false).unsupported(is_true, "torch_adam (PyTorch's own Adam implementation)"),
    }};
    return b;
}

const Block& lamb_params() {
    static const Block b{"Lamb params", false, false, {
        F("lr", 1e-3).min(0),
        betas(0.9, 0.999),
        F("eps", 1e-8).min(0),
        F("weight_decay", 0.0).min(0),
        B("bias_correction", true),
        B("eps_inside_sqrt", false),
        F("max_grad_norm", 0.0).min(0),
        F("max_coeff", 10.0).min(0),
        F("min_coeff", 0.01).min(0),
        B("amsgrad", false).unsupported(is_true, "AMSGrad"),
    }};
    return b;
}

const Block& lion_params() {
    static const Block b{"Lion params", false, false, {
        F("lr", 1e-3).min(0),
        betas(0.9, 0.999),
        F("weight_decay", 0.0).min(0),
    }};
    return b;
}

const Block& adagrad_params() {
    static const Block b{"Adagrad params", false, false, {
        F("lr", 1e-2).min(0),
        F("eps", 1e-10).min(0),
        F("weight_decay", 0.0).min(0),
        F("lr_decay", 0.0).min(0),
        F("initial_accumulator_value", 0.0).min(0),
    }};
    return b;
}

Field last_batch_iteration() { return I("last_batch_iteration", -1).min(-1); }
Field warmup_type() { return E("warmup_type", "log", {"log", "linear"}); }

const Block& lr_range_test_params() {
    static const Block b{"LRRangeTest", false, false, {
        F("lr_range_test_min_lr", 1e-3).min(0),
        I("lr_range_test_step_size", 2000).min(1),
        F("lr_range_test_step_rate", 1.0).min(0),
        B("lr_range_test_staircase", false),
        last_batch_iteration(),
    }};
    return b;
}

const Block& one_cycle_params() {
    static const Block b{"OneCycle", false, false, {
        F_none("cycle_min_lr").min(0).must(),
        F_none("cycle_max_lr").min(0).must(),
        F("decay_lr_rate", 0.0).min(0),
        I("cycle_first_step_size", 2000).min(1),
        I_null("cycle_second_step_size").min(1),
        I("cycle_first_stair_count", 0).min(0),
        I_null("cycle_second_stair_count").min(0),
        I("decay_step_size", 0).min(0),
        B("cycle_momentum", true),
        F("cycle_min_mom", 0.8).range(0, 1),
        F("cycle_max_mom", 0.9).range(0, 1),
        F("decay_mom_rate", 0.0).min(0),
        last_batch_iteration(),
    }};
    return b;
}

const Block& warmup_lr_params() {
    static const Block b{"WarmupLR", false, false, {
        F("warmup_min_lr", 0.0).min(0),
        F("warmup_max_lr", 0.001).min(0).null_ok(),  // null: the optimizer's lr
        I("warmup_num_steps", 1000).min(0),
        warmup_type(),
        last_batch_iteration(),
    }};
    return b;
}

const Block& warmup_decay_lr_params() {
    static const Block b{"WarmupDecayLR", false, false, {
        F("warmup_min_lr", 0.0).min(0),
        F("warmup_max_lr", 0.001).min(0).null_ok(),
        I("warmup_num_steps", 1000).min(0),
        warmup_type(),
        I_none("total_num_steps").min(1).must(),
        last_batch_iteration(),
    }};
    return b;
}

const Block& warmup_cosine_lr_params() {
    static const Block b{"WarmupCosineLR", false, false, {
        I_none("total_num_steps").min(1).must(),
        F("warmup_min_ratio", 0.0).range(0, 1),
        I("warmup_num_steps", 1000).min(0),
        F("cos_min_ratio", 1e-4).range(0, 1),
        warmup_type(),
        last_batch_iteration(),
    }};
    return b;
}

// "type" selects the parameter block; optimizer_post / scheduler_post validate "params" with it.
const Block& optimizer_block() {
    static const Block b{"optimizer", false, false, {
        S_none("type").must(),
        M_obj("params"),
        B("legacy_fusion", false).unsupported(is_true, "the legacy fused fp16 optimizer (legacy_fusion)"),
    }, nullptr, optimizer_post};
    return b;
}

const Block& scheduler_block() {
    static const Block b{"scheduler", false, false, {
        S_none("type").must(),
        M_obj("params"),
    }, nullptr, scheduler_post};
    return b;
}

// ---- the top level ----------------------------------------------------------------------------

const Block& make_root() {
    static const Block b{"the top level", false, false, {
        I_none("train_batch_size").min(1).derived(),
        I_none("train_micro_batch_size_per_gpu").min(1).derived(),
        I_none("gradient_accumulation_steps").min(1).derived(),
        B("managed_gradient_accumulation", true),
        I_null("steps_per_print").min(1),
        B("wall_clock_breakdown", false),
        B("memory_breakdown", false),
        B("dump_state", false),
        F("gradient_clipping", 1.0).min(0).note("(0 disables clipping)"),
        B("prescale_gradients", false),
        F("gradient_predivide_factor", 1.0).above(0),
        E("gradient_allreduce_op", "mean", {"mean", "sum"}),
        dtype("communication_data_type"),
        dtype("seq_parallel_communication_data_type").was({"seq_parallel_comm_data_type"}),
        B("sparse_gradients", false).unsupported(is_true, "sparse gradients"),
        B("disable_allgather", false),
        B("zero_allow_untested_optimizer", false),
        B("zero_force_ds_cpu_optimizer", true),
        B("dataloader_drop_last", false),
        I_null("vocabulary_size").min(1),
        B("use_data_before_expert_parallelism", false),
        B("graph_harvesting", false).unsupported(is_true, "graph harvesting (CUDA graph capture)"),
        S("log_level", nullptr),
        I("sequence_parallel_size", 1).min(1).unsupported(is_above_one, "sequence parallelism (Ulysses)"),
        O("fp16", fp16_block()),
        O("bf16", bf16_block()).was({"bfloat16"}),
        O("amp", amp_block()),
        O("torch_autocast", torch_autocast_block()),
        O("data_types", data_types_block()),
        O("optimizer", optimizer_block()).null_default(),
        O("scheduler", scheduler_block()).null_default(),
        O("zero_optimization", zero_block()),
        O("aio", aio_block()),
        O("activation_checkpointing", activation_checkpointing_block()),
        O("comms_logger", comms_logger_block()),
        O("flops_profiler", flops_profiler_block()),
        O("tensorboard", tensorboard_block()),
        O("csv_monitor", csv_monitor_block()),
        O("wandb", wandb_block()),
        O("comet", comet_block()),
        O("timers", timers_block()),
        O("checkpoint", checkpoint_block()),
        O("autotuning", autotuning_block()),
        O("data_efficiency", data_efficiency_block()),
        O("curriculum_learning", curriculum_legacy_block()).lazy(),
        O("eigenvalue", eigenvalue_block()),
        O("progressive_layer_drop", progressive_layer_drop_block()),
        O("elasticity", elasticity_block()),
        O("hybrid_engine", hybrid_engine_block()),
        O("nebula", nebula_block()),
        X("datastates_ckpt", Value::null()).unsupported(is_not_disabled, "the DataStates checkpoint engine"),
        O("pipeline", pipeline_block()).lazy().unsupported(is_present, "pipeline parallelism"),
        O("sparse_attention", sparse_attention_block()).lazy().unsupported(is_present, "sparse attention"),
        O("tensor_parallel", tensor_parallel_block()).lazy(),
        O("compile", compile_block()).lazy(),
        M("compression_training").lazy().unsupported(has_enabled_true, "compression training"),
        M("quantize_training").lazy().unsupported(quantize_training_on, "quantization-aware training (MoQ)"),
        M("weight_quantization").lazy().unsupported(is_present, "post-training weight quantization"),
        M("expert_parallel").lazy().unsupported(is_not_disabled, "expert parallelism (AutoEP)"),
    }, root_pre, root_post};
    return b;
}

}  // namespace

const Block& root_block() { return make_root(); }

const std::vector<OptimizerType>& optimizer_types() {
    static const std::vector<OptimizerType> types = {
        {"adam", &adam_params(), nullptr},
        {"adamw", &adam_params(), nullptr},
        {"lamb", &lamb_params(), nullptr},
        {"lion", &lion_params(), nullptr},
        {"adagrad", &adagrad_params(), nullptr},
        {"onebitadam", nullptr, "the 1-bit Adam optimizer"},
        {"zerooneadam", nullptr, "the 0/1 Adam optimizer"},
        {"onebitlamb", nullptr, "the 1-bit LAMB optimizer"},
        {"muon", nullptr, "the Muon optimizer"},
        {"muadam", nullptr, "the muP Adam optimizer (MuAdam)"},
        {"muadamw", nullptr, "the muP AdamW optimizer (MuAdamW)"},
        {"musgd", nullptr, "the muP SGD optimizer (MuSGD)"},
    };
    return types;
}

const std::vector<SchedulerType>& scheduler_types() {
    static const std::vector<SchedulerType> types = {
        {"LRRangeTest", &lr_range_test_params()},
        {"OneCycle", &one_cycle_params()},
        {"WarmupLR", &warmup_lr_params()},
        {"WarmupDecayLR", &warmup_decay_lr_params()},
        {"WarmupCosineLR", &warmup_cosine_lr_params()},
    };
    return types;
}

}  // namespace ds::config
