/* What ds_config_parse accepts, rejects and fills in: hjson syntax, DeepSpeed 0.19.6 defaults, every
 * key family, deprecated keys, "auto", unsupported features, unknown keys, the batch-size rule,
 * diagnostics and logging, and the to_json round trip. */
#define _POSIX_C_SOURCE 200809L
#include <dsabi.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "minitest.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

static ds_status_t parse_opts(const char* json, int32_t world, int32_t strict, int32_t accept_auto, ds_config_t** out) {
    ds_config_options_t o;
    ds_config_options_init(&o);
    o.world_size = world;
    o.strict = strict;
    o.accept_auto = accept_auto;
    return ds_config_parse(json, 0, &o, out);
}

/* Parse with world size 1; NULL (and the error printed) on failure. */
static ds_config_t* ok(const char* json) {
    ds_config_t* cfg = NULL;
    ds_status_t st = parse_opts(json, 1, 0, 1, &cfg);
    if (st != DS_OK) fprintf(stderr, "unexpected failure %d for %s\n  %s\n", st, json, ds_last_error());
    return cfg;
}

/* Parse (world size 1) expecting status st; ds_last_error() must then contain every needle. */
static int fails_with(const char* json, int32_t strict, ds_status_t st, const char* needle1, const char* needle2) {
    ds_config_t* cfg = NULL;
    ds_status_t got = parse_opts(json, 1, strict, 1, &cfg);
    int good = got == st && cfg == NULL && strstr(ds_last_error(), "ds_config_parse: ") == ds_last_error();
    if (needle1 && !strstr(ds_last_error(), needle1)) good = 0;
    if (needle2 && !strstr(ds_last_error(), needle2)) good = 0;
    if (!good) fprintf(stderr, "expected %d with \"%s\" / \"%s\" for %s\n  got %d: %s\n", st, needle1 ? needle1 : "",
                       needle2 ? needle2 : "", json, got, ds_last_error());
    ds_config_destroy(cfg);
    return good;
}

static int64_t geti(const ds_config_t* cfg, const char* path) {
    int64_t v = -12345;
    if (ds_config_get_i64(cfg, path, &v) != DS_OK) fprintf(stderr, "get_i64(%s): %s\n", path, ds_last_error());
    return v;
}

static double getf(const ds_config_t* cfg, const char* path) {
    double v = -12345;
    if (ds_config_get_f64(cfg, path, &v) != DS_OK) fprintf(stderr, "get_f64(%s): %s\n", path, ds_last_error());
    return v;
}

static int getb(const ds_config_t* cfg, const char* path) {
    int32_t v = -1;
    if (ds_config_get_bool(cfg, path, &v) != DS_OK) fprintf(stderr, "get_bool(%s): %s\n", path, ds_last_error());
    return v;
}

static const char* gets_(const ds_config_t* cfg, const char* path) {
    static char buf[256];
    uint64_t len = 0;
    if (ds_config_get_str(cfg, path, buf, sizeof buf, &len) != DS_OK) {
        fprintf(stderr, "get_str(%s): %s\n", path, ds_last_error());
        return "(error)";
    }
    return buf;
}

static int kind_of(const ds_config_t* cfg, const char* path) {
    int32_t k = -1;
    return ds_config_get_kind(cfg, path, &k) == DS_OK ? k : -1;
}

static int missing(const ds_config_t* cfg, const char* path) {
    int32_t k = -1;
    return ds_config_get_kind(cfg, path, &k) == DS_ERR_NOT_FOUND;
}

/* The diagnostics hold one of this kind and path whose message contains needle (NULL: any). */
static int has_diag(const ds_config_t* cfg, const char* kind, const char* path, const char* needle) {
    char* json = NULL;
    if (ds_config_query_diagnostics(cfg, &json) != DS_OK) return 0;
    char head[512];
    snprintf(head, sizeof head, "\"kind\":\"%s\",\"path\":\"%s\",\"message\":\"", kind, path);
    int found = 0;
    for (const char* p = strstr(json, head); p && !found; p = strstr(p + 1, head)) {
        const char* end = strchr(p + strlen(head), '}');
        if (!needle) {
            found = 1;
        } else {
            const char* n = strstr(p, needle);
            found = n && end && n < end;
        }
    }
    if (!found) fprintf(stderr, "no %s diagnostic at %s containing \"%s\" in %s\n", kind, path, needle ? needle : "", json);
    ds_free(json);
    return found;
}

static int diag_count(const ds_config_t* cfg) {
    char* json = NULL;
    if (ds_config_query_diagnostics(cfg, &json) != DS_OK) return -1;
    int n = 0;
    for (const char* p = strstr(json, "\"severity\""); p; p = strstr(p + 1, "\"severity\"")) ++n;
    ds_free(json);
    return n;
}

/* ---- syntax ----------------------------------------------------------------------------------- */

TEST(hjson_comments_and_trailing_commas) {
    const char* text =
        "// leading comment\n"
        "{\n"
        "  # hash comment\n"
        "  \"train_batch_size\": 16, // trailing comment\n"
        "  /* block comment with \"quotes\" and , commas */\n"
        "  \"optimizer\": {\"type\": \"Adam\", \"params\": {\"betas\": [0.8, 0.99,],},},\n"
        "  \"tensorboard\": {\"output_path\": \"/runs//x#y/*z*/\", \"job_name\": \"a, }\"},\n"
        "  /* multi\n     line */\n"
        "}\n";
    ds_config_t* cfg = ok(text);
    CHECK(cfg != NULL);
    CHECK_EQ_INT(geti(cfg, "train_batch_size"), 16);
    CHECK_NEAR(getf(cfg, "optimizer.params.betas[1]"), 0.99, 0);
    CHECK_STR_EQ(gets_(cfg, "tensorboard.output_path"), "/runs//x#y/*z*/"); /* strings are untouched */
    CHECK_STR_EQ(gets_(cfg, "tensorboard.job_name"), "a, }");
    ds_config_destroy(cfg);

    cfg = ok("\xEF\xBB\xBF{\"train_batch_size\": 2}"); /* UTF-8 byte order mark */
    CHECK_EQ_INT(geti(cfg, "train_batch_size"), 2);
    ds_config_destroy(cfg);
}

TEST(syntax_errors_have_line_and_column) {
    CHECK(fails_with("{\n  \"a\": 1,\n  \"b\": [1, 2,, 3]\n}", 0, DS_ERR_CONFIG_PARSE, "line 3 column 14", "syntax error near ', 3]'"));
    CHECK(fails_with("{\n  \"a\": tru\n}", 0, DS_ERR_CONFIG_PARSE, "line 2 column 8", NULL));
    CHECK(fails_with("{\"a\": 1} x", 0, DS_ERR_CONFIG_PARSE, "line 1 column 10", NULL));
    CHECK(fails_with("{\"a\": {\"b\": 1}", 0, DS_ERR_CONFIG_PARSE, "unexpected end", NULL));
    CHECK(fails_with("{\n\n  /* never closed\n}", 0, DS_ERR_CONFIG_PARSE, "line 3 column 3", "unterminated /* comment"));
    CHECK(fails_with("{\"a\": \"open string}", 0, DS_ERR_CONFIG_PARSE, "line 1 column 7", "unterminated string"));
    CHECK(fails_with("", 0, DS_ERR_CONFIG_PARSE, "empty", NULL));
    CHECK(fails_with("  // only a comment\n", 0, DS_ERR_CONFIG_PARSE, "empty", NULL));
    CHECK(fails_with("[1, 2]", 0, DS_ERR_CONFIG_PARSE, "must be a JSON object, not an array", NULL));
    CHECK(fails_with("42", 0, DS_ERR_CONFIG_PARSE, "not a number", NULL));
    CHECK(fails_with("{,}", 0, DS_ERR_CONFIG_PARSE, "line 1 column ", "syntax error"));
    CHECK(fails_with("{\"a\": 1e999}", 0, DS_ERR_CONFIG_VALUE, "a: number is too large", NULL));

    /* A NUL byte inside an explicit length. */
    ds_config_t* cfg = NULL;
    CHECK_STATUS(ds_config_parse("{\"a\":\0 1}", 9, NULL, &cfg), DS_ERR_CONFIG_PARSE);
    CHECK_CONTAINS(ds_last_error(), "line 1 column 6: NUL byte");
}

