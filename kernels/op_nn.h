/*
 * op_nn.h - argument structs of the nn family (transformer ops), shared by the CPU kernels
 * (kernels/cpu/nn*.cpp) and the CUDA module (kernels/cuda/ops_nn*.cu). Plain C: raw pointers to
 * contiguous data on the op's device, sizes, dtypes (DS_NN_* below, the enum ds_dtype values).
 *
 * "float" buffers hold f32, f16 or bf16 (`dtype`); every float buffer of one call has that dtype
 * except mean/rstd/losses (always f32) and the parameter gradients, whose dtype is `pdtype` (today
 * the C API passes dtype there too; the field lets f32 parameter gradients be added without a new
 * layout). Index buffers (ids, targets, positions) are i32 or i64 (`idtype`).
 *
 * Structs only grow at the end; a changed layout gets a new DS_KOP_* index (backend_ops_abi.h).
 */
#ifndef DSABI_OP_NN_H
#define DSABI_OP_NN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dtype and activation codes: the values of enum ds_dtype and enum ds_activation in dsabi.h (which the
 * CUDA module does not include; src/capi/api_op_nn.cpp checks that they agree). */
#define DS_NN_F32 0
#define DS_NN_F16 1
#define DS_NN_BF16 2
#define DS_NN_I32 6
#define DS_NN_I64 7
#define DS_NN_ACT_GELU_TANH 0
#define DS_NN_ACT_GELU 1
#define DS_NN_ACT_SILU 2
#define DS_NN_ACT_RELU 3

/* DS_KOP_EMBEDDING: out[n, d] = weight[ids[n], :]; ids outside [0, v) give zero rows (the C API
 * rejects them on the CPU before calling). DS_KOP_EMBEDDING_BWD: dweight[ids[n], :] += dout[n, :],
 * summed per vocabulary row in increasing n (deterministic); ids outside [0, v) are skipped. */
typedef struct ds_nn_embedding_args {
    const void* weight;  /* [v, d] forward */
    const void* ids;     /* [n] */
    void* out;           /* [n, d] forward */
    const void* dout;    /* [n, d] backward */
    void* dweight;       /* [v, d] backward, accumulated */
    int64_t n, v, d;
    int32_t dtype;       /* weight, out, dout */
    int32_t idtype;      /* ids: DS_NN_I32 / DS_NN_I64 */
    int32_t pdtype;      /* dweight */
    int32_t reserved;
} ds_nn_embedding_args_t;

/* DS_KOP_LAYER_NORM / DS_KOP_RMS_NORM (rms = 1: no mean, no bias) and their backward ops. */
typedef struct ds_nn_norm_args {
    const void* x;       /* [n, d] */
    const void* weight;  /* [d] */
    const void* bias;    /* [d] or NULL (layer norm forward) */
    void* y;             /* [n, d] forward */
    float* mean;         /* [n] f32: forward output (may be NULL), backward input (layer norm) */
    float* rstd;         /* [n] f32: forward output (may be NULL), backward input */
    const void* dy;      /* [n, d] backward */
    void* dx;            /* [n, d] backward, overwritten */
    void* dweight;       /* [d] backward, accumulated (may be NULL) */
    void* dbias;         /* [d] backward, accumulated (may be NULL; layer norm only) */
    int64_t n, d;
    float eps;
    int32_t rms;         /* 0: layer norm, 1: RMS norm */
    int32_t dtype;       /* x, weight, bias, y, dy, dx */
    int32_t pdtype;      /* dweight, dbias */
} ds_nn_norm_args_t;

/* DS_KOP_ACTIVATION: out = act(x). DS_KOP_ACTIVATION_BWD: out = dy * act'(x). out may alias x
 * (forward) or dy (backward). act: DS_NN_ACT_*. */
typedef struct ds_nn_act_args {
    const void* x;
    const void* dy;      /* backward only */
    void* out;
    int64_t numel;
    int32_t act;
    int32_t dtype;
} ds_nn_act_args_t;

/* DS_KOP_SWIGLU: y = silu(gate) * up. DS_KOP_SWIGLU_BWD: dgate = dy * up * silu'(gate),
 * dup = dy * silu(gate) (both overwritten). */
typedef struct ds_nn_swiglu_args {
    const void* gate;
    const void* up;
    const void* dy;      /* backward */
    void* y;             /* forward */
    void* dgate;         /* backward */
    void* dup;           /* backward */
    int64_t numel;
    int32_t dtype;
    int32_t reserved;
} ds_nn_swiglu_args_t;

/* DS_KOP_ADD: y[i] = a[i] + b[i] (b_rows = n), or y[r, c] = a[r, c] + b[c] (b_rows = 1). y may alias a.
 * DS_KOP_SUM_ROWS: dbias[c] += sum_r dy[r, c] (a = dy, y = dbias). */
