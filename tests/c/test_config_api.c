/* The ds_config_* C API contract: lifecycle, options structs, handles, out-parameters, the
 * (buf, cap, &len) protocol, and every error path of every function. */
#define _POSIX_C_SOURCE 200809L
#include <dsabi.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "minitest.h"

static const char* const kSmall =
    "{\"train_batch_size\": 32, \"gradient_accumulation_steps\": 2,"
    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-4, \"betas\": [0.9, 0.95]}},"
    " \"zero_optimization\": {\"stage\": 2, \"reduce_bucket_size\": 5e8}}";

static void clear_world_env(void) {
    unsetenv("WORLD_SIZE");
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("SLURM_NTASKS");
}

static ds_config_t* parse_world(const char* json, int32_t world) {
    ds_config_options_t opts;
    ds_config_options_init(&opts);
    opts.world_size = world;
    ds_config_t* cfg = NULL;
    ds_status_t st = ds_config_parse(json, 0, &opts, &cfg);
    if (st != DS_OK) fprintf(stderr, "parse failed (%d): %s\n", st, ds_last_error());
    return cfg;
}

/* A handle that was valid and is now destroyed (the pointer value is kept on purpose). */
static ds_config_t* destroyed_handle(void) {
    ds_config_t* cfg = parse_world("{}", 1);
    ds_config_destroy(cfg);
    return cfg;
}

/* ---- options ---------------------------------------------------------------------------------- */

TEST(options_init_defaults) {
    ds_config_options_t o;
    memset(&o, 0xab, sizeof o);
    ds_config_options_init(&o);
    CHECK_EQ_INT(o.struct_size, sizeof(ds_config_options_t));
    CHECK_EQ_INT(o.abi_version, DS_ABI_VERSION);
    CHECK_EQ_INT(o.world_size, 0);
    CHECK_EQ_INT(o.strict, 0);
    CHECK_EQ_INT(o.accept_auto, 1);
    ds_config_options_init(NULL); /* must not crash */
}

TEST(options_null_means_defaults) {
    clear_world_env();
    ds_config_t* cfg = NULL;
    CHECK_OK(ds_config_parse("{\"train_micro_batch_size_per_gpu\": 3, \"fp16\": {\"enabled\": \"auto\"}}", 0, NULL, &cfg));
    int64_t tb = 0;
    CHECK_OK(ds_config_get_i64(cfg, "train_batch_size", &tb));
    CHECK_EQ_INT(tb, 3); /* world size 1 by default */
    int32_t ws = 0, src = -1;
    CHECK_OK(ds_config_get_world_size(cfg, &ws, &src));
    CHECK_EQ_INT(ws, 1);
    CHECK_EQ_INT(src, 4);
    ds_config_destroy(cfg);
}

TEST(options_bad_header) {
    ds_config_options_t o;
    ds_config_t* cfg = (ds_config_t*)&o; /* must be reset to NULL on failure */
    ds_config_options_init(&o);
    o.struct_size = 4;
    CHECK_STATUS(ds_config_parse("{}", 0, &o, &cfg), DS_ERR_VERSION);
    CHECK(cfg == NULL);
    CHECK_CONTAINS(ds_last_error(), "ds_config_parse");
    CHECK_CONTAINS(ds_last_error(), "struct_size=4");

    ds_config_options_init(&o);
    o.abi_version = DS_ABI_VERSION + 7;
    CHECK_STATUS(ds_config_parse("{}", 0, &o, &cfg), DS_ERR_VERSION);
    CHECK_CONTAINS(ds_last_error(), "abi_version");
    CHECK_STATUS(ds_config_load_file("/nonexistent.json", &o, &cfg), DS_ERR_VERSION);
}

TEST(options_bad_fields) {
    ds_config_options_t o;
    ds_config_t* cfg = NULL;
    ds_config_options_init(&o);
    o.world_size = -2;
    CHECK_STATUS(ds_config_parse("{}", 0, &o, &cfg), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "world_size=-2");
    ds_config_options_init(&o);
    o.strict = 2;
    CHECK_STATUS(ds_config_parse("{}", 0, &o, &cfg), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "strict=2");
    ds_config_options_init(&o);
    o.accept_auto = -1;
    CHECK_STATUS(ds_config_parse("{}", 0, &o, &cfg), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "accept_auto=-1");
    CHECK(cfg == NULL);
}

