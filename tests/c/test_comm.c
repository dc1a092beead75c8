/* Communicators in one process: options and environment resolution, handle and argument checks,
 * the semantics of a one-rank job, splits, abort, the comms logger, rendezvous failures, and two
 * ranks on threads (file store and TCP store) for agreement checking. Multi-process runs are in
 * tests/dist. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dsabi.h"
#include "minitest.h"

static const char* const k_env[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "LOCAL_SIZE", "MASTER_ADDR",
                                     "MASTER_PORT", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                                     "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_PROCID",
                                     "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", "DEEPSPEED_TIMEOUT",
                                     "DSABI_COMM_CHECK", "DSABI_STORE_DIR", "DSABI_RUN_ID", "DSABI_BIND_ADDR",
                                     "DSABI_STORE_LISTEN_FD", "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", NULL};

static void clear_env(void) {
    for (int i = 0; k_env[i]; ++i) unsetenv(k_env[i]);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr*)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr*)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* The value of "key": in a JSON text, as a number (the first occurrence after `after`, if given). */
static double json_num(const char* json, const char* after, const char* key) {
    const char* p = json;
    if (after) {
        p = strstr(json, after);
        if (!p) return -12345;
    }
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(p, pat);
    if (!p) return -12345;
    return strtod(p + strlen(pat), NULL);
}

static ds_comm_t* single(void) {
    ds_comm_options_t o;
    ds_comm_options_init(&o);
    o.rank = 0;
    o.world_size = 1;
    ds_comm_t* c = NULL;
    CHECK_OK(ds_comm_create(&o, &c));
    return c;
}

static uint64_t g_rng;
static uint32_t next_u32(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g_rng >> 33);
}

TEST(options_init_fills_defaults) {
    ds_comm_options_t o;
    memset(&o, 0x5a, sizeof o);
    ds_comm_options_init(&o);
    CHECK_EQ_INT(o.struct_size, sizeof(ds_comm_options_t));
    CHECK_EQ_INT(o.abi_version, DS_ABI_VERSION);
    CHECK_EQ_INT(o.rank, DS_UNSET_I32);
    CHECK_EQ_INT(o.world_size, DS_UNSET_I32);
    CHECK_EQ_INT(o.master_port, DS_UNSET_I32);
    CHECK_EQ_INT(o.timeout_ms, DS_UNSET_I32);
    CHECK_EQ_INT(o.backend, DS_COMM_BACKEND_AUTO);
    CHECK_EQ_INT(o.check_mismatch, DS_UNSET_I32);
    CHECK(o.master_addr == NULL && o.store_dir == NULL && o.bind_addr == NULL && o.config == NULL);
    ds_comm_options_init(NULL); /* no crash */
}

TEST(options_versioning) {
    clear_env();
    ds_comm_options_t o;
    ds_comm_options_init(&o);
    o.rank = 0;
    o.world_size = 1;
    /* An older caller that knew only the fields before store_prefix: the rest are defaults. */
    o.struct_size = (uint32_t)offsetof(ds_comm_options_t, store_prefix);
    o.config = (const ds_config_t*)0x1; /* beyond its struct: must not be read */
    ds_comm_t* c = NULL;
    CHECK_OK(ds_comm_create(&o, &c));
    ds_comm_destroy(c);
    o.struct_size = 4;
    c = (ds_comm_t*)0x1;
    CHECK_STATUS(ds_comm_create(&o, &c), DS_ERR_VERSION);
    CHECK(c == NULL);
    ds_comm_options_init(&o);
    o.abi_version = 99;
    CHECK_STATUS(ds_comm_create(&o, &c), DS_ERR_VERSION);
    CHECK_CONTAINS(ds_last_error(), "abi_version=99");
}

TEST(default_is_one_rank) {
    clear_env();
    ds_comm_t* c = NULL;
    CHECK_OK(ds_comm_create(NULL, &c));
    int32_t v = -1;
    CHECK_OK(ds_comm_get_rank(c, &v));
    CHECK_EQ_INT(v, 0);
    CHECK_OK(ds_comm_get_world_size(c, &v));
    CHECK_EQ_INT(v, 1);
    CHECK_OK(ds_comm_get_local_rank(c, &v));
    CHECK_EQ_INT(v, 0);
    char* info = NULL;
    CHECK_OK(ds_comm_query_info(c, &info));
    CHECK_CONTAINS(info, "\"source\":\"default\"");
    CHECK_EQ_INT((long long)json_num(info, NULL, "timeout_ms"), 600000); /* DeepSpeed's 10 minutes */
    CHECK_CONTAINS(info, "\"store\":\"none\"");
    ds_free(info);
    ds_comm_destroy(c);
    ds_comm_destroy(NULL);
}

