package org.dsabi;

import java.lang.ref.Cleaner;

/**
 * Base of the classes that own a library handle: {@link #close()} releases it at once and is
 * idempotent; a {@link Cleaner} releases it if the object is garbage-collected unclosed.
 *
 * <p>The cleaner watches the generated handle object (not this wrapper), which the generated code
 * passes to every native call, so a handle cannot be released while a call on it is running.
 */
abstract class NativeResource implements AutoCloseable {
    private static final Cleaner CLEANER = Cleaner.create();

    private final String kind;
    private final Cleaner.Cleanable cleanable;
    private volatile boolean closed;

    /**
     * @param kind    name used in messages ("Config", "Tensor")
     * @param handle  the generated handle object to watch
     * @param release releases the native handle; must not refer to {@code handle} or this object
     */
    NativeResource(String kind, Object handle, Runnable release) {
        this.kind = kind;
        this.cleanable = CLEANER.register(handle, release);
    }

    /** Throws {@link IllegalStateException} once the object is closed. */
    final void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this " + kind + " is closed");
        }
    }

    /** Releases the native handle now. Later calls do nothing; any other method then throws. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        cleanable.clean();
    }

    public final boolean isClosed() {
        return closed;
    }
}
