/* Real configs: the 28 DeepSpeed configs in ../shared/data/deepspeed-configs and dsabi's own
 * examples/configs must all load (world size 1), round-trip through ds_config_to_json, and pass
 * `ds-config check`; `ds-config show` must print configs that load again.
 *
 * Environment (set by ctest): DSABI_SHARED_DIR, DSABI_SOURCE_DIR, DSABI_DS_CONFIG. Without the
 * shared directory the shared-config part is skipped with a message. */
#define _POSIX_C_SOURCE 200809L
#include <dsabi.h>

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "minitest.h"

#define MAX_FILES 64

static char g_shared[1024];
static char g_examples[1024];
static char g_tool[1024];

static int is_dir(const char* path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char* path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int by_name(const void* a, const void* b) { return strcmp(*(char* const*)a, *(char* const*)b); }

/* The *.json files of dir, sorted; returns the count. */
static int list_json(const char* dir, char* files[MAX_FILES]) {
    int n = 0;
    DIR* d = opendir(dir);
    if (!d) return 0;
    struct dirent* e;
    while ((e = readdir(d)) != NULL && n < MAX_FILES) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
            files[n] = malloc(strlen(dir) + len + 2);
            sprintf(files[n], "%s/%s", dir, e->d_name);
            ++n;
        }
    }
    closedir(d);
    qsort(files, (size_t)n, sizeof files[0], by_name);
    return n;
}

static void free_list(char* files[], int n) {
    for (int i = 0; i < n; ++i) free(files[i]);
}

static ds_config_t* load(const char* path) {
    ds_config_options_t o;
    ds_config_options_init(&o);
    o.world_size = 1;
    ds_config_t* cfg = NULL;
    if (ds_config_load_file(path, &o, &cfg) != DS_OK) fprintf(stderr, "%s\n", ds_last_error());
    return cfg;
}

static int round_trips(const ds_config_t* cfg) {
    char* first = NULL;
    char* second = NULL;
    if (ds_config_to_json(cfg, NULL, 1, &first) != DS_OK) return 0;
    ds_config_options_t o;
    ds_config_options_init(&o);
    o.world_size = 1;
    ds_config_t* again = NULL;
    int same = ds_config_parse(first, 0, &o, &again) == DS_OK && ds_config_to_json(again, NULL, 1, &second) == DS_OK &&
               strcmp(first, second) == 0;
    ds_free(first);
    ds_free(second);
    ds_config_destroy(again);
    return same;
}

static int diagnostics_contain(const ds_config_t* cfg, const char* needle) {
    char* json = NULL;
    if (ds_config_query_diagnostics(cfg, &json) != DS_OK) return 0;
    int found = strstr(json, needle) != NULL;
    ds_free(json);
    return found;
}

