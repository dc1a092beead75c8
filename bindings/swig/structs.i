/* structs.i - the option and result structs of dsabi.h that the bindings expose field by field.
 *
 * %include'd by dsabi_common.i before dsabi.h, inside the whitelist: only the fields named here
 * are wrapped. Option structs get settable fields (dsabi.h is otherwise read-only to the
 * bindings); their constructors, in data.i, comm.i and ops.i, call ds_<x>_options_init, so a
 * field that the hand-written layer leaves alone keeps the library's default (often DS_UNSET_*:
 * "take it from the config"). Pointer and string fields (configs, handles, paths, callbacks) are
 * never exposed: the helpers take them as arguments and set them for the duration of one call,
 * because the target languages could not keep such pointers valid. The header fields
 * struct_size and abi_version stay hidden too; the _init functions fill them.
 *
 * Result structs (DataInfo, DataBuildStats, DataBatchInfo) are read-only and filled by the helper
 * or constructor that returns them; DataCursor is read-write, as checkpoints save and restore it.
 * Their names follow the C names where a shorter one would collide with a public Java class
 * (BuildStats, Cursor, BatchInfo).
 */

%define DSABI_STRUCT(name, cname)
%rename(name) cname;
%rename(name) cname##_t;
%enddef

/* A field the target language may set. */
%define DSABI_SETTABLE(cname, field)
%unignore cname::field;
%feature("immutable", "0") cname::field;
%enddef

/* ---- communication ---------------------------------------------------------------------------- */

DSABI_STRUCT(CommOptions, ds_comm_options)
DSABI_SETTABLE(ds_comm_options, rank)
DSABI_SETTABLE(ds_comm_options, world_size)
DSABI_SETTABLE(ds_comm_options, local_rank)
DSABI_SETTABLE(ds_comm_options, local_world_size)
DSABI_SETTABLE(ds_comm_options, master_port)
DSABI_SETTABLE(ds_comm_options, timeout_ms)
DSABI_SETTABLE(ds_comm_options, backend)
DSABI_SETTABLE(ds_comm_options, check_mismatch)

/* ---- data ------------------------------------------------------------------------------------- */

DSABI_STRUCT(BuildOptions, ds_data_build_options)
DSABI_SETTABLE(ds_data_build_options, split)
DSABI_SETTABLE(ds_data_build_options, append_eot)
DSABI_SETTABLE(ds_data_build_options, token_bytes)
DSABI_SETTABLE(ds_data_build_options, keep_empty)
DSABI_SETTABLE(ds_data_build_options, chunk_bytes)

DSABI_STRUCT(DataBuildStats, ds_data_build_stats)
%nodefaultctor ds_data_build_stats; /* only dsabi_data_build makes them */
%unignore ds_data_build_stats::n_files;
%unignore ds_data_build_stats::n_documents;
%unignore ds_data_build_stats::n_tokens;
%unignore ds_data_build_stats::bytes_in;
%unignore ds_data_build_stats::bytes_out;
%unignore ds_data_build_stats::seconds;

DSABI_STRUCT(DataInfo, ds_data_info)
%unignore ds_data_info::format_version;
%unignore ds_data_info::token_bytes;
%unignore ds_data_info::n_documents;
%unignore ds_data_info::n_tokens;
%unignore ds_data_info::file_bytes;
%unignore ds_data_info::vocab_size;
%unignore ds_data_info::tokens_crc32c;

DSABI_STRUCT(CurriculumOptions, ds_data_curriculum_options)
DSABI_SETTABLE(ds_data_curriculum_options, schedule_type)
DSABI_SETTABLE(ds_data_curriculum_options, floor_mode)
DSABI_SETTABLE(ds_data_curriculum_options, min_difficulty)
DSABI_SETTABLE(ds_data_curriculum_options, max_difficulty)
DSABI_SETTABLE(ds_data_curriculum_options, total_curriculum_step)
DSABI_SETTABLE(ds_data_curriculum_options, difficulty_step)
DSABI_SETTABLE(ds_data_curriculum_options, root_degree)
DSABI_SETTABLE(ds_data_curriculum_options, difficulty_type)

