/* quickstart.c - parse a DeepSpeed config, read derived values, and share a tensor through DLPack.
 * Build: cc quickstart.c $(pkg-config --cflags --libs dsabi)   (DLPack header: libdlpack-dev) */
#include <dlpack/dlpack.h>
#include <dsabi.h>
#include <stdio.h>

int main(void) {
    const char* json = "{ \"train_batch_size\": 64, \"gradient_accumulation_steps\": 4,"
                       "  \"bf16\": {\"enabled\": true}, \"zero_optimization\": {\"stage\": 2} }";
    ds_config_options_t opts;
    ds_config_options_init(&opts);
    opts.world_size = 8; /* usually taken from $WORLD_SIZE */
    ds_config_t* cfg = NULL;
    if (ds_config_parse(json, 0, &opts, &cfg) != DS_OK) {
        fprintf(stderr, "config: %s\n", ds_last_error());
        return 1;
    }
    int64_t micro = 0, bucket = 0;
    ds_config_get_i64(cfg, "train_micro_batch_size_per_gpu", &micro);        /* 64 / (4 * 8) = 2 */
    ds_config_get_i64(cfg, "zero_optimization.reduce_bucket_size", &bucket); /* default 5e8 */
    printf("micro batch %lld, reduce bucket %lld elements\n", (long long)micro, (long long)bucket);
    ds_config_destroy(cfg);

    int64_t shape[2] = {2, 3};
    ds_tensor_t* t = NULL;
    if (ds_tensor_create(DS_DTYPE_F32, 2, shape, DS_DEV_CPU, 0, &t) != DS_OK || ds_tensor_fill(t, 0.5) != DS_OK) {
        fprintf(stderr, "tensor: %s\n", ds_last_error());
        return 1;
    }
    DLManagedTensor* shared = NULL; /* what NumPy, PyTorch or JAX would receive */
    ds_tensor_to_dlpack(t, &shared);
    ds_tensor_destroy(t); /* the export keeps the memory alive */
    const float* data = (const float*)shared->dl_tensor.data;
    printf("shared %lldx%lld tensor: %g ... %g\n", (long long)shared->dl_tensor.shape[0],
           (long long)shared->dl_tensor.shape[1], data[0], data[5]);
    shared->deleter(shared); /* the consumer releases it */
    return micro == 2 && bucket == 500000000 ? 0 : 1;
}
