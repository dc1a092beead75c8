package org.dsabi;

/**
 * One micro-batch of a {@link DataLoader}. Its fields are {@link Tensor}s sharing the batch's
 * memory; they stay valid after the batch, the loader and the dataset are closed. Close the batch
 * (and the tensors taken from it) when done: the memory goes back to the loader's pool.
 */
public final class Batch extends NativeResource {
    private final BatchHandle handle;
    private BatchInfo info;

    Batch(BatchHandle handle) {
        super("Batch", handle, releaser(BatchHandle.getCPtr(handle)));
        this.handle = handle;
    }

    private static Runnable releaser(long ptr) {
        return () -> DsabiJNI.delete_BatchHandle(ptr);
    }

    private BatchHandle handle() {
        checkOpen();
        return handle;
    }

    public BatchInfo info() {
        BatchHandle h = handle();
        if (info == null) {
            DataBatchInfo raw = new DataBatchInfo(h);
            try {
                info = new BatchInfo(raw);
            } finally {
                raw.delete();
            }
        }
        return info;
    }

    /** One field as a new Tensor ({@link Status#NOT_FOUND} when this kind of batch has none). */
    public Tensor tensor(Field field) {
        return Tensor.adopt(handle().tensor(field.code()));
    }

    /** [B, T] ids (I32 or I64); padding is the loader's pad id. */
    public Tensor tokens() {
        return tensor(Field.TOKENS);
    }

    /** [B] I32: real tokens per row. */
    public Tensor lengths() {
        return tensor(Field.LENGTHS);
    }

    /** [n] I64: the dataset samples of the batch, in row order. */
    public Tensor sampleIds() {
        return tensor(Field.SAMPLE_IDS);
    }

    /** Packed batches only (else null): [segments + 1] I32 segment starts in the flattened tokens. */
    public Tensor cuSeqlens() {
        return optional(Field.CU_SEQLENS);
    }

    /** Packed batches only (else null): [B, T] I32 positions restarting at each sequence. */
    public Tensor positionIds() {
        return optional(Field.POSITION_IDS);
    }

    /** Packed batches only (else null): [B, T] I32 sequence index in its row, -1 on padding. */
    public Tensor sequenceIds() {
        return optional(Field.SEQUENCE_IDS);
    }

    private Tensor optional(Field field) {
        try {
            return tensor(field);
        } catch (DsException e) {
            if (e.getCode() == Status.NOT_FOUND) {
                return null;
            }
            throw e;
        }
    }

    @Override
    public String toString() {
        if (isClosed()) {
            return "Batch(closed)";
        }
        BatchInfo i = info();
        return "Batch(epoch=" + i.epoch() + ", index=" + i.index() + ", step=" + i.globalStep() + ", " + i.rows() + "x"
                + i.columns() + ")";
    }
}
