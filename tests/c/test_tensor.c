/* Devices and tensors: create, wrap, accessors, copy, clone, fill, DLPack, and every error path.
 * On a machine with a GPU the same tests also exercise CUDA tensors. */
#include <dlpack/dlpack.h>
#include <stdint.h>
#include <stdlib.h>

#include "dsabi.h"
#include "minitest.h"

static int32_t g_n_cuda;

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static double rnd(void) { /* xorshift64*, uniform in [-1, 1) */
    g_rng ^= g_rng >> 12; g_rng ^= g_rng << 25; g_rng ^= g_rng >> 27;
    return (double)((g_rng * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

TEST(cpu_device_is_always_present) {
    int32_t n = 0;
    CHECK_OK(ds_dev_count(DS_DEV_CPU, &n));
    CHECK_EQ_INT(n, 1);
    ds_dev_info_t info;
    ds_dev_info_init(&info);
    CHECK_OK(ds_dev_get_info(DS_DEV_CPU, 0, &info));
    CHECK_EQ_INT(info.type, DS_DEV_CPU);
    CHECK(info.total_memory_bytes > ((uint64_t)1 << 28));
    CHECK(info.free_memory_bytes > 0 && info.free_memory_bytes <= info.total_memory_bytes);
    CHECK(info.multiprocessor_count >= 1);
    CHECK(strncmp(info.name, "cpu", 3) == 0);
    CHECK_OK(ds_dev_synchronize(DS_DEV_CPU, 0));
}

TEST(device_errors_name_the_argument) {
    int32_t n = 0;
    CHECK_STATUS(ds_dev_count(7, &n), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "device type 7");
    CHECK_STATUS(ds_dev_count(DS_DEV_CPU, NULL), DS_ERR_INVALID_ARG);
    ds_dev_info_t info;
    ds_dev_info_init(&info);
    CHECK_STATUS(ds_dev_get_info(DS_DEV_CPU, 1, &info), DS_ERR_NO_DEVICE);
    CHECK_CONTAINS(ds_last_error(), "device index 1 out of range [0, 1)");
    CHECK_STATUS(ds_dev_get_info(DS_DEV_CPU, 0, NULL), DS_ERR_INVALID_ARG);
    info.struct_size = 3;
    CHECK_STATUS(ds_dev_get_info(DS_DEV_CPU, 0, &info), DS_ERR_VERSION);
    ds_dev_info_init(&info);
    info.abi_version = 50;
    CHECK_STATUS(ds_dev_get_info(DS_DEV_CPU, 0, &info), DS_ERR_VERSION);
    CHECK_STATUS(ds_dev_synchronize(3, 0), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_dev_synchronize(DS_DEV_CUDA, g_n_cuda), DS_ERR_NO_DEVICE);
    ds_dev_info_init(NULL);
}

TEST(old_dev_info_struct_is_not_overrun) {
    /* A caller compiled when ds_dev_info_t ended after `name`: nothing past struct_size is written. */
    unsigned char buf[sizeof(ds_dev_info_t)];
    memset(buf, 0xAB, sizeof buf);
    ds_dev_info_t* info = (ds_dev_info_t*)buf;
    info->struct_size = 144;
    info->abi_version = DS_ABI_VERSION;
    CHECK_OK(ds_dev_get_info(DS_DEV_CPU, 0, info));
    CHECK(strncmp(info->name, "cpu", 3) == 0);
    for (size_t i = 144; i < sizeof buf; ++i) CHECK(buf[i] == 0xAB);
}

TEST(cuda_absent_is_a_clear_error) {
    if (g_n_cuda > 0) return; /* covered by the GPU tests below */
    int64_t shape[1] = {4};
    ds_tensor_t* t = (ds_tensor_t*)1;
    CHECK_STATUS(ds_tensor_create(DS_DTYPE_F32, 1, shape, DS_DEV_CUDA, 0, &t), DS_ERR_NO_DEVICE);
    CHECK(t == NULL);
    CHECK_CONTAINS(ds_last_error(), "no CUDA device");
}

TEST(dtype_sizes_and_names) {
    static const struct { int32_t d; uint64_t size; const char* name; } rows[] = {
        {DS_DTYPE_F32, 4, "f32"}, {DS_DTYPE_F16, 2, "f16"}, {DS_DTYPE_BF16, 2, "bf16"}, {DS_DTYPE_F64, 8, "f64"},
        {DS_DTYPE_I8, 1, "i8"},   {DS_DTYPE_U8, 1, "u8"},   {DS_DTYPE_I32, 4, "i32"},   {DS_DTYPE_I64, 8, "i64"},
        {DS_DTYPE_FP8_E4M3, 1, "fp8_e4m3"}, {DS_DTYPE_FP8_E5M2, 1, "fp8_e5m2"}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; ++i) {
        uint64_t s = 0;
        CHECK_OK(ds_dtype_size(rows[i].d, &s));
        CHECK_EQ_INT(s, rows[i].size);
        CHECK_STR_EQ(ds_dtype_name(rows[i].d), rows[i].name);
    }
    uint64_t s = 0;
    CHECK_STATUS(ds_dtype_size(10, &s), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "dtype=10");
    CHECK_STATUS(ds_dtype_size(DS_DTYPE_F32, NULL), DS_ERR_INVALID_ARG);
    CHECK_STR_EQ(ds_dtype_name(-1), "invalid");
}

TEST(create_and_accessors) {
    int64_t shape[3] = {2, 3, 5};
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_BF16, 3, shape, DS_DEV_CPU, 0, &t));
    int32_t v = -1, idx = -1;
    CHECK_OK(ds_tensor_get_dtype(t, &v)); CHECK_EQ_INT(v, DS_DTYPE_BF16);
    CHECK_OK(ds_tensor_get_ndim(t, &v)); CHECK_EQ_INT(v, 3);
    int64_t dims[8] = {0}; uint64_t len = 0;
    CHECK_OK(ds_tensor_get_shape(t, dims, 8, &len));
    CHECK_EQ_INT(len, 3); CHECK_EQ_INT(dims[0], 2); CHECK_EQ_INT(dims[1], 3); CHECK_EQ_INT(dims[2], 5);
    CHECK_OK(ds_tensor_get_strides(t, dims, 8, &len));
    CHECK_EQ_INT(dims[0], 15); CHECK_EQ_INT(dims[1], 5); CHECK_EQ_INT(dims[2], 1);
    int64_t numel = 0; uint64_t nbytes = 0;
    CHECK_OK(ds_tensor_get_numel(t, &numel)); CHECK_EQ_INT(numel, 30);
    CHECK_OK(ds_tensor_get_nbytes(t, &nbytes)); CHECK_EQ_INT(nbytes, 60);
    CHECK_OK(ds_tensor_get_device(t, &v, &idx)); CHECK_EQ_INT(v, DS_DEV_CPU); CHECK_EQ_INT(idx, 0);
    CHECK_OK(ds_tensor_is_contiguous(t, &v)); CHECK_EQ_INT(v, 1);
    void* data = NULL;
    CHECK_OK(ds_tensor_get_data(t, &data));
    CHECK(data != NULL && ((uintptr_t)data % 64) == 0);
    const uint16_t* p = (const uint16_t*)data;
    for (int i = 0; i < 30; ++i) CHECK_EQ_INT(p[i], 0); /* zero-filled */
    /* two-call protocol */
    CHECK_STATUS(ds_tensor_get_shape(t, dims, 2, &len), DS_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ_INT(len, 3);
    CHECK_CONTAINS(ds_last_error(), "cap=2 but the tensor has 3 dimensions");
    CHECK_STATUS(ds_tensor_get_shape(t, NULL, 0, &len), DS_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ_INT(len, 3);
    CHECK_STATUS(ds_tensor_get_shape(t, NULL, 8, &len), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_tensor_get_strides(t, dims, 8, NULL), DS_ERR_INVALID_ARG);
    ds_tensor_destroy(t);
}

TEST(scalar_and_empty_tensors) {
    ds_tensor_t* s = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_F64, 0, NULL, DS_DEV_CPU, 0, &s));
    int64_t n = 0;
    CHECK_OK(ds_tensor_get_numel(s, &n)); CHECK_EQ_INT(n, 1);
    CHECK_OK(ds_tensor_fill(s, 2.5));
    void* d = NULL;
    CHECK_OK(ds_tensor_get_data(s, &d));
    CHECK_NEAR(*(double*)d, 2.5, 0);
    uint64_t len = 99;
    CHECK_OK(ds_tensor_get_shape(s, NULL, 0, &len)); CHECK_EQ_INT(len, 0);
    ds_tensor_destroy(s);
    int64_t shape[2] = {4, 0};
    ds_tensor_t* e = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_I32, 2, shape, DS_DEV_CPU, 0, &e));
    CHECK_OK(ds_tensor_get_numel(e, &n)); CHECK_EQ_INT(n, 0);
    CHECK_OK(ds_tensor_fill(e, 1));
    ds_tensor_destroy(e);
    ds_tensor_t* w = NULL;
    CHECK_OK(ds_tensor_wrap(NULL, DS_DTYPE_F32, 2, shape, NULL, DS_DEV_CPU, 0, &w)); /* no elements: NULL ok */
    ds_tensor_destroy(w);
}

