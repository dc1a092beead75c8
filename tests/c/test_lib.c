/* Library lifecycle, versions, build info, logging, ds_free, status strings. */
#include <pthread.h>
#include <stdlib.h>

#include "dsabi.h"
#include "minitest.h"

TEST(version_macros_match_library) {
    CHECK_EQ_INT(ds_version_number(), DS_VERSION_NUMBER);
    CHECK_STR_EQ(ds_version_string(), DS_VERSION_STRING);
    CHECK_EQ_INT(DS_VERSION_NUMBER, DS_VERSION_MAJOR * 10000 + DS_VERSION_MINOR * 100 + DS_VERSION_PATCH);
}

TEST(init_is_idempotent_and_validates_options) {
    ds_lib_options_t o;
    ds_lib_options_init(&o);
    CHECK_EQ_INT(o.struct_size, sizeof o);
    CHECK_EQ_INT(o.abi_version, DS_ABI_VERSION);
    CHECK_EQ_INT(o.log_level, DS_UNSET_I32);
    CHECK_EQ_INT(o.load_cuda, 1);
    CHECK_OK(ds_lib_init(NULL));
    CHECK_OK(ds_lib_init(&o));

    ds_lib_options_t bad = o;
    bad.struct_size = 4;
    CHECK_STATUS(ds_lib_init(&bad), DS_ERR_VERSION);
    CHECK_CONTAINS(ds_last_error(), "ds_lib_init: opts->struct_size=4");
    bad = o;
    bad.abi_version = DS_ABI_VERSION + 7;
    CHECK_STATUS(ds_lib_init(&bad), DS_ERR_VERSION);
    CHECK_CONTAINS(ds_last_error(), "abi_version=7");
    bad = o;
    bad.log_level = 9;
    CHECK_STATUS(ds_lib_init(&bad), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "log_level=9");
    bad = o;
    bad.load_cuda = 3;
    CHECK_STATUS(ds_lib_init(&bad), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "load_cuda=3");
    ds_lib_options_init(NULL); /* NULL-safe */
}

/* An options struct as compiled against an older header: only struct_size, abi_version, log_level.
 * The library must not read past struct_size and must default load_cuda / cuda_backend_path. */
typedef struct {
    uint32_t struct_size;
    uint32_t abi_version;
    int32_t log_level;
} old_lib_options_t;

TEST(older_smaller_options_struct_gets_defaults) {
    union {
        ds_lib_options_t current;
        unsigned char bytes[sizeof(ds_lib_options_t)];
    } u;
    memset(u.bytes, 0xFF, sizeof u.bytes); /* garbage where newer fields would be */
    old_lib_options_t* old = (old_lib_options_t*)&u;
    old->struct_size = sizeof(old_lib_options_t);
    old->abi_version = DS_ABI_VERSION;
    old->log_level = DS_LOG_ERROR;
    /* With garbage read as load_cuda=-1 this would fail validation: DS_OK proves the defaults. */
    CHECK_OK(ds_lib_init(&u.current));
}

TEST(shutdown_then_reinit) {
    CHECK_OK(ds_lib_shutdown());
    CHECK_OK(ds_lib_shutdown()); /* twice is harmless */
    int32_t n = -1;
    CHECK_OK(ds_dev_count(DS_DEV_CPU, &n)); /* re-initialises on demand */
    CHECK_EQ_INT(n, 1);
    CHECK_OK(ds_lib_init(NULL));
}

TEST(build_info_is_json_with_versions) {
    char* json = NULL;
    CHECK_OK(ds_lib_build_info(&json));
    CHECK(json != NULL);
    CHECK_CONTAINS(json, "\"version\":\"" DS_VERSION_STRING "\"");
    CHECK_CONTAINS(json, "\"abi_version\":0");
    CHECK_CONTAINS(json, "\"features\":{");
    CHECK_CONTAINS(json, "\"cjson\":\"1.");
    CHECK_CONTAINS(json, "\"cuda_backend\":{\"loaded\":");
    ds_free(json);
    CHECK_STATUS(ds_lib_build_info(NULL), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "ds_lib_build_info: out_json is NULL");
    ds_free(NULL);
}

static int g_log_calls;
static int g_log_last_level;
static char g_log_last[512];
static void capture_log(int32_t level, const char* msg, void* user) {
    g_log_calls++;
    g_log_last_level = level;
    snprintf(g_log_last, sizeof g_log_last, "%s", msg);
    *(int*)user += 1;
}

