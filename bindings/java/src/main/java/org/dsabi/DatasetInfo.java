package org.dsabi;

/** The header facts of a token dataset ({@code ds_data_info_t}). */
public final class DatasetInfo {
    private final long formatVersion;
    private final int tokenBytes;
    private final long documentCount;
    private final long tokenCount;
    private final long fileBytes;
    private final long vocabSize;
    private final long tokensCrc32c;

    DatasetInfo(long formatVersion, int tokenBytes, long documentCount, long tokenCount, long fileBytes, long vocabSize,
            long tokensCrc32c) {
        this.formatVersion = formatVersion;
        this.tokenBytes = tokenBytes;
        this.documentCount = documentCount;
        this.tokenCount = tokenCount;
        this.fileBytes = fileBytes;
        this.vocabSize = vocabSize;
        this.tokensCrc32c = tokensCrc32c;
    }

    public long formatVersion() {
        return formatVersion;
    }

    /** 2 (u16 ids) or 4 (u32). */
    public int tokenBytes() {
        return tokenBytes;
    }

    public long documentCount() {
        return documentCount;
    }

    public long tokenCount() {
        return tokenCount;
    }

    public long fileBytes() {
        return fileBytes;
    }

    /** 0: unknown. */
    public long vocabSize() {
        return vocabSize;
    }

    /** CRC-32C of the token bytes, as recorded. */
    public long tokensCrc32c() {
        return tokensCrc32c;
    }
}
