/* Build a token dataset from text, then read it the way a training loop does: a DeepSpeed config
 * gives the micro batch and accumulation steps, the loader prefetches on background threads, and a
 * cursor saved mid-epoch resumes exactly there (checkpoints store it).
 *
 *     cc data_loader.c $(pkg-config --cflags --libs dsabi) -o data_loader && ./data_loader */
#include <dsabi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TRY(call)                                                                   \
    do {                                                                            \
        if ((call) != DS_OK) {                                                      \
            fprintf(stderr, "%s failed: %s\n", #call, ds_last_error());             \
            return 1;                                                               \
        }                                                                           \
    } while (0)

int main(void) {
    /* 1. Some text: one document per paragraph. */
    const char* dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char text_path[512], data_path[512];
    snprintf(text_path, sizeof text_path, "%s/dsabi-example-%d.txt", dir, (int)getpid());
    snprintf(data_path, sizeof data_path, "%s/dsabi-example-%d.dst", dir, (int)getpid());
    FILE* f = fopen(text_path, "w");
    if (!f) return 1;
    for (int i = 0; i < 200; ++i)
        fprintf(f, "Paragraph %d. To be, or not to be, that is the question: whether 'tis nobler in the mind\n"
                   "to suffer the slings and arrows of outrageous fortune.\n\n", i);
    fclose(f);

    /* 2. Tokenize it (byte-level here; a GPT-2 tokenizer takes vocab.json + merges.txt). */
    ds_data_build_options_t bo;
    ds_data_build_options_init(&bo);
    bo.split = DS_DATA_SPLIT_PARAGRAPH;
    bo.append_eot = 1;
    ds_data_build_stats_t st;
    ds_data_build_stats_init(&st);
    const char* inputs[1] = {text_path};
    TRY(ds_data_build(data_path, inputs, 1, &bo, &st));
    printf("built %llu documents, %llu tokens\n", (unsigned long long)st.n_documents, (unsigned long long)st.n_tokens);

    /* 3. A loader: windows of 129 ids (128 inputs + the shifted target), micro batch from the config. */
    ds_config_options_t co;
    ds_config_options_init(&co);
    co.world_size = 1;
    ds_config_t* cfg = NULL;
    TRY(ds_config_parse("{\"train_batch_size\": 16, \"train_micro_batch_size_per_gpu\": 8}", 0, &co, &cfg));
    ds_data_t* data = NULL;
    TRY(ds_data_open(data_path, NULL, &data));
    ds_data_loader_options_t lo;
    ds_data_loader_options_init(&lo);
    lo.config = cfg;
    lo.seq_len = 129;
    lo.window_stride = 128;
    lo.num_workers = 2;
    ds_data_loader_t* loader = NULL;
    TRY(ds_data_loader_create(data, &lo, &loader));
    int64_t per_epoch = 0;
    TRY(ds_data_loader_get_length(loader, &per_epoch));
    printf("%lld micro-batches per epoch\n", (long long)per_epoch);

    ds_data_cursor_t saved;
    ds_data_cursor_init(&saved);
    int64_t first_after_save = -1;
    for (int i = 0; i < 6; ++i) {
        ds_data_batch_t* b = NULL;
        TRY(ds_data_loader_next(loader, &b));
        if (!b) break; /* end of the epoch */
        ds_data_batch_info_t info;
        ds_data_batch_info_init(&info);
        TRY(ds_data_batch_get_info(b, &info));
        ds_tensor_t* ids = NULL;
        TRY(ds_data_batch_get_tensor(b, DS_DATA_FIELD_SAMPLE_IDS, &ids));
        int64_t* sample = NULL;
        TRY(ds_tensor_get_data(ids, (void**)&sample));
        printf("step %lld micro-batch %lld: [%lld x %lld] tokens, first window %lld\n", (long long)info.global_step,
               (long long)info.index, (long long)info.n_rows, (long long)info.n_columns, (long long)sample[0]);
        if (i == 3) TRY(ds_data_loader_get_cursor(loader, &saved)); /* after 4 micro-batches */
        if (i == 4) first_after_save = sample[0];
        ds_tensor_destroy(ids);
        ds_data_batch_destroy(b);
    }
    ds_data_loader_destroy(loader);

    /* 4. Resume from the saved cursor: the next batch is the one that followed it. */
    TRY(ds_data_loader_create(data, &lo, &loader));
    TRY(ds_data_loader_set_cursor(loader, &saved));
    ds_data_batch_t* b = NULL;
    TRY(ds_data_loader_next(loader, &b));
    ds_tensor_t* ids = NULL;
    TRY(ds_data_batch_get_tensor(b, DS_DATA_FIELD_SAMPLE_IDS, &ids));
    int64_t* sample = NULL;
    TRY(ds_tensor_get_data(ids, (void**)&sample));
    printf("resumed at epoch %lld position %lld: first window %lld (%s)\n", (long long)saved.epoch,
           (long long)saved.position, (long long)sample[0], sample[0] == first_after_save ? "same" : "DIFFERENT");
    const int ok = sample[0] == first_after_save;
    ds_tensor_destroy(ids);
    ds_data_batch_destroy(b);
    ds_data_loader_destroy(loader);
    ds_data_close(data);
    ds_config_destroy(cfg);
    remove(text_path);
    remove(data_path);
    return ok ? 0 : 1;
}
