/* dsabi_java.i - Java entry of the SWIG bindings (swig -java -package org.dsabi).
 *
 * Everything generated here is package-private: DsabiNative (functions), DsabiNativeConstants,
 * DsabiJNI, ConfigHandle, TensorHandle and DevInfo. The public API is the hand-written classes in
 * src/main/java/org/dsabi (Config, Tensor, Dsabi, Device, ...), which own these handles.
 * Java-specific here:
 *   - a pending status throws org.dsabi.DsException (built by DsException.of for the code);
 *   - strings cross as real UTF-8 (JNI's "modified UTF-8" mangles NULs and characters beyond
 *     the BMP), through byte[] on the Java side;
 *   - direct ByteBuffer addresses and views for zero-copy tensor data;
 *   - a log sink that calls back into Dsabi.dispatchLog;
 *   - the data pipeline's callbacks: build progress (BuildProgressListener, on the calling thread)
 *     and custom curriculum schedules (DifficultySchedule, on any thread: loader workers are
 *     attached to the JVM for each call);
 *   - a static loader in DsabiJNI that also refuses a library of another version.
 */
%module(jniclassname="DsabiJNI") DsabiNative

/* Enumerations become package-private classes of int constants (DsabiNative constants would be a
 * public interface); the few macros Java needs are given as the enum NativeMacros below. */
%include <enumtypeunsafe.swg>
%javaconst(1);
%typemap(javaclassmodifiers) enum SWIGTYPE "final class"

%pragma(java) moduleclassmodifiers="final class"
%pragma(java) jniclassclassmodifiers="final class"
%typemap(javaclassmodifiers) SWIGTYPE "final class"
/* Lifetime is managed by the public classes (AutoCloseable + a Cleaner as backstop): no finalize(). */
%typemap(javafinalize) SWIGTYPE ""

/* 64-bit integers are Java longs, unsigned ones included (sizes and addresses stay below 2^63). */
%apply long long { int64_t, uint64_t };

/* Load libdsabijni (-Dorg.dsabi.jni=/path/to/libdsabijni.so, else java.library.path) and check
 * that the libdsabi it pulled in is the version these classes were generated for. */
%pragma(java) jniclasscode=%{
  static {
    String explicit = System.getProperty("org.dsabi.jni");
    if (explicit != null) {
      System.load(explicit);
    } else {
      System.loadLibrary("dsabijni");
    }
    long loaded = version_number();
    int expected = NativeMacros.DSABI_VERSION_NUMBER;
    if (loaded / 100 != expected / 100) {
      throw new UnsatisfiedLinkError("libdsabi " + Utf8.decode(version_string()) + " (" + loaded + ") is loaded, "
          + "but these bindings were built for version number " + expected + ": the major and minor versions "
          + "must match");
    }
  }
%}

/* ---- errors ------------------------------------------------------------------------------------ */

%exception {
    $action
    {
        ds_status_t st_ = dsabi_take_status();
        if (st_ != DS_OK) {
            dsabi_java_throw(jenv, st_);
            return $null;
        }
    }
}

/* Calls that may run a custom curriculum schedule on this thread rethrow what it threw. */
%define DSABI_JAVA_RETHROW_CALLBACKS(name)
%exception name {
    jthrowable* previous_ = dsabi_java_capture;
    jthrowable captured_ = NULL;
    dsabi_java_capture = &captured_;
    $action
    dsabi_java_capture = previous_;
    {
        ds_status_t st_ = dsabi_take_status();
        if (captured_) {
            (*jenv)->Throw(jenv, captured_);
            (*jenv)->DeleteLocalRef(jenv, captured_);
            return $null;
        }
        if (st_ != DS_OK) {
            dsabi_java_throw(jenv, st_);
            return $null;
        }
    }
}
%enddef
DSABI_JAVA_RETHROW_CALLBACKS(ds_data_curriculum::m_difficulty)
DSABI_JAVA_RETHROW_CALLBACKS(ds_data_curriculum::m_update)

%{
/* Where a Java callback running on this thread leaves what it threw (a local reference of the
 * waiting call's frame), or NULL: then it is printed and cleared. */
static _Thread_local jthrowable* dsabi_java_capture;
%}

/* ---- strings as UTF-8 ---------------------------------------------------------------------------- */

%typemap(jni) const char*, char* "jbyteArray"
%typemap(jtype) const char*, char* "byte[]"
%typemap(jstype) const char*, char* "String"
%typemap(javain) const char*, char* "Utf8.encode($javainput)"
%typemap(javaout) const char*, char* {
    return Utf8.decode($jnicall);
  }
