package org.dsabi;

import java.nio.file.Path;

/**
 * Writes a token dataset: documents of ids streamed with bounded memory to a temporary file that
 * {@link #commit()} renames into place. Closing without a commit discards the file, so a
 * try-with-resources block leaves nothing behind when it throws:
 *
 * <pre>{@code
 * try (DatasetWriter w = new DatasetWriter(path, new DatasetWriter.Options().vocabSize(50257))) {
 *     for (int[] doc : documents) {
 *         w.addDocument(doc);
 *     }
 *     w.commit();
 * }
 * }</pre>
 */
public final class DatasetWriter extends NativeResource {
    /** Writer options ({@code ds_data_writer_options_t}). */
    public static final class Options {
        private int tokenBytes = 2;
        private long vocabSize;
        private long bufferBytes;

        /** 2 (u16 ids, default) or 4 (u32). */
        public Options tokenBytes(int tokenBytes) {
            this.tokenBytes = tokenBytes;
            return this;
        }

        /** Recorded in the header; ids at or above it are rejected. 0 (default): unknown. */
        public Options vocabSize(long vocabSize) {
            this.vocabSize = vocabSize;
            return this;
        }

        /** The write buffer; 0 (default): 8 MiB. */
        public Options bufferBytes(long bufferBytes) {
            this.bufferBytes = bufferBytes;
            return this;
        }
    }

    private final WriterHandle handle;

    public DatasetWriter(Path path) {
        this(path, new Options());
    }

    public DatasetWriter(Path path, Options options) {
        this(WriterHandle.create(path.toString(), options.tokenBytes, options.vocabSize, options.bufferBytes));
    }

    private DatasetWriter(WriterHandle handle) {
        super("DatasetWriter", handle, releaser(WriterHandle.getCPtr(handle)));
        this.handle = handle;
    }

    private static Runnable releaser(long ptr) {
        return () -> DsabiJNI.delete_WriterHandle(ptr);
    }

    private WriterHandle handle() {
        checkOpen();
        return handle;
    }

    /** Appends ids to the current document. */
    public void append(int[] ids) {
        try (Tensor t = Vectors.of(ids)) {
            handle().append(t.nativeHandle());
        }
    }

    /** Ends the current document (an empty one is recorded with length 0). */
    public void endDocument() {
        handle().end_document();
    }

    /** {@link #append}, then {@link #endDocument}. */
    public void addDocument(int[] ids) {
        append(ids);
        endDocument();
    }

    /** Finishes the file (ending an open document) and moves it into place. */
    public void commit() {
        handle().commit();
    }
}
