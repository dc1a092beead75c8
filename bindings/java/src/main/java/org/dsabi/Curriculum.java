package org.dsabi;

import java.nio.file.Path;

/**
 * A curriculum schedule (DeepSpeed's {@code CurriculumScheduler}): the difficulty at each
 * optimizer step, from a config's curriculum block and/or explicit settings.
 *
 * <pre>{@code
 * try (Curriculum c = Curriculum.create(new Curriculum.Options().schedule(Schedule.FIXED_LINEAR)
 *         .minDifficulty(8).maxDifficulty(1024).totalCurriculumStep(100).difficultyStep(8))) {
 *     long d = c.difficulty(50);   // 512
 * }
 * }</pre>
 *
 * A {@link DataLoader} built with a curriculum keeps it (and a custom schedule) alive.
 */
public final class Curriculum extends NativeResource {
    /** Settings ({@code ds_data_curriculum_options_t}); unset ones come from the config. */
    public static final class Options {
        private Config config;
        private String metric;
        private Schedule schedule;
        private Floor floor = Floor.NONE;
        private Long minDifficulty;
        private Long maxDifficulty;
        private Long totalCurriculumStep;
        private Long difficultyStep;
        private Double rootDegree;
        private long[] discreteDifficulty;
        private long[] discreteMaxStep;
        private DifficultyType difficultyType;
        private Path metricPath;
        private DifficultySchedule custom;

        /**
         * Reads the legacy {@code curriculum_learning} block, or the metric of
         * {@code data_efficiency...curriculum_metrics} named by {@link #metric} (or the only one).
         * Only read while the curriculum is created.
         */
        public Options config(Config config) {
            this.config = config;
            return this;
        }

        public Options metric(String metric) {
            this.metric = metric;
            return this;
        }

        public Options schedule(Schedule schedule) {
            this.schedule = schedule;
            return this;
        }

        public Options floor(Floor floor) {
            this.floor = floor;
            return this;
        }

        public Options minDifficulty(long v) {
            this.minDifficulty = v;
            return this;
        }

        public Options maxDifficulty(long v) {
            this.maxDifficulty = v;
            return this;
        }

        public Options totalCurriculumStep(long v) {
            this.totalCurriculumStep = v;
            return this;
        }

        public Options difficultyStep(long v) {
            this.difficultyStep = v;
            return this;
        }

        public Options rootDegree(double v) {
            this.rootDegree = v;
            return this;
        }

        /** A fixed_discrete schedule: difficulty has one more entry than maxStep. */
        public Options discrete(long[] difficulty, long[] maxStep) {
            this.discreteDifficulty = difficulty.clone();
            this.discreteMaxStep = maxStep.clone();
            return this;
        }

        public Options difficultyType(DifficultyType v) {
            this.difficultyType = v;
            return this;
        }

        /** A per-sample metric file ({@link #writeMetricFile}) for metric-bucket sampling. */
        public Options metricPath(Path v) {
            this.metricPath = v;
            return this;
        }

        /** A custom schedule ({@link Schedule#CUSTOM} unless another schedule is set). */
        public Options custom(DifficultySchedule schedule) {
            this.custom = schedule;
            return this;
        }
    }

    private final CurriculumHandle handle;
    private final CallbackRef schedule; // null without a custom schedule

    private Curriculum(CurriculumHandle handle, CallbackRef schedule) {
        super("Curriculum", handle, releaser(CurriculumHandle.getCPtr(handle), schedule));
        this.handle = handle;
        this.schedule = schedule;
    }

    private static Runnable releaser(long ptr, CallbackRef schedule) {
        return () -> {
            DsabiJNI.delete_CurriculumHandle(ptr);
            if (schedule != null) {
                schedule.release();
            }
        };
    }

    /**
     * Creates the schedule. Missing or inconsistent settings fail with {@link Status#INVALID_ARG}
     * naming the key; a metric the config does not have with {@link Status#NOT_FOUND}.
     */
    public static Curriculum create(Options o) {
        CurriculumOptions opts = new CurriculumOptions();
        CallbackRef ref = null;
        try {
            Schedule schedule = o.schedule != null ? o.schedule : o.custom != null ? Schedule.CUSTOM : null;
            if (schedule != null) {
                opts.setSchedule_type(schedule.code());
            }
            opts.setFloor_mode(o.floor.code());
            if (o.minDifficulty != null) {
                opts.setMin_difficulty(o.minDifficulty);
            }
            if (o.maxDifficulty != null) {
                opts.setMax_difficulty(o.maxDifficulty);
            }
            if (o.totalCurriculumStep != null) {
                opts.setTotal_curriculum_step(o.totalCurriculumStep);
            }
            if (o.difficultyStep != null) {
                opts.setDifficulty_step(o.difficultyStep);
            }
            if (o.rootDegree != null) {
                opts.setRoot_degree(o.rootDegree);
            }
            if (o.difficultyType != null) {
                opts.setDifficulty_type(o.difficultyType.code());
            }
            if (o.custom != null) {
                ref = new CallbackRef(DsabiNative.curriculum_options_set_custom(opts, o.custom));
            }
            CurriculumHandle h = CurriculumHandle.create(opts, Vectors.config(o.config), o.metric, Vectors.path(o.metricPath),
                    o.discreteDifficulty, o.discreteMaxStep);
            return new Curriculum(h, ref);
        } catch (RuntimeException | Error e) {
            if (ref != null) {
                ref.release();
            }
            throw e;
        } finally {
            opts.delete();
        }
    }

    CurriculumHandle nativeHandle() {
        checkOpen();
        return handle;
    }

    /** The custom schedule's reference, retained for a loader; null without one. */
    CallbackRef retainSchedule() {
        if (schedule != null) {
            schedule.retain();
        }
        return schedule;
    }

    /** The schedule's difficulty at an optimizer step (stateless). */
    public long difficulty(long step) {
        return nativeHandle().difficulty(step);
    }

    /** DeepSpeed's update_difficulty(step): moves the current difficulty while below the maximum. */
    public long update(long step) {
        return nativeHandle().update(step);
    }

    public long current() {
        return nativeHandle().current();
    }

    /** Writes a per-sample metric file (one value per sample, i.e. per window or document). */
    public static void writeMetricFile(Path path, long[] values) {
        try (Tensor t = Tensor.of(values)) {
            DsabiNative.data_metric_write(path.toString(), t.nativeHandle());
        }
    }
}
