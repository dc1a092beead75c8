package org.dsabi;

import java.nio.file.Path;
import java.util.List;

/**
 * Tokenizes text files into a token dataset, streaming with memory bounded by the chunk size
 * ({@code ds_data_build}).
 *
 * <pre>{@code
 * BuildStats stats = new DatasetBuilder()
 *         .split(Split.PARAGRAPH).appendEot(true)
 *         .progress((done, total, docs, tokens) -> { System.out.print("."); return true; })
 *         .build(Path.of("train.dst"), List.of(Path.of("corpus.txt")));
 * }</pre>
 *
 * A builder may be reused; it keeps no native resources.
 */
public final class DatasetBuilder {
    private Tokenizer tokenizer;
    private Split split = Split.FILE;
    private boolean appendEot;
    private String delimiter;
    private int tokenBytes;
    private boolean keepEmpty;
    private long chunkBytes;
    private BuildProgressListener progress;

    /** The tokenizer (default: byte-level). It must stay open while {@link #build} runs. */
    public DatasetBuilder tokenizer(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
        return this;
    }

    public DatasetBuilder split(Split split) {
        this.split = split;
        return this;
    }

    /** Appends the tokenizer's end-of-text id to every document. */
    public DatasetBuilder appendEot(boolean appendEot) {
        this.appendEot = appendEot;
        return this;
    }

    /** The separator of {@link Split#DELIMITER}, e.g. "&lt;|endoftext|&gt;". */
    public DatasetBuilder delimiter(String delimiter) {
        this.delimiter = delimiter;
        return this;
    }

    /** 2 or 4; 0 (default): 2 when the vocabulary fits in u16. */
    public DatasetBuilder tokenBytes(int tokenBytes) {
        this.tokenBytes = tokenBytes;
        return this;
    }

    /** Keeps documents without tokens (default: skipped). */
    public DatasetBuilder keepEmpty(boolean keepEmpty) {
        this.keepEmpty = keepEmpty;
        return this;
    }

    /** Read size; 0 (default): 4 MiB. */
    public DatasetBuilder chunkBytes(long chunkBytes) {
        this.chunkBytes = chunkBytes;
        return this;
    }

    /** Called on the building thread about every chunk; see {@link BuildProgressListener}. */
    public DatasetBuilder progress(BuildProgressListener progress) {
        this.progress = progress;
        return this;
    }

    /**
     * Builds the dataset at out from the inputs. Fails with {@link Status#IO} naming the file that
     * cannot be read, and with {@link Status#ABORTED} (or the listener's own exception) when the
     * progress listener stopped it; nothing is then left at out.
     */
    public BuildStats build(Path out, List<Path> inputs) {
        String[] paths = new String[inputs.size()];
        for (int i = 0; i < paths.length; i++) {
            paths[i] = inputs.get(i).toString();
        }
        BuildOptions opts = new BuildOptions();
        try {
            opts.setSplit(split.code());
            opts.setAppend_eot(appendEot ? 1 : 0);
            opts.setToken_bytes(tokenBytes);
            opts.setKeep_empty(keepEmpty ? 1 : 0);
            opts.setChunk_bytes(chunkBytes);
            TokenizerHandle tok = tokenizer == null ? null : tokenizer.nativeHandle();
            DataBuildStats raw = null;
            BuildStats stats;
            try {
                raw = DsabiNative.data_build_java(out.toString(), paths, opts, tok, delimiter, progress);
                stats = new BuildStats(raw.getN_files(), raw.getN_documents(), raw.getN_tokens(), raw.getBytes_in(),
                        raw.getBytes_out(), raw.getSeconds());
            } finally {
                if (raw != null) {
                    raw.delete();
                }
            }
            return stats;
        } finally {
            opts.delete();
        }
    }
}