TEST(create_rejects_bad_arguments) {
    int64_t shape[9] = {2, 2, 2, 2, 2, 2, 2, 2, 2};
    ds_tensor_t* t = (ds_tensor_t*)1;
    CHECK_STATUS(ds_tensor_create(DS_DTYPE_F32, 9, shape, DS_DEV_CPU, 0, &t), DS_ERR_INVALID_ARG);
    CHECK(t == NULL);
    CHECK_CONTAINS(ds_last_error(), "ndim=9 is outside [0, 8]");
    CHECK_STATUS(ds_tensor_create(DS_DTYPE_F32, -1, shape, DS_DEV_CPU, 0, &t), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_tensor_create(42, 1, shape, DS_DEV_CPU, 0, &t), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "dtype=42");
    CHECK_STATUS(ds_tensor_create(DS_DTYPE_F32, 2, NULL, DS_DEV_CPU, 0, &t), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "shape is NULL but ndim=2");
    int64_t neg[2] = {3, -1};
    CHECK_STATUS(ds_tensor_create(DS_DTYPE_F32, 2, neg, DS_DEV_CPU, 0, &t), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "shape[1]=-1 is negative");
    int64_t huge[2] = {INT64_C(1) << 40, INT64_C(1) << 30};
    CHECK_STATUS(ds_tensor_create(DS_DTYPE_F32, 2, huge, DS_DEV_CPU, 0, &t), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "larger than 2^63 bytes");
    CHECK_STATUS(ds_tensor_create(DS_DTYPE_F32, 1, shape, 9, 0, &t), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "dev_type=9");
    CHECK_STATUS(ds_tensor_create(DS_DTYPE_F32, 1, shape, DS_DEV_CPU, 2, &t), DS_ERR_NO_DEVICE);
    CHECK_STATUS(ds_tensor_create(DS_DTYPE_F32, 1, shape, DS_DEV_CPU, 0, NULL), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_tensor_wrap(NULL, DS_DTYPE_F32, 1, shape, NULL, DS_DEV_CPU, 0, &t), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "data is NULL for a tensor of 2 elements");
}