static void check_source(const char* source, int rank, int world, int local_rank, int local_world) {
    ds_comm_options_t o;
    ds_comm_options_init(&o);
    ds_comm_t* c = NULL;
    /* world_size > 1 would start a rendezvous: only look at what resolution produced via errors or
     * one-rank jobs. */
    CHECK_OK(ds_comm_create(&o, &c));
    char* info = NULL;
    CHECK_OK(ds_comm_query_info(c, &info));
    char want[64];
    snprintf(want, sizeof want, "\"source\":\"%s\"", source);
    CHECK_CONTAINS(info, want);
    CHECK_EQ_INT((int)json_num(info, NULL, "rank"), rank);
    CHECK_EQ_INT((int)json_num(info, NULL, "world_size"), world);
    CHECK_EQ_INT((int)json_num(info, NULL, "local_rank"), local_rank);
    CHECK_EQ_INT((int)json_num(info, NULL, "local_world_size"), local_world);
    ds_free(info);
    ds_comm_destroy(c);
}

TEST(environment_families) {
    clear_env();
    setenv("RANK", "0", 1);
    setenv("WORLD_SIZE", "1", 1);
    setenv("LOCAL_RANK", "0", 1);
    setenv("LOCAL_WORLD_SIZE", "1", 1);
    check_source("torchrun_env", 0, 1, 0, 1);
    clear_env();
    setenv("OMPI_COMM_WORLD_RANK", "0", 1);
    setenv("OMPI_COMM_WORLD_SIZE", "1", 1);
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "0", 1);
    check_source("ompi_env", 0, 1, 0, 1);
    clear_env();
    setenv("SLURM_PROCID", "0", 1);
    setenv("SLURM_NTASKS", "1", 1);
    setenv("SLURM_NTASKS_PER_NODE", "1(x2)", 1); /* Slurm's compressed form: the leading count */
    check_source("slurm_env", 0, 1, 0, 1);
    /* torchrun variables win over the fallbacks */
    setenv("RANK", "0", 1);
    setenv("WORLD_SIZE", "1", 1);
    check_source("torchrun_env", 0, 1, 0, 1);
    clear_env();
}

