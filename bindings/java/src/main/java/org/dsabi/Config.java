package org.dsabi;

import java.nio.file.Path;

/**
 * A parsed, validated DeepSpeed config with every default filled in. Immutable; concurrent reads
 * are safe. Values are addressed by key paths such as {@code "zero_optimization.stage"} or
 * {@code "optimizer.params.betas[1]"}.
 *
 * <pre>{@code
 * try (Config cfg = Config.parse(json, new Config.Options().worldSize(4))) {
 *     long micro = cfg.getLong("train_micro_batch_size_per_gpu");
 * }
 * }</pre>
 *
 * Invalid configs throw a {@link ConfigException} listing every problem with its key path; failed
 * lookups throw a {@link DsException} with {@link Status#NOT_FOUND} or {@link Status#TYPE}. After
 * {@link #close()} every method throws {@link IllegalStateException}.
 */
public final class Config extends NativeResource {
    /** Parse options ({@code ds_config_options_t}). */
    public static final class Options {
        private int worldSize;
        private boolean strict;
        private boolean acceptAuto = true;

        /** Data-parallel world size; 0 (default) takes $WORLD_SIZE, $OMPI_COMM_WORLD_SIZE, $SLURM_NTASKS, else 1. */
        public Options worldSize(int worldSize) {
            this.worldSize = worldSize;
            return this;
        }

        /** Unknown top-level keys and unsupported features become errors. */
        public Options strict(boolean strict) {
            this.strict = strict;
            return this;
        }

        /** "auto" values mean "use the default / derive it" (default true). */
        public Options acceptAuto(boolean acceptAuto) {
            this.acceptAuto = acceptAuto;
            return this;
        }
    }

    private final ConfigHandle handle;

    private Config(ConfigHandle handle) {
        super("Config", handle, releaser(ConfigHandle.getCPtr(handle)));
        this.handle = handle;
    }

    private static Runnable releaser(long ptr) {
        return () -> DsabiJNI.delete_ConfigHandle(ptr);
    }

    /** Parses and validates JSON / hjson text with default options. */
    public static Config parse(String json) {
        return parse(json, new Options());
    }

    public static Config parse(String json, Options options) {
        return new Config(ConfigHandle.parse(json, options.worldSize, options.strict ? 1 : 0, options.acceptAuto ? 1 : 0));
    }

    /** Like {@link #parse}, reading a file (messages start with the path). */
    public static Config load(Path path) {
        return load(path, new Options());
    }

    public static Config load(Path path, Options options) {
        return new Config(ConfigHandle.load_file(path.toString(), options.worldSize, options.strict ? 1 : 0,
                options.acceptAuto ? 1 : 0));
    }

    private ConfigHandle handle() {
        checkOpen();
        return handle;
    }

    /** The live handle, for the other classes of the package (loaders, curricula, communicators). */
    ConfigHandle nativeHandle() {
        return handle();
    }

    /** An integer value. */
    public long getLong(String path) {
        return handle().get_i64(path);
    }

    /** A number. */
    public double getDouble(String path) {
        return handle().get_f64(path);
    }

    public boolean getBoolean(String path) {
        return handle().get_bool(path);
    }

    public String getString(String path) {
        return handle().get_str(path);
    }

    /** Number of elements of an array or members of an object. */
    public long count(String path) {
        return handle().get_count(path);
    }

    /** The JSON kind of the value at path. */
    public JsonKind kind(String path) {
        return JsonKind.fromCode(handle().get_kind(path));
    }

    /** Whether a value exists at path. */
    public boolean contains(String path) {
        try {
            kind(path);
            return true;
        } catch (DsException e) {
            if (e.getCode() == Status.NOT_FOUND) {
                return false;
            }
            throw e;
        }
    }

    /** The normalised config as compact JSON. */
    public String toJson() {
        return toJson("", false);
    }

    /** The subtree at path ("" for all) as JSON, indented if pretty. */
    public String toJson(String path, boolean pretty) {
        return handle().to_json(path, pretty);
    }

    /**
     * Warnings and notes of validation, as a JSON array of
     * {@code {"severity", "kind", "path", "message"}} objects.
     */
    public String diagnosticsJson() {
        return handle().diagnostics();
    }

    /** The data-parallel world size the batch-size rule used. */
    public int worldSize() {
        return handle().world_size();
    }

    public WorldSizeSource worldSizeSource() {
        return WorldSizeSource.fromCode(handle().world_size_source());
    }

    @Override
    public String toString() {
        return isClosed() ? "Config(closed)" : "Config(worldSize=" + worldSize() + ")";
    }
}