TEST(duplicate_keys) {
    CHECK(fails_with("{\"fp16\": {\"enabled\": true}, \"fp16\": {}}", 0, DS_ERR_CONFIG_PARSE, "fp16: duplicate key", NULL));
    CHECK(fails_with("{\"zero_optimization\": {\"stage\": 1, \"overlap_comm\": true, \"stage\": 2}}", 0, DS_ERR_CONFIG_PARSE,
                     "zero_optimization.stage: duplicate key", NULL));
    /* All of them, in one message. */
    CHECK(fails_with("{\"a\": 1, \"a\": 2, \"a\": 3, \"b\": {\"c\": [{\"d\": 1, \"d\": 2}]}, \"e\": 0, \"e\": 0}", 0,
                     DS_ERR_CONFIG_PARSE, "3 problems", "b.c[0].d: duplicate key"));
}

TEST(nesting_depth_is_capped) {
    /* 64 levels are fine (inside an open block), 65 are not, and very deep input does not crash. */
    char text[40000];
    strcpy(text, "{\"amp\": {\"x\": ");
    for (int i = 0; i < 62; ++i) strcat(text, "[");
    for (int i = 0; i < 62; ++i) strcat(text, "]");
    strcat(text, "}}");
    ds_config_t* cfg = ok(text);
    CHECK(cfg != NULL);
    ds_config_destroy(cfg);

    strcpy(text, "{\"amp\": {\"x\": ");
    for (int i = 0; i < 63; ++i) strcat(text, "[");
    for (int i = 0; i < 63; ++i) strcat(text, "]");
    strcat(text, "}}");
    CHECK(fails_with(text, 0, DS_ERR_CONFIG_PARSE, "nested deeper than 64 levels", "line 1 column 77"));

    size_t n = 0;
    text[n++] = '{';
    while (n < sizeof text - 1) text[n++] = '[';
    text[n] = '\0';
    CHECK(fails_with(text, 0, DS_ERR_CONFIG_PARSE, "nested deeper than 64 levels", NULL));
}

/* ---- defaults --------------------------------------------------------------------------------- */

TEST(defaults_of_an_empty_config) {
    ds_config_t* cfg = ok("{}");
    CHECK(cfg != NULL);
    /* No batch key given: a warning, and the keys stay unset. */
    CHECK(missing(cfg, "train_batch_size"));
    CHECK(missing(cfg, "train_micro_batch_size_per_gpu"));
    CHECK(missing(cfg, "gradient_accumulation_steps"));
    CHECK(has_diag(cfg, "batch", "train_batch_size", "no batch size is given"));

    CHECK_NEAR(getf(cfg, "gradient_clipping"), 1.0, 0); /* 0.19.3+ default */
    CHECK_EQ_INT(kind_of(cfg, "steps_per_print"), DS_JSON_NULL);
    CHECK_STR_EQ(gets_(cfg, "gradient_allreduce_op"), "mean");
    CHECK_EQ_INT(kind_of(cfg, "communication_data_type"), DS_JSON_NULL);
    CHECK_EQ_INT(getb(cfg, "zero_force_ds_cpu_optimizer"), 1);
    CHECK_NEAR(getf(cfg, "gradient_predivide_factor"), 1.0, 0);
    CHECK_EQ_INT(geti(cfg, "sequence_parallel_size"), 1);

    CHECK_EQ_INT(getb(cfg, "fp16.enabled"), 0);
    CHECK_EQ_INT(geti(cfg, "fp16.initial_scale_power"), 16);
    CHECK_EQ_INT(geti(cfg, "fp16.loss_scale_window"), 1000);
    CHECK_EQ_INT(geti(cfg, "fp16.hysteresis"), 2);
    CHECK_NEAR(getf(cfg, "fp16.loss_scale"), 0.0, 0);
    CHECK_NEAR(getf(cfg, "fp16.min_loss_scale"), 1.0, 0);
    CHECK_EQ_INT(getb(cfg, "bf16.check_grad_overflow"), 1);
    CHECK_EQ_INT(getb(cfg, "bf16.immediate_grad_update"), 0);

    CHECK_EQ_INT(kind_of(cfg, "optimizer"), DS_JSON_NULL);
    CHECK_EQ_INT(kind_of(cfg, "scheduler"), DS_JSON_NULL);

    CHECK_EQ_INT(geti(cfg, "zero_optimization.stage"), 0);
    CHECK_EQ_INT(getb(cfg, "zero_optimization.contiguous_gradients"), 1);
    CHECK_EQ_INT(getb(cfg, "zero_optimization.overlap_comm"), 0);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.reduce_bucket_size"), 500000000);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.allgather_bucket_size"), 500000000);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.sub_group_size"), 1000000000);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.stage3_prefetch_bucket_size"), 50000000);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.stage3_param_persistence_threshold"), 100000);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.stage3_model_persistence_threshold"), INT64_MAX);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.stage3_max_live_parameters"), 1000000000);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.mics_shard_size"), -1);
    CHECK_STR_EQ(gets_(cfg, "zero_optimization.offload_param.device"), "none");
    CHECK_EQ_INT(getb(cfg, "zero_optimization.offload_param.pin_memory"), 1); /* true since PR #8207 */
    CHECK_EQ_INT(geti(cfg, "zero_optimization.offload_param.buffer_count"), 5);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.offload_param.buffer_size"), 100000000);
    CHECK_EQ_INT(getb(cfg, "zero_optimization.offload_optimizer.pin_memory"), 1);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.offload_optimizer.buffer_count"), 4);
    CHECK_NEAR(getf(cfg, "zero_optimization.offload_optimizer.ratio"), 1.0, 0);

    CHECK_EQ_INT(geti(cfg, "aio.block_size"), 1048576);
    CHECK_EQ_INT(geti(cfg, "aio.queue_depth"), 8);
    CHECK_EQ_INT(geti(cfg, "aio.intra_op_parallelism"), 1);
    CHECK_EQ_INT(getb(cfg, "aio.overlap_events"), 1);
    CHECK_EQ_INT(getb(cfg, "activation_checkpointing.partition_activations"), 0);
    CHECK_EQ_INT(kind_of(cfg, "activation_checkpointing.number_checkpoints"), DS_JSON_NULL);
    CHECK_EQ_INT(getb(cfg, "comms_logger.prof_all"), 1);
    CHECK_EQ_INT(geti(cfg, "flops_profiler.module_depth"), -1);
    CHECK_STR_EQ(gets_(cfg, "tensorboard.job_name"), "DeepSpeedJobName");
    CHECK_STR_EQ(gets_(cfg, "wandb.project"), "deepspeed");
    CHECK_EQ_INT(geti(cfg, "comet.samples_log_interval"), 100);
    CHECK_EQ_INT(getb(cfg, "timers.throughput.synchronized"), 1);
    CHECK_STR_EQ(gets_(cfg, "checkpoint.tag_validation"), "Warn");
    CHECK_EQ_INT(kind_of(cfg, "checkpoint.writer"), DS_JSON_NULL);
    CHECK_EQ_INT(getb(cfg, "autotuning.overwrite"), 1);
    CHECK_STR_EQ(gets_(cfg, "autotuning.tuner_type"), "gridsearch");
    CHECK_EQ_INT(geti(cfg, "autotuning.max_train_micro_batch_size_per_gpu"), 1024);
    CHECK_EQ_INT(geti(cfg, "data_efficiency.seed"), 1234);
    CHECK_EQ_INT(geti(cfg, "data_efficiency.data_sampling.num_epochs"), 1000);
    CHECK_NEAR(getf(cfg, "eigenvalue.stability"), 1e-6, 0);
    CHECK_STR_EQ(gets_(cfg, "eigenvalue.layer_name"), "bert.encoder.layer");
    CHECK_NEAR(getf(cfg, "progressive_layer_drop.gamma"), 0.001, 0);
    CHECK_EQ_INT(geti(cfg, "elasticity.micro_batch_sizes[2]"), 6);
    CHECK_EQ_INT(geti(cfg, "hybrid_engine.max_out_tokens"), 512);
    CHECK_EQ_INT(geti(cfg, "nebula.num_of_version_in_retention"), 2);
    /* Families with no switch of their own are not filled in. */
    CHECK(missing(cfg, "pipeline"));
    CHECK(missing(cfg, "sparse_attention"));
    CHECK(missing(cfg, "compression_training"));
    CHECK_EQ_INT(diag_count(cfg), 1);
    ds_config_destroy(cfg);
}

