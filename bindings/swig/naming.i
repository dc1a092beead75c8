/* naming.i - names in the generated layer.
 *
 * The generated layer is internal in every language (dsabi.dsabi_swig, package-private Java classes,
 * the Go package internal/swig); the hand-written layers on top give each language its own
 * idiomatic names. So the rules here are few and the same for all languages:
 *
 * - Handle structs become classes named <Thing>Handle (ds_config -> ConfigHandle, ds_data_loader ->
 *   LoaderHandle, ...), and the structs of structs.i keep short names (DevInfo, LoaderOptions,
 *   BatchInfo, ...). The public names (Config, Tensor, DataLoader, Comm, ...) belong to the
 *   hand-written layers; in Java both live in the package org.dsabi, so the generated names must
 *   differ from them.
 * - Methods are written m_<name> in handles.i and lose the m_ here. A method named plainly
 *   <name> would make SWIG emit a C helper ds_config_<name> that collides with the real function
 *   of the same name (for example ds_config_get_i64).
 * - Whitelisted library functions lose their ds_ prefix (dsabi_common.i), helper functions their
 *   dsabi_ prefix (below, applied after the whitelist is closed).
 * - Enumerators and macros keep their C names (DS_OK, DS_DTYPE_F32, ...).
 */

/* or-tools' explicit-API macros: after %ignoreall nothing is wrapped unless %unignore'd. */
%define %ignoreall %ignore ""; %enddef
%define %unignore %rename("%s") %enddef
%define %unignoreall %rename("%s") ""; %enddef

%rename(ConfigHandle) ds_config;
%rename(TensorHandle) ds_tensor;
%rename(DataHandle) ds_data;
%rename(WriterHandle) ds_data_writer;
%rename(TokenizerHandle) ds_data_tokenizer;
%rename(SamplerHandle) ds_sampler;
%rename(CurriculumHandle) ds_data_curriculum;
%rename(LoaderHandle) ds_data_loader;
%rename(BatchHandle) ds_data_batch;
%rename(CommHandle) ds_comm;
%rename(WorkHandle) ds_work;

%define DSABI_HELPER_NAMES
%rename("%(strip:[dsabi_])s", regextarget=1) "^dsabi_";
%rename("%(regex:/^m_(.*)$/\\1/)s", regextarget=1, %$ismember) "^m_";
%enddef