/* A caller compiled against an older header whose struct ended after "strict". */
typedef struct old_config_options {
    uint32_t struct_size;
    uint32_t abi_version;
    int32_t world_size;
    int32_t strict;
} old_config_options_t;

TEST(options_older_smaller_struct) {
    clear_world_env();
    old_config_options_t old;
    old.struct_size = sizeof old;
    old.abi_version = DS_ABI_VERSION;
    old.world_size = 4;
    old.strict = 0;
    ds_config_t* cfg = NULL;
    /* "auto" must be accepted: accept_auto is not in the old struct and defaults to 1. */
    CHECK_OK(ds_config_parse("{\"train_batch_size\": 32, \"gradient_accumulation_steps\": 2, \"gradient_clipping\": \"auto\"}",
                             0, (const ds_config_options_t*)&old, &cfg));
    int64_t mb = 0;
    CHECK_OK(ds_config_get_i64(cfg, "train_micro_batch_size_per_gpu", &mb));
    CHECK_EQ_INT(mb, 4); /* 32 / (2 * 4): the old struct's world_size was read */
    double clip = 0;
    CHECK_OK(ds_config_get_f64(cfg, "gradient_clipping", &clip));
    CHECK_NEAR(clip, 1.0, 0);
    int32_t ws = 0, src = -1;
    CHECK_OK(ds_config_get_world_size(cfg, &ws, &src));
    CHECK_EQ_INT(ws, 4);
    CHECK_EQ_INT(src, 0);
    ds_config_destroy(cfg);

    old.strict = 1; /* and strict is honoured */
    CHECK_STATUS(ds_config_parse("{\"tensorboard\": {\"enabled\": true}}", 0, (const ds_config_options_t*)&old, &cfg),
                 DS_ERR_CONFIG_UNSUPPORTED);
}

/* ---- parse / load_file ------------------------------------------------------------------------ */

TEST(parse_argument_errors) {
    ds_config_t* cfg = NULL;
    CHECK_STATUS(ds_config_parse("{}", 0, NULL, NULL), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "out");
    CHECK_STATUS(ds_config_parse(NULL, 0, NULL, &cfg), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "text is NULL");
    CHECK(cfg == NULL);
}

TEST(parse_explicit_length) {
    /* Only the first len bytes are read: the buffer need not be NUL-terminated. */
    char buf[64];
    memset(buf, 'x', sizeof buf);
    const char* json = "{\"train_batch_size\": 8}";
    memcpy(buf, json, strlen(json));
    ds_config_options_t o;
    ds_config_options_init(&o);
    o.world_size = 2;
    ds_config_t* cfg = NULL;
    CHECK_OK(ds_config_parse(buf, strlen(json), &o, &cfg));
    int64_t mb = 0;
    CHECK_OK(ds_config_get_i64(cfg, "train_micro_batch_size_per_gpu", &mb));
    CHECK_EQ_INT(mb, 4);
    ds_config_destroy(cfg);
    /* With the trailing garbage included it is a syntax error. */
    CHECK_STATUS(ds_config_parse(buf, sizeof buf, &o, &cfg), DS_ERR_CONFIG_PARSE);
    CHECK_CONTAINS(ds_last_error(), "line 1 column 24");
}