TEST(environment_errors_name_the_variable) {
    clear_env();
    ds_comm_t* c = (ds_comm_t*)0x1;
    setenv("RANK", "3", 1);
    setenv("WORLD_SIZE", "2", 1);
    CHECK_STATUS(ds_comm_create(NULL, &c), DS_ERR_INVALID_ARG);
    CHECK(c == NULL);
    CHECK_CONTAINS(ds_last_error(), "RANK=3 is outside [0, WORLD_SIZE=2)");
    setenv("RANK", "one", 1);
    CHECK_STATUS(ds_comm_create(NULL, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "RANK='one'");
    unsetenv("WORLD_SIZE");
    setenv("RANK", "0", 1);
    CHECK_STATUS(ds_comm_create(NULL, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "WORLD_SIZE is not set");
    clear_env();
    setenv("DEEPSPEED_TIMEOUT", "0", 1);
    CHECK_STATUS(ds_comm_create(NULL, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "DEEPSPEED_TIMEOUT=0");
    clear_env();
    setenv("MASTER_PORT", "70000", 1);
    CHECK_STATUS(ds_comm_create(NULL, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "MASTER_PORT=70000");
    clear_env();
}

TEST(deepspeed_timeout_is_minutes) {
    clear_env();
    setenv("DEEPSPEED_TIMEOUT", "3", 1);
    ds_comm_t* c = NULL;
    CHECK_OK(ds_comm_create(NULL, &c));
    char* info = NULL;
    CHECK_OK(ds_comm_query_info(c, &info));
    CHECK_EQ_INT((long long)json_num(info, NULL, "timeout_ms"), 180000);
    CHECK_CONTAINS(info, "\"timeout_source\":\"DEEPSPEED_TIMEOUT\"");
    ds_free(info);
    ds_comm_destroy(c);
    /* an explicit option wins */
    ds_comm_options_t o;
    ds_comm_options_init(&o);
    o.timeout_ms = 1234;
    CHECK_OK(ds_comm_create(&o, &c));
    CHECK_OK(ds_comm_query_info(c, &info));
    CHECK_EQ_INT((long long)json_num(info, NULL, "timeout_ms"), 1234);
    ds_free(info);
    ds_comm_destroy(c);
    clear_env();
}

TEST(option_errors) {
    clear_env();
    ds_comm_options_t o;
    ds_comm_t* c = NULL;
    ds_comm_options_init(&o);
    o.rank = 0;
    CHECK_STATUS(ds_comm_create(&o, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "must be set together");
    ds_comm_options_init(&o);
    o.backend = 7;
    CHECK_STATUS(ds_comm_create(&o, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "options.backend=7");
    ds_comm_options_init(&o);
    o.timeout_ms = 0;
    CHECK_STATUS(ds_comm_create(&o, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "options.timeout_ms=0");
    ds_comm_options_init(&o);
    o.rank = 2;
    o.world_size = 2;
    CHECK_STATUS(ds_comm_create(&o, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "options.rank=2 is outside [0, options.world_size=2)");
    ds_comm_options_init(&o);
    o.check_mismatch = 5;
    CHECK_STATUS(ds_comm_create(&o, &c), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_comm_create(&o, NULL), DS_ERR_INVALID_ARG);
}

TEST(handles_are_checked) {
    int32_t v = 0;
    CHECK_STATUS(ds_comm_get_rank(NULL, &v), DS_ERR_INVALID_HANDLE);
    ds_comm_t* c = single();
    ds_comm_destroy(c);
    CHECK_STATUS(ds_comm_get_rank(c, &v), DS_ERR_INVALID_HANDLE);
    CHECK_CONTAINS(ds_last_error(), "not a live ds_comm_t");
    int64_t shape[1] = {4};
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, shape, DS_DEV_CPU, 0, &t));
    CHECK_STATUS(ds_comm_barrier((ds_comm_t*)t, NULL), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_work_wait((ds_work_t*)t, 0), DS_ERR_INVALID_HANDLE);
    c = single();
    CHECK_STATUS(ds_comm_all_reduce(c, (ds_tensor_t*)c, DS_REDUCE_SUM, NULL), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_comm_get_rank(c, NULL), DS_ERR_INVALID_ARG);
    ds_comm_destroy(c);
    ds_tensor_destroy(t);
    ds_work_destroy(NULL);
}

/* Write one element of any dtype through a one-element view and ds_tensor_fill. */
static void set_elem(void* at, int32_t dtype, double v) {
    int64_t one = 1;
    ds_tensor_t* e = NULL;
    CHECK_OK(ds_tensor_wrap(at, dtype, 1, &one, NULL, DS_DEV_CPU, 0, &e));
    CHECK_OK(ds_tensor_fill(e, v));
    ds_tensor_destroy(e);
}

/* One rank: every collective's result is the input, copied where there is an output. */
TEST(one_rank_semantics) {
    ds_comm_t* c = single();
    const int32_t dtypes[] = {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16, DS_DTYPE_F64, DS_DTYPE_U8, DS_DTYPE_I32, DS_DTYPE_I64};
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; ++d) {
        int64_t n = 37;
        ds_tensor_t *t = NULL, *ref = NULL, *out = NULL;
        CHECK_OK(ds_tensor_create(dtypes[d], 1, &n, DS_DEV_CPU, 0, &t));
        uint64_t es = 0;
        ds_dtype_size(dtypes[d], &es);
        unsigned char* p = NULL;
        ds_tensor_get_data(t, (void**)&p);
        for (int64_t i = 0; i < n; ++i) set_elem(p + i * es, dtypes[d], (double)(next_u32() % 100));
        CHECK_OK(ds_tensor_clone(t, DS_DEV_CPU, 0, &ref));
        void* r = NULL;
        ds_tensor_get_data(ref, &r);
        for (int32_t op = DS_REDUCE_SUM; op <= DS_REDUCE_PROD; ++op) {
            CHECK_OK(ds_comm_all_reduce(c, t, op, NULL));
            CHECK(memcmp(p, r, (size_t)n * es) == 0);
            CHECK_OK(ds_comm_reduce(c, t, op, 0, NULL));
            CHECK(memcmp(p, r, (size_t)n * es) == 0);
        }
        CHECK_OK(ds_comm_broadcast(c, t, 0, NULL));
        CHECK(memcmp(p, r, (size_t)n * es) == 0);
        CHECK_OK(ds_tensor_create(dtypes[d], 1, &n, DS_DEV_CPU, 0, &out));
        void* o = NULL;
        ds_tensor_get_data(out, &o);
        CHECK_OK(ds_comm_all_gather(c, t, out, NULL));
        CHECK(memcmp(o, r, (size_t)n * es) == 0);
        CHECK_OK(ds_tensor_fill(out, 0));
        CHECK_OK(ds_comm_reduce_scatter(c, t, out, DS_REDUCE_AVG, NULL));
        CHECK(memcmp(o, r, (size_t)n * es) == 0);
        CHECK_OK(ds_tensor_fill(out, 0));
        CHECK_OK(ds_comm_all_to_all(c, t, out, NULL));
        CHECK(memcmp(o, r, (size_t)n * es) == 0);
        CHECK_OK(ds_tensor_fill(out, 0));
        ds_tensor_t* const outs[1] = {out};
        CHECK_OK(ds_comm_all_gather_list(c, t, outs, 1, NULL));
        CHECK(memcmp(o, r, (size_t)n * es) == 0);
        ds_tensor_destroy(out);
        ds_tensor_destroy(ref);
        ds_tensor_destroy(t);
    }
    CHECK_OK(ds_comm_barrier(c, NULL));
    ds_comm_destroy(c);
}

TEST(async_work_handles) {
    ds_comm_t* c = single();
    int64_t n = 1000;
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &n, DS_DEV_CPU, 0, &t));
    CHECK_OK(ds_tensor_fill(t, 2.5));
    ds_work_t* w[8];
    for (int i = 0; i < 8; ++i) CHECK_OK(ds_comm_all_reduce(c, t, DS_REDUCE_AVG, &w[i]));
    /* The work retains the tensor: destroying the handle now must be safe. */
    ds_tensor_t* alias = NULL;
    CHECK_OK(ds_tensor_clone(t, DS_DEV_CPU, 0, &alias));
    for (int i = 0; i < 8; ++i) {
        CHECK_OK(ds_work_wait(w[i], -1));
        int32_t done = 0;
        CHECK_OK(ds_work_test(w[i], &done));
        CHECK_EQ_INT(done, 1);
        CHECK_OK(ds_work_wait(w[i], 0)); /* again: same answer */
        ds_work_destroy(w[i]);
    }
    float* p = NULL;
    ds_tensor_get_data(t, (void**)&p);
    CHECK_NEAR(p[999], 2.5, 0);
    ds_work_t* b = NULL;
    CHECK_OK(ds_comm_barrier(c, &b));
    CHECK_OK(ds_work_wait(b, 10000));
    ds_work_destroy(b);
    CHECK_STATUS(ds_work_test(NULL, NULL), DS_ERR_INVALID_ARG);
    /* A work handle may outlive its communicator and its tensor. */
    CHECK_OK(ds_comm_all_reduce(c, t, DS_REDUCE_SUM, &b));
    ds_tensor_destroy(t);
    ds_comm_destroy(c);
    CHECK_OK(ds_work_wait(b, -1));
    ds_work_destroy(b);
    ds_tensor_destroy(alias);
}

TEST(argument_errors_name_the_problem) {
    ds_comm_t* c = single();
    int64_t n = 8, m = 6;
    ds_tensor_t *a = NULL, *b = NULL, *f8 = NULL, *i32 = NULL, *strided = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &n, DS_DEV_CPU, 0, &a));
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &m, DS_DEV_CPU, 0, &b));
    CHECK_OK(ds_tensor_create(DS_DTYPE_FP8_E4M3, 1, &n, DS_DEV_CPU, 0, &f8));
    CHECK_OK(ds_tensor_create(DS_DTYPE_I32, 1, &n, DS_DEV_CPU, 0, &i32));
    float buf[16];
    int64_t shape[1] = {8}, strides[1] = {2};
    CHECK_OK(ds_tensor_wrap(buf, DS_DTYPE_F32, 1, shape, strides, DS_DEV_CPU, 0, &strided));
    ds_work_t* w = (ds_work_t*)0x1;
    CHECK_STATUS(ds_comm_all_reduce(c, f8, DS_REDUCE_SUM, &w), DS_ERR_UNSUPPORTED);
    CHECK(w == NULL);
    CHECK_CONTAINS(ds_last_error(), "dtype fp8");
    CHECK_STATUS(ds_comm_all_reduce(c, strided, DS_REDUCE_SUM, NULL), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "not contiguous");
    CHECK_STATUS(ds_comm_all_reduce(c, a, 9, NULL), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "op=9");
    CHECK_STATUS(ds_comm_broadcast(c, a, 1, NULL), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "root=1 is outside [0, world_size=1)");
    CHECK_STATUS(ds_comm_all_gather(c, a, b, NULL), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "out has 6 elements; expected world_size (1) x numel(in) (8) = 8");
    CHECK_STATUS(ds_comm_reduce_scatter(c, a, b, DS_REDUCE_SUM, NULL), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_comm_all_gather(c, a, i32, NULL), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "out has dtype i32 but in has dtype f32");
    CHECK_STATUS(ds_comm_all_to_all(c, a, b, NULL), DS_ERR_INVALID_ARG);
    ds_tensor_t* const outs[2] = {a, a};
    CHECK_STATUS(ds_comm_all_gather_list(c, a, outs, 2, NULL), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "n_outs=2");
    CHECK_STATUS(ds_comm_all_gather_list(c, a, NULL, 1, NULL), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_comm_send(c, a, 0, 0, NULL), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "dst=0 is this rank");
    CHECK_STATUS(ds_comm_recv(c, a, 3, 0, NULL), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "src=3 is outside");
    CHECK_STATUS(ds_comm_log_summary(c, 2, &(char*){NULL}), DS_ERR_INVALID_ARG);
    ds_tensor_destroy(a);
    ds_tensor_destroy(b);
    ds_tensor_destroy(f8);
    ds_tensor_destroy(i32);
    ds_tensor_destroy(strided);
    ds_comm_destroy(c);
}

