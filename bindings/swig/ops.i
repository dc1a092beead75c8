/* ops.i - the op layer (ds_op_*) for every language: optimizers, reductions and casts, transformer
 * ops, GEMM, attention, quantization, and the CPU kernels' ISA and thread settings.
 *
 * Ops are stateless functions on tensors, so they are plain helpers here (dsabi_op_<name>, which
 * naming.i turns into op_<name>), one per ds_op_<name>, with the same arguments in the same order:
 *   - tensors are TensorHandle objects; an optional one may be the language's null (NULL here);
 *   - tensor lists use the (ds_tensor_t* const*, int32_t) typemap of buffers.i under their C names
 *     (params, grads, state1, state2, params_lp; tensors);
 *   - the out-parameters of the C functions become return values: op_global_norm returns the norm,
 *     op_find_nonfinite and op_optim_step a bool (nonfinite found / step skipped), the getters
 *     the ISA and thread count;
 *   - options structs are OptimOptions, GemmOptions, AttnOptions and QuantOptions (structs.i),
 *     built with the library's defaults; NULL means "all defaults", as in C.
 * Outputs are caller-allocated tensors, as in C: the hand-written layers add their conveniences
 * (allocating an output, NumPy/torch arguments) on top.
 *
 * Ops on CUDA tensors are asynchronous (dsabi.h): they are queued on the device's legacy default
 * stream and return; their inputs must stay alive until the device is synchronised or a later
 * call on that device consumes the results. Calls release the GIL in Python like every other.
 */

%define DSABI_OPTIONS_CTOR(cname, init_call)
%extend cname {
    cname() {
        cname##_t* opts = (cname##_t*)malloc(sizeof *opts);
        if (opts) init_call;
        else dsabi_fail(DS_ERR_NOMEM, "out of host memory");
        return opts;
    }
    ~cname() { free($self); }
}
%enddef

DSABI_OPTIONS_CTOR(ds_gemm_options, ds_gemm_options_init(opts))
DSABI_OPTIONS_CTOR(ds_attn_options, ds_attn_options_init(opts))
DSABI_OPTIONS_CTOR(ds_quant_options, ds_quant_options_init(opts))

/* The optimizer's defaults depend on its kind (ds_optim_options_init(opt, kind)). */
%extend ds_optim_options {
    ds_optim_options(int32_t kind) {
        ds_optim_options_t* opts = (ds_optim_options_t*)malloc(sizeof *opts);
        if (opts) ds_optim_options_init(opts, kind);
        else dsabi_fail(DS_ERR_NOMEM, "out of host memory");
        return opts;
    }
    ~ds_optim_options() { free($self); }
}

%apply (ds_tensor_t* const* tensors, int32_t n_tensors) {
    (ds_tensor_t* const* params, int32_t n_params),
    (ds_tensor_t* const* grads, int32_t n_grads),
    (ds_tensor_t* const* state1, int32_t n_state1),
    (ds_tensor_t* const* state2, int32_t n_state2),
    (ds_tensor_t* const* params_lp, int32_t n_params_lp)
};