static char* write_temp(const char* content) {
    char* path = malloc(64);
    strcpy(path, "/tmp/dsabi_cfg_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    size_t n = strlen(content);
    if (write(fd, content, n) != (ssize_t)n) n = 0;
    close(fd);
    return path;
}

TEST(load_file_paths) {
    ds_config_t* cfg = NULL;
    CHECK_STATUS(ds_config_load_file(NULL, NULL, &cfg), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_load_file("/tmp", NULL, NULL), DS_ERR_INVALID_ARG);

    CHECK_STATUS(ds_config_load_file("/nonexistent/dir/ds.json", NULL, &cfg), DS_ERR_IO);
    CHECK_CONTAINS(ds_last_error(), "ds_config_load_file: /nonexistent/dir/ds.json: cannot open");
    CHECK(cfg == NULL);
    CHECK_STATUS(ds_config_load_file("/tmp", NULL, &cfg), DS_ERR_IO);
    CHECK_CONTAINS(ds_last_error(), "/tmp");

    char* good = write_temp("# hjson\n{\"train_micro_batch_size_per_gpu\": 2, \"zero_optimization\": {\"stage\": 1},}\n");
    CHECK(good != NULL);
    ds_config_options_t o;
    ds_config_options_init(&o);
    o.world_size = 3;
    CHECK_OK(ds_config_load_file(good, &o, &cfg));
    int64_t tb = 0;
    CHECK_OK(ds_config_get_i64(cfg, "train_batch_size", &tb));
    CHECK_EQ_INT(tb, 6);
    ds_config_destroy(cfg);
    unlink(good);
    free(good);

    char* bad = write_temp("{\n  \"zero_optimization\": {\n    \"stage\": 1\n    \"overlap_comm\": true\n  }\n}\n");
    CHECK_STATUS(ds_config_load_file(bad, NULL, &cfg), DS_ERR_CONFIG_PARSE);
    CHECK_CONTAINS(ds_last_error(), bad); /* messages start with the path */
    CHECK_CONTAINS(ds_last_error(), "line 4 column 5");
    unlink(bad);
    free(bad);

    char* invalid = write_temp("{\"zero_optimization\": {\"stage\": 9}}");
    CHECK_STATUS(ds_config_load_file(invalid, NULL, &cfg), DS_ERR_CONFIG_VALUE);
    CHECK_CONTAINS(ds_last_error(), invalid);
    CHECK_CONTAINS(ds_last_error(), "zero_optimization.stage");
    unlink(invalid);
    free(invalid);
}

/* ---- handles ---------------------------------------------------------------------------------- */

TEST(destroy_is_null_safe_and_idempotent) {
    ds_config_destroy(NULL);
    ds_config_t* cfg = parse_world("{}", 1);
    CHECK(cfg != NULL);
    ds_config_destroy(cfg);
    ds_config_destroy(cfg); /* a second destroy of a dead handle is ignored */
    CHECK(1);
}

/* Every function taking a handle rejects NULL, destroyed and wrong-type handles. */
static void check_bad_handle(const ds_config_t* h, const char* expect_in_message) {
    int32_t kind = 0, b = 0, ws = 0, src = 0;
    int64_t i = 0;
    double d = 0;
    char buf[8];
    uint64_t len = 0;
    char* json = NULL;
    CHECK_STATUS(ds_config_get_kind(h, "fp16", &kind), DS_ERR_INVALID_HANDLE);
    CHECK_CONTAINS(ds_last_error(), "ds_config_get_kind");
    CHECK_CONTAINS(ds_last_error(), expect_in_message);
    CHECK_STATUS(ds_config_get_i64(h, "fp16", &i), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_config_get_f64(h, "fp16", &d), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_config_get_bool(h, "fp16", &b), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_config_get_str(h, "fp16", buf, sizeof buf, &len), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_config_get_count(h, "fp16", &i), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_config_to_json(h, NULL, 0, &json), DS_ERR_INVALID_HANDLE);
    CHECK(json == NULL);
    CHECK_STATUS(ds_config_query_diagnostics(h, &json), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_config_get_world_size(h, &ws, &src), DS_ERR_INVALID_HANDLE);
    CHECK_CONTAINS(ds_last_error(), "ds_config_get_world_size");
}

TEST(bad_handles) {
    check_bad_handle(NULL, "cfg is NULL");
    check_bad_handle(destroyed_handle(), "not a live ds_config_t");

    /* A live handle of another type. */
    ds_tensor_t* t = NULL;
    int64_t shape[1] = {4};
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, shape, DS_DEV_CPU, 0, &t));
    check_bad_handle((const ds_config_t*)t, "not a live ds_config_t");
    ds_config_destroy((ds_config_t*)t); /* wrong type: ignored, the tensor stays alive */
    int64_t numel = 0;
    CHECK_OK(ds_tensor_get_numel(t, &numel));
    CHECK_EQ_INT(numel, 4);
    ds_tensor_destroy(t);

    /* Something that was never a handle. */
    int not_a_handle = 0;
    check_bad_handle((const ds_config_t*)&not_a_handle, "not a live ds_config_t");
}