TEST(invalid_and_destroyed_handles) {
    int64_t shape[1] = {4};
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, shape, DS_DEV_CPU, 0, &t));
    ds_tensor_destroy(t);
    int32_t v = 0;
    CHECK_STATUS(ds_tensor_get_dtype(t, &v), DS_ERR_INVALID_HANDLE);
    CHECK_CONTAINS(ds_last_error(), "is not a live ds_tensor_t");
    CHECK_STATUS(ds_tensor_get_dtype(NULL, &v), DS_ERR_INVALID_HANDLE);
    CHECK_CONTAINS(ds_last_error(), "t is NULL");
    int not_a_handle = 0;
    CHECK_STATUS(ds_tensor_fill((ds_tensor_t*)&not_a_handle, 1.0), DS_ERR_INVALID_HANDLE);
    ds_config_t* cfg = NULL;
    CHECK_OK(ds_config_parse("{}", 0, NULL, &cfg));
    CHECK_STATUS(ds_tensor_get_ndim((const ds_tensor_t*)cfg, &v), DS_ERR_INVALID_HANDLE); /* wrong type */
    ds_config_destroy(cfg);
    ds_tensor_destroy(t);    /* double destroy is a no-op */
    ds_tensor_destroy(NULL); /* NULL destroy is a no-op */
    CHECK_STATUS(ds_tensor_get_ndim(t, NULL), DS_ERR_INVALID_ARG); /* out checked first */
    int64_t n; uint64_t b; void* d; int32_t i;
    CHECK_STATUS(ds_tensor_get_numel(t, &n), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_tensor_get_nbytes(t, &b), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_tensor_get_data(t, &d), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_tensor_get_device(t, &v, &i), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_tensor_get_device(t, NULL, &i), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_tensor_is_contiguous(t, &v), DS_ERR_INVALID_HANDLE);
    uint64_t len;
    CHECK_STATUS(ds_tensor_get_shape(t, &n, 1, &len), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_tensor_get_strides(t, &n, 1, &len), DS_ERR_INVALID_HANDLE);
    ds_tensor_t* out = NULL;
    CHECK_STATUS(ds_tensor_clone(t, DS_DEV_CPU, 0, &out), DS_ERR_INVALID_HANDLE);
    CHECK_STATUS(ds_tensor_copy(t, t), DS_ERR_INVALID_HANDLE);
    struct DLManagedTensor* m = NULL;
    CHECK_STATUS(ds_tensor_to_dlpack(t, &m), DS_ERR_INVALID_HANDLE);
}

