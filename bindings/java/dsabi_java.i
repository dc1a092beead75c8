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
%javaconst(0) DSABI_UNSET_I32; /* INT32_MIN is not Java: read its value through JNI */
%inline %{
enum dsabi_java_macros {
    DSABI_VERSION_NUMBER = DS_VERSION_NUMBER,
    DSABI_ABI_VERSION = DS_ABI_VERSION,
    DSABI_TENSOR_MAX_DIMS = DS_TENSOR_MAX_DIMS,
    DSABI_UNSET_I32 = DS_UNSET_I32
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