%inline %{
/* ---- CPU kernels: instruction set and threads ------------------------------------------------- */

int32_t dsabi_op_get_cpu_isa(void) {
    int32_t isa = 0;
    dsabi_ok(ds_op_get_cpu_isa(&isa));
    return isa;
}

void dsabi_op_set_cpu_isa(int32_t isa) { dsabi_ok(ds_op_set_cpu_isa(isa)); }

int32_t dsabi_op_get_num_threads(void) {
    int32_t n = 0;
    dsabi_ok(ds_op_get_num_threads(&n));
    return n;
}

void dsabi_op_set_num_threads(int32_t n) { dsabi_ok(ds_op_set_num_threads(n)); }

/* ---- optimizers --------------------------------------------------------------------------------- */

/* One step; returns whether it was skipped (check_finite and a non-finite gradient). A negative
 * count means the list typemap failed with its status pending (Go). */
bool dsabi_op_optim_step(const ds_optim_options_t* opt, int64_t step, ds_tensor_t* const* params, int32_t n_params,
                         ds_tensor_t* const* grads, int32_t n_grads, ds_tensor_t* const* state1, int32_t n_state1,
                         ds_tensor_t* const* state2, int32_t n_state2, ds_tensor_t* const* params_lp,
                         int32_t n_params_lp) {
    if (n_params < 0 || n_grads < 0 || n_state1 < 0 || n_state2 < 0 || n_params_lp < 0) return false;
    int32_t skipped = 0;
    dsabi_ok(ds_op_optim_step(opt, step, params, n_params, grads, n_grads, state1, n_state1, state2, n_state2,
                              params_lp, n_params_lp, &skipped));
    return skipped != 0;
}

/* ---- reductions and element-wise utilities ------------------------------------------------------ */

double dsabi_op_global_norm(ds_tensor_t* const* tensors, int32_t n_tensors) {
    double norm = 0;
    if (n_tensors >= 0) dsabi_ok(ds_op_global_norm(tensors, n_tensors, &norm));
    return norm;
}

void dsabi_op_scale(ds_tensor_t* const* tensors, int32_t n_tensors, double alpha) {
    if (n_tensors >= 0) dsabi_ok(ds_op_scale(tensors, n_tensors, alpha));
}

bool dsabi_op_find_nonfinite(ds_tensor_t* const* tensors, int32_t n_tensors) {
    int32_t found = 0;
    if (n_tensors >= 0) dsabi_ok(ds_op_find_nonfinite(tensors, n_tensors, &found));
    return found != 0;
}

void dsabi_op_cast(const ds_tensor_t* src, ds_tensor_t* dst, float scale) { dsabi_ok(ds_op_cast(src, dst, scale)); }

/* ---- transformer ops ---------------------------------------------------------------------------- */

void dsabi_op_embedding(const ds_tensor_t* weight, const ds_tensor_t* ids, ds_tensor_t* out) {
    dsabi_ok(ds_op_embedding(weight, ids, out));
}

void dsabi_op_embedding_backward(const ds_tensor_t* ids, const ds_tensor_t* dout, ds_tensor_t* dweight) {
    dsabi_ok(ds_op_embedding_backward(ids, dout, dweight));
}

void dsabi_op_layer_norm(const ds_tensor_t* x, const ds_tensor_t* weight, const ds_tensor_t* bias, float eps,
                         ds_tensor_t* y, ds_tensor_t* mean, ds_tensor_t* rstd) {
    dsabi_ok(ds_op_layer_norm(x, weight, bias, eps, y, mean, rstd));
}

void dsabi_op_layer_norm_backward(const ds_tensor_t* dy, const ds_tensor_t* x, const ds_tensor_t* weight,
                                  const ds_tensor_t* mean, const ds_tensor_t* rstd, ds_tensor_t* dx,
                                  ds_tensor_t* dweight, ds_tensor_t* dbias) {
    dsabi_ok(ds_op_layer_norm_backward(dy, x, weight, mean, rstd, dx, dweight, dbias));
}

void dsabi_op_rms_norm(const ds_tensor_t* x, const ds_tensor_t* weight, float eps, ds_tensor_t* y, ds_tensor_t* rstd) {
    dsabi_ok(ds_op_rms_norm(x, weight, eps, y, rstd));
}

void dsabi_op_rms_norm_backward(const ds_tensor_t* dy, const ds_tensor_t* x, const ds_tensor_t* weight,
                                const ds_tensor_t* rstd, ds_tensor_t* dx, ds_tensor_t* dweight) {
    dsabi_ok(ds_op_rms_norm_backward(dy, x, weight, rstd, dx, dweight));
}

void dsabi_op_activation(int32_t act, const ds_tensor_t* x, ds_tensor_t* y) { dsabi_ok(ds_op_activation(act, x, y)); }

void dsabi_op_activation_backward(int32_t act, const ds_tensor_t* x, const ds_tensor_t* dy, ds_tensor_t* dx) {
    dsabi_ok(ds_op_activation_backward(act, x, dy, dx));
}

void dsabi_op_swiglu(const ds_tensor_t* gate, const ds_tensor_t* up, ds_tensor_t* y) {
    dsabi_ok(ds_op_swiglu(gate, up, y));
}

void dsabi_op_swiglu_backward(const ds_tensor_t* gate, const ds_tensor_t* up, const ds_tensor_t* dy,
                              ds_tensor_t* dgate, ds_tensor_t* dup) {
    dsabi_ok(ds_op_swiglu_backward(gate, up, dy, dgate, dup));
}

void dsabi_op_add(const ds_tensor_t* a, const ds_tensor_t* b, ds_tensor_t* y) { dsabi_ok(ds_op_add(a, b, y)); }

void dsabi_op_sum_rows(const ds_tensor_t* dy, ds_tensor_t* dbias) { dsabi_ok(ds_op_sum_rows(dy, dbias)); }

void dsabi_op_softmax(const ds_tensor_t* x, float scale, ds_tensor_t* y) { dsabi_ok(ds_op_softmax(x, scale, y)); }

void dsabi_op_softmax_backward(const ds_tensor_t* y, const ds_tensor_t* dy, float scale, ds_tensor_t* dx) {
    dsabi_ok(ds_op_softmax_backward(y, dy, scale, dx));
}

void dsabi_op_cross_entropy(const ds_tensor_t* logits, const ds_tensor_t* targets, int64_t ignore_index, float dloss,
                            ds_tensor_t* losses, ds_tensor_t* dlogits) {
    dsabi_ok(ds_op_cross_entropy(logits, targets, ignore_index, dloss, losses, dlogits));
}

void dsabi_op_rope(const ds_tensor_t* x, const ds_tensor_t* positions, float theta, bool inverse, ds_tensor_t* y) {
    dsabi_ok(ds_op_rope(x, positions, theta, inverse ? 1 : 0, y));
}

void dsabi_op_dropout(const ds_tensor_t* x, float p, uint64_t seed, uint64_t offset, ds_tensor_t* y) {
    dsabi_ok(ds_op_dropout(x, p, seed, offset, y));
}

/* ---- GEMM, attention, quantization -------------------------------------------------------------- */

void dsabi_op_gemm(const ds_tensor_t* a, const ds_tensor_t* b, const ds_tensor_t* bias, ds_tensor_t* c,
                   const ds_gemm_options_t* opt) {
    dsabi_ok(ds_op_gemm(a, b, bias, c, opt));
}

void dsabi_op_attention(const ds_tensor_t* q, const ds_tensor_t* k, const ds_tensor_t* v, ds_tensor_t* o,
                        ds_tensor_t* lse, const ds_attn_options_t* opt) {
    dsabi_ok(ds_op_attention(q, k, v, o, lse, opt));
}

void dsabi_op_attention_backward(const ds_tensor_t* q, const ds_tensor_t* k, const ds_tensor_t* v,
                                 const ds_tensor_t* o, const ds_tensor_t* dout, const ds_tensor_t* lse,
                                 ds_tensor_t* dq, ds_tensor_t* dk, ds_tensor_t* dv, const ds_attn_options_t* opt) {
    dsabi_ok(ds_op_attention_backward(q, k, v, o, dout, lse, dq, dk, dv, opt));
}

void dsabi_op_quantize(const ds_tensor_t* x, ds_tensor_t* q, ds_tensor_t* scales, ds_tensor_t* zeros,
                       const ds_quant_options_t* opt) {
    dsabi_ok(ds_op_quantize(x, q, scales, zeros, opt));
}

void dsabi_op_dequantize(const ds_tensor_t* q, const ds_tensor_t* scales, const ds_tensor_t* zeros, ds_tensor_t* y,
                         const ds_quant_options_t* opt) {
    dsabi_ok(ds_op_dequantize(q, scales, zeros, y, opt));
}

void dsabi_op_gemm_wq(const ds_tensor_t* x, const ds_tensor_t* wq, const ds_tensor_t* scales,
                      const ds_tensor_t* zeros, const ds_tensor_t* bias, ds_tensor_t* y, const ds_quant_options_t* opt) {
    dsabi_ok(ds_op_gemm_wq(x, wq, scales, zeros, bias, y, opt));
}
%}