%typemap(in) const char*, char* {
    $1 = NULL;
    if ($input) {
        jsize n = (*jenv)->GetArrayLength(jenv, $input);
        $1 = ($1_ltype)malloc((size_t)n + 1);
        if (!$1) {
            SWIG_JavaThrowException(jenv, SWIG_JavaOutOfMemoryError, "string argument");
            return $null;
        }
        (*jenv)->GetByteArrayRegion(jenv, $input, 0, n, (jbyte*)$1);
        ((char*)$1)[n] = '\0';
    }
}
%typemap(freearg) const char*, char* "free((void*)$1);"
%typemap(out) const char*, char* "if ($1) $result = dsabi_java_utf8(jenv, $1);"

/* JNIEnv* parameters of the helpers below are filled in, not passed from Java. */
%typemap(in, numinputs=0) JNIEnv* env "$1 = jenv;"

/* ---- direct buffers ---------------------------------------------------------------------------- */

%typemap(jni) jobject buffer "jobject"
%typemap(jtype) jobject buffer "java.nio.Buffer"
%typemap(jstype) jobject buffer "java.nio.Buffer"
%typemap(javain) jobject buffer "$javainput"
%typemap(in) jobject buffer "$1 = $input;"

%{
typedef jobject dsabi_byte_buffer;
%}
typedef jobject dsabi_byte_buffer;
%typemap(jni) dsabi_byte_buffer "jobject"
%typemap(jtype) dsabi_byte_buffer "java.nio.ByteBuffer"
%typemap(jstype) dsabi_byte_buffer "java.nio.ByteBuffer"
%typemap(javaout) dsabi_byte_buffer {
    return $jnicall;
  }
%typemap(out) dsabi_byte_buffer "$result = $1;"

%include "dsabi_common.i"

/* C code that uses status.i comes after the shared part. */
%{
#include <string.h>

static jbyteArray dsabi_java_utf8(JNIEnv* env, const char* s) {
    jsize n = (jsize)strlen(s);
    jbyteArray bytes = (*env)->NewByteArray(env, n);
    if (bytes) (*env)->SetByteArrayRegion(env, bytes, 0, n, (const jbyte*)s);
    return bytes;
}

/* Throw the DsException for status st, with this thread's message. */
static void dsabi_java_throw(JNIEnv* env, ds_status_t st) {
    jclass cls = (*env)->FindClass(env, "org/dsabi/DsException");
    if (!cls) return; /* NoClassDefFoundError is pending */
    jmethodID of = (*env)->GetStaticMethodID(env, cls, "of", "(I[B)Lorg/dsabi/DsException;");
    jbyteArray message = of ? dsabi_java_utf8(env, dsabi_error_message()) : NULL;
    if (message) {
        jobject exc = (*env)->CallStaticObjectMethod(env, cls, of, (jint)st, message);
        if (exc && !(*env)->ExceptionCheck(env)) (*env)->Throw(env, (jthrowable)exc);
    }
    (*env)->DeleteLocalRef(env, cls);
}
%}

%rename(NativeMacros) dsabi_java_macros;
%inline %{
enum dsabi_java_macros {
    DSABI_VERSION_NUMBER = DS_VERSION_NUMBER,
    DSABI_ABI_VERSION = DS_ABI_VERSION,
    DSABI_TENSOR_MAX_DIMS = DS_TENSOR_MAX_DIMS,
    DSABI_UNSET_I32 = DS_UNSET_I32,
    DSABI_COMM_SPLIT_NONE = DS_COMM_SPLIT_NONE
};
%}

%inline %{
/* Address of a direct buffer's first byte (the buffer's position is not applied). */
int64_t dsabi_buffer_address(JNIEnv* env, jobject buffer) {
    void* p = buffer ? (*env)->GetDirectBufferAddress(env, buffer) : NULL;
    if (!p) dsabi_fail(DS_ERR_INVALID_ARG, "a direct java.nio buffer is required (ByteBuffer.allocateDirect)");
    return (int64_t)(intptr_t)p;
}

/* A ByteBuffer over nbytes at address; the caller keeps the memory alive while the buffer is used. */
dsabi_byte_buffer dsabi_byte_buffer_at(JNIEnv* env, int64_t address, int64_t nbytes) {
    jobject buffer = (*env)->NewDirectByteBuffer(env, (void*)(intptr_t)address, (jlong)nbytes);
    if (!buffer && !(*env)->ExceptionCheck(env))
        dsabi_fail(DS_ERR_UNSUPPORTED, "this JVM does not support JNI access to direct buffers");
    return buffer;
}
%}