/* Run a shell command; its exit status, and how many output lines start with prefix. */
static int run(const char* command, const char* prefix, int* lines_with_prefix) {
    FILE* p = popen(command, "r");
    if (!p) return -1;
    char line[4096];
    int count = 0;
    while (fgets(line, sizeof line, p))
        if (prefix && strncmp(line, prefix, strlen(prefix)) == 0) ++count;
    int status = pclose(p);
    if (lines_with_prefix) *lines_with_prefix = count;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- the 28 DeepSpeed configs through the API ------------------------------------------------- */

TEST(shared_configs_load_and_round_trip) {
    char* files[MAX_FILES];
    int n = list_json(g_shared, files);
    CHECK_EQ_INT(n, 28);
    int loaded = 0, stable = 0;
    for (int i = 0; i < n; ++i) {
        ds_config_t* cfg = load(files[i]);
        if (!cfg) {
            fprintf(stderr, "  does not load: %s\n", files[i]);
            continue;
        }
        ++loaded;
        if (round_trips(cfg))
            ++stable;
        else
            fprintf(stderr, "  does not round-trip: %s\n", files[i]);
        ds_config_destroy(cfg);
    }
    CHECK_EQ_INT(loaded, 28);
    CHECK_EQ_INT(stable, 28);
    free_list(files, n);
}

TEST(shared_configs_values) {
    char path[2048];
    int32_t b = -1;
    int64_t i = 0;
    char s[64];
    uint64_t len = 0;

    /* Deprecated cpu_offload becomes offload_optimizer {"device": "cpu"}. */
    snprintf(path, sizeof path, "%s/tests__model__Megatron_GPT2__ds_config_func_bs4_zero2_offload.json", g_shared);
    ds_config_t* cfg = load(path);
    CHECK_OK(ds_config_get_str(cfg, "zero_optimization.offload_optimizer.device", s, sizeof s, &len));
    CHECK_STR_EQ(s, "cpu");
    CHECK(diagnostics_contain(cfg, "zero_optimization.cpu_offload is deprecated, use zero_optimization.offload_optimizer"));
    CHECK_OK(ds_config_get_i64(cfg, "train_micro_batch_size_per_gpu", &i));
    CHECK_EQ_INT(i, 4);
    ds_config_destroy(cfg);

    /* Features dsabi does not implement are reported, not ignored. */
    snprintf(path, sizeof path, "%s/tests__model__BingBertSquad__deepspeed_bsz24_fp16_eigenvalue_quantize_config.json", g_shared);
    cfg = load(path);
    CHECK(diagnostics_contain(cfg, "\"kind\":\"unsupported\",\"path\":\"eigenvalue.enabled\""));
    CHECK(diagnostics_contain(cfg, "\"kind\":\"unsupported\",\"path\":\"tensorboard.enabled\""));
    CHECK(diagnostics_contain(cfg, "\"kind\":\"unsupported\",\"path\":\"quantize_training\""));
    CHECK(diagnostics_contain(cfg, "\"kind\":\"unknown_key\",\"path\":\"eigenvalue.model_name\""));
    CHECK_OK(ds_config_get_i64(cfg, "gradient_accumulation_steps", &i));
    CHECK_EQ_INT(i, 8); /* 24 / (3 * 1) */
    ds_config_destroy(cfg);

    /* Autotuning templates have no batch keys: valid, with a warning. */
    snprintf(path, sizeof path, "%s/deepspeed__autotuning__config_templates__template_zero3.json", g_shared);
    cfg = load(path);
    CHECK_OK(ds_config_get_i64(cfg, "zero_optimization.sub_group_size", &i));
    CHECK_EQ_INT(i, 1000000000000LL);
    CHECK_OK(ds_config_get_i64(cfg, "zero_optimization.stage3_prefetch_bucket_size", &i));
    CHECK_EQ_INT(i, 500000000);
    CHECK_OK(ds_config_get_bool(cfg, "zero_optimization.overlap_comm", &b));
    CHECK_EQ_INT(b, 0);
    CHECK_STATUS(ds_config_get_i64(cfg, "train_batch_size", &i), DS_ERR_NOT_FOUND);
    CHECK(diagnostics_contain(cfg, "\"kind\":\"batch\""));
    ds_config_destroy(cfg);

    snprintf(path, sizeof path, "%s/tests__torch_compile__ds_config_z3_deepcompile_no_persist.json", g_shared);
    cfg = load(path);
    CHECK(diagnostics_contain(cfg, "\"kind\":\"unsupported\",\"path\":\"compile.deepcompile\""));
    CHECK_OK(ds_config_get_i64(cfg, "zero_optimization.stage3_model_persistence_threshold", &i));
    CHECK_EQ_INT(i, 0);
    ds_config_destroy(cfg);
}

/* ---- the same through the ds-config tool ------------------------------------------------------ */

TEST(ds_config_check_shared) {
    char cmd[4096];
    int ok_lines = 0;
    snprintf(cmd, sizeof cmd, "'%s' check --world-size 1 '%s'/*.json", g_tool, g_shared);
    CHECK_EQ_INT(run(cmd, "OK ", &ok_lines), 0);
    CHECK_EQ_INT(ok_lines, 28);
    /* Strict mode turns the unsupported features of some of them into errors. */
    int fail_lines = 0;
    snprintf(cmd, sizeof cmd, "'%s' check --strict --world-size 1 '%s'/*.json", g_tool, g_shared);
    CHECK_EQ_INT(run(cmd, "FAIL ", &fail_lines), 1);
    CHECK(fail_lines >= 3);
    /* The JSON report lists every file. */
    int entries = 0;
    snprintf(cmd, sizeof cmd, "'%s' check --json --world-size 1 '%s'/*.json", g_tool, g_shared);
    CHECK_EQ_INT(run(cmd, "  {\"file\": ", &entries), 0);
    CHECK_EQ_INT(entries, 28);
}

TEST(ds_config_usage) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' --help", g_tool);
    int usage_lines = 0;
    CHECK_EQ_INT(run(cmd, "usage: ds-config", &usage_lines), 0);
    CHECK_EQ_INT(usage_lines, 1);
    snprintf(cmd, sizeof cmd, "'%s' 2>/dev/null", g_tool);
    CHECK_EQ_INT(run(cmd, NULL, NULL), 2);
    snprintf(cmd, sizeof cmd, "'%s' frobnicate x.json 2>/dev/null", g_tool);
    CHECK_EQ_INT(run(cmd, NULL, NULL), 2);
    snprintf(cmd, sizeof cmd, "'%s' check 2>/dev/null", g_tool);
    CHECK_EQ_INT(run(cmd, NULL, NULL), 2);
    snprintf(cmd, sizeof cmd, "'%s' check --world-size zero x.json 2>/dev/null", g_tool);
    CHECK_EQ_INT(run(cmd, NULL, NULL), 2);
    snprintf(cmd, sizeof cmd, "'%s' check --bogus x.json 2>/dev/null", g_tool);
    CHECK_EQ_INT(run(cmd, NULL, NULL), 2);
    int fail_lines = 0;
    snprintf(cmd, sizeof cmd, "'%s' check /nonexistent/x.json", g_tool);
    CHECK_EQ_INT(run(cmd, "FAIL /nonexistent/x.json", &fail_lines), 1);
    CHECK_EQ_INT(fail_lines, 1);
}