TEST(overlap_comm_default_depends_on_stage) {
    ds_config_t* cfg = ok("{\"zero_optimization\": {\"stage\": 3}}");
    CHECK_EQ_INT(getb(cfg, "zero_optimization.overlap_comm"), 1);
    ds_config_destroy(cfg);
    cfg = ok("{\"zero_optimization\": {\"stage\": 3, \"overlap_comm\": false}}");
    CHECK_EQ_INT(getb(cfg, "zero_optimization.overlap_comm"), 0);
    ds_config_destroy(cfg);
    cfg = ok("{\"zero_optimization\": {\"stage\": 2}}");
    CHECK_EQ_INT(getb(cfg, "zero_optimization.overlap_comm"), 0);
    ds_config_destroy(cfg);
}

TEST(optimizer_params_per_type) {
    ds_config_t* cfg = ok("{\"optimizer\": {\"type\": \"ADAM\", \"params\": {\"lr\": 2e-4}}}");
    CHECK_STR_EQ(gets_(cfg, "optimizer.type"), "adam"); /* matched case-insensitively */
    CHECK_NEAR(getf(cfg, "optimizer.params.lr"), 2e-4, 0);
    CHECK_NEAR(getf(cfg, "optimizer.params.betas[0]"), 0.9, 0);
    CHECK_NEAR(getf(cfg, "optimizer.params.betas[1]"), 0.999, 0);
    CHECK_NEAR(getf(cfg, "optimizer.params.eps"), 1e-8, 0);
    CHECK_NEAR(getf(cfg, "optimizer.params.weight_decay"), 0.0, 0);
    CHECK_EQ_INT(getb(cfg, "optimizer.params.bias_correction"), 1);
    CHECK_EQ_INT(getb(cfg, "optimizer.params.adam_w_mode"), 1);
    CHECK_EQ_INT(getb(cfg, "optimizer.legacy_fusion"), 0);
    ds_config_destroy(cfg);

    cfg = ok("{\"optimizer\": {\"type\": \"Lamb\"}}");
    CHECK_NEAR(getf(cfg, "optimizer.params.max_coeff"), 10.0, 0);
    CHECK_NEAR(getf(cfg, "optimizer.params.min_coeff"), 0.01, 0);
    ds_config_destroy(cfg);

    cfg = ok("{\"optimizer\": {\"type\": \"adagrad\"}}");
    CHECK_NEAR(getf(cfg, "optimizer.params.lr"), 1e-2, 0);
    CHECK_NEAR(getf(cfg, "optimizer.params.eps"), 1e-10, 0);
    ds_config_destroy(cfg);

    /* AdamW always decouples weight decay. */
    cfg = ok("{\"optimizer\": {\"type\": \"AdamW\", \"params\": {\"adam_w_mode\": false}}}");
    CHECK_EQ_INT(getb(cfg, "optimizer.params.adam_w_mode"), 1);
    CHECK(has_diag(cfg, "value", "optimizer.params.adam_w_mode", "always uses decoupled weight decay"));
    ds_config_destroy(cfg);

    /* Unknown parameters are warnings (DeepSpeed passes them to the optimizer's constructor). */
    cfg = ok("{\"optimizer\": {\"type\": \"Adam\", \"params\": {\"betass\": [0.9, 0.9]}}}");
    CHECK(has_diag(cfg, "unknown_key", "optimizer.params.betass", "did you mean 'betas'?"));
    ds_config_destroy(cfg);

    CHECK(fails_with("{\"optimizer\": {\"params\": {}}}", 0, DS_ERR_CONFIG_VALUE, "optimizer.type: required key is missing", NULL));
    CHECK(fails_with("{\"optimizer\": {\"type\": \"Adam\", \"params\": {\"betas\": [0.9]}}}", 0, DS_ERR_CONFIG_VALUE,
                     "optimizer.params.betas: expected an array of 2 numbers, got 1 elements", NULL));
    CHECK(fails_with("{\"optimizer\": {\"type\": \"Adam\", \"params\": {\"betas\": [0.9, 1.5]}}}", 0, DS_ERR_CONFIG_VALUE,
                     "optimizer.params.betas[1]: expected a number in [0, 1), got 1.5", NULL));
    CHECK(fails_with("{\"optimizer\": {\"type\": \"Adam\", \"params\": {\"lr\": -1}}}", 0, DS_ERR_CONFIG_VALUE,
                     "optimizer.params.lr: expected a number >= 0, got -1", NULL));
    CHECK(fails_with("{\"optimizer\": \"adam\"}", 0, DS_ERR_CONFIG_VALUE, "optimizer: expected an object, got \"adam\"", NULL));
}

TEST(max_grad_norm_in_fp32) {
    ds_config_t* cfg = ok("{\"optimizer\": {\"type\": \"Lamb\", \"params\": {\"max_grad_norm\": 1.0}}}");
    CHECK_NEAR(getf(cfg, "optimizer.params.max_grad_norm"), 0.0, 0);
    CHECK(has_diag(cfg, "value", "optimizer.params.max_grad_norm", "is set to 0 in fp32 training"));
    ds_config_destroy(cfg);
    cfg = ok("{\"fp16\": {\"enabled\": true}, \"optimizer\": {\"type\": \"Lamb\", \"params\": {\"max_grad_norm\": 1.0}}}");
    CHECK_NEAR(getf(cfg, "optimizer.params.max_grad_norm"), 1.0, 0);
    CHECK_EQ_INT(diag_count(cfg), 1); /* only the batch warning */
    ds_config_destroy(cfg);
}