TEST(split_one_rank) {
    ds_comm_t* c = single();
    ds_comm_t *child = NULL, *none = (ds_comm_t*)0x1;
    CHECK_OK(ds_comm_split(c, 7, 0, &child));
    CHECK(child != NULL);
    CHECK_OK(ds_comm_split(c, DS_COMM_SPLIT_NONE, 0, &none));
    CHECK(none == NULL);
    ds_comm_destroy(c); /* the child keeps its parent alive */
    int32_t v = -1;
    CHECK_OK(ds_comm_get_world_size(child, &v));
    CHECK_EQ_INT(v, 1);
    char* info = NULL;
    CHECK_OK(ds_comm_query_info(child, &info));
    CHECK_CONTAINS(info, "\"global_ranks\":[0]");
    ds_free(info);
    CHECK_OK(ds_comm_barrier(child, NULL));
    ds_comm_destroy(child);
}

TEST(abort_makes_later_calls_fail) {
    ds_comm_t* c = single();
    int64_t n = 4;
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &n, DS_DEV_CPU, 0, &t));
    CHECK_OK(ds_comm_abort(c));
    CHECK_STATUS(ds_comm_all_reduce(c, t, DS_REDUCE_SUM, NULL), DS_ERR_STATE);
    CHECK_CONTAINS(ds_last_error(), "ds_comm_abort");
    char* info = NULL;
    CHECK_OK(ds_comm_query_info(c, &info));
    CHECK_CONTAINS(info, "\"state\":\"aborted\"");
    ds_free(info);
    CHECK_OK(ds_comm_abort(c)); /* twice is fine */
    ds_comm_destroy(c);
    ds_tensor_destroy(t);
}