/* ---- getters ---------------------------------------------------------------------------------- */

TEST(getter_argument_errors) {
    ds_config_t* cfg = parse_world(kSmall, 4);
    int32_t kind = 0, b = 0, ws = 0, src = 0;
    int64_t i = 0;
    double d = 0;
    char* json = NULL;
    uint64_t len = 0;
    char buf[4];

    CHECK_STATUS(ds_config_get_kind(cfg, NULL, &kind), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "path is NULL");
    CHECK_STATUS(ds_config_get_kind(cfg, "fp16", NULL), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_get_i64(cfg, NULL, &i), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_get_i64(cfg, "zero_optimization.stage", NULL), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_get_f64(cfg, NULL, &d), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_get_f64(cfg, "gradient_clipping", NULL), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_get_bool(cfg, NULL, &b), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_get_bool(cfg, "fp16.enabled", NULL), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_get_str(cfg, NULL, buf, sizeof buf, &len), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_get_str(cfg, "optimizer.type", buf, sizeof buf, NULL), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_get_count(cfg, NULL, &i), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_get_count(cfg, "fp16", NULL), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_to_json(cfg, NULL, 0, NULL), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_to_json(cfg, NULL, 2, &json), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "pretty=2");
    CHECK(json == NULL);
    CHECK_STATUS(ds_config_query_diagnostics(cfg, NULL), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_get_world_size(cfg, NULL, &src), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_config_get_world_size(cfg, &ws, NULL), DS_ERR_INVALID_ARG);
    ds_config_destroy(cfg);
}

TEST(getter_values) {
    ds_config_t* cfg = parse_world(kSmall, 4);
    int64_t i = 0;
    double d = 0;
    int32_t b = -1, kind = -1;

    CHECK_OK(ds_config_get_i64(cfg, "train_micro_batch_size_per_gpu", &i));
    CHECK_EQ_INT(i, 4); /* 32 / (2 * 4) */
    CHECK_OK(ds_config_get_i64(cfg, "zero_optimization.reduce_bucket_size", &i));
    CHECK_EQ_INT(i, 500000000); /* 5e8 is an integer */
    CHECK_OK(ds_config_get_i64(cfg, "zero_optimization.stage3_model_persistence_threshold", &i));
    CHECK_EQ_INT(i, INT64_MAX);
    CHECK_OK(ds_config_get_f64(cfg, "optimizer.params.betas[1]", &d));
    CHECK_NEAR(d, 0.95, 0);
    CHECK_OK(ds_config_get_f64(cfg, "optimizer.params.lr", &d));
    CHECK_NEAR(d, 3e-4, 0);
    CHECK_OK(ds_config_get_f64(cfg, "zero_optimization.stage", &d)); /* integers read as doubles too */
    CHECK_NEAR(d, 2.0, 0);
    CHECK_OK(ds_config_get_bool(cfg, "zero_optimization.overlap_comm", &b));
    CHECK_EQ_INT(b, 0);
    CHECK_OK(ds_config_get_bool(cfg, "zero_optimization.contiguous_gradients", &b));
    CHECK_EQ_INT(b, 1);

    CHECK_OK(ds_config_get_kind(cfg, "", &kind));
    CHECK_EQ_INT(kind, DS_JSON_OBJECT);
    CHECK_OK(ds_config_get_kind(cfg, "optimizer.params.betas", &kind));
    CHECK_EQ_INT(kind, DS_JSON_ARRAY);
    CHECK_OK(ds_config_get_kind(cfg, "optimizer.params.betas[0]", &kind));
    CHECK_EQ_INT(kind, DS_JSON_NUMBER);
    CHECK_OK(ds_config_get_kind(cfg, "optimizer.type", &kind));
    CHECK_EQ_INT(kind, DS_JSON_STRING);
    CHECK_OK(ds_config_get_kind(cfg, "fp16.enabled", &kind));
    CHECK_EQ_INT(kind, DS_JSON_BOOL);
    CHECK_OK(ds_config_get_kind(cfg, "steps_per_print", &kind));
    CHECK_EQ_INT(kind, DS_JSON_NULL);

    CHECK_OK(ds_config_get_count(cfg, "optimizer.params.betas", &i));
    CHECK_EQ_INT(i, 2);
    CHECK_OK(ds_config_get_count(cfg, "bf16", &i));
    CHECK_EQ_INT(i, 5);
    CHECK_OK(ds_config_get_count(cfg, "comms_logger.prof_ops", &i));
    CHECK_EQ_INT(i, 0);
    ds_config_destroy(cfg);
}

