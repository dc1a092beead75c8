package org.dsabi;

/** Where the data-parallel world size of a {@link Config} came from. */
public enum WorldSizeSource {
    /** {@link Config.Options#worldSize(int)}. */
    OPTIONS,
    /** $WORLD_SIZE. */
    WORLD_SIZE_ENV,
    /** $OMPI_COMM_WORLD_SIZE. */
    OMPI_ENV,
    /** $SLURM_NTASKS. */
    SLURM_ENV,
    /** Nothing was set: 1. */
    DEFAULT;

    static WorldSizeSource fromCode(int code) {
        return values()[code];
    }
}