static ds_comm_t* logged(const char* json) {
    ds_config_t* cfg = NULL;
    CHECK_OK(ds_config_parse(json, 0, NULL, &cfg));
    ds_comm_options_t o;
    ds_comm_options_init(&o);
    o.rank = 0;
    o.world_size = 1;
    o.config = cfg;
    ds_comm_t* c = NULL;
    CHECK_OK(ds_comm_create(&o, &c));
    ds_config_destroy(cfg); /* not retained */
    return c;
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

TEST(comms_logger_counts_and_formulas) {
    ds_comm_t* c = logged("{\"train_batch_size\": 1, \"comms_logger\": {\"enabled\": true}}");
    int64_t n = 1024;
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, &n, DS_DEV_CPU, 0, &t));
    for (int i = 0; i < 12; ++i) CHECK_OK(ds_comm_all_reduce(c, t, DS_REDUCE_SUM, NULL));
    CHECK_OK(ds_comm_broadcast(c, t, 0, NULL));
    char* js = NULL;
    CHECK_OK(ds_comm_log_summary(c, 1, &js));
    CHECK_CONTAINS(js, "\"op\":\"all_reduce\"");
    CHECK_EQ_INT((long long)json_num(js, "\"op\":\"all_reduce\"", "count"), 12);
    CHECK_EQ_INT((long long)json_num(js, "\"op\":\"all_reduce\"", "msg_size_bytes"), 4096);
    CHECK_EQ_INT((long long)json_num(js, "\"op\":\"broadcast\"", "count"), 1);
    /* Recompute the 10% trimmed mean (round(12 * 0.1) = 1 value cut at each end) from the raw list. */
    const char* lat = strstr(strstr(js, "\"op\":\"all_reduce\""), "\"latencies_ms\":[");
    CHECK(lat != NULL);
    if (lat) {
        double v[12];
        const char* p = lat + strlen("\"latencies_ms\":[");
        for (int i = 0; i < 12; ++i) {
            char* end = NULL;
            v[i] = strtod(p, &end);
            p = end + 1;
        }
        qsort(v, 12, sizeof v[0], cmp_double);
        double sum = 0;
        for (int i = 1; i < 11; ++i) sum += v[i];
        double avg = json_num(js, "\"op\":\"all_reduce\"", "avg_latency_ms");
        CHECK_NEAR(avg, sum / 10, 1e-9 * (sum / 10) + 1e-12);
        /* one rank: all_reduce's bus bandwidth is size/t * 2(n-1)/n = 0 */
        CHECK_NEAR(json_num(js, "\"op\":\"all_reduce\"", "busbw_gbps"), 0, 0);
        CHECK(json_num(js, "\"op\":\"all_reduce\"", "algbw_gbps") > 0);
    }
    ds_free(js);
    char* text = NULL;
    CHECK_OK(ds_comm_log_summary(c, 0, &text));
    CHECK_CONTAINS(text, "Comm. Op");
    CHECK_CONTAINS(text, "busbw_avg (Gbps)");
    CHECK_CONTAINS(text, "4.0 KB");
    ds_free(text);
    CHECK_OK(ds_comm_log_reset(c));
    CHECK_OK(ds_comm_log_summary(c, 1, &js));
    CHECK_CONTAINS(js, "\"ops\":[]");
    ds_free(js);
    ds_comm_destroy(c);

    /* prof_all false: only the listed ops */
    c = logged("{\"train_batch_size\": 1, \"comms_logger\": {\"enabled\": true, \"prof_all\": false, \"prof_ops\": [\"broadcast\"]}}");
    CHECK_OK(ds_comm_all_reduce(c, t, DS_REDUCE_SUM, NULL));
    CHECK_OK(ds_comm_broadcast(c, t, 0, NULL));
    CHECK_OK(ds_comm_log_summary(c, 1, &js));
    CHECK(strstr(js, "all_reduce") == NULL);
    CHECK_CONTAINS(js, "\"op\":\"broadcast\"");
    ds_free(js);
    char* info = NULL;
    CHECK_OK(ds_comm_query_info(c, &info));
    CHECK_CONTAINS(info, "\"prof_ops\":[\"broadcast\"]");
    ds_free(info);
    ds_comm_destroy(c);

    /* no config: logger off */
    c = single();
    CHECK_OK(ds_comm_all_reduce(c, t, DS_REDUCE_SUM, NULL));
    CHECK_OK(ds_comm_log_summary(c, 1, &js));
    CHECK_CONTAINS(js, "\"ops\":[]");
    ds_free(js);
    ds_comm_destroy(c);
    ds_tensor_destroy(t);
}