TEST(wrap_borrows_and_sees_writes) {
    float buf[6] = {0};
    int64_t shape[2] = {2, 3};
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_wrap(buf, DS_DTYPE_F32, 2, shape, NULL, DS_DEV_CPU, 0, &t));
    CHECK_OK(ds_tensor_fill(t, -1.25));
    for (int i = 0; i < 6; ++i) CHECK_NEAR(buf[i], -1.25, 0);
    void* d = NULL;
    CHECK_OK(ds_tensor_get_data(t, &d));
    CHECK(d == (void*)buf);
    ds_tensor_destroy(t);
    CHECK_NEAR(buf[0], -1.25, 0); /* borrowed memory is untouched by destroy */
}

TEST(strided_copy_transposes_on_cpu) {
    /* src: a 3x4 row-major matrix seen transposed (4x3 with strides {1, 4}); dst contiguous 4x3. */
    double m[12];
    for (int i = 0; i < 12; ++i) m[i] = rnd();
    int64_t tshape[2] = {4, 3}, tstrides[2] = {1, 4};
    ds_tensor_t *src = NULL, *dst = NULL;
    CHECK_OK(ds_tensor_wrap(m, DS_DTYPE_F64, 2, tshape, tstrides, DS_DEV_CPU, 0, &src));
    int32_t contiguous = 1;
    CHECK_OK(ds_tensor_is_contiguous(src, &contiguous));
    CHECK_EQ_INT(contiguous, 0);
    CHECK_OK(ds_tensor_create(DS_DTYPE_F64, 2, tshape, DS_DEV_CPU, 0, &dst));
    CHECK_OK(ds_tensor_copy(dst, src));
    double* out = NULL;
    CHECK_OK(ds_tensor_get_data(dst, (void**)&out));
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 3; ++c) CHECK_NEAR(out[r * 3 + c], m[c * 4 + r], 0);
    /* fill through the strided view touches exactly its elements */
    double row[8];
    for (int i = 0; i < 8; ++i) row[i] = rnd();
    int64_t eshape[1] = {4}, estrides[1] = {2};
    ds_tensor_t* every_other = NULL;
    CHECK_OK(ds_tensor_wrap(row, DS_DTYPE_F64, 1, eshape, estrides, DS_DEV_CPU, 0, &every_other));
    double keep = row[1];
    CHECK_OK(ds_tensor_fill(every_other, 7.0));
    for (int i = 0; i < 8; i += 2) CHECK_NEAR(row[i], 7.0, 0);
    CHECK_NEAR(row[1], keep, 0);
    ds_tensor_destroy(every_other);
    ds_tensor_destroy(src);
    ds_tensor_destroy(dst);
}