TEST(schedulers) {
    ds_config_t* cfg = ok("{\"scheduler\": {\"type\": \"WarmupLR\"}}");
    CHECK_NEAR(getf(cfg, "scheduler.params.warmup_min_lr"), 0.0, 0);
    CHECK_NEAR(getf(cfg, "scheduler.params.warmup_max_lr"), 0.001, 0);
    CHECK_EQ_INT(geti(cfg, "scheduler.params.warmup_num_steps"), 1000);
    CHECK_STR_EQ(gets_(cfg, "scheduler.params.warmup_type"), "log");
    CHECK_EQ_INT(geti(cfg, "scheduler.params.last_batch_iteration"), -1);
    ds_config_destroy(cfg);

    cfg = ok("{\"scheduler\": {\"type\": \"WarmupCosineLR\", \"params\": {\"total_num_steps\": 5000, \"warmup_type\": \"linear\"}}}");
    CHECK_EQ_INT(geti(cfg, "scheduler.params.total_num_steps"), 5000);
    CHECK_NEAR(getf(cfg, "scheduler.params.cos_min_ratio"), 1e-4, 0);
    CHECK_NEAR(getf(cfg, "scheduler.params.warmup_min_ratio"), 0.0, 0);
    CHECK_STR_EQ(gets_(cfg, "scheduler.params.warmup_type"), "linear");
    ds_config_destroy(cfg);

    cfg = ok("{\"scheduler\": {\"type\": \"OneCycle\", \"params\": {\"cycle_min_lr\": 1e-5, \"cycle_max_lr\": 1e-3}}}");
    CHECK_EQ_INT(geti(cfg, "scheduler.params.cycle_first_step_size"), 2000);
    CHECK_EQ_INT(kind_of(cfg, "scheduler.params.cycle_second_step_size"), DS_JSON_NULL);
    CHECK_NEAR(getf(cfg, "scheduler.params.cycle_min_mom"), 0.8, 0);
    CHECK_NEAR(getf(cfg, "scheduler.params.cycle_max_mom"), 0.9, 0);
    CHECK_EQ_INT(getb(cfg, "scheduler.params.cycle_momentum"), 1);
    ds_config_destroy(cfg);

    cfg = ok("{\"scheduler\": {\"type\": \"LRRangeTest\"}}");
    CHECK_EQ_INT(geti(cfg, "scheduler.params.lr_range_test_step_size"), 2000);
    CHECK_NEAR(getf(cfg, "scheduler.params.lr_range_test_min_lr"), 1e-3, 0);
    ds_config_destroy(cfg);

    cfg = ok("{\"scheduler\": {\"type\": \"WarmupDecayLR\", \"params\": {\"total_num_steps\": 100, \"warmup_num_steps\": 500}}}");
    CHECK_EQ_INT(geti(cfg, "scheduler.params.total_num_steps"), 100);
    CHECK(has_diag(cfg, "value", "scheduler.params.warmup_num_steps", "never leaves warmup"));
    ds_config_destroy(cfg);

    CHECK(fails_with("{\"scheduler\": {\"type\": \"WarmupDecayLR\", \"params\": {\"warmup_num_steps\": 10}}}", 0, DS_ERR_CONFIG_VALUE,
                     "scheduler.params.total_num_steps: required key is missing (needed by WarmupDecayLR)", NULL));
    CHECK(fails_with("{\"scheduler\": {\"type\": \"WarmupCosineLR\"}}", 0, DS_ERR_CONFIG_VALUE,
                     "scheduler.params.total_num_steps: required key is missing (needed by WarmupCosineLR)", NULL));
    CHECK(fails_with("{\"scheduler\": {\"type\": \"OneCycle\", \"params\": {\"cycle_max_lr\": 0.1}}}", 0, DS_ERR_CONFIG_VALUE,
                     "scheduler.params.cycle_min_lr: required key is missing (needed by OneCycle)", NULL));
    CHECK(fails_with("{\"scheduler\": {\"type\": \"WarmupLR\", \"params\": {\"warmup_type\": \"cubic\"}}}", 0, DS_ERR_CONFIG_VALUE,
                     "scheduler.params.warmup_type: expected one of \"log\", \"linear\", got \"cubic\"", NULL));
    CHECK(fails_with("{\"scheduler\": {\"type\": \"WarmupLR\", \"params\": {\"warmup_num_steps\": 10.5}}}", 0, DS_ERR_CONFIG_VALUE,
                     "scheduler.params.warmup_num_steps: expected an integer >= 0, got 10.5", NULL));
}

/* ---- validation errors ------------------------------------------------------------------------ */

TEST(value_errors_name_path_value_and_range) {
    CHECK(fails_with("{\"zero_optimization\": {\"stage\": 4}}", 0, DS_ERR_CONFIG_VALUE,
                     "zero_optimization.stage: expected an integer in [0, 3], got 4", NULL));
    CHECK(fails_with("{\"zero_optimization\": {\"stage\": \"two\"}}", 0, DS_ERR_CONFIG_VALUE,
                     "zero_optimization.stage: expected an integer in [0, 3], got \"two\" (string)", NULL));
    CHECK(fails_with("{\"zero_optimization\": {\"reduce_bucket_size\": -5}}", 0, DS_ERR_CONFIG_VALUE,
                     "zero_optimization.reduce_bucket_size: expected an integer >= 0, got -5", NULL));
    CHECK(fails_with("{\"fp16\": {\"loss_scale_window\": 0}}", 0, DS_ERR_CONFIG_VALUE, "fp16.loss_scale_window", ">= 1"));
    CHECK(fails_with("{\"fp16\": {\"min_loss_scale\": 0}}", 0, DS_ERR_CONFIG_VALUE, "fp16.min_loss_scale: expected a number > 0", NULL));
    CHECK(fails_with("{\"fp16\": {\"enabled\": \"yes\"}}", 0, DS_ERR_CONFIG_VALUE, "fp16.enabled: expected true or false", NULL));
    CHECK(fails_with("{\"fp16\": true}", 0, DS_ERR_CONFIG_VALUE, "fp16: expected an object, got true (bool)", NULL));
    CHECK(fails_with("{\"gradient_clipping\": -1}", 0, DS_ERR_CONFIG_VALUE, "gradient_clipping: expected a number >= 0", NULL));
    CHECK(fails_with("{\"gradient_allreduce_op\": \"summ\"}", 0, DS_ERR_CONFIG_VALUE,
                     "gradient_allreduce_op: expected one of \"mean\", \"sum\", got \"summ\"", "did you mean \"sum\"?"));
    CHECK(fails_with("{\"communication_data_type\": \"fp8\"}", 0, DS_ERR_CONFIG_VALUE,
                     "communication_data_type: expected one of \"fp16\", \"bf16\", \"fp32\"", NULL));
    CHECK(fails_with("{\"zero_optimization\": {\"offload_optimizer\": {\"device\": \"gpu\"}}}", 0, DS_ERR_CONFIG_VALUE,
                     "zero_optimization.offload_optimizer.device: expected one of \"none\", \"cpu\", \"nvme\"", NULL));
    CHECK(fails_with("{\"aio\": {\"queue_depth\": 1.5}}", 0, DS_ERR_CONFIG_VALUE, "aio.queue_depth: expected an integer >= 1, got 1.5", NULL));
    CHECK(fails_with("{\"steps_per_print\": 1e30}", 0, DS_ERR_CONFIG_VALUE, "steps_per_print", "does not fit in 64 bits"));
    CHECK(fails_with("{\"comms_logger\": {\"prof_ops\": [\"all_reduce\", 3]}}", 0, DS_ERR_CONFIG_VALUE,
                     "comms_logger.prof_ops[1]: expected a string, got 3", NULL));
    CHECK(fails_with("{\"fp16\": {\"enabled\": null}}", 0, DS_ERR_CONFIG_VALUE, "fp16.enabled: null is not allowed", NULL));
}

TEST(cross_key_rules) {
    CHECK(fails_with("{\"fp16\": {\"enabled\": true}, \"bf16\": {\"enabled\": true}}", 0, DS_ERR_CONFIG_VALUE,
                     "fp16 and bf16 cannot both be enabled", NULL));
    CHECK(fails_with("{\"gradient_allreduce_op\": \"sum\", \"zero_optimization\": {\"stage\": 3}}", 0, DS_ERR_CONFIG_VALUE,
                     "gradient_allreduce_op: \"sum\" cannot be used with ZeRO stage 3", NULL));
    ds_config_t* cfg = ok("{\"gradient_allreduce_op\": \"sum\", \"zero_optimization\": {\"stage\": 2}}");
    CHECK_STR_EQ(gets_(cfg, "gradient_allreduce_op"), "sum");
    ds_config_destroy(cfg);
    CHECK(fails_with("{\"zero_optimization\": {\"stage\": 2, \"offload_optimizer\": {\"device\": \"nvme\", \"nvme_path\": \"/nvme\"}}}", 0,
                     DS_ERR_CONFIG_VALUE, "zero_optimization.offload_optimizer.device: \"nvme\" needs ZeRO stage 3", NULL));
    CHECK(fails_with("{\"zero_optimization\": {\"stage\": 3, \"offload_param\": {\"device\": \"nvme\"}}}", 0, DS_ERR_CONFIG_VALUE,
                     "zero_optimization.offload_param.nvme_path: required when offload_param.device is \"nvme\"", NULL));
    CHECK(fails_with("{\"zero_optimization\": {\"stage\": 2, \"allgather_bucket_size\": 7}}", 0, DS_ERR_CONFIG_VALUE,
                     "zero_optimization.allgather_bucket_size: 7 must be a multiple of 2", NULL));
    CHECK(fails_with("{\"bf16\": {\"enabled\": true, \"bf16_optimizer_states\": true, \"bf16_master_weights_and_grads\": false},"
                     " \"zero_optimization\": {\"stage\": 1}}",
                     0, DS_ERR_CONFIG_VALUE, "bf16.bf16_optimizer_states: needs bf16.bf16_master_weights_and_grads", NULL));
    CHECK(fails_with("{\"fp16\": {\"enabled\": true, \"fp16_master_weights_and_grads\": true}}", 0, DS_ERR_CONFIG_VALUE,
                     "fp16.fp16_master_weights_and_grads: needs ZeRO stage 1, 2 or 3", NULL));
    CHECK(fails_with("{\"curriculum_learning\": {\"enabled\": true, \"min_difficulty\": 8}}", 0, DS_ERR_CONFIG_VALUE,
                     "curriculum_learning.max_difficulty: required when curriculum_learning.enabled is true", NULL));

    /* Ineffective settings are warnings. */
    cfg = ok("{\"zero_optimization\": {\"stage\": 2, \"offload_param\": {\"device\": \"cpu\"}}, \"vocabulary_size\": 50257}");
    CHECK(has_diag(cfg, "ineffective", "zero_optimization.offload_param.device", "only works with ZeRO stage 3"));
    CHECK(has_diag(cfg, "value", "vocabulary_size", "not a multiple of 8"));
    ds_config_destroy(cfg);

    /* tag_validation is case-insensitive and stored in its documented spelling. */
    cfg = ok("{\"checkpoint\": {\"tag_validation\": \"FAIL\"}}");
    CHECK_STR_EQ(gets_(cfg, "checkpoint.tag_validation"), "Fail");
    ds_config_destroy(cfg);
    CHECK(fails_with("{\"checkpoint\": {\"tag_validation\": \"strict\"}}", 0, DS_ERR_CONFIG_VALUE,
                     "checkpoint.tag_validation: expected one of \"Ignore\", \"Warn\", \"Fail\"", NULL));
}

