/* libFuzzer target for the config parser.
 *
 *     clang -g -fsanitize=fuzzer,address,undefined fuzz_config.c -I include -L build/lib -ldsabi
 *     ./fuzz_config tests/fuzz/corpus
 *
 * Every input is parsed with strict off and on (and "auto" accepted or not, from the input's
 * length). A rejection must leave a non-empty ds_last_error() and a NULL handle; an accepted config
 * must serialise, and its JSON must parse back to the same JSON. Any violation aborts.
 *
 * Built with -DDSABI_FUZZ_STANDALONE, the file has a main() that runs the files named on the
 * command line once each (a corpus replay without libFuzzer, e.g. under valgrind or gcc). */
#include <dsabi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void require(int condition, const char* what) {
    if (!condition) {
        fprintf(stderr, "fuzz_config: %s (last error: %s)\n", what, ds_last_error());
        abort();
    }
}

static void exercise(const ds_config_t* cfg, const ds_config_options_t* opts) {
    char* json = NULL;
    require(ds_config_to_json(cfg, NULL, 1, &json) == DS_OK && json != NULL, "to_json failed on a valid config");

    ds_config_t* again = NULL;
    require(ds_config_parse(json, 0, opts, &again) == DS_OK, "to_json output does not parse back");
    char* json2 = NULL;
    require(ds_config_to_json(again, NULL, 1, &json2) == DS_OK, "to_json failed on the re-parsed config");
    require(strcmp(json, json2) == 0, "to_json output does not round-trip");
    ds_free(json2);
    ds_config_destroy(again);
    ds_free(json);

    char* diags = NULL;
    require(ds_config_query_diagnostics(cfg, &diags) == DS_OK && diags && diags[0] == '[', "diagnostics failed");
    ds_free(diags);

    /* Getters on paths that exist in every config, and on some that may not. */
    int64_t i = 0;
    double d = 0;
    int32_t b = 0, kind = 0, ws = 0, src = 0;
    char buf[32];
    uint64_t len = 0;
    require(ds_config_get_i64(cfg, "zero_optimization.stage", &i) == DS_OK && i >= 0 && i <= 3, "zero stage");
    require(ds_config_get_f64(cfg, "gradient_clipping", &d) == DS_OK && d >= 0, "gradient_clipping");
    require(ds_config_get_bool(cfg, "fp16.enabled", &b) == DS_OK, "fp16.enabled");
    require(ds_config_get_world_size(cfg, &ws, &src) == DS_OK && ws >= 1, "world size");
    (void)ds_config_get_kind(cfg, "optimizer.params.betas[1]", &kind);
    (void)ds_config_get_str(cfg, "optimizer.type", buf, sizeof buf, &len);
    (void)ds_config_get_count(cfg, "optimizer.params", &i);
    if (ds_config_get_i64(cfg, "train_batch_size", &i) == DS_OK) {
        int64_t mb = 0, gas = 0;
        require(ds_config_get_i64(cfg, "train_micro_batch_size_per_gpu", &mb) == DS_OK &&
                    ds_config_get_i64(cfg, "gradient_accumulation_steps", &gas) == DS_OK && mb * gas * ws == i,
                "batch triple");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static int initialised = 0;
    if (!initialised) {
        ds_lib_init(NULL);
        ds_lib_set_log(NULL, NULL, DS_LOG_NONE);
        initialised = 1;
    }
    /* A copy with a NUL after it, so that size 0 (meaning "NUL-terminated") is still in bounds. */
    char* text = malloc(size + 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    text[size] = '\0';

    for (int strict = 0; strict <= 1; ++strict) {
        ds_config_options_t opts;
        ds_config_options_init(&opts);
        opts.world_size = 2; /* independent of the environment */
        opts.strict = strict;
        opts.accept_auto = (int32_t)(size & 1u) ^ 1;
        ds_config_t* cfg = (ds_config_t*)&opts; /* must be overwritten */
        ds_last_error_clear();
        ds_status_t st = ds_config_parse(text, (uint64_t)size, &opts, &cfg);
        if (st != DS_OK) {
            require(st < 0, "a failure with a non-negative status");
            require(cfg == NULL, "the output handle is not NULL after a failure");
            require(ds_last_error()[0] != '\0', "a rejection left ds_last_error() empty");
            require(strncmp(ds_last_error(), "ds_config_parse: ", 17) == 0, "the message does not name the function");
            continue;
        }
        exercise(cfg, &opts);
        ds_config_destroy(cfg);
    }
    free(text);
    return 0;
}

#ifdef DSABI_FUZZ_STANDALONE
int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        FILE* f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        char* buf = NULL;
        size_t size = 0, cap = 0, n = 0;
        char chunk[4096];
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
            if (size + n > cap) {
                cap = (size + n) * 2;
                char* grown = realloc(buf, cap);
                if (!grown) abort();
                buf = grown;
            }
            memcpy(buf + size, chunk, n);
            size += n;
        }
        fclose(f);
        LLVMFuzzerTestOneInput((const uint8_t*)buf, size);
        free(buf);
    }
    printf("fuzz_config: %d input(s) replayed\n", argc - 1);
    return 0;
}
#endif
