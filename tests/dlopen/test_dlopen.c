/* A host that dlopen()s libdsabi with no link-time dependency, takes the function table from
 * ds_get_api and uses it. Usage: test_dlopen path/to/libdsabi.so.0 */
#include <dlfcn.h>
#include <stdio.h>

#include "dsabi.h"
#include "minitest.h"

typedef ds_status_t (*get_api_fn)(uint32_t, const ds_api_t**);
static const char* g_path;
static const ds_api_t* g_api;

/* minitest's CHECK_STATUS calls these by name: route them through the table. */
#define ds_status_str(s) g_api->status_str(s)
#define ds_last_error() g_api->last_error()

TEST(table_matches_library) {
    CHECK(g_api->struct_size == sizeof(ds_api_t));
    CHECK_EQ_INT(g_api->abi_version, DS_ABI_VERSION);
    CHECK_EQ_INT(g_api->version_number(), DS_VERSION_NUMBER);
    CHECK_STR_EQ(g_api->version_string(), DS_VERSION_STRING);
}

TEST(table_calls_work) {
    ds_config_t* cfg = NULL;
    CHECK_OK(g_api->config_parse("{\"train_batch_size\": 8, \"gradient_accumulation_steps\": 2}", 0, NULL, &cfg));
    int64_t micro = 0;
    CHECK_OK(g_api->config_get_i64(cfg, "train_micro_batch_size_per_gpu", &micro));
    CHECK_EQ_INT(micro, 4); /* 8 / 2 / world size 1 */
    g_api->config_destroy(cfg);
    ds_tensor_t* t = NULL;
    int64_t shape[2] = {3, 5};
    CHECK_OK(g_api->tensor_create(DS_DTYPE_F32, 2, shape, DS_DEV_CPU, 0, &t));
    int64_t n = 0;
    CHECK_OK(g_api->tensor_get_numel(t, &n));
    CHECK_EQ_INT(n, 15);
    g_api->tensor_destroy(t);
}

TEST(wrong_abi_version_is_refused) {
    void* lib = dlopen(g_path, RTLD_NOW | RTLD_LOCAL);
    get_api_fn get_api = (get_api_fn)dlsym(lib, "ds_get_api");
    const ds_api_t* api = (const ds_api_t*)1;
    CHECK_STATUS(get_api(DS_ABI_VERSION + 99, &api), DS_ERR_VERSION);
    CHECK(api == NULL);
    CHECK_CONTAINS(g_api->last_error(), "abi_version=99");
    CHECK_STATUS(get_api(DS_ABI_VERSION, NULL), DS_ERR_INVALID_ARG);
    dlclose(lib);
}

TEST(proc_address_finds_every_table_function) {
    void* lib = dlopen(g_path, RTLD_NOW | RTLD_LOCAL);
    void* fn = NULL;
    CHECK_OK(g_api->get_proc_address("ds_tensor_create", &fn));
    CHECK(fn == dlsym(lib, "ds_tensor_create"));
    CHECK(fn == (void*)g_api->tensor_create);
    CHECK_STATUS(g_api->get_proc_address("ds_no_such_function", &fn), DS_ERR_NOT_FOUND);
    CHECK(fn == NULL);
    CHECK_CONTAINS(g_api->last_error(), "ds_no_such_function");
    CHECK_STATUS(g_api->get_proc_address(NULL, &fn), DS_ERR_INVALID_ARG);
    CHECK_STATUS(g_api->get_proc_address("ds_free", NULL), DS_ERR_INVALID_ARG);
    /* every table slot is filled */
    const void* const* slots = (const void* const*)((const char*)g_api + 8);
    size_t n = (sizeof(ds_api_t) - 8) / sizeof(void*);
    for (size_t i = 0; i < n; ++i) CHECK(slots[i] != NULL);
    dlclose(lib);
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s path/to/libdsabi.so.0\n", argv[0]);
        return 2;
    }
    g_path = argv[1];
    void* lib = dlopen(g_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen(%s): %s\n", g_path, dlerror());
        return 1;
    }
    get_api_fn get_api = (get_api_fn)dlsym(lib, "ds_get_api");
    if (!get_api || get_api(DS_ABI_VERSION, &g_api) != 0) {
        fprintf(stderr, "ds_get_api not usable\n");
        return 1;
    }
    RUN(table_matches_library);
    RUN(table_calls_work);
    RUN(wrong_abi_version_is_refused);
    RUN(proc_address_finds_every_table_function);
    int rc = minitest_report();
    dlclose(lib);
    return rc;
}
