package org.dsabi;

/** What a micro-batch is ({@code ds_data_batch_info_t}). */
public final class BatchInfo {
    private final long epoch;
    private final long index;
    private final long globalStep;
    private final long rows;
    private final long columns;
    private final long samples;
    private final long tokens;
    private final long difficulty;
    private final double lrScale;
    private final long globalBatchSamples;
    private final boolean pinned;

    BatchInfo(DataBatchInfo raw) {
        epoch = raw.getEpoch();
        index = raw.getIndex();
        globalStep = raw.getGlobal_step();
        rows = raw.getN_rows();
        columns = raw.getN_columns();
        samples = raw.getN_samples();
        tokens = raw.getN_tokens();
        difficulty = raw.getDifficulty();
        lrScale = raw.getLr_scale();
        globalBatchSamples = raw.getGlobal_batch_samples();
        pinned = raw.getPinned() != 0;
    }

    public long epoch() {
        return epoch;
    }

    /** The micro-batch's index in the epoch (this rank). */
    public long index() {
        return index;
    }

    /** The optimizer step it belongs to. */
    public long globalStep() {
        return globalStep;
    }

    /** B. */
    public long rows() {
        return rows;
    }

    /** T. */
    public long columns() {
        return columns;
    }

    /** Sequences (more than rows when packed). */
    public long samples() {
        return samples;
    }

    /** Real tokens, without padding. */
    public long tokens() {
        return tokens;
    }

    /** The curriculum difficulty used, or 0. */
    public long difficulty() {
        return difficulty;
    }

    /** Dynamic batching: multiply the learning rate by this; else 1. */
    public double lrScale() {
        return lrScale;
    }

    /** Dynamic batching: sequences in the whole global batch; else 0. */
    public long globalBatchSamples() {
        return globalBatchSamples;
    }

    /** Whether the tensors are in pinned host memory. */
    public boolean pinned() {
        return pinned;
    }
}