TEST(copy_rejects_mismatches) {
    int64_t a[2] = {2, 3}, b[2] = {3, 2};
    ds_tensor_t *x = NULL, *y = NULL, *z = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 2, a, DS_DEV_CPU, 0, &x));
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 2, b, DS_DEV_CPU, 0, &y));
    CHECK_OK(ds_tensor_create(DS_DTYPE_F16, 2, a, DS_DEV_CPU, 0, &z));
    CHECK_STATUS(ds_tensor_copy(x, y), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "shape differs");
    CHECK_STATUS(ds_tensor_copy(x, z), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "dst is f32, src is f16");
    CHECK_STATUS(ds_tensor_copy(x, NULL), DS_ERR_INVALID_HANDLE);
    CHECK_CONTAINS(ds_last_error(), "src is NULL");
    ds_tensor_destroy(x); ds_tensor_destroy(y); ds_tensor_destroy(z);
}

TEST(clone_is_a_deep_copy) {
    int32_t vals[5] = {5, -4, 3, -2, 1};
    int64_t shape[1] = {5};
    ds_tensor_t *w = NULL, *c = NULL;
    CHECK_OK(ds_tensor_wrap(vals, DS_DTYPE_I32, 1, shape, NULL, DS_DEV_CPU, 0, &w));
    CHECK_OK(ds_tensor_clone(w, DS_DEV_CPU, 0, &c));
    vals[0] = 100;
    int32_t* p = NULL;
    CHECK_OK(ds_tensor_get_data(c, (void**)&p));
    CHECK(p != vals);
    CHECK_EQ_INT(p[0], 5); CHECK_EQ_INT(p[4], 1);
    ds_tensor_t* bad = (ds_tensor_t*)1;
    CHECK_STATUS(ds_tensor_clone(w, 8, 0, &bad), DS_ERR_INVALID_ARG);
    CHECK(bad == NULL);
    CHECK_STATUS(ds_tensor_clone(w, DS_DEV_CPU, 0, NULL), DS_ERR_INVALID_ARG);
    ds_tensor_destroy(w); ds_tensor_destroy(c);
}

TEST(fill_integer_types_checks_range) {
    int64_t shape[1] = {3};
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_I8, 1, shape, DS_DEV_CPU, 0, &t));
    CHECK_OK(ds_tensor_fill(t, -128));
    int8_t* p = NULL;
    CHECK_OK(ds_tensor_get_data(t, (void**)&p));
    CHECK_EQ_INT(p[2], -128);
    CHECK_STATUS(ds_tensor_fill(t, 128), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "value=128 is outside the range of dtype i8");
    CHECK_STATUS(ds_tensor_fill(t, 1.5), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "not an integer");
    CHECK_EQ_INT(p[0], -128); /* a rejected fill writes nothing */
    ds_tensor_destroy(t);
    CHECK_OK(ds_tensor_create(DS_DTYPE_I64, 1, shape, DS_DEV_CPU, 0, &t));
    CHECK_OK(ds_tensor_fill(t, -9007199254740992.0));
    int64_t* q = NULL;
    CHECK_OK(ds_tensor_get_data(t, (void**)&q));
    CHECK(q[1] == -INT64_C(9007199254740992));
    CHECK_STATUS(ds_tensor_fill(t, 9223372036854775808.0), DS_ERR_INVALID_ARG); /* 2^63 */
    ds_tensor_destroy(t);
    CHECK_OK(ds_tensor_create(DS_DTYPE_F32, 1, shape, DS_DEV_CPU, 0, &t));
    CHECK_STATUS(ds_tensor_fill(t, 1e300), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "beyond the finite range of f32");
    ds_tensor_destroy(t);
    CHECK_OK(ds_tensor_create(DS_DTYPE_FP8_E4M3, 1, shape, DS_DEV_CPU, 0, &t));
    CHECK_STATUS(ds_tensor_fill(t, 1.0), DS_ERR_UNSUPPORTED);
    ds_tensor_destroy(t);
}

