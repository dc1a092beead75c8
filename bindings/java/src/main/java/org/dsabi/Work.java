package org.dsabi;

import java.time.Duration;

/**
 * Queued communication, returned by the {@code ...Async} methods of {@link Comm}. It keeps the
 * {@link Tensor}s of the call (and the buffers under them) reachable until the work is complete;
 * the communicator keeps unfinished work, so dropping a Work early is safe.
 *
 * <p>{@link #close()} waits for the work to complete, then releases the handle.
 */
public final class Work extends NativeResource {
    private final WorkHandle handle;
    private volatile Object[] keepAlive;
    private volatile boolean done;

    Work(WorkHandle handle, Object... keepAlive) {
        super("Work", handle, releaser(WorkHandle.getCPtr(handle)));
        this.handle = handle;
        this.keepAlive = keepAlive;
    }

    private static Runnable releaser(long ptr) {
        return () -> DsabiJNI.delete_WorkHandle(ptr);
    }

    private WorkHandle handle() {
        checkOpen();
        return handle;
    }

    /**
     * Waits until the work has finished. A failed work throws its {@link DsException}
     * ({@link Status#COMM_PEER}, {@link Status#COMM_TIMEOUT}, ...), an aborted one a DsException
     * with {@link Status#ABORTED}.
     */
    public void waitFor() {
        waitFor(null);
    }

    /**
     * Waits at most timeout (null: until the work finishes).
     *
     * @return true when the work completed, false when the timeout expired first
     */
    public boolean waitFor(Duration timeout) {
        if (done) {
            return true;
        }
        int ms = timeout == null ? -1 : (int) Math.min(Integer.MAX_VALUE, Math.max(0, timeout.toMillis()));
        boolean finished;
        try {
            finished = handle().wait(ms);
        } catch (DsException e) {
            finish();
            throw e;
        }
        if (finished) {
            finish();
        }
        return finished;
    }

    /** Whether the work has finished (then {@link #waitFor()} returns at once). */
    public boolean isDone() {
        if (!done && handle().test()) {
            finish();
        }
        return done;
    }

    private void finish() {
        done = true;
        keepAlive = null;
    }

    /** Waits for the work (its error is not thrown here), then releases the handle. */
    @Override
    public void close() {
        if (!isClosed() && !done) {
            try {
                waitFor();
            } catch (DsException e) {
                // reported to whoever waits; closing only needs the work to be over
            }
        }
        super.close();
    }

    @Override
    public String toString() {
        return done ? "Work(done)" : "Work(pending)";
    }
}
