package org.dsabi;

/**
 * PyTorch's {@code DistributedSampler}, in exactly its order: this rank's share of a permutation
 * seeded {@code seed + epoch}, padded (or, with dropLast, cut) so that every rank gets as many
 * samples.
 */
public final class DistributedSampler extends NativeResource {
    /** Sampler options ({@code ds_sampler_options_t}); the defaults are DistributedSampler's. */
    public static final class Options {
        private int rank;
        private int worldSize = 1;
        private long seed;
        private boolean shuffle = true;
        private boolean dropLast;

        public Options rank(int rank) {
            this.rank = rank;
            return this;
        }

        public Options worldSize(int worldSize) {
            this.worldSize = worldSize;
            return this;
        }

        public Options seed(long seed) {
            this.seed = seed;
            return this;
        }

        public Options shuffle(boolean shuffle) {
            this.shuffle = shuffle;
            return this;
        }

        public Options dropLast(boolean dropLast) {
            this.dropLast = dropLast;
            return this;
        }
    }

    private final SamplerHandle handle;

    public DistributedSampler(long samples) {
        this(samples, new Options());
    }

    public DistributedSampler(long samples, Options o) {
        this(SamplerHandle.create(samples, o.rank, o.worldSize, o.seed, o.shuffle, o.dropLast));
    }

    private DistributedSampler(SamplerHandle handle) {
        super("DistributedSampler", handle, releaser(SamplerHandle.getCPtr(handle)));
        this.handle = handle;
    }

    private static Runnable releaser(long ptr) {
        return () -> DsabiJNI.delete_SamplerHandle(ptr);
    }

    private SamplerHandle handle() {
        checkOpen();
        return handle;
    }

    /** Samples this rank gets per epoch. */
    public long length() {
        return handle().length();
    }

    /** This rank's whole share of an epoch, in order (the cursor stays where it is). */
    public long[] indices(long epoch) {
        return Vectors.longs(handle().indices(epoch));
    }

    /** Starts epoch at position 0. */
    public void setEpoch(long epoch) {
        handle().set_epoch(epoch);
    }

    /** Up to maxN next indices of the current epoch; empty once it is exhausted. */
    public long[] take(int maxN) {
        return Vectors.longs(handle().next(maxN));
    }

    /** The cursor's epoch. */
    public long epoch() {
        return handle().epoch();
    }

    /** The cursor's position: how many of this rank's indices of the epoch were handed out. */
    public long position() {
        return handle().position();
    }

    /** Continues exactly where a saved cursor was taken. */
    public void setCursor(long epoch, long position) {
        handle().set_cursor(epoch, position);
    }
}