static int has_gloo(void) {
    char* info = NULL;
    ds_lib_build_info(&info);
    int yes = info && strstr(info, "\"gloo\":true") != NULL;
    ds_free(info);
    return yes;
}

TEST(rendezvous_timeout_is_reported) {
    clear_env();
    ds_comm_options_t o;
    ds_comm_options_init(&o);
    o.rank = 1;
    o.world_size = 2;
    o.master_addr = "127.0.0.1";
    o.master_port = free_port(); /* nobody serves it */
    o.timeout_ms = 700;
    ds_comm_t* c = (ds_comm_t*)0x1;
    double t0 = now_s();
    ds_status_t st = ds_comm_create(&o, &c);
    double dt = now_s() - t0;
    CHECK(c == NULL);
    if (!has_gloo()) {
        CHECK_EQ_INT(st, DS_ERR_UNSUPPORTED);
        CHECK_CONTAINS(ds_last_error(), "Gloo");
        return;
    }
    CHECK_EQ_INT(st, DS_ERR_COMM_TIMEOUT);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", o.master_port);
    CHECK_CONTAINS(ds_last_error(), want);
    CHECK(dt >= 0.6 && dt < 5.0);
    printf("rendezvous timeout after %.2f s: %s\n", dt, ds_last_error());
}