TEST(getter_not_found_and_type) {
    ds_config_t* cfg = parse_world(kSmall, 4);
    int64_t i = 0;
    double d = 0;
    int32_t b = 0;
    uint64_t len = 0;
    char buf[16];

    CHECK_STATUS(ds_config_get_i64(cfg, "no_such_key", &i), DS_ERR_NOT_FOUND);
    CHECK_CONTAINS(ds_last_error(), "no key \"no_such_key\" at the top level");
    CHECK_STATUS(ds_config_get_i64(cfg, "zero_optimization.nope", &i), DS_ERR_NOT_FOUND);
    CHECK_CONTAINS(ds_last_error(), "no key \"nope\" in \"zero_optimization\"");
    CHECK_STATUS(ds_config_get_f64(cfg, "optimizer.params.betas[2]", &d), DS_ERR_NOT_FOUND);
    CHECK_CONTAINS(ds_last_error(), "index 2 is out of range");
    CHECK_STATUS(ds_config_get_i64(cfg, "scheduler.type", &i), DS_ERR_NOT_FOUND); /* scheduler is null */
    CHECK_CONTAINS(ds_last_error(), "\"scheduler\" is null");

    CHECK_STATUS(ds_config_get_i64(cfg, "optimizer.params.lr", &i), DS_ERR_TYPE); /* 3e-4 is not integral */
    CHECK_CONTAINS(ds_last_error(), "not an integer");
    CHECK_STATUS(ds_config_get_i64(cfg, "fp16", &i), DS_ERR_TYPE);
    CHECK_STATUS(ds_config_get_f64(cfg, "optimizer.type", &d), DS_ERR_TYPE);
    CHECK_STATUS(ds_config_get_bool(cfg, "zero_optimization.stage", &b), DS_ERR_TYPE);
    CHECK_STATUS(ds_config_get_str(cfg, "zero_optimization.stage", buf, sizeof buf, &len), DS_ERR_TYPE);
    CHECK_STATUS(ds_config_get_count(cfg, "zero_optimization.stage", &i), DS_ERR_TYPE);
    CHECK_STATUS(ds_config_get_i64(cfg, "zero_optimization.stage.x", &i), DS_ERR_TYPE);
    CHECK_CONTAINS(ds_last_error(), "is a number");
    CHECK_STATUS(ds_config_get_i64(cfg, "zero_optimization[0]", &i), DS_ERR_TYPE);
    CHECK_CONTAINS(ds_last_error(), "not an array");
    ds_config_destroy(cfg);
}

TEST(getter_malformed_paths) {
    ds_config_t* cfg = parse_world(kSmall, 4);
    int64_t i = 0;
    const char* bad[] = {".fp16", "fp16.", "fp16..enabled", "betas[", "optimizer.params.betas[x]", "optimizer.params.betas[1",
                         "optimizer.params.betas[-1]", "a]", "optimizer.params.betas[0]x", "[0]",
                         "optimizer.params.betas[99999999999999999999999]"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; ++k) {
        CHECK_STATUS(ds_config_get_i64(cfg, bad[k], &i), DS_ERR_INVALID_ARG);
        CHECK_CONTAINS(ds_last_error(), "is malformed at position");
        CHECK_CONTAINS(ds_last_error(), bad[k]);
    }
    CHECK_STATUS(ds_config_get_i64(cfg, "fp16..enabled", &i), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "at position 5");
    ds_config_destroy(cfg);
}

