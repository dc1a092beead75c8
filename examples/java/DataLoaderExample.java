import java.io.IOException;
import java.nio.IntBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.dsabi.Batch;
import org.dsabi.BatchInfo;
import org.dsabi.BuildStats;
import org.dsabi.Config;
import org.dsabi.Cursor;
import org.dsabi.DataLoader;
import org.dsabi.DatasetBuilder;
import org.dsabi.Split;
import org.dsabi.Tensor;
import org.dsabi.TokenDataset;

/**
 * Build a token dataset from text, then read it the way a training loop does: a DeepSpeed config
 * gives the micro batch, the loader prefetches on background threads, batch tensors are read
 * through direct buffers without copying, and a cursor saved mid-epoch resumes exactly there.
 *
 * <pre>
 * java -Djava.library.path=build/java/lib -cp build/java/classes:build/java/example-classes DataLoaderExample
 * </pre>
 */
public final class DataLoaderExample {
    public static void main(String[] args) throws IOException {
        Path dir = Files.createTempDirectory("dsabi-example");
        Path text = dir.resolve("hamlet.txt");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 200; i++) {
            sb.append("Paragraph ").append(i).append(". To be, or not to be, that is the question: whether 'tis nobler in")
                    .append(" the mind\nto suffer the slings and arrows of outrageous fortune.\n\n");
        }
        Files.write(text, sb.toString().getBytes(StandardCharsets.UTF_8));

        // 1. Tokenize (byte-level here; .tokenizer(Tokenizer.gpt2(vocab, merges)) for GPT-2).
        Path path = dir.resolve("hamlet.dst");
        BuildStats stats = new DatasetBuilder().split(Split.PARAGRAPH).appendEot(true).build(path, List.of(text));
        System.out.println("built " + stats.documents() + " documents, " + stats.tokens() + " tokens");

        // 2. A loader: windows of 129 ids (128 inputs + the shifted target), micro batch from the config.
        boolean same;
        try (Config cfg = Config.parse("{\"train_batch_size\": 16, \"train_micro_batch_size_per_gpu\": 8}",
                new Config.Options().worldSize(1));
                TokenDataset data = TokenDataset.open(path)) {
            DataLoader.Options options = new DataLoader.Options().config(cfg).seqLen(129).windowStride(128).numWorkers(2);
            Cursor saved = null;
            long firstAfterSave = -1;
            try (DataLoader loader = DataLoader.create(data, options)) {
                System.out.println(loader.length() + " micro-batches per epoch");
                for (int i = 0; i < 5; i++) {
                    try (Batch batch = loader.next(); Tensor tokens = batch.tokens(); Tensor ids = batch.sampleIds()) {
                        BatchInfo info = batch.info();
                        IntBuffer view = tokens.asByteBuffer().asIntBuffer(); // [8, 129], no copy
                        long first = ids.toLongArray()[0];
                        System.out.println("step " + info.globalStep() + " micro-batch " + info.index() + ": "
                                + view.remaining() + " tokens, first window " + first);
                        if (i == 3) {
                            saved = loader.cursor(); // after 4 micro-batches
                        }
                        if (i == 4) {
                            firstAfterSave = first;
                        }
                    }
                }
            }
            // 3. Resume from the saved cursor: the next batch is the one that followed it.
            try (DataLoader loader = DataLoader.create(data, options)) {
                loader.setCursor(saved);
                try (Batch batch = loader.next(); Tensor ids = batch.sampleIds()) {
                    long first = ids.toLongArray()[0];
                    same = first == firstAfterSave;
                    System.out.println("resumed at epoch " + saved.epoch() + " position " + saved.position()
                            + ": first window " + first + " (" + (same ? "same" : "DIFFERENT") + ")");
                }
            }
        } finally {
            Files.deleteIfExists(path);
            Files.deleteIfExists(text);
            Files.deleteIfExists(dir);
        }
        System.exit(same ? 0 : 1);
    }
}
