package org.dsabi;

/** Where the data-parallel world size of a {@link Config} came from ({@code enum ds_config_world_source}). */
public enum WorldSizeSource {
    /** {@link Config.Options#worldSize(int)}. */
    OPTIONS(ds_config_world_source.DS_WORLD_FROM_OPTIONS),
    /** $WORLD_SIZE. */
    WORLD_SIZE_ENV(ds_config_world_source.DS_WORLD_FROM_WORLD_SIZE),
    /** $OMPI_COMM_WORLD_SIZE. */
    OMPI_ENV(ds_config_world_source.DS_WORLD_FROM_OMPI),
    /** $SLURM_NTASKS. */
    SLURM_ENV(ds_config_world_source.DS_WORLD_FROM_SLURM),
    /** Nothing was set: 1. */
    DEFAULT(ds_config_world_source.DS_WORLD_DEFAULT);

    private final int code;

    WorldSizeSource(int code) {
        this.code = code;
    }

    /** The {@code ds_config_world_source} value. */
    public int code() {
        return code;
    }

    static WorldSizeSource fromCode(int code) {
        for (WorldSizeSource s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown ds_config_world_source " + code);
    }
}