/* ---- log sink ---------------------------------------------------------------------------------- */

%{
static JavaVM* dsabi_java_vm;
static jclass dsabi_java_log_class;    /* global reference to org.dsabi.Dsabi */
static jmethodID dsabi_java_log_method; /* static void dispatchLog(int level, byte[] utf8) */

static void dsabi_java_log_sink(int32_t level, const char* message, void* user_data) {
    (void)user_data;
    JNIEnv* env = NULL;
    int attached = 0;
    jint got = (*dsabi_java_vm)->GetEnv(dsabi_java_vm, (void**)&env, JNI_VERSION_1_8);
    if (got == JNI_EDETACHED) {
        if ((*dsabi_java_vm)->AttachCurrentThreadAsDaemon(dsabi_java_vm, (void**)&env, NULL) != JNI_OK) return;
        attached = 1;
    } else if (got != JNI_OK) {
        return;
    }
    if (!(*env)->ExceptionCheck(env)) {
        jbyteArray text = dsabi_java_utf8(env, message);
        if (text) {
            (*env)->CallStaticVoidMethod(env, dsabi_java_log_class, dsabi_java_log_method, (jint)level, text);
            (*env)->DeleteLocalRef(env, text);
        }
        if ((*env)->ExceptionCheck(env)) (*env)->ExceptionClear(env); /* a sink cannot fail a call */
    }
    if (attached) (*dsabi_java_vm)->DetachCurrentThread(dsabi_java_vm);
}
%}

%inline %{
/* Deliver messages of level <= max_level to Dsabi.dispatchLog (forward = true) or to the default
 * stderr sink (forward = false). */
void dsabi_set_log_forwarding(JNIEnv* env, bool forward, int32_t max_level) {
    if (!forward) {
        dsabi_ok(ds_lib_set_log(NULL, NULL, max_level));
        return;
    }
    if (!dsabi_java_log_class) {
        jclass cls = (*env)->FindClass(env, "org/dsabi/Dsabi");
        if (!cls) return;
        jmethodID method = (*env)->GetStaticMethodID(env, cls, "dispatchLog", "(I[B)V");
        if (!method || (*env)->GetJavaVM(env, &dsabi_java_vm) != JNI_OK) return;
        dsabi_java_log_method = method;
        dsabi_java_log_class = (jclass)(*env)->NewGlobalRef(env, cls);
    }
    dsabi_ok(ds_lib_set_log(dsabi_java_log_sink, NULL, max_level));
}
%}

/* ---- data pipeline callbacks ------------------------------------------------------------------ */

%typemap(jni) jobject progress "jobject"
%typemap(jtype) jobject progress "BuildProgressListener"
%typemap(jstype) jobject progress "BuildProgressListener"
%typemap(javain) jobject progress "$javainput"
%typemap(in) jobject progress "$1 = $input;"
%typemap(jni) jobject schedule "jobject"
%typemap(jtype) jobject schedule "DifficultySchedule"
%typemap(jstype) jobject schedule "DifficultySchedule"
%typemap(javain) jobject schedule "$javainput"
%typemap(in) jobject schedule "$1 = $input;"

