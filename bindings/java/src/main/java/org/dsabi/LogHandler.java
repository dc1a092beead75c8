package org.dsabi;

/**
 * Receives library log messages (see {@link Dsabi#setLogHandler}). Called synchronously on the
 * thread that logs, possibly a library thread; it must not call back into dsabi, and exceptions
 * it throws are ignored.
 */
@FunctionalInterface
public interface LogHandler {
    void log(LogLevel level, String message);
}