TEST(all_problems_in_one_message) {
    /* Problems of different kinds: DS_ERR_CONFIG, with every problem on its own line. */
    const char* json = "{\"zero_optimization\": {\"stage\": 7, \"reduce_bucket_sise\": 1},"
                       " \"fp16\": {\"enabled\": true}, \"bf16\": {\"enabled\": true},"
                       " \"train_batch_size\": 32, \"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": 3}";
    CHECK(fails_with(json, 0, DS_ERR_CONFIG, "4 problems in the config:\n", "\n  zero_optimization.stage: "));
    CHECK_CONTAINS(ds_last_error(), "\n  zero_optimization.reduce_bucket_sise: unknown key");
    CHECK_CONTAINS(ds_last_error(), "\n  bf16.enabled: fp16 and bf16 cannot both be enabled");
    CHECK_CONTAINS(ds_last_error(), "\n  train_batch_size: train_batch_size=32 != ");
    /* Problems of one kind keep their status. */
    CHECK(fails_with("{\"fp16\": {\"loss_scale\": -1, \"hysteresis\": 0}}", 0, DS_ERR_CONFIG_VALUE, "2 problems",
                     "fp16.hysteresis"));
}

/* ---- unknown keys ----------------------------------------------------------------------------- */

TEST(unknown_keys) {
    /* Top level: a warning with a suggestion, kept in the tree; an error with strict. */
    ds_config_t* cfg = ok("{\"optimiser\": {\"type\": \"Adam\"}, \"my_extension\": {\"x\": 1}}");
    CHECK(has_diag(cfg, "unknown_key", "optimiser", "did you mean 'optimizer'?"));
    CHECK(has_diag(cfg, "unknown_key", "my_extension", "unknown key; it is kept but not used"));
    CHECK_EQ_INT(geti(cfg, "my_extension.x"), 1);
    ds_config_destroy(cfg);
    CHECK(fails_with("{\"optimiser\": {}}", 1, DS_ERR_CONFIG_UNKNOWN_KEY, "optimiser: unknown key; did you mean 'optimizer'? (strict mode)", NULL));

    /* Inside blocks DeepSpeed validates strictly: always an error. */
    CHECK(fails_with("{\"zero_optimization\": {\"reduce_bucket_sise\": 5e8}}", 0, DS_ERR_CONFIG_UNKNOWN_KEY,
                     "zero_optimization.reduce_bucket_sise: unknown key", "did you mean 'reduce_bucket_size'?"));
    CHECK(fails_with("{\"fp16\": {\"enable\": true}}", 0, DS_ERR_CONFIG_UNKNOWN_KEY, "fp16.enable", "did you mean 'enabled'?"));
    CHECK(fails_with("{\"bf16\": {\"fused_mode\": true}}", 0, DS_ERR_CONFIG_UNKNOWN_KEY, "bf16.fused_mode: unknown key", NULL));
    CHECK(fails_with("{\"zero_optimization\": {\"offload_param\": {\"devise\": \"cpu\"}}}", 0, DS_ERR_CONFIG_UNKNOWN_KEY,
                     "zero_optimization.offload_param.devise", "did you mean 'device'?"));
    CHECK(fails_with("{\"aio\": {\"threads\": 4}}", 0, DS_ERR_CONFIG_UNKNOWN_KEY, "aio.threads", NULL));
    CHECK(fails_with("{\"comms_logger\": {\"enabled\": true, \"verbos\": true}}", 0, DS_ERR_CONFIG_UNKNOWN_KEY,
                     "comms_logger.verbos", "did you mean 'verbose'?"));
    CHECK(fails_with("{\"activation_checkpointing\": {\"partition\": true}}", 0, DS_ERR_CONFIG_UNKNOWN_KEY,
                     "activation_checkpointing.partition", NULL));
    CHECK(fails_with("{\"checkpoint\": {\"tag\": \"x\"}}", 0, DS_ERR_CONFIG_UNKNOWN_KEY, "checkpoint.tag", NULL));
    /* Far from every key: no suggestion. */
    CHECK(fails_with("{\"fp16\": {\"completely_different\": 1}}", 0, DS_ERR_CONFIG_UNKNOWN_KEY, "fp16.completely_different", NULL));
    CHECK(strstr(ds_last_error(), "did you mean") == NULL);
    /* Free-form blocks (amp's kwargs) take any key. */
    cfg = ok("{\"amp\": {\"enabled\": false, \"opt_level\": \"O1\"}}");
    CHECK_STR_EQ(gets_(cfg, "amp.opt_level"), "O1");
    CHECK_EQ_INT(diag_count(cfg), 1);
    ds_config_destroy(cfg);
}

/* ---- deprecated keys -------------------------------------------------------------------------- */

