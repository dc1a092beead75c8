package org.dsabi;

/**
 * A custom curriculum schedule: the difficulty at an optimizer step ({@link Curriculum.Options#custom}).
 *
 * <p>It may be called from a {@link DataLoader}'s worker threads (attached to the JVM for the
 * call) as well as from the thread that asks {@link Curriculum#difficulty} or
 * {@link Curriculum#update}; it must be thread-safe and must not call dsabi. What it throws is
 * rethrown by those two methods; on worker threads it is printed and the difficulty is 0.
 */
@FunctionalInterface
public interface DifficultySchedule {
    long difficulty(long step);
}