/* ---- DLPack ---------------------------------------------------------------------------------- */

static int g_deleter_calls;
static void count_deleter(DLManagedTensor* self) {
    g_deleter_calls++;
    free(self->dl_tensor.shape);
    free(self->dl_tensor.data);
    free(self);
}

static DLManagedTensor* make_dl(int ndim, const int64_t* shape, uint8_t code, uint8_t bits, int dev_type) {
    DLManagedTensor* m = (DLManagedTensor*)calloc(1, sizeof *m);
    int64_t n = 1;
    m->dl_tensor.shape = (int64_t*)calloc((size_t)(ndim ? ndim : 1), sizeof(int64_t));
    for (int i = 0; i < ndim; ++i) { m->dl_tensor.shape[i] = shape[i]; n *= shape[i]; }
    m->dl_tensor.data = calloc((size_t)n + 8, bits / 8);
    m->dl_tensor.ndim = ndim;
    m->dl_tensor.dtype.code = code;
    m->dl_tensor.dtype.bits = bits;
    m->dl_tensor.dtype.lanes = 1;
    m->dl_tensor.device.device_type = (DLDeviceType)dev_type;
    m->deleter = count_deleter;
    return m;
}

TEST(from_dlpack_takes_ownership_and_calls_deleter_once) {
    int64_t shape[2] = {3, 4};
    DLManagedTensor* m = make_dl(2, shape, kDLFloat, 32, kDLCPU);
    float* raw = (float*)m->dl_tensor.data;
    for (int i = 0; i < 12; ++i) raw[i] = (float)rnd();
    g_deleter_calls = 0;
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_from_dlpack(m, &t));
    void* d = NULL;
    CHECK_OK(ds_tensor_get_data(t, &d));
    CHECK(d == (void*)raw); /* zero-copy */
    /* a clone and an export keep the memory alive after the tensor is gone */
    struct DLManagedTensor* ex = NULL;
    CHECK_OK(ds_tensor_to_dlpack(t, &ex));
    ds_tensor_destroy(t);
    CHECK_EQ_INT(g_deleter_calls, 0);
    CHECK(((DLManagedTensor*)ex)->dl_tensor.data == (void*)raw);
    ((DLManagedTensor*)ex)->deleter((DLManagedTensor*)ex);
    CHECK_EQ_INT(g_deleter_calls, 1);
}

TEST(from_dlpack_byte_offset_strides_and_dtypes) {
    int64_t shape[1] = {4};
    DLManagedTensor* m = make_dl(1, shape, kDLInt, 64, kDLCPU);
    int64_t strides[1] = {2};
    m->dl_tensor.strides = strides;
    m->dl_tensor.byte_offset = 8;
    int64_t* raw = (int64_t*)m->dl_tensor.data;
    for (int i = 0; i < 9; ++i) raw[i] = i * 10;
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_from_dlpack(m, &t));
    int64_t out[4];
    int64_t oshape[1] = {4};
    ds_tensor_t* o = NULL;
    CHECK_OK(ds_tensor_wrap(out, DS_DTYPE_I64, 1, oshape, NULL, DS_DEV_CPU, 0, &o));
    CHECK_OK(ds_tensor_copy(o, t));
    CHECK_EQ_INT(out[0], 10); CHECK_EQ_INT(out[1], 30); CHECK_EQ_INT(out[3], 70);
    int32_t dt = -1;
    CHECK_OK(ds_tensor_get_dtype(t, &dt)); CHECK_EQ_INT(dt, DS_DTYPE_I64);
    ds_tensor_destroy(o);
    ds_tensor_destroy(t);

    static const struct { uint8_t code, bits; int32_t dtype; } map[] = {
        {kDLFloat, 16, DS_DTYPE_F16}, {kDLBfloat, 16, DS_DTYPE_BF16}, {kDLFloat, 64, DS_DTYPE_F64},
        {kDLInt, 8, DS_DTYPE_I8}, {kDLUInt, 8, DS_DTYPE_U8}, {kDLInt, 32, DS_DTYPE_I32}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; ++i) {
        DLManagedTensor* x = make_dl(1, shape, map[i].code, map[i].bits, kDLCPU);
        ds_tensor_t* tx = NULL;
        CHECK_OK(ds_tensor_from_dlpack(x, &tx));
        CHECK_OK(ds_tensor_get_dtype(tx, &dt));
        CHECK_EQ_INT(dt, map[i].dtype);
        ds_tensor_destroy(tx);
    }
}

