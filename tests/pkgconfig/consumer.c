/* A program built against an installed dsabi, through pkg-config or find_package. */
#include <dsabi.h>
#include <stdio.h>

int main(void) {
    if (ds_version_number() != DS_VERSION_NUMBER) {
        fprintf(stderr, "header %d and library %u disagree\n", DS_VERSION_NUMBER, ds_version_number());
        return 1;
    }
    ds_config_t* cfg = NULL;
    if (ds_config_parse("{\"train_micro_batch_size_per_gpu\": 2, \"gradient_accumulation_steps\": 4}", 0, NULL, &cfg) != DS_OK) {
        fprintf(stderr, "parse failed: %s\n", ds_last_error());
        return 1;
    }
    int64_t tb = 0;
    ds_status_t st = ds_config_get_i64(cfg, "train_batch_size", &tb);
    ds_config_destroy(cfg);
    if (st != DS_OK || tb != 8) {
        fprintf(stderr, "train_batch_size=%lld (status %d), expected 8\n", (long long)tb, st);
        return 1;
    }
    printf("consumer OK: dsabi %s, train_batch_size=%lld\n", ds_version_string(), (long long)tb);
    return 0;
}
