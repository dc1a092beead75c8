package org.dsabi;

/**
 * The library as a whole: versions, build information, initialisation, logging and errors.
 *
 * <p>The native library {@code libdsabijni.so} is loaded on first use, from
 * {@code -Dorg.dsabi.jni=/path/to/libdsabijni.so} or else from {@code java.library.path}; loading
 * fails with {@link UnsatisfiedLinkError} if the libdsabi it finds is of another major.minor
 * version than these classes.
 */
public final class Dsabi {
    private static volatile LogHandler logHandler;

    private Dsabi() {}

    /** Version of the loaded library, e.g. "0.1.0". */
    public static String version() {
        return DsabiNative.version_string();
    }

    /** major * 10000 + minor * 100 + patch of the loaded library. */
    public static long versionNumber() {
        return DsabiNative.version_number();
    }

    /** The version number these classes were generated for (the header's DS_VERSION_NUMBER). */
    public static int headerVersionNumber() {
        return NativeMacros.DSABI_VERSION_NUMBER;
    }

    /**
     * A JSON object describing the build and run time: version, compiler, features, dependency
     * versions, whether the CUDA backend is loaded and why not.
     */
    public static String buildInfoJson() {
        return DsabiNative.lib_build_info();
    }

    /**
     * Initialises the library with options. Optional: any call initialises it with the defaults,
     * and only the first initialisation has an effect.
     *
     * @param logLevel         null: $DSABI_LOG_LEVEL, else WARN
     * @param loadCuda         false: CPU only
     * @param cudaBackendPath  null: $DSABI_CUDA_BACKEND, else libdsabi_cuda.so next to libdsabi
     */
    public static void init(LogLevel logLevel, boolean loadCuda, String cudaBackendPath) {
        int level = logLevel == null ? NativeMacros.DSABI_UNSET_I32 : logLevel.code();
        DsabiNative.lib_init(level, loadCuda ? 1 : 0, cudaBackendPath);
    }

    /** Releases global resources (a {@link DsException} with {@link Status#STATE} while CUDA tensors live). */
    public static void shutdown() {
        DsabiNative.lib_shutdown();
    }

    /**
     * Sends library messages of {@code maxLevel} or more severe to {@code handler}, or back to
     * stderr when handler is null. Process-global.
     */
    public static synchronized void setLogHandler(LogHandler handler, LogLevel maxLevel) {
        logHandler = handler;
        DsabiNative.set_log_forwarding(handler != null, maxLevel.code());
    }

    /** Logs to stderr (the default sink) at {@code maxLevel} or more severe; removes a handler. */
    public static synchronized void setLogLevel(LogLevel maxLevel) {
        DsabiNative.lib_set_log_level(maxLevel.code());
        logHandler = null;
    }

    /** The message of the most recent failing call on this thread, or "" if none. */
    public static String lastError() {
        return DsabiNative.last_error();
    }

    public static void clearLastError() {
        DsabiNative.last_error_clear();
    }

    /** Address of an exported dsabi function ({@code ds_get_proc_address}), for FFI users. */
    public static long procAddress(String functionName) {
        return DsabiNative.get_proc_address(functionName);
    }

    /** Called by the native log sink (dsabi_java.i). */
    static void dispatchLog(int level, byte[] utf8Message) {
        LogHandler handler = logHandler;
        if (handler == null) {
            return;
        }
        try {
            handler.log(LogLevel.fromCode(level), Utf8.decode(utf8Message));
        } catch (RuntimeException e) {
            // A sink cannot fail the call that logged.
        }
    }
}