TEST(get_str_buffer_protocol) {
    ds_config_t* cfg = parse_world(kSmall, 4);
    char buf[16];
    uint64_t len = 0;

    /* Size query. */
    CHECK_STATUS(ds_config_get_str(cfg, "optimizer.type", NULL, 0, &len), DS_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ_INT(len, 6); /* "adamw" + NUL */
    /* Too small: nothing written, len says what is needed. */
    memset(buf, '#', sizeof buf);
    len = 0;
    CHECK_STATUS(ds_config_get_str(cfg, "optimizer.type", buf, 5, &len), DS_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ_INT(len, 6);
    CHECK(buf[0] == '#' && buf[4] == '#');
    CHECK_CONTAINS(ds_last_error(), "needs 6 bytes");
    /* Exactly enough. */
    CHECK_OK(ds_config_get_str(cfg, "optimizer.type", buf, 6, &len));
    CHECK_STR_EQ(buf, "adamw");
    CHECK_EQ_INT(len, 6);
    /* buf NULL with a capacity is an argument error. */
    CHECK_STATUS(ds_config_get_str(cfg, "optimizer.type", NULL, 16, &len), DS_ERR_INVALID_ARG);
    /* Defaults are strings too. */
    CHECK_OK(ds_config_get_str(cfg, "checkpoint.tag_validation", buf, sizeof buf, &len));
    CHECK_STR_EQ(buf, "Warn");
    CHECK_EQ_INT(len, 5);
    ds_config_destroy(cfg);
}

/* ---- to_json / diagnostics / world size ------------------------------------------------------- */

TEST(to_json_forms) {
    ds_config_t* cfg = parse_world(kSmall, 4);
    char* json = NULL;
    CHECK_OK(ds_config_to_json(cfg, "optimizer", 0, &json));
    CHECK_STR_EQ(json,
                 "{\"type\":\"adamw\",\"params\":{\"lr\":0.0003,\"betas\":[0.9,0.95],\"eps\":1e-08,\"weight_decay\":0.0,"
                 "\"bias_correction\":true,\"adam_w_mode\":true,\"amsgrad\":false,\"torch_adam\":false},\"legacy_fusion\":false}");
    ds_free(json);
    CHECK_OK(ds_config_to_json(cfg, "optimizer.params.betas", 1, &json));
    CHECK_STR_EQ(json, "[0.9, 0.95]");
    ds_free(json);
    CHECK_OK(ds_config_to_json(cfg, "bf16", 1, &json));
    CHECK_STR_EQ(json,
                 "{\n  \"enabled\": false,\n  \"immediate_grad_update\": false,\n  \"check_grad_overflow\": true,\n"
                 "  \"bf16_master_weights_and_grads\": false,\n  \"bf16_optimizer_states\": false\n}");
    ds_free(json);
    CHECK_OK(ds_config_to_json(cfg, "zero_optimization.stage", 0, &json));
    CHECK_STR_EQ(json, "2");
    ds_free(json);
    /* NULL and "" are the whole config, which starts with the batch triple. */
    CHECK_OK(ds_config_to_json(cfg, NULL, 0, &json));
    CHECK(strncmp(json, "{\"train_batch_size\":32,\"train_micro_batch_size_per_gpu\":4,\"gradient_accumulation_steps\":2,", 89) == 0);
    char* json2 = NULL;
    CHECK_OK(ds_config_to_json(cfg, "", 0, &json2));
    CHECK_STR_EQ(json, json2);
    ds_free(json);
    ds_free(json2);
    json = (char*)1;
    CHECK_STATUS(ds_config_to_json(cfg, "nope", 0, &json), DS_ERR_NOT_FOUND);
    CHECK(json == NULL);
    CHECK_STATUS(ds_config_to_json(cfg, "a..b", 0, &json), DS_ERR_INVALID_ARG);
    ds_config_destroy(cfg);
}

TEST(diagnostics_json) {
    ds_config_t* cfg = parse_world("{\"train_batch_size\": 4, \"zero_optimization\": {\"stage\": 2, \"cpu_offload\": true},"
                                   " \"gradient_clipping\": \"auto\", \"mystery\": 1}",
                                   1);
    char* json = NULL;
    CHECK_OK(ds_config_query_diagnostics(cfg, &json));
    CHECK_CONTAINS(json,
                   "{\"severity\":\"warning\",\"kind\":\"deprecated\",\"path\":\"zero_optimization.cpu_offload\","
                   "\"message\":\"zero_optimization.cpu_offload is deprecated, use zero_optimization.offload_optimizer");
    CHECK_CONTAINS(json, "{\"severity\":\"info\",\"kind\":\"auto\",\"path\":\"gradient_clipping\"");
    CHECK_CONTAINS(json, "{\"severity\":\"warning\",\"kind\":\"unknown_key\",\"path\":\"mystery\"");
    CHECK(json[0] == '[' && json[strlen(json) - 1] == ']');
    ds_free(json);
    ds_config_destroy(cfg);

    cfg = parse_world("{\"train_batch_size\": 4}", 1);
    CHECK_OK(ds_config_query_diagnostics(cfg, &json));
    CHECK_STR_EQ(json, "[]");
    ds_free(json);
    ds_config_destroy(cfg);
}

TEST(world_size_sources) {
    clear_world_env();
    int32_t ws = 0, src = -1;
    ds_config_t* cfg = parse_world("{}", 0);
    CHECK_OK(ds_config_get_world_size(cfg, &ws, &src));
    CHECK_EQ_INT(ws, 1);
    CHECK_EQ_INT(src, 4);
    ds_config_destroy(cfg);

    setenv("SLURM_NTASKS", "6", 1);
    cfg = parse_world("{}", 0);
    CHECK_OK(ds_config_get_world_size(cfg, &ws, &src));
    CHECK_EQ_INT(ws, 6);
    CHECK_EQ_INT(src, 3);
    ds_config_destroy(cfg);

    setenv("OMPI_COMM_WORLD_SIZE", "5", 1);
    cfg = parse_world("{}", 0);
    CHECK_OK(ds_config_get_world_size(cfg, &ws, &src));
    CHECK_EQ_INT(ws, 5);
    CHECK_EQ_INT(src, 2);
    ds_config_destroy(cfg);

    setenv("WORLD_SIZE", "4", 1);
    cfg = parse_world("{}", 0);
    CHECK_OK(ds_config_get_world_size(cfg, &ws, &src));
    CHECK_EQ_INT(ws, 4);
    CHECK_EQ_INT(src, 1);
    ds_config_destroy(cfg);

    cfg = parse_world("{}", 7); /* options win over the environment */
    CHECK_OK(ds_config_get_world_size(cfg, &ws, &src));
    CHECK_EQ_INT(ws, 7);
    CHECK_EQ_INT(src, 0);
    ds_config_destroy(cfg);

    /* A malformed variable is skipped with a warning. */
    setenv("WORLD_SIZE", "four", 1);
    cfg = parse_world("{}", 0);
    CHECK_OK(ds_config_get_world_size(cfg, &ws, &src));
    CHECK_EQ_INT(ws, 5);
    CHECK_EQ_INT(src, 2);
    char* json = NULL;
    CHECK_OK(ds_config_query_diagnostics(cfg, &json));
    CHECK_CONTAINS(json, "\"kind\":\"world_size\"");
    CHECK_CONTAINS(json, "$WORLD_SIZE=\\\"four\\\" is not a positive integer");
    ds_free(json);
    ds_config_destroy(cfg);

    /* sequence_parallel_size divides the ranks. */
    setenv("WORLD_SIZE", "8", 1);
    cfg = parse_world("{\"sequence_parallel_size\": 4, \"train_micro_batch_size_per_gpu\": 3}", 0);
    CHECK_OK(ds_config_get_world_size(cfg, &ws, &src));
    CHECK_EQ_INT(ws, 2);
    CHECK_EQ_INT(src, 1);
    int64_t tb = 0;
    CHECK_OK(ds_config_get_i64(cfg, "train_batch_size", &tb));
    CHECK_EQ_INT(tb, 6);
    ds_config_destroy(cfg);
    clear_world_env();
}

/* ---- concurrency: a config is immutable, so reads from many threads are safe ------------------ */

static void* reader_thread(void* arg) {
    const ds_config_t* cfg = (const ds_config_t*)arg;
    long bad = 0;
    for (int k = 0; k < 2000; ++k) {
        int64_t v = 0;
        double d = 0;
        char buf[16];
        uint64_t len = 0;
        if (ds_config_get_i64(cfg, "zero_optimization.stage", &v) != DS_OK || v != 2) ++bad;
        if (ds_config_get_f64(cfg, "optimizer.params.betas[1]", &d) != DS_OK || d != 0.95) ++bad;
        if (ds_config_get_str(cfg, "optimizer.type", buf, sizeof buf, &len) != DS_OK || strcmp(buf, "adamw") != 0) ++bad;
        if (ds_config_get_i64(cfg, "missing", &v) != DS_ERR_NOT_FOUND) ++bad;
    }
    return (void*)bad;
}

TEST(concurrent_reads) {
    ds_config_t* cfg = parse_world(kSmall, 4);
    pthread_t threads[4];
    for (int k = 0; k < 4; ++k) pthread_create(&threads[k], NULL, reader_thread, cfg);
    long total = 0;
    for (int k = 0; k < 4; ++k) {
        void* bad = NULL;
        pthread_join(threads[k], &bad);
        total += (long)bad;
    }
    CHECK_EQ_INT(total, 0);
    ds_config_destroy(cfg);
}

static void* parser_thread(void* arg) {
    (void)arg;
    long bad = 0;
    ds_config_options_t o;
    ds_config_options_init(&o);
    o.world_size = 4;
    for (int k = 0; k < 200; ++k) {
        ds_config_t* cfg = NULL;
        int64_t mb = 0;
        if (ds_config_parse(kSmall, 0, &o, &cfg) != DS_OK || ds_config_get_i64(cfg, "train_micro_batch_size_per_gpu", &mb) != DS_OK ||
            mb != 4)
            ++bad;
        ds_config_destroy(cfg);
        /* Failures on one thread leave their message on that thread only. */
        if (ds_config_parse("{\"zero_optimization\": {\"stage\": 5}}", 0, &o, &cfg) != DS_ERR_CONFIG_VALUE ||
            strstr(ds_last_error(), "zero_optimization.stage") == NULL)
            ++bad;
    }
    return (void*)bad;
}

TEST(concurrent_parses) {
    pthread_t threads[4];
    for (int k = 0; k < 4; ++k) pthread_create(&threads[k], NULL, parser_thread, NULL);
    long total = 0;
    for (int k = 0; k < 4; ++k) {
        void* bad = NULL;
        pthread_join(threads[k], &bad);
        total += (long)bad;
    }
    CHECK_EQ_INT(total, 0);
}

TEST(function_table) {
    const ds_api_t* api = NULL;
    CHECK_OK(ds_get_api(DS_ABI_VERSION, &api));
    CHECK(api->config_parse == ds_config_parse);
    CHECK(api->config_get_world_size == ds_config_get_world_size);
    CHECK(api->config_options_init == ds_config_options_init);
    void* fn = NULL;
    CHECK_OK(ds_get_proc_address("ds_config_query_diagnostics", &fn));
    CHECK(fn == (void*)ds_config_query_diagnostics);
}

int main(void) {
    clear_world_env();
    RUN(options_init_defaults);
    RUN(options_null_means_defaults);
    RUN(options_bad_header);
    RUN(options_bad_fields);
    RUN(options_older_smaller_struct);
    RUN(parse_argument_errors);
    RUN(parse_explicit_length);
    RUN(load_file_paths);
    RUN(destroy_is_null_safe_and_idempotent);
    RUN(bad_handles);
    RUN(getter_argument_errors);
    RUN(getter_values);
    RUN(getter_not_found_and_type);
    RUN(getter_malformed_paths);
    RUN(get_str_buffer_protocol);
    RUN(to_json_forms);
    RUN(diagnostics_json);
    RUN(world_size_sources);
    RUN(concurrent_reads);
    RUN(concurrent_parses);
    RUN(function_table);
    return minitest_report();
}