DSABI_STRUCT(LoaderOptions, ds_data_loader_options)
DSABI_SETTABLE(ds_data_loader_options, mode)
DSABI_SETTABLE(ds_data_loader_options, seq_len)
DSABI_SETTABLE(ds_data_loader_options, window_stride)
DSABI_SETTABLE(ds_data_loader_options, micro_batch_size)
DSABI_SETTABLE(ds_data_loader_options, gradient_accumulation_steps)
DSABI_SETTABLE(ds_data_loader_options, rank)
DSABI_SETTABLE(ds_data_loader_options, world_size)
DSABI_SETTABLE(ds_data_loader_options, shuffle)
DSABI_SETTABLE(ds_data_loader_options, drop_last)
DSABI_SETTABLE(ds_data_loader_options, seed)
DSABI_SETTABLE(ds_data_loader_options, num_workers)
DSABI_SETTABLE(ds_data_loader_options, prefetch_depth)
DSABI_SETTABLE(ds_data_loader_options, pin_memory)
DSABI_SETTABLE(ds_data_loader_options, dtype)
DSABI_SETTABLE(ds_data_loader_options, pad_id)
DSABI_SETTABLE(ds_data_loader_options, dynamic_batching)
DSABI_SETTABLE(ds_data_loader_options, max_tokens)
DSABI_SETTABLE(ds_data_loader_options, lr_scaling_method)
DSABI_SETTABLE(ds_data_loader_options, min_batch_size)
DSABI_SETTABLE(ds_data_loader_options, max_batch_size)
DSABI_SETTABLE(ds_data_loader_options, picking_order)
DSABI_SETTABLE(ds_data_loader_options, start_step)

DSABI_STRUCT(DataCursor, ds_data_cursor)
DSABI_SETTABLE(ds_data_cursor, epoch)
DSABI_SETTABLE(ds_data_cursor, position)
DSABI_SETTABLE(ds_data_cursor, global_step)
DSABI_SETTABLE(ds_data_cursor, consumed_samples)

DSABI_STRUCT(DataBatchInfo, ds_data_batch_info)
%unignore ds_data_batch_info::epoch;
%unignore ds_data_batch_info::index;
%unignore ds_data_batch_info::global_step;
%unignore ds_data_batch_info::n_rows;
%unignore ds_data_batch_info::n_columns;
%unignore ds_data_batch_info::n_samples;
%unignore ds_data_batch_info::n_tokens;
%unignore ds_data_batch_info::difficulty;
%unignore ds_data_batch_info::lr_scale;
%unignore ds_data_batch_info::global_batch_samples;
%unignore ds_data_batch_info::pinned;

/* ---- ops -------------------------------------------------------------------------------------- */
/* Constructed by ops.i with the library's defaults (ds_<x>_options_init; the optimizer's depend on
 * its kind, which is therefore a constructor argument rather than a settable field). */

DSABI_STRUCT(OptimOptions, ds_optim_options)
%unignore ds_optim_options::kind;
DSABI_SETTABLE(ds_optim_options, lr)
DSABI_SETTABLE(ds_optim_options, beta1)
DSABI_SETTABLE(ds_optim_options, beta2)
DSABI_SETTABLE(ds_optim_options, eps)
DSABI_SETTABLE(ds_optim_options, weight_decay)
DSABI_SETTABLE(ds_optim_options, bias_correction)
DSABI_SETTABLE(ds_optim_options, momentum)
DSABI_SETTABLE(ds_optim_options, dampening)
DSABI_SETTABLE(ds_optim_options, nesterov)
DSABI_SETTABLE(ds_optim_options, lr_decay)
DSABI_SETTABLE(ds_optim_options, max_coeff)
DSABI_SETTABLE(ds_optim_options, min_coeff)
DSABI_SETTABLE(ds_optim_options, grad_scale)
DSABI_SETTABLE(ds_optim_options, check_finite)

DSABI_STRUCT(GemmOptions, ds_gemm_options)
DSABI_SETTABLE(ds_gemm_options, trans_a)
DSABI_SETTABLE(ds_gemm_options, trans_b)
DSABI_SETTABLE(ds_gemm_options, alpha)
DSABI_SETTABLE(ds_gemm_options, beta)
DSABI_SETTABLE(ds_gemm_options, epilogue)

DSABI_STRUCT(AttnOptions, ds_attn_options)
DSABI_SETTABLE(ds_attn_options, causal)
DSABI_SETTABLE(ds_attn_options, scale)

DSABI_STRUCT(QuantOptions, ds_quant_options)
DSABI_SETTABLE(ds_quant_options, bits)
DSABI_SETTABLE(ds_quant_options, group_size)
DSABI_SETTABLE(ds_quant_options, symmetric)
