package org.dsabi;

import java.nio.file.Path;

/**
 * An open token dataset: memory-mapped, read only, thread-safe. Documents are numbered from 0 and
 * come back as {@code int[]} ids; a corrupt or truncated file is refused with
 * {@link Status#CORRUPT} and a message naming the file and byte offset.
 */
public final class TokenDataset extends NativeResource {
    private final DataHandle handle;

    private TokenDataset(DataHandle handle) {
        super("TokenDataset", handle, releaser(DataHandle.getCPtr(handle)));
        this.handle = handle;
    }

    private static Runnable releaser(long ptr) {
        return () -> DsabiJNI.delete_DataHandle(ptr);
    }

    /** Opens and validates every document offset. */
    public static TokenDataset open(Path path) {
        return open(path, Verify.OFFSETS, 0);
    }

    /**
     * @param verify            how much to check
     * @param maxResidentBytes  mapped pages kept resident before they are released (0: 256 MiB)
     */
    public static TokenDataset open(Path path, Verify verify, long maxResidentBytes) {
        return new TokenDataset(DataHandle.open(path.toString(), verify.code(), maxResidentBytes));
    }

    DataHandle nativeHandle() {
        checkOpen();
        return handle;
    }

    /** The header facts. */
    public DatasetInfo info() {
        DataInfo raw = new DataInfo(nativeHandle());
        try {
            return new DatasetInfo(raw.getFormat_version(), raw.getToken_bytes(), raw.getN_documents(),
                    raw.getN_tokens(), raw.getFile_bytes(), raw.getVocab_size(), raw.getTokens_crc32c());
        } finally {
            raw.delete();
        }
    }

    public long documentCount() {
        return info().documentCount();
    }

    /** The ids of document index. */
    public int[] document(long index) {
        return Vectors.ints(nativeHandle().document(index));
    }

    /** n ids from position first of the concatenated token stream. */
    public int[] readTokens(long first, int n) {
        return Vectors.ints(nativeHandle().read_tokens(first, n));
    }

    @Override
    public String toString() {
        if (isClosed()) {
            return "TokenDataset(closed)";
        }
        DatasetInfo i = info();
        return "TokenDataset(" + i.documentCount() + " documents, " + i.tokenCount() + " tokens)";
    }
}
