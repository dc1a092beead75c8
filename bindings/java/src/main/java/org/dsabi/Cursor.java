package org.dsabi;

/**
 * Where a {@link DataLoader} is ({@code ds_data_cursor_t}): checkpoints save it, and
 * {@link DataLoader#setCursor} continues exactly there. Immutable.
 */
public final class Cursor {
    private final long epoch;
    private final long position;
    private final long globalStep;
    private final long consumedSamples;

    public Cursor(long epoch, long position, long globalStep, long consumedSamples) {
        this.epoch = epoch;
        this.position = position;
        this.globalStep = globalStep;
        this.consumedSamples = consumedSamples;
    }

    public long epoch() {
        return epoch;
    }

    /** Micro-batches this rank consumed in the epoch. */
    public long position() {
        return position;
    }

    /** Optimizer steps consumed. */
    public long globalStep() {
        return globalStep;
    }

    /** Samples this rank consumed since the first epoch. */
    public long consumedSamples() {
        return consumedSamples;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof Cursor)) {
            return false;
        }
        Cursor c = (Cursor) o;
        return c.epoch == epoch && c.position == position && c.globalStep == globalStep
                && c.consumedSamples == consumedSamples;
    }

    @Override
    public int hashCode() {
        return Long.hashCode(epoch) * 31 + Long.hashCode(position);
    }

    @Override
    public String toString() {
        return "Cursor(epoch=" + epoch + ", position=" + position + ", globalStep=" + globalStep + ", consumedSamples="
                + consumedSamples + ")";
    }
}