TEST(deprecated_keys_migrate) {
    ds_config_t* cfg = ok("{\"zero_optimization\": {\"stage\": 2, \"cpu_offload\": true, \"cpu_offload_use_pin_memory\": false}}");
    CHECK_STR_EQ(gets_(cfg, "zero_optimization.offload_optimizer.device"), "cpu");
    CHECK_EQ_INT(getb(cfg, "zero_optimization.offload_optimizer.pin_memory"), 0);
    CHECK(missing(cfg, "zero_optimization.cpu_offload"));
    CHECK(has_diag(cfg, "deprecated", "zero_optimization.cpu_offload",
                   "zero_optimization.cpu_offload is deprecated, use zero_optimization.offload_optimizer"));
    CHECK(has_diag(cfg, "deprecated", "zero_optimization.cpu_offload_use_pin_memory", "is deprecated, use"));
    ds_config_destroy(cfg);

    cfg = ok("{\"zero_optimization\": {\"stage\": 3, \"cpu_offload_param\": true, \"stage3_gather_fp16_weights_on_model_save\": true}}");
    CHECK_STR_EQ(gets_(cfg, "zero_optimization.offload_param.device"), "cpu");
    CHECK_EQ_INT(getb(cfg, "zero_optimization.stage3_gather_16bit_weights_on_model_save"), 1);
    CHECK(has_diag(cfg, "deprecated", "zero_optimization.stage3_gather_fp16_weights_on_model_save",
                   "is deprecated, use zero_optimization.stage3_gather_16bit_weights_on_model_save"));
    ds_config_destroy(cfg);

    cfg = ok("{\"zero_optimization\": {\"cpu_offload\": false}}"); /* false: no block, still a warning */
    CHECK_STR_EQ(gets_(cfg, "zero_optimization.offload_optimizer.device"), "none");
    CHECK(has_diag(cfg, "deprecated", "zero_optimization.cpu_offload", NULL));
    ds_config_destroy(cfg);

    cfg = ok("{\"bfloat16\": {\"enabled\": true}, \"aio\": {\"thread_count\": 4}, \"seq_parallel_comm_data_type\": \"bf16\"}");
    CHECK_EQ_INT(getb(cfg, "bf16.enabled"), 1);
    CHECK(missing(cfg, "bfloat16"));
    CHECK(has_diag(cfg, "deprecated", "bfloat16", "bfloat16 is deprecated, use bf16"));
    CHECK_EQ_INT(geti(cfg, "aio.intra_op_parallelism"), 4);
    CHECK(has_diag(cfg, "deprecated", "aio.thread_count", "aio.thread_count is deprecated, use aio.intra_op_parallelism"));
    CHECK_STR_EQ(gets_(cfg, "seq_parallel_communication_data_type"), "bf16");
    ds_config_destroy(cfg);

    /* The boolean form of zero_optimization, with the top-level allgather_size. */
    cfg = ok("{\"zero_optimization\": true, \"allgather_size\": 2e8}");
    CHECK_EQ_INT(geti(cfg, "zero_optimization.stage"), 1);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.allgather_bucket_size"), 200000000);
    CHECK(has_diag(cfg, "deprecated", "zero_optimization", "zero_optimization: true is deprecated"));
    CHECK(has_diag(cfg, "deprecated", "allgather_size", "use zero_optimization.allgather_bucket_size"));
    ds_config_destroy(cfg);
    cfg = ok("{\"zero_optimization\": false}");
    CHECK_EQ_INT(geti(cfg, "zero_optimization.stage"), 0);
    ds_config_destroy(cfg);

    /* DeepSpeed's field aliases are accepted silently. */
    cfg = ok("{\"zero_optimization\": {\"stage\": 3, \"prefetch_bucket_size\": 1e7, \"max_live_parameters\": 3e8}}");
    CHECK_EQ_INT(geti(cfg, "zero_optimization.stage3_prefetch_bucket_size"), 10000000);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.stage3_max_live_parameters"), 300000000);
    CHECK(missing(cfg, "zero_optimization.prefetch_bucket_size"));
    CHECK_EQ_INT(diag_count(cfg), 1);
    ds_config_destroy(cfg);
}

TEST(deprecated_and_new_together_is_an_error) {
    CHECK(fails_with("{\"zero_optimization\": {\"cpu_offload\": true, \"offload_optimizer\": {\"device\": \"cpu\"}}}", 0,
                     DS_ERR_CONFIG_VALUE, "zero_optimization.cpu_offload: both cpu_offload (deprecated) and offload_optimizer", NULL));
    CHECK(fails_with("{\"bf16\": {}, \"bfloat16\": {}}", 0, DS_ERR_CONFIG_VALUE, "bf16: 'bf16' and 'bfloat16' are the same setting",
                     NULL));
    CHECK(fails_with("{\"aio\": {\"thread_count\": 2, \"intra_op_parallelism\": 2}}", 0, DS_ERR_CONFIG_VALUE,
                     "aio.intra_op_parallelism: 'intra_op_parallelism' and 'thread_count' are the same setting", NULL));
    CHECK(fails_with("{\"zero_optimization\": {\"stage3_prefetch_bucket_size\": 1, \"prefetch_bucket_size\": 2}}", 0,
                     DS_ERR_CONFIG_VALUE, "give only 'stage3_prefetch_bucket_size'", NULL));
    CHECK(fails_with("{\"zero_optimization\": {\"offload_optimizer\": {\"pin_memory\": true}, \"cpu_offload_use_pin_memory\": true}}", 0,
                     DS_ERR_CONFIG_VALUE, "both cpu_offload_use_pin_memory (deprecated) and offload_optimizer.pin_memory", NULL));
    CHECK(fails_with("{\"allgather_size\": 10, \"zero_optimization\": {\"allgather_bucket_size\": 10}}", 0, DS_ERR_CONFIG_VALUE,
                     "allgather_size: both allgather_size (deprecated)", NULL));
}

/* ---- "auto" ----------------------------------------------------------------------------------- */

TEST(auto_values) {
    const char* hf = "{\"train_batch_size\": \"auto\", \"train_micro_batch_size_per_gpu\": \"auto\","
                     " \"gradient_accumulation_steps\": \"auto\", \"gradient_clipping\": \"auto\","
                     " \"fp16\": {\"enabled\": \"auto\"}, \"zero_optimization\": {\"stage\": 3, \"reduce_bucket_size\": \"auto\"},"
                     " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": \"auto\", \"betas\": \"auto\"}}}";
    ds_config_t* cfg = ok(hf);
    CHECK(cfg != NULL);
    CHECK_NEAR(getf(cfg, "gradient_clipping"), 1.0, 0);
    CHECK_EQ_INT(getb(cfg, "fp16.enabled"), 0);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.reduce_bucket_size"), 500000000);
    CHECK_NEAR(getf(cfg, "optimizer.params.lr"), 1e-3, 0);
    CHECK_NEAR(getf(cfg, "optimizer.params.betas[1]"), 0.999, 0);
    CHECK(missing(cfg, "train_batch_size"));
    CHECK(has_diag(cfg, "auto", "gradient_clipping", "\\\"auto\\\": using the default 1.0"));
    CHECK(has_diag(cfg, "auto", "train_batch_size", "derived by the batch-size rule"));
    CHECK(has_diag(cfg, "auto", "zero_optimization.reduce_bucket_size", "using the default 500000000"));
    ds_config_destroy(cfg);

    /* "auto" with a batch size that can be derived. */
    cfg = ok("{\"train_batch_size\": \"auto\", \"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": 2}");
    CHECK_EQ_INT(geti(cfg, "train_batch_size"), 8);
    ds_config_destroy(cfg);

    /* accept_auto = 0: an error naming each path. */
    cfg = NULL;
    CHECK_STATUS(parse_opts(hf, 1, 0, 0, &cfg), DS_ERR_CONFIG_VALUE);
    CHECK_CONTAINS(ds_last_error(), "8 problems");
    CHECK_CONTAINS(ds_last_error(), "gradient_clipping: \"auto\" is not accepted (accept_auto is off); give a number >= 0");
    CHECK_CONTAINS(ds_last_error(), "optimizer.params.lr: \"auto\" is not accepted");
    CHECK(cfg == NULL);

    /* A required key without a default cannot be "auto". */
    CHECK(fails_with("{\"scheduler\": {\"type\": \"WarmupDecayLR\", \"params\": {\"total_num_steps\": \"auto\"}}}", 0,
                     DS_ERR_CONFIG_VALUE, "scheduler.params.total_num_steps: \"auto\" cannot be used here", NULL));
    /* Where "auto" is a real value it stays. */
    cfg = ok("{\"pipeline\": {\"stages\": \"auto\"}}");
    CHECK_STR_EQ(gets_(cfg, "pipeline.stages"), "auto");
    ds_config_destroy(cfg);
}

/* ---- unsupported features --------------------------------------------------------------------- */

