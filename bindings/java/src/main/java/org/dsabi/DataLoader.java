package org.dsabi;

import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * Micro-batches of a {@link TokenDataset} for one rank, prepared ahead by worker threads.
 *
 * <pre>{@code
 * try (TokenDataset data = TokenDataset.open(path);
 *      DataLoader loader = DataLoader.create(data, new DataLoader.Options().config(cfg).seqLen(1025).windowStride(1024))) {
 *     for (Batch batch : loader) {          // one epoch; the next loop runs the next epoch
 *         try (batch; Tensor tokens = batch.tokens()) {
 *             IntBuffer ids = tokens.asByteBuffer().asIntBuffer();   // [B, T], no copy
 *         }
 *     }
 * }
 * }</pre>
 *
 * {@link #next()} returns null once at the end of each epoch. Unset options take the config
 * ({@code train_micro_batch_size_per_gpu}, {@code gradient_accumulation_steps},
 * {@code dataloader_drop_last}, {@code data_efficiency}...) or the library's default. The dataset,
 * config and curriculum may be closed while the loader runs: it keeps what it needs.
 */
public final class DataLoader extends NativeResource implements Iterable<Batch> {
    /** Loader options ({@code ds_data_loader_options_t}); null fields keep the defaults. */
    public static final class Options {
        private Config config;
        private Curriculum curriculum;
        private DataMode mode;
        private Integer seqLen;
        private Integer windowStride;
        private Integer microBatchSize;
        private Integer gradientAccumulationSteps;
        private Integer rank;
        private Integer worldSize;
        private Boolean shuffle;
        private Boolean dropLast;
        private Long seed;
        private Integer numWorkers;
        private Integer prefetchDepth;
        private Boolean pinMemory;
        private DType dtype;
        private Integer padId;
        private Boolean dynamicBatching;
        private Long maxTokens;
        private LrScaling lrScaling;
        private Integer minBatchSize;
        private Integer maxBatchSize;
        private PickingOrder pickingOrder;
        private Long startStep;

        /** Batch sizes, drop_last, data_efficiency and curriculum blocks (read at creation only). */
        public Options config(Config v) {
            config = v;
            return this;
        }

        /** A curriculum (default: from the config when it enables one); the loader keeps it. */
        public Options curriculum(Curriculum v) {
            curriculum = v;
            return this;
        }

        public Options mode(DataMode v) {
            mode = v;
            return this;
        }

        /** Windows: ids per sample (required; T + 1 with windowStride T for input/target pairs). Documents: cut length. */
        public Options seqLen(int v) {
            seqLen = v;
            return this;
        }

        /** Windows: distance between samples (default seqLen). */
        public Options windowStride(int v) {
            windowStride = v;
            return this;
        }

        public Options microBatchSize(int v) {
            microBatchSize = v;
            return this;
        }

        public Options gradientAccumulationSteps(int v) {
            gradientAccumulationSteps = v;
            return this;
        }

        /** This rank's place among worldSize data-parallel ranks (default 0 of 1). */
        public Options rank(int rank, int worldSize) {
            this.rank = rank;
            this.worldSize = worldSize;
            return this;
        }

        public Options shuffle(boolean v) {
            shuffle = v;
            return this;
        }

        public Options dropLast(boolean v) {
            dropLast = v;
            return this;
        }

        public Options seed(long v) {
            seed = v;
            return this;
        }

        public Options numWorkers(int v) {
            numWorkers = v;
            return this;
        }

        public Options prefetchDepth(int v) {
            prefetchDepth = v;
            return this;
        }

        /** Pinned host memory (default: when a CUDA device is present). */
        public Options pinMemory(boolean v) {
            pinMemory = v;
            return this;
        }

        /** {@link DType#I32} (default) or {@link DType#I64} token ids. */
        public Options dtype(DType v) {
            dtype = v;
            return this;
        }

        public Options padId(int v) {
            padId = v;
            return this;
        }

        /** Packs documents up to maxTokens per row (needs {@link DataMode#DOCUMENTS}). */
        public Options dynamicBatching(boolean enabled, long maxTokens) {
            this.dynamicBatching = enabled;
            this.maxTokens = maxTokens;
            return this;
        }

        public Options lrScaling(LrScaling v) {
            lrScaling = v;
            return this;
        }

        public Options batchSizeRange(int min, int max) {
            minBatchSize = min;
            maxBatchSize = max;
            return this;
        }

        public Options pickingOrder(PickingOrder v) {
            pickingOrder = v;
            return this;
        }

        /** The global step of the first batch. */
        public Options startStep(long v) {
            startStep = v;
            return this;
        }

        void applyTo(LoaderOptions o) {
            if (mode != null) o.setMode(mode.code());
            if (seqLen != null) o.setSeq_len(seqLen);
            if (windowStride != null) o.setWindow_stride(windowStride);
            if (microBatchSize != null) o.setMicro_batch_size(microBatchSize);
            if (gradientAccumulationSteps != null) o.setGradient_accumulation_steps(gradientAccumulationSteps);
            if (rank != null) o.setRank(rank);
            if (worldSize != null) o.setWorld_size(worldSize);
            if (shuffle != null) o.setShuffle(shuffle ? 1 : 0);
            if (dropLast != null) o.setDrop_last(dropLast ? 1 : 0);
            if (seed != null) o.setSeed(seed);
            if (numWorkers != null) o.setNum_workers(numWorkers);
            if (prefetchDepth != null) o.setPrefetch_depth(prefetchDepth);
            if (pinMemory != null) o.setPin_memory(pinMemory ? 1 : 0);
            if (dtype != null) o.setDtype(dtype.code());
            if (padId != null) o.setPad_id(padId);
            if (dynamicBatching != null) o.setDynamic_batching(dynamicBatching ? 1 : 0);
            if (maxTokens != null) o.setMax_tokens(maxTokens);
            if (lrScaling != null) o.setLr_scaling_method(lrScaling.code());
            if (minBatchSize != null) o.setMin_batch_size(minBatchSize);
            if (maxBatchSize != null) o.setMax_batch_size(maxBatchSize);
            if (pickingOrder != null) o.setPicking_order(pickingOrder.code());
            if (startStep != null) o.setStart_step(startStep);
        }
    }

    private final LoaderHandle handle;

    private DataLoader(LoaderHandle handle, CallbackRef schedule) {
        super("DataLoader", handle, releaser(LoaderHandle.getCPtr(handle), schedule));
        this.handle = handle;
    }

    /** Destroying the loader joins its workers; only then may a custom schedule go. */
    private static Runnable releaser(long ptr, CallbackRef schedule) {
        return () -> {
            DsabiJNI.delete_LoaderHandle(ptr);
            if (schedule != null) {
                schedule.release();
            }
        };
    }

    /** A loader over data; errors name the option or config key ({@link Status#INVALID_ARG}). */
    public static DataLoader create(TokenDataset data, Options options) {
        LoaderOptions opts = new LoaderOptions();
        try {
            options.applyTo(opts);
            CurriculumHandle curriculum = options.curriculum == null ? null : options.curriculum.nativeHandle();
            LoaderHandle h = LoaderHandle.create(data.nativeHandle(), opts, Vectors.config(options.config), curriculum);
            return new DataLoader(h, options.curriculum == null ? null : options.curriculum.retainSchedule());
        } finally {
            opts.delete();
        }
    }

    private LoaderHandle handle() {
        checkOpen();
        return handle;
    }

    /** The next micro-batch, or null once at the end of each epoch (the next call starts the next one). */
    public Batch next() {
        BatchHandle b = handle().next();
        return b == null ? null : new Batch(b);
    }

    /**
     * The rest of the current epoch. {@code hasNext()} takes the next batch from the loader; an
     * iteration left early continues where it stopped.
     */
    @Override
    public Iterator<Batch> iterator() {
        return new Iterator<Batch>() {
            private Batch pending;
            private boolean ended;

            @Override
            public boolean hasNext() {
                if (pending == null && !ended) {
                    pending = DataLoader.this.next();
                    ended = pending == null;
                }
                return pending != null;
            }

            @Override
            public Batch next() {
                if (!hasNext()) {
                    throw new NoSuchElementException("the epoch is over");
                }
                Batch b = pending;
                pending = null;
                return b;
            }
        };
    }

    /** Micro-batches this rank gets per epoch (the current epoch's, with dynamic batching). */
    public long length() {
        return handle().length();
    }

    public Cursor cursor() {
        DataCursor raw = handle().cursor();
        try {
            return new Cursor(raw.getEpoch(), raw.getPosition(), raw.getGlobal_step(), raw.getConsumed_samples());
        } finally {
            raw.delete();
        }
    }

    /** Continues exactly where cursor was taken (batches prepared ahead are dropped). */
    public void setCursor(Cursor cursor) {
        DataCursor raw = new DataCursor();
        try {
            raw.setEpoch(cursor.epoch());
            raw.setPosition(cursor.position());
            raw.setGlobal_step(cursor.globalStep());
            raw.setConsumed_samples(cursor.consumedSamples());
            handle().set_cursor(raw);
        } finally {
            raw.delete();
        }
    }

    /** The resolved settings as JSON (mode, batch sizes, workers, sampler, curriculum, dynamic batching). */
    public String infoJson() {
        return handle().info_json();
    }
}