%{
/* The JNIEnv of this thread, attaching it (as a daemon) when the library called from one of its
 * own threads; *attached says whether to detach after the call. */
static JNIEnv* dsabi_java_env(JavaVM* vm, int* attached) {
    JNIEnv* env = NULL;
    *attached = 0;
    jint got = (*vm)->GetEnv(vm, (void**)&env, JNI_VERSION_1_8);
    if (got == JNI_EDETACHED) {
        if ((*vm)->AttachCurrentThreadAsDaemon(vm, (void**)&env, NULL) != JNI_OK) return NULL;
        *attached = 1;
    } else if (got != JNI_OK) {
        return NULL;
    }
    return env;
}

/* With an exception pending: keep it for the waiting call on this thread, or print it. Clears it. */
static void dsabi_java_callback_failed(JNIEnv* env) {
    jthrowable thrown = (*env)->ExceptionOccurred(env);
    (*env)->ExceptionClear(env);
    if (dsabi_java_capture && !*dsabi_java_capture) {
        *dsabi_java_capture = thrown;
        return;
    }
    /* Nobody waits for it on this thread (a loader worker): report it like an uncaught exception. */
    (*env)->Throw(env, thrown);
    (*env)->ExceptionDescribe(env);
    (*env)->ExceptionClear(env);
    (*env)->DeleteLocalRef(env, thrown);
}

typedef struct dsabi_java_progress {
    JNIEnv* env; /* the building thread's: progress is reported on it */
    jobject listener;
    jmethodID method;
} dsabi_java_progress_t;

static int32_t dsabi_java_progress(uint64_t done, uint64_t total, uint64_t documents, uint64_t tokens, void* user_data) {
    dsabi_java_progress_t* p = (dsabi_java_progress_t*)user_data;
    JNIEnv* env = p->env;
    jboolean go_on = (*env)->CallBooleanMethod(env, p->listener, p->method, (jlong)done, (jlong)total, (jlong)documents,
                                               (jlong)tokens);
    if ((*env)->ExceptionCheck(env)) {
        dsabi_java_callback_failed(env);
        return 1;
    }
    return go_on ? 0 : 1;
}

static JavaVM* dsabi_java_schedule_vm;
static jmethodID dsabi_java_schedule_method; /* long DifficultySchedule.difficulty(long) */

static int64_t dsabi_java_difficulty(int64_t step, void* user_data) {
    int attached = 0;
    JNIEnv* env = dsabi_java_env(dsabi_java_schedule_vm, &attached);
    if (!env) return 0;
    jlong d = (*env)->CallLongMethod(env, (jobject)user_data, dsabi_java_schedule_method, (jlong)step);
    if ((*env)->ExceptionCheck(env)) {
        dsabi_java_callback_failed(env);
        d = 0;
    }
    if (attached) (*dsabi_java_schedule_vm)->DetachCurrentThread(dsabi_java_schedule_vm);
    return (int64_t)d;
}
%}

%newobject dsabi_data_build_java;
%inline %{
/* ds_data_build reporting progress to listener (or none when it is null). A listener that returns
 * false stops the build (pending DS_ABORTED); one that throws stops it and its exception is
 * rethrown here. */
ds_data_build_stats_t* dsabi_data_build_java(JNIEnv* env, const char* out_path, const char* const* paths, int32_t n_paths,
                                             ds_data_build_options_t* opts, const ds_data_tokenizer_t* tokenizer,
                                             const char* delimiter, jobject progress) {
    dsabi_java_progress_t p = {env, progress, NULL};
    if (progress) {
        jclass cls = (*env)->FindClass(env, "org/dsabi/BuildProgressListener");
        if (!cls) return NULL;
        p.method = (*env)->GetMethodID(env, cls, "onProgress", "(JJJJ)Z");
        (*env)->DeleteLocalRef(env, cls);
        if (!p.method) return NULL;
        opts->progress = dsabi_java_progress;
        opts->progress_user_data = &p;
    }
    jthrowable captured = NULL;
    jthrowable* previous = dsabi_java_capture;
    dsabi_java_capture = &captured;
    ds_data_build_stats_t* stats = dsabi_data_build_with(out_path, paths, n_paths, opts, tokenizer, delimiter);
    dsabi_java_capture = previous;
    opts->progress = NULL;
    opts->progress_user_data = NULL;
    if (captured) { /* the listener's exception stopped the build: it wins over DS_ABORTED */
        dsabi_take_status();
        free(stats);
        (*env)->Throw(env, captured);
        (*env)->DeleteLocalRef(env, captured);
        return NULL;
    }
    return stats;
}

/* Make schedule the custom schedule of opts. Returns a JNI global reference to it, which must
 * outlive the curriculum and every loader using it: release it with dsabi_release_callback. */
int64_t dsabi_curriculum_options_set_custom(JNIEnv* env, ds_data_curriculum_options_t* opts, jobject schedule) {
    if (!dsabi_java_schedule_method) {
        jclass cls = (*env)->FindClass(env, "org/dsabi/DifficultySchedule");
        if (!cls) return 0;
        jmethodID method = (*env)->GetMethodID(env, cls, "difficulty", "(J)J");
        (*env)->DeleteLocalRef(env, cls);
        if (!method || (*env)->GetJavaVM(env, &dsabi_java_schedule_vm) != JNI_OK) return 0;
        dsabi_java_schedule_method = method;
    }
    jobject ref = (*env)->NewGlobalRef(env, schedule);
    if (!ref) {
        dsabi_fail(DS_ERR_NOMEM, "no JNI global reference for the schedule");
        return 0;
    }
    opts->custom_fn = dsabi_java_difficulty;
    opts->custom_user_data = ref;
    return (int64_t)(intptr_t)ref;
}

void dsabi_release_callback(JNIEnv* env, int64_t ref) {
    if (ref) (*env)->DeleteGlobalRef(env, (jobject)(intptr_t)ref);
}
%}