TEST(log_callback_receives_messages) {
    int user_count = 0;
    CHECK_OK(ds_lib_set_log(capture_log, &user_count, DS_LOG_DEBUG));
    /* A failing call logs its error at debug level. */
    CHECK_STATUS(ds_dev_count(42, NULL), DS_ERR_INVALID_ARG);
    CHECK(g_log_calls >= 1);
    CHECK(user_count >= 1);
    CHECK_EQ_INT(g_log_last_level, DS_LOG_DEBUG);
    CHECK_CONTAINS(g_log_last, "ds_dev_count");
    /* Filtered out above max_level. */
    int before = g_log_calls;
    CHECK_OK(ds_lib_set_log(capture_log, &user_count, DS_LOG_WARN));
    CHECK_STATUS(ds_dev_count(42, NULL), DS_ERR_INVALID_ARG);
    CHECK_EQ_INT(g_log_calls, before);
    CHECK_STATUS(ds_lib_set_log(capture_log, NULL, 7), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "max_level=7");
    CHECK_STATUS(ds_lib_set_log(capture_log, NULL, -1), DS_ERR_INVALID_ARG);
    CHECK_OK(ds_lib_set_log(NULL, NULL, DS_LOG_ERROR)); /* back to stderr */
}

TEST(status_strings_are_static_and_total) {
    CHECK_STR_EQ(ds_status_str(DS_OK), "success");
    CHECK_STR_EQ(ds_status_str(DS_ERR_INVALID_HANDLE), "invalid handle");
    CHECK_STR_EQ(ds_status_str(DS_ERR_CONFIG_BATCH), "inconsistent batch size configuration");
    CHECK_STR_EQ(ds_status_str(DS_ERR_COMM_TIMEOUT), "communication timeout");
    CHECK_STR_EQ(ds_status_str(-12345), "unknown error status");
    CHECK_STR_EQ(ds_status_str(77), "unknown non-error status");
    /* every defined code has its own text */
    int codes[] = {DS_INPROGRESS, DS_ABORTED, DS_ERR_INVALID_ARG, DS_ERR_NOMEM, DS_ERR_BUFFER_TOO_SMALL,
                   DS_ERR_UNSUPPORTED, DS_ERR_VERSION, DS_ERR_STATE, DS_ERR_NOT_FOUND, DS_ERR_TYPE,
                   DS_ERR_INTERNAL, DS_ERR_UNKNOWN, DS_ERR_DEVICE, DS_ERR_NO_DEVICE, DS_ERR_DEVICE_NOMEM,
                   DS_ERR_DEVICE_MISMATCH, DS_ERR_COMM, DS_ERR_COMM_PEER, DS_ERR_COMM_MISMATCH, DS_ERR_IO,
                   DS_ERR_CORRUPT, DS_ERR_CONFIG, DS_ERR_CONFIG_PARSE, DS_ERR_CONFIG_UNKNOWN_KEY,
                   DS_ERR_CONFIG_VALUE, DS_ERR_CONFIG_UNSUPPORTED};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; ++i) {
        CHECK(strcmp(ds_status_str(codes[i]), "unknown error status") != 0);
        CHECK(strcmp(ds_status_str(codes[i]), "unknown non-error status") != 0);
    }
}

/* ds_last_error is per thread: 8 threads fail with distinct values and each sees its own. */
static void* thread_errors(void* arg) {
    int id = (int)(intptr_t)arg;
    int ok = 1;
    for (int round = 0; round < 200; ++round) {
        int64_t shape[1] = {-(int64_t)(id * 1000 + round)};
        ds_tensor_t* t = NULL;
        if (ds_tensor_create(DS_DTYPE_F32, 1, shape, DS_DEV_CPU, 0, &t) != DS_ERR_INVALID_ARG) ok = 0;
        char expect[64];
        snprintf(expect, sizeof expect, "shape[0]=%lld is negative", (long long)shape[0]);
        if (strstr(ds_last_error(), expect) == NULL) ok = 0;
    }
    return (void*)(intptr_t)ok;
}

TEST(last_error_is_thread_local) {
    pthread_t th[8];
    for (int i = 0; i < 8; ++i) pthread_create(&th[i], NULL, thread_errors, (void*)(intptr_t)(i + 1));
    for (int i = 0; i < 8; ++i) {
        void* ok = NULL;
        pthread_join(th[i], &ok);
        CHECK(ok == (void*)1);
    }
}

TEST(success_does_not_clear_last_error_but_clear_does) {
    CHECK_STATUS(ds_dev_count(5, NULL), DS_ERR_INVALID_ARG);
    CHECK(ds_last_error()[0] != '\0');
    int32_t n = 0;
    CHECK_OK(ds_dev_count(DS_DEV_CPU, &n));
    CHECK_CONTAINS(ds_last_error(), "ds_dev_count");
    ds_last_error_clear();
    CHECK_STR_EQ(ds_last_error(), "");
}

int main(void) {
    RUN(version_macros_match_library);
    RUN(init_is_idempotent_and_validates_options);
    RUN(older_smaller_options_struct_gets_defaults);
    RUN(shutdown_then_reinit);
    RUN(build_info_is_json_with_versions);
    RUN(log_callback_receives_messages);
    RUN(status_strings_are_static_and_total);
    RUN(last_error_is_thread_local);
    RUN(success_does_not_clear_last_error_but_clear_does);
    return minitest_report();
}