TEST(unsupported_features) {
    static const struct {
        const char* json;
        const char* path;
        const char* words;
    } cases[] = {
        {"{\"optimizer\": {\"type\": \"OneBitAdam\"}}", "optimizer.type", "1-bit Adam"},
        {"{\"optimizer\": {\"type\": \"ZeroOneAdam\"}}", "optimizer.type", "0/1 Adam"},
        {"{\"optimizer\": {\"type\": \"SGD\"}}", "optimizer.type", "torch.optim"},
        {"{\"scheduler\": {\"type\": \"StepLR\"}}", "scheduler.type", "torch.optim.lr_scheduler"},
        {"{\"flops_profiler\": {\"enabled\": true}}", "flops_profiler.enabled", "FLOPS profiler"},
        {"{\"tensorboard\": {\"enabled\": true}}", "tensorboard.enabled", "TensorBoard"},
        {"{\"wandb\": {\"enabled\": true}}", "wandb.enabled", "Weights & Biases"},
        {"{\"comet\": {\"enabled\": true}}", "comet.enabled", "Comet"},
        {"{\"csv_monitor\": {\"enabled\": true}}", "csv_monitor.enabled", "CSV"},
        {"{\"elasticity\": {\"enabled\": true}}", "elasticity.enabled", "elastic"},
        {"{\"pipeline\": {\"stages\": 2}}", "pipeline", "pipeline parallelism"},
        {"{\"sparse_attention\": {\"mode\": \"fixed\"}}", "sparse_attention", "sparse attention"},
        {"{\"compression_training\": {\"weight_quantization\": {\"shared_parameters\": {\"enabled\": true}}}}",
         "compression_training", "compression"},
        {"{\"quantize_training\": {\"quantize_bits\": {\"start_bits\": 12}}}", "quantize_training", "MoQ"},
        {"{\"eigenvalue\": {\"enabled\": true}}", "eigenvalue.enabled", "eigenvalue"},
        {"{\"hybrid_engine\": {\"enabled\": true}}", "hybrid_engine.enabled", "hybrid engine"},
        {"{\"nebula\": {\"enabled\": true}}", "nebula.enabled", "Nebula"},
        {"{\"compile\": {\"deepcompile\": true}}", "compile.deepcompile", "DeepCompile"},
        {"{\"zero_optimization\": {\"stage\": 3, \"zenflow\": {\"topk_ratio\": 0.1}}}", "zero_optimization.zenflow", "ZenFlow"},
        {"{\"zero_optimization\": {\"stage\": 3, \"zero_quantized_weights\": true}}", "zero_optimization.zero_quantized_weights", "qwZ"},
        {"{\"zero_optimization\": {\"stage\": 3, \"zero_quantized_gradients\": true}}", "zero_optimization.zero_quantized_gradients",
         "qgZ"},
        {"{\"zero_optimization\": {\"stage\": 3, \"zero_hpz_partition_size\": 8}}", "zero_optimization.zero_hpz_partition_size", "hpZ"},
        {"{\"zero_optimization\": {\"stage\": 3, \"mics_shard_size\": 8}}", "zero_optimization.mics_shard_size", "MiCS"},
        {"{\"amp\": {\"enabled\": true, \"opt_level\": \"O2\"}}", "amp.enabled", "Apex AMP"},
        {"{\"progressive_layer_drop\": {\"enabled\": true}}", "progressive_layer_drop.enabled", "progressive layer drop"},
        {"{\"data_efficiency\": {\"data_routing\": {\"random_ltd\": {\"enabled\": true}}}}",
         "data_efficiency.data_routing.random_ltd.enabled", "random-LTD"},
        {"{\"sparse_gradients\": true}", "sparse_gradients", "sparse gradients"},
        {"{\"aio\": {\"use_gds\": true}}", "aio.use_gds", "GPUDirect"},
        {"{\"checkpoint\": {\"writer\": {\"type\": \"fast\"}}}", "checkpoint.writer", "FastPersist"},
        {"{\"datastates_ckpt\": {\"host_cache_size\": 16}}", "datastates_ckpt", "DataStates"},
        {"{\"tensor_parallel\": {\"autotp_size\": 2}}", "tensor_parallel.autotp_size", "AutoTP"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        ds_config_t* cfg = ok(cases[i].json);
        CHECK(cfg != NULL);
        if (cfg && !has_diag(cfg, "unsupported", cases[i].path, cases[i].words)) fprintf(stderr, "  case %zu\n", i);
        ds_config_destroy(cfg);
        cfg = NULL;
        CHECK_STATUS(parse_opts(cases[i].json, 1, 1, 1, &cfg), DS_ERR_CONFIG_UNSUPPORTED);
        CHECK_CONTAINS(ds_last_error(), cases[i].path);
        CHECK_CONTAINS(ds_last_error(), "not implemented by dsabi");
        CHECK(cfg == NULL);
    }
    /* Switched off, the same families are silent, also in strict mode. */
    const char* off = "{\"train_batch_size\": 8, \"tensorboard\": {\"enabled\": false, \"output_path\": \"/tmp/tb\"},"
                      " \"flops_profiler\": {\"enabled\": false}, \"wandb\": {\"enabled\": false}, \"amp\": {\"enabled\": false},"
                      " \"elasticity\": {\"enabled\": false}, \"eigenvalue\": {\"enabled\": false},"
                      " \"zero_optimization\": {\"stage\": 3, \"zero_quantized_weights\": false, \"zenflow\": null},"
                      " \"compile\": {\"deepcompile\": false}, \"datastates_ckpt\": false,"
                      " \"compression_training\": {\"weight_quantization\": {\"shared_parameters\": {\"enabled\": false}}}}";
    ds_config_t* cfg = NULL;
    CHECK_OK(parse_opts(off, 1, 1, 1, &cfg));
    CHECK_EQ_INT(diag_count(cfg), 0);
    ds_config_destroy(cfg);
    /* The optimizer type gets a suggestion when it is a near miss. */
    cfg = ok("{\"optimizer\": {\"type\": \"Adamw_\"}}");
    CHECK(has_diag(cfg, "unsupported", "optimizer.type", "did you mean \\\"adamw\\\"?"));
    ds_config_destroy(cfg);
}

/* ---- batch-size rule -------------------------------------------------------------------------- */

static void check_triple(const char* json, int32_t world, int64_t tb, int64_t mb, int64_t gas) {
    ds_config_t* cfg = NULL;
    CHECK_OK(parse_opts(json, world, 0, 1, &cfg));
    if (!cfg) return;
    CHECK_EQ_INT(geti(cfg, "train_batch_size"), tb);
    CHECK_EQ_INT(geti(cfg, "train_micro_batch_size_per_gpu"), mb);
    CHECK_EQ_INT(geti(cfg, "gradient_accumulation_steps"), gas);
    ds_config_destroy(cfg);
}

TEST(batch_rule_derivations) {
    check_triple("{\"train_batch_size\": 32, \"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": 2}", 4, 32, 4, 2);
    check_triple("{\"train_batch_size\": 32, \"train_micro_batch_size_per_gpu\": 4}", 4, 32, 4, 2);
    check_triple("{\"train_batch_size\": 32, \"gradient_accumulation_steps\": 2}", 4, 32, 4, 2);
    check_triple("{\"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": 2}", 4, 32, 4, 2);
    check_triple("{\"train_batch_size\": 32}", 4, 32, 8, 1);
    check_triple("{\"train_micro_batch_size_per_gpu\": 4}", 4, 16, 4, 1);
    check_triple("{\"train_batch_size\": 5e3, \"gradient_accumulation_steps\": 5}", 10, 5000, 100, 5);
}

TEST(batch_rule_errors) {
    ds_config_t* cfg = NULL;
    CHECK_STATUS(parse_opts("{\"train_batch_size\": 32, \"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": 2}", 3,
                            0, 1, &cfg),
                 DS_ERR_CONFIG_BATCH);
    CHECK_CONTAINS(ds_last_error(), "train_batch_size=32 != train_micro_batch_size_per_gpu=4 * gradient_accumulation_steps=2 * "
                                    "world_size=3 (world size from options)");
    setenv("WORLD_SIZE", "3", 1);
    CHECK_STATUS(parse_opts("{\"train_batch_size\": 32, \"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": 2}", 0,
                            0, 1, &cfg),
                 DS_ERR_CONFIG_BATCH);
    CHECK_CONTAINS(ds_last_error(), "world_size=3 (world size from $WORLD_SIZE)");
    unsetenv("WORLD_SIZE");

    /* Divisions that do not come out even are errors (DeepSpeed would truncate). */
    CHECK_STATUS(parse_opts("{\"train_batch_size\": 30, \"train_micro_batch_size_per_gpu\": 4}", 2, 0, 1, &cfg), DS_ERR_CONFIG_BATCH);
    CHECK_CONTAINS(ds_last_error(), "train_batch_size=30 is not divisible by train_micro_batch_size_per_gpu=4 * world_size=2");
    CHECK_CONTAINS(ds_last_error(), "silently round down");
    CHECK_STATUS(parse_opts("{\"train_batch_size\": 30, \"gradient_accumulation_steps\": 4}", 1, 0, 1, &cfg), DS_ERR_CONFIG_BATCH);
    CHECK_CONTAINS(ds_last_error(), "not divisible by gradient_accumulation_steps=4 * world_size=1");
    CHECK_STATUS(parse_opts("{\"train_batch_size\": 30}", 4, 0, 1, &cfg), DS_ERR_CONFIG_BATCH);
    CHECK_CONTAINS(ds_last_error(), "train_batch_size=30 is not divisible by world_size=4");
    CHECK_STATUS(parse_opts("{\"gradient_accumulation_steps\": 4}", 1, 0, 1, &cfg), DS_ERR_CONFIG_BATCH);
    CHECK_CONTAINS(ds_last_error(), "gradient_accumulation_steps: is given without train_batch_size or train_micro_batch_size_per_gpu");
    CHECK_STATUS(parse_opts("{\"train_batch_size\": 0}", 1, 0, 1, &cfg), DS_ERR_CONFIG_VALUE);
    CHECK_CONTAINS(ds_last_error(), "train_batch_size: expected an integer >= 1, got 0");
    CHECK_STATUS(parse_opts("{\"train_micro_batch_size_per_gpu\": 4611686018427387904, \"gradient_accumulation_steps\": 4}", 1, 0, 1,
                            &cfg),
                 DS_ERR_CONFIG_BATCH);
    CHECK_CONTAINS(ds_last_error(), "overflows");
    CHECK_STATUS(parse_opts("{\"sequence_parallel_size\": 3, \"train_batch_size\": 8}", 4, 0, 1, &cfg), DS_ERR_CONFIG_BATCH);
    CHECK_CONTAINS(ds_last_error(), "sequence_parallel_size: 4 ranks (from options) cannot be split");
    CHECK(cfg == NULL);
}