static char g_tmpdir[256];

TEST(file_store_timeout_and_reuse) {
    if (!has_gloo()) return;
    ds_comm_options_t o;
    ds_comm_options_init(&o);
    o.rank = 1;
    o.world_size = 2;
    o.timeout_ms = 500;
    o.store_dir = g_tmpdir;
    o.store_prefix = "job-timeout";
    ds_comm_t* c = NULL;
    double t0 = now_s();
    CHECK_STATUS(ds_comm_create(&o, &c), DS_ERR_COMM_TIMEOUT);
    CHECK(now_s() - t0 < 5.0);
    CHECK_CONTAINS(ds_last_error(), "file://");
    /* A prefix left behind by an earlier job is refused by rank 0 with advice. */
    char stale[512];
    snprintf(stale, sizeof stale, "%s/job-stale", g_tmpdir);
    mkdir(stale, 0777);
    o.rank = 0;
    o.store_prefix = "job-stale";
    CHECK_STATUS(ds_comm_create(&o, &c), DS_ERR_COMM);
    CHECK_CONTAINS(ds_last_error(), "exists already");
    rmdir(stale);
    o.store_dir = "/nonexistent/dsabi";
    CHECK_STATUS(ds_comm_create(&o, &c), DS_ERR_IO);
    CHECK_CONTAINS(ds_last_error(), "/nonexistent/dsabi");
}

/* Two ranks on two threads. */
typedef struct {
    int rank;
    int port;
    const char* store_dir;
    int status[8];
    float result[4];
    char mismatch[512];
    char p2p_mismatch[512];
} peer_t;

static void* two_rank_body(void* arg) {
    peer_t* p = (peer_t*)arg;
    ds_comm_options_t o;
    ds_comm_options_init(&o);
    o.rank = p->rank;
    o.world_size = 2;
    o.master_addr = "127.0.0.1";
    o.master_port = p->port;
    o.timeout_ms = 20000;
    o.store_dir = p->store_dir;
    o.store_prefix = "job-threads";
    o.check_mismatch = 1;
    ds_comm_t* c = NULL;
    p->status[0] = ds_comm_create(&o, &c);
    if (p->status[0] != DS_OK) return NULL;
    int64_t four = 4, mine = p->rank == 0 ? 8 : 4;
    ds_tensor_t *t = NULL, *m = NULL;
    ds_tensor_create(DS_DTYPE_F32, 1, &four, DS_DEV_CPU, 0, &t);
    ds_tensor_fill(t, p->rank + 1.0);
    p->status[1] = ds_comm_all_reduce(c, t, DS_REDUCE_SUM, NULL);
    float* d = NULL;
    ds_tensor_get_data(t, (void**)&d);
    memcpy(p->result, d, sizeof p->result);
    /* Sizes disagree: both ranks must see DS_ERR_COMM_MISMATCH, and the communicator stays usable. */
    ds_tensor_create(DS_DTYPE_F32, 1, &mine, DS_DEV_CPU, 0, &m);
    p->status[2] = ds_comm_all_reduce(c, m, DS_REDUCE_SUM, NULL);
    snprintf(p->mismatch, sizeof p->mismatch, "%s", ds_last_error());
    /* dtypes of a send / recv pair disagree */
    ds_tensor_t* i = NULL;
    ds_tensor_create(p->rank == 0 ? DS_DTYPE_F32 : DS_DTYPE_I32, 1, &four, DS_DEV_CPU, 0, &i);
    if (p->rank == 0)
        p->status[3] = ds_comm_send(c, i, 1, 5, NULL);
    else
        p->status[3] = ds_comm_recv(c, i, 0, 5, NULL);
    snprintf(p->p2p_mismatch, sizeof p->p2p_mismatch, "%s", ds_last_error());
    p->status[4] = ds_comm_all_reduce(c, t, DS_REDUCE_MAX, NULL);
    p->status[5] = ds_comm_barrier(c, NULL);
    ds_tensor_destroy(i);
    ds_tensor_destroy(m);
    ds_tensor_destroy(t);
    ds_comm_destroy(c);
    return NULL;
}