typedef struct ds_nn_add_args {
    const void* a;
    const void* b;
    void* y;
    int64_t n, d;        /* a and y are [n, d] */
    int64_t b_rows;      /* 1 (bias add) or n */
    int32_t dtype;       /* a, b, y (sum_rows: dy) */
    int32_t pdtype;      /* sum_rows: dbias */
} ds_nn_add_args_t;

/* DS_KOP_SOFTMAX: y = softmax(x * scale) per row. DS_KOP_SOFTMAX_BWD: dx = scale * y * (dy - sum(dy*y))
 * (x holds y, dy the incoming gradient, out = dx). out may alias x (forward) or dy (backward). */
typedef struct ds_nn_softmax_args {
    const void* x;
    const void* dy;
    void* out;
    int64_t n, d;
    float scale;
    int32_t dtype;
} ds_nn_softmax_args_t;

/* DS_KOP_CROSS_ENTROPY: losses[n] f32 = logsumexp(row) - row[target]; dlogits (may be NULL, may alias
 * logits) = (softmax(row) - onehot(target)) * dloss. Targets equal to ignore_index give loss 0 and a
 * zero gradient row; on CUDA, targets outside [0, v) are treated the same way (the C API rejects them
 * on the CPU). */
typedef struct ds_nn_xent_args {
    const void* logits;  /* [n, v] */
    const void* targets; /* [n] i32 / i64 */
    float* losses;       /* [n] f32 (may be NULL) */
    void* dlogits;       /* [n, v] or NULL */
    int64_t n, v;
    int64_t ignore_index;
    float dloss;
    int32_t dtype;       /* logits, dlogits */
    int32_t idtype;      /* targets */
    int32_t reserved;
} ds_nn_xent_args_t;

/* DS_KOP_ROPE: rotate-half rotary embedding of x[n, h, d] (d even) at positions[n]: for i < d/2,
 * (x[i], x[i + d/2]) turns by angle = float(pos) * inv_freq[i], inv_freq[i] = theta^(-2i/d) computed
 * in f32 (as Llama/GPT-NeoX reference code does), cos/sin of that f32 angle accurately. inverse = 1
 * turns by -angle. y may alias x. */
typedef struct ds_nn_rope_args {
    const void* x;
    const void* positions;
    void* y;
    int64_t n, h, d;
    float theta;
    int32_t inverse;
    int32_t dtype;
    int32_t idtype;      /* positions */
} ds_nn_rope_args_t;

/* DS_KOP_DROPOUT: y[i] = keep(seed, offset + i) ? x[i] * (1 / (1 - p)) : 0, where keep is
 * ds_nn_dropout_uniform(seed, offset + i) >= p (both f32; the scale is computed in f32 as
 * 1.0f / (1.0f - p)); p = 1 gives zeros. Identical on the CPU and CUDA. y may alias x. */
typedef struct ds_nn_dropout_args {
    const void* x;
    void* y;
    int64_t numel;
    uint64_t seed;
    uint64_t offset;
    float p;
    int32_t dtype;
} ds_nn_dropout_args_t;

/* The dropout generator, shared by the CPU and CUDA code: element counter c draws from one 64-bit
 * hash per pair of counters, h = mix64(mix64(seed) + (c >> 1) * 0x9E3779B97F4A7C15) (mix64 is the
 * splitmix64 finaliser); even c take bits 40..63 of h, odd c bits 16..39; u = bits * 2^-24 in [0, 1). */
#if defined(__CUDACC__)
#define DS_NN_HD static __host__ __device__ __forceinline__
#else
#define DS_NN_HD static inline
#endif
DS_NN_HD uint64_t ds_nn_mix64(uint64_t z) {
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ull;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z;
}
/* The hash of counter pair c >> 1 (key = ds_nn_mix64(seed), computed once per call). */
DS_NN_HD uint64_t ds_nn_dropout_hash(uint64_t key, uint64_t pair) {
    return ds_nn_mix64(key + pair * 0x9E3779B97F4A7C15ull);
}
/* 24-bit uniform of counter c from the hash of its pair. */
DS_NN_HD float ds_nn_dropout_u(uint64_t h, uint64_t c) {
    uint32_t bits = (c & 1u) ? (uint32_t)(h >> 16) & 0xFFFFFFu : (uint32_t)(h >> 40);
    return (float)bits * (1.0f / 16777216.0f);
}
DS_NN_HD float ds_nn_dropout_uniform(uint64_t seed, uint64_t c) {
    return ds_nn_dropout_u(ds_nn_dropout_hash(ds_nn_mix64(seed), c >> 1), c);
}

#ifdef __cplusplus
}
#endif

#endif