TEST(from_dlpack_failure_leaves_ownership_with_caller) {
    int64_t shape[1] = {4};
    g_deleter_calls = 0;
    ds_tensor_t* t = (ds_tensor_t*)1;
    DLManagedTensor* m = make_dl(1, shape, kDLComplex, 64, kDLCPU);
    CHECK_STATUS(ds_tensor_from_dlpack(m, &t), DS_ERR_UNSUPPORTED);
    CHECK(t == NULL);
    CHECK_CONTAINS(ds_last_error(), "code=5, bits=64");
    m->dl_tensor.dtype.code = kDLFloat; m->dl_tensor.dtype.bits = 32; m->dl_tensor.dtype.lanes = 4;
    CHECK_STATUS(ds_tensor_from_dlpack(m, &t), DS_ERR_UNSUPPORTED);
    CHECK_CONTAINS(ds_last_error(), "lanes=4");
    m->dl_tensor.dtype.lanes = 1;
    m->dl_tensor.device.device_type = kDLVulkan;
    CHECK_STATUS(ds_tensor_from_dlpack(m, &t), DS_ERR_UNSUPPORTED);
    CHECK_CONTAINS(ds_last_error(), "device_type=7");
    m->dl_tensor.device.device_type = kDLCPU;
    m->dl_tensor.ndim = 12;
    CHECK_STATUS(ds_tensor_from_dlpack(m, &t), DS_ERR_INVALID_ARG);
    m->dl_tensor.ndim = 1;
    if (g_n_cuda == 0) {
        m->dl_tensor.device.device_type = kDLCUDA;
        CHECK_STATUS(ds_tensor_from_dlpack(m, &t), DS_ERR_NO_DEVICE);
        m->dl_tensor.device.device_type = kDLCPU;
    }
    CHECK_EQ_INT(g_deleter_calls, 0);
    CHECK_STATUS(ds_tensor_from_dlpack(NULL, &t), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_tensor_from_dlpack(m, NULL), DS_ERR_INVALID_ARG);
    m->deleter(m); /* still ours */
    CHECK_EQ_INT(g_deleter_calls, 1);
}

TEST(to_dlpack_describes_the_tensor) {
    int64_t shape[3] = {2, 1, 3};
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_BF16, 3, shape, DS_DEV_CPU, 0, &t));
    struct DLManagedTensor* ex = NULL;
    CHECK_OK(ds_tensor_to_dlpack(t, &ex));
    DLTensor* dl = &((DLManagedTensor*)ex)->dl_tensor;
    CHECK_EQ_INT(dl->ndim, 3);
    CHECK_EQ_INT(dl->shape[2], 3);
    CHECK_EQ_INT(dl->strides[0], 3);
    CHECK_EQ_INT(dl->dtype.code, kDLBfloat);
    CHECK_EQ_INT(dl->dtype.bits, 16);
    CHECK_EQ_INT(dl->dtype.lanes, 1);
    CHECK_EQ_INT(dl->device.device_type, kDLCPU);
    /* round trip: import the export, same memory */
    ds_tensor_t* back = NULL;
    CHECK_OK(ds_tensor_from_dlpack(ex, &back));
    void *a = NULL, *b = NULL;
    CHECK_OK(ds_tensor_get_data(t, &a));
    CHECK_OK(ds_tensor_get_data(back, &b));
    CHECK(a == b);
    ds_tensor_destroy(t);
    ds_tensor_destroy(back); /* calls the export's deleter, which drops the last reference */
    CHECK_STATUS(ds_tensor_to_dlpack(t, NULL), DS_ERR_INVALID_ARG);
}

/* ---- CUDA (runs where a GPU is present) ------------------------------------------------------ */

