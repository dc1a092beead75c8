package org.dsabi;

/** What {@link DatasetBuilder#build} did ({@code ds_data_build_stats_t}). */
public final class BuildStats {
    private final long files;
    private final long documents;
    private final long tokens;
    private final long bytesIn;
    private final long bytesOut;
    private final double seconds;

    BuildStats(long files, long documents, long tokens, long bytesIn, long bytesOut, double seconds) {
        this.files = files;
        this.documents = documents;
        this.tokens = tokens;
        this.bytesIn = bytesIn;
        this.bytesOut = bytesOut;
        this.seconds = seconds;
    }

    public long files() {
        return files;
    }

    public long documents() {
        return documents;
    }

    public long tokens() {
        return tokens;
    }

    public long bytesIn() {
        return bytesIn;
    }

    public long bytesOut() {
        return bytesOut;
    }

    public double seconds() {
        return seconds;
    }

    @Override
    public String toString() {
        return "BuildStats(" + files + " files, " + documents + " documents, " + tokens + " tokens)";
    }
}