/* ---- dsabi's example configs ------------------------------------------------------------------ */

TEST(example_configs) {
    char* files[MAX_FILES];
    int n = list_json(g_examples, files);
    CHECK(n >= 6);
    for (int i = 0; i < n; ++i) {
        ds_config_t* cfg = load(files[i]);
        CHECK(cfg != NULL);
        if (!cfg) continue;
        /* Examples are meant to be copied: they have batch sizes and no unknown keys. */
        int64_t tb = 0;
        CHECK_OK(ds_config_get_i64(cfg, "train_batch_size", &tb));
        CHECK(!diagnostics_contain(cfg, "\"kind\":\"unknown_key\""));
        CHECK(!diagnostics_contain(cfg, "\"kind\":\"unsupported\""));
        CHECK(round_trips(cfg));
        ds_config_destroy(cfg);

        char cmd[4096];
        int ok_lines = 0;
        snprintf(cmd, sizeof cmd, "'%s' check --strict --world-size 1 '%s'", g_tool, files[i]);
        CHECK_EQ_INT(run(cmd, "OK ", &ok_lines), 0);
        CHECK_EQ_INT(ok_lines, 1);
        /* show prints a config that loads again. */
        snprintf(cmd, sizeof cmd, "'%s' show --world-size 1 '%s' > dsabi_show_test.json && '%s' check --world-size 1 dsabi_show_test.json",
                 g_tool, files[i], g_tool);
        CHECK_EQ_INT(run(cmd, "OK ", &ok_lines), 0);
        CHECK_EQ_INT(ok_lines, 1);
    }
    remove("dsabi_show_test.json");
    free_list(files, n);
}

int main(void) {
    unsetenv("WORLD_SIZE");
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("SLURM_NTASKS");
    const char* source = getenv("DSABI_SOURCE_DIR");
    const char* shared = getenv("DSABI_SHARED_DIR");
    const char* tool = getenv("DSABI_DS_CONFIG");
    if (!source) source = ".."; /* ctest runs in the build directory, usually inside the source tree */
    if (shared)
        snprintf(g_shared, sizeof g_shared, "%s/data/deepspeed-configs", shared);
    else
        snprintf(g_shared, sizeof g_shared, "%s/../shared/data/deepspeed-configs", source);
    snprintf(g_examples, sizeof g_examples, "%s/examples/configs", source);
    snprintf(g_tool, sizeof g_tool, "%s", tool ? tool : "bin/ds-config");

    const int have_shared = is_dir(g_shared);
    const int have_tool = is_file(g_tool);
    if (!have_shared) printf("SKIP shared configs: %s is not there (set DSABI_SHARED_DIR)\n", g_shared);
    if (!have_tool) printf("SKIP ds-config runs: %s is not there (set DSABI_DS_CONFIG)\n", g_tool);

    if (have_shared) {
        RUN(shared_configs_load_and_round_trip);
        RUN(shared_configs_values);
        if (have_tool) RUN(ds_config_check_shared);
    }
    if (have_tool) {
        RUN(ds_config_usage);
        if (is_dir(g_examples)) RUN(example_configs);
    }
    return minitest_report();
}