TEST(cuda_round_trip_on_random_data) {
    if (g_n_cuda == 0) return;
    ds_dev_info_t info;
    ds_dev_info_init(&info);
    CHECK_OK(ds_dev_get_info(DS_DEV_CUDA, 0, &info));
    CHECK(info.compute_capability_major >= 7);
    CHECK(info.total_memory_bytes > ((uint64_t)1 << 30));
    printf("cuda:0 is %s (sm_%d%d, %d SMs)\n", info.name, info.compute_capability_major,
           info.compute_capability_minor, info.multiprocessor_count);
    enum { N = 100003 }; /* odd size */
    static float host[N], back[N];
    for (int i = 0; i < N; ++i) host[i] = (float)rnd();
    int64_t shape[1] = {N};
    ds_tensor_t *h = NULL, *d = NULL, *d2 = NULL, *out = NULL;
    CHECK_OK(ds_tensor_wrap(host, DS_DTYPE_F32, 1, shape, NULL, DS_DEV_CPU, 0, &h));
    CHECK_OK(ds_tensor_clone(h, DS_DEV_CUDA, 0, &d));          /* H2D */
    CHECK_OK(ds_tensor_clone(d, DS_DEV_CUDA, 0, &d2));         /* D2D */
    CHECK_OK(ds_tensor_wrap(back, DS_DTYPE_F32, 1, shape, NULL, DS_DEV_CPU, 0, &out));
    CHECK_OK(ds_tensor_copy(out, d2));                         /* D2H */
    CHECK(memcmp(host, back, sizeof host) == 0);
    int32_t type = 0, index = -1;
    CHECK_OK(ds_tensor_get_device(d2, &type, &index));
    CHECK_EQ_INT(type, DS_DEV_CUDA); CHECK_EQ_INT(index, 0);
    CHECK_OK(ds_tensor_fill(d2, 0.1));                         /* fill kernel */
    CHECK_OK(ds_tensor_copy(out, d2));
    for (int i = 0; i < N; ++i) if (back[i] != 0.1f) { CHECK(back[i] == 0.1f); break; }
    struct DLManagedTensor* ex = NULL;
    CHECK_OK(ds_tensor_to_dlpack(d2, &ex));
    CHECK_EQ_INT(((DLManagedTensor*)ex)->dl_tensor.device.device_type, kDLCUDA);
    ((DLManagedTensor*)ex)->deleter((DLManagedTensor*)ex);
    CHECK_STATUS(ds_lib_shutdown(), DS_ERR_STATE); /* CUDA tensors still alive */
    CHECK_CONTAINS(ds_last_error(), "CUDA allocation(s) are still alive");
    ds_tensor_destroy(h); ds_tensor_destroy(d); ds_tensor_destroy(d2); ds_tensor_destroy(out);
    CHECK_OK(ds_dev_synchronize(DS_DEV_CUDA, 0));
}

int main(void) {
    CHECK_OK(ds_dev_count(DS_DEV_CUDA, &g_n_cuda));
    printf("CUDA devices: %d\n", g_n_cuda);
    RUN(cpu_device_is_always_present);
    RUN(device_errors_name_the_argument);
    RUN(old_dev_info_struct_is_not_overrun);
    RUN(cuda_absent_is_a_clear_error);
    RUN(dtype_sizes_and_names);
    RUN(create_and_accessors);
    RUN(scalar_and_empty_tensors);
    RUN(create_rejects_bad_arguments);
    RUN(invalid_and_destroyed_handles);
    RUN(wrap_borrows_and_sees_writes);
    RUN(strided_copy_transposes_on_cpu);
    RUN(copy_rejects_mismatches);
    RUN(clone_is_a_deep_copy);
    RUN(fill_integer_types_checks_range);
    RUN(from_dlpack_takes_ownership_and_calls_deleter_once);
    RUN(from_dlpack_byte_offset_strides_and_dtypes);
    RUN(from_dlpack_failure_leaves_ownership_with_caller);
    RUN(to_dlpack_describes_the_tensor);
    RUN(cuda_round_trip_on_random_data);
    return minitest_report();
}