/* ---- misc ------------------------------------------------------------------------------------- */

TEST(bool_coercion_and_big_integers) {
    ds_config_t* cfg = ok("{\"fp16\": {\"enabled\": 1}, \"bf16\": {\"check_grad_overflow\": \"False\"},"
                          " \"zero_optimization\": {\"stage3_model_persistence_threshold\": 9223372036854775807,"
                          " \"sub_group_size\": 1e12}}");
    CHECK_EQ_INT(getb(cfg, "fp16.enabled"), 1);
    CHECK_EQ_INT(getb(cfg, "bf16.check_grad_overflow"), 0);
    CHECK(has_diag(cfg, "value", "fp16.enabled", "1 is taken as true"));
    CHECK_EQ_INT(geti(cfg, "zero_optimization.stage3_model_persistence_threshold"), INT64_MAX);
    CHECK_EQ_INT(geti(cfg, "zero_optimization.sub_group_size"), 1000000000000LL);
    ds_config_destroy(cfg);
}

static char g_log[8192];
static int g_warn_lines = 0, g_info_lines = 0;

static void capture_log(int32_t level, const char* message, void* user) {
    (void)user;
    if (level == DS_LOG_WARN) ++g_warn_lines;
    if (level == DS_LOG_INFO) ++g_info_lines;
    strncat(g_log, message, sizeof g_log - strlen(g_log) - 2);
    strcat(g_log, "\n");
}

TEST(diagnostics_are_logged_once) {
    ds_config_t* cfg = ok("{}"); /* initialise the library first */
    ds_config_destroy(cfg);
    g_log[0] = '\0';
    CHECK_OK(ds_lib_set_log(capture_log, NULL, DS_LOG_INFO));
    cfg = ok("{\"train_batch_size\": 8, \"tensorboard\": {\"enabled\": true}, \"zero_optimization\": {\"stage\": 2, \"cpu_offload\": true},"
             " \"gradient_clipping\": \"auto\"}");
    CHECK_OK(ds_lib_set_log(NULL, NULL, DS_LOG_ERROR));
    CHECK_EQ_INT(g_warn_lines, 2);
    CHECK_EQ_INT(g_info_lines, 1);
    CHECK_CONTAINS(g_log, "config: tensorboard.enabled: not implemented by dsabi: TensorBoard monitoring; the setting is ignored [unsupported]");
    CHECK_CONTAINS(g_log, "zero_optimization.cpu_offload is deprecated");
    CHECK_CONTAINS(g_log, "config: gradient_clipping: \"auto\": using the default 1.0 [auto]");
    /* Reading diagnostics later does not log again. */
    char* json = NULL;
    CHECK_OK(ds_config_query_diagnostics(cfg, &json));
    ds_free(json);
    CHECK_EQ_INT(g_warn_lines, 2);
    ds_config_destroy(cfg);
}

/* to_json gives a complete config that parses back to the same thing. */
static void check_round_trip(const char* json) {
    ds_config_t* a = ok(json);
    CHECK(a != NULL);
    if (!a) return;
    for (int pretty = 0; pretty <= 1; ++pretty) {
        char* first = NULL;
        CHECK_OK(ds_config_to_json(a, NULL, pretty, &first));
        ds_config_t* b = ok(first);
        CHECK(b != NULL);
        char* second = NULL;
        if (b) CHECK_OK(ds_config_to_json(b, NULL, pretty, &second));
        if (second && strcmp(first, second) != 0) {
            CHECK_STR_EQ(first, second);
        }
        ds_free(first);
        ds_free(second);
        ds_config_destroy(b);
    }
    ds_config_destroy(a);
}

TEST(round_trip) {
    check_round_trip("{}");
    check_round_trip("{\"train_batch_size\": 24, \"train_micro_batch_size_per_gpu\": 3, \"fp16\": {\"enabled\": true},"
                     " \"optimizer\": {\"type\": \"Adam\", \"params\": {\"lr\": 3e-5, \"weight_decay\": 0.0, \"bias_correction\": false}}}");
    check_round_trip("{\"train_micro_batch_size_per_gpu\": 1, \"bf16\": {\"enabled\": true},"
                     " \"scheduler\": {\"type\": \"WarmupCosineLR\", \"params\": {\"total_num_steps\": 1000, \"warmup_num_steps\": 10}},"
                     " \"zero_optimization\": {\"stage\": 3, \"offload_optimizer\": {\"device\": \"nvme\", \"nvme_path\": \"/nvme\"},"
                     " \"offload_param\": {\"device\": \"cpu\"}, \"stage3_model_persistence_threshold\": 9223372036854775807,"
                     " \"sub_group_size\": 1e12, \"cpu_offload_use_pin_memory\": false}, \"aio\": {\"thread_count\": 2},"
                     " \"pipeline\": {\"stages\": \"auto\"}, \"compression_training\": {\"x\": [1, 2.5, \"s\", null, true]},"
                     " \"my_key\": {\"nested\": [{\"a\": 1e-300}, -0.0, 1e300]}, \"tensorboard\": {\"enabled\": true, \"job_name\": \"q\\\"\\n\"}}");
    check_round_trip("{\"zero_optimization\": true, \"allgather_size\": 3e8, \"bfloat16\": {\"enabled\": false},"
                     " \"checkpoint\": {\"tag_validation\": \"ignore\", \"writer\": {\"type\": \"python\"}},"
                     " \"curriculum_learning\": {\"enabled\": true, \"min_difficulty\": 8, \"max_difficulty\": 1024,"
                     " \"schedule_type\": \"fixed_linear\", \"schedule_config\": {\"total_curriculum_step\": 100}}}");
}

int main(void) {
    unsetenv("WORLD_SIZE");
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("SLURM_NTASKS");
    RUN(hjson_comments_and_trailing_commas);
    RUN(syntax_errors_have_line_and_column);
    RUN(duplicate_keys);
    RUN(nesting_depth_is_capped);
    RUN(defaults_of_an_empty_config);
    RUN(overlap_comm_default_depends_on_stage);
    RUN(optimizer_params_per_type);
    RUN(max_grad_norm_in_fp32);
    RUN(schedulers);
    RUN(value_errors_name_path_value_and_range);
    RUN(cross_key_rules);
    RUN(all_problems_in_one_message);
    RUN(unknown_keys);
    RUN(deprecated_keys_migrate);
    RUN(deprecated_and_new_together_is_an_error);
    RUN(auto_values);
    RUN(unsupported_features);
    RUN(batch_rule_derivations);
    RUN(batch_rule_errors);
    RUN(bool_coercion_and_big_integers);
    RUN(diagnostics_are_logged_once);
    RUN(round_trip);
    return minitest_report();
}
