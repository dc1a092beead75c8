package org.dsabi;

/**
 * A JNI global reference to a callback object that native code calls through (a custom
 * curriculum schedule), counted over its users: the curriculum and every loader built with it,
 * since a loader keeps the native curriculum alive after it is closed. The last release deletes the
 * reference. Cleaner actions hold it, never the objects that use it.
 */
final class CallbackRef {
    private final long ref;
    private int users = 1;

    CallbackRef(long ref) {
        this.ref = ref;
    }

    synchronized void retain() {
        users++;
    }

    synchronized void release() {
        if (--users == 0) {
            DsabiNative.release_callback(ref);
        }
    }
}