static void run_two(const char* store_dir) {
    peer_t p[2];
    memset(p, 0, sizeof p);
    int port = free_port();
    pthread_t th[2];
    for (int r = 0; r < 2; ++r) {
        p[r].rank = r;
        p[r].port = port;
        p[r].store_dir = store_dir;
        pthread_create(&th[r], NULL, two_rank_body, &p[r]);
    }
    for (int r = 0; r < 2; ++r) pthread_join(th[r], NULL);
    for (int r = 0; r < 2; ++r) {
        CHECK_EQ_INT(p[r].status[0], DS_OK);
        CHECK_EQ_INT(p[r].status[1], DS_OK);
        CHECK_NEAR(p[r].result[3], 3.0, 0);
        CHECK_EQ_INT(p[r].status[2], DS_ERR_COMM_MISMATCH);
        CHECK_CONTAINS(p[r].mismatch, "rank 0: all_reduce f32 x 8 (sum) on cpu; rank 1: all_reduce f32 x 4 (sum) on cpu");
        CHECK_EQ_INT(p[r].status[4], DS_OK);
        CHECK_EQ_INT(p[r].status[5], DS_OK);
    }
    CHECK_EQ_INT(p[0].status[3], DS_OK);
    CHECK_EQ_INT(p[1].status[3], DS_ERR_COMM_MISMATCH);
    CHECK_CONTAINS(p[1].p2p_mismatch, "the sender sent 4 x f32, this rank expects 4 x i32");
}

TEST(two_ranks_on_threads_tcp_store) {
    if (!has_gloo()) return;
    run_two(NULL);
}

TEST(two_ranks_on_threads_file_store) {
    if (!has_gloo()) return;
    run_two(g_tmpdir);
    char path[512];
    snprintf(path, sizeof path, "%s/job-threads", g_tmpdir);
    struct stat st;
    CHECK(stat(path, &st) != 0); /* rank 0 removed the job's directory */
}

int main(void) {
    unsigned seed = (unsigned)time(NULL);
    printf("seed %u\n", seed);
    g_rng = seed;
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/dsabi-test-comm-XXXXXX");
    if (!mkdtemp(g_tmpdir)) return 1;
    RUN(options_init_fills_defaults);
    RUN(options_versioning);
    RUN(default_is_one_rank);
    RUN(environment_families);
    RUN(environment_errors_name_the_variable);
    RUN(deepspeed_timeout_is_minutes);
    RUN(option_errors);
    RUN(handles_are_checked);
    RUN(one_rank_semantics);
    RUN(async_work_handles);
    RUN(argument_errors_name_the_problem);
    RUN(split_one_rank);
    RUN(abort_makes_later_calls_fail);
    RUN(comms_logger_counts_and_formulas);
    RUN(rendezvous_timeout_is_reported);
    RUN(file_store_timeout_and_reuse);
    RUN(two_ranks_on_threads_tcp_store);
    RUN(two_ranks_on_threads_file_store);
    rmdir(g_tmpdir);
    return minitest_report();
}
