package org.dsabi;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A byte-level or GPT-2 BPE tokenizer. Nothing is downloaded: GPT-2 needs the caller's
 * {@code vocab.json} and {@code merges.txt}.
 *
 * <pre>{@code
 * try (Tokenizer tok = Tokenizer.gpt2(vocab, merges)) {
 *     int[] ids = tok.encode("hello world");
 *     String text = tok.decodeString(ids);
 * }
 * }</pre>
 */
public final class Tokenizer extends NativeResource {
    private final TokenizerHandle handle;

    private Tokenizer(TokenizerHandle handle) {
        super("Tokenizer", handle, releaser(TokenizerHandle.getCPtr(handle)));
        this.handle = handle;
    }

    private static Runnable releaser(long ptr) {
        return () -> DsabiJNI.delete_TokenizerHandle(ptr);
    }

    /** One token per byte (ids 0..255), end-of-text 256. */
    public static Tokenizer byteLevel() {
        return new Tokenizer(TokenizerHandle.create(ds_data_tokenizer_kind.DS_DATA_TOKENIZER_BYTES, null, null));
    }

    /** GPT-2's byte-level BPE from vocab.json (token to id) and merges.txt. */
    public static Tokenizer gpt2(Path vocabJson, Path mergesTxt) {
        return new Tokenizer(TokenizerHandle.create(ds_data_tokenizer_kind.DS_DATA_TOKENIZER_GPT2, vocabJson.toString(),
                mergesTxt.toString()));
    }

    private TokenizerHandle handle() {
        checkOpen();
        return handle;
    }

    TokenizerHandle nativeHandle() {
        return handle();
    }

    public long vocabSize() {
        return handle().vocab_size();
    }

    /** The end-of-text id ({@link Status#NOT_FOUND} when a GPT-2 vocabulary has none). */
    public int eot() {
        return handle().eot();
    }

    /** The ids of text, encoded as UTF-8. */
    public int[] encode(String text) {
        return encode(text.getBytes(StandardCharsets.UTF_8));
    }

    /** The ids of any bytes (invalid UTF-8 is kept byte-exact). */
    public int[] encode(byte[] text) {
        return Vectors.ints(handle().encode(text));
    }

    /** The bytes of ids: {@code decode(encode(x))} equals x for any bytes x. */
    public byte[] decode(int[] ids) {
        try (Tensor t = Vectors.of(ids)) {
            return Vectors.bytes(handle().decode(t.nativeHandle()));
        }
    }

    /** {@link #decode} as text (invalid UTF-8 becomes U+FFFD). */
    public String decodeString(int[] ids) {
        return new String(decode(ids), StandardCharsets.UTF_8);
    }
}
