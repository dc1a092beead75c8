package org.dsabi;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

public class DataTest {
    private Path dir;
    private Random random;

    @Before
    public void setUp() throws IOException {
        dir = Files.createTempDirectory("dsabi-java-data");
        long seed = new Random().nextLong();
        System.out.println("DataTest seed " + seed);
        random = new Random(seed);
    }

    @After
    public void tearDown() throws IOException {
        try (var files = Files.list(dir)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                Files.delete(p);
            }
        }
        Files.delete(dir);
    }

    private int[] randomIds(int n, int vocab) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = random.nextInt(vocab);
        }
        return ids;
    }

    private List<int[]> writeDataset(Path path, int documents, int minLen, int maxLen) {
        List<int[]> docs = new ArrayList<>();
        try (DatasetWriter w = new DatasetWriter(path, new DatasetWriter.Options().vocabSize(50257))) {
            for (int d = 0; d < documents; d++) {
                int[] ids = randomIds(minLen + random.nextInt(maxLen - minLen + 1), 50257);
                docs.add(ids);
                w.addDocument(ids);
            }
            w.commit();
        }
        return docs;
    }

    @Test
    public void byteTokenizerRoundTripsAnyBytes() {
        try (Tokenizer tok = Tokenizer.byteLevel()) {
            assertEquals(257, tok.vocabSize());
            assertEquals(256, tok.eot());
            byte[] raw = new byte[4096];
            random.nextBytes(raw);
            int[] ids = tok.encode(raw);
            assertEquals(4096, ids.length);
            assertEquals(raw[7] & 0xff, ids[7]);
            assertArrayEquals(raw, tok.decode(ids));
            assertArrayEquals(new int[] {104, 0xC3, 0xA9}, tok.encode("h\u00e9"));
            assertEquals("h\u00e9", tok.decodeString(new int[] {104, 0xC3, 0xA9}));
            DsException e = assertThrows(DsException.class, () -> tok.decode(new int[] {65, 300}));
            assertEquals(Status.INVALID_ARG, e.getCode());
            assertTrue(e.getMessage(), e.getMessage().contains("ids[1]=300"));
        }
    }

    @Test
    public void writerAndDatasetRoundTrip() throws IOException {
        Path path = dir.resolve("rt.dst");
        List<int[]> docs = writeDataset(path, 80, 0, 300);
        try (TokenDataset data = TokenDataset.open(path, Verify.FULL, 0)) {
            DatasetInfo info = data.info();
            long tokens = docs.stream().mapToLong(d -> d.length).sum();
            assertEquals(1, info.formatVersion());
            assertEquals(2, info.tokenBytes());
            assertEquals(80, info.documentCount());
            assertEquals(tokens, info.tokenCount());
            assertEquals(50257, info.vocabSize());
            assertEquals(Files.size(path), info.fileBytes());
            for (int i = 0; i < docs.size(); i++) {
                assertArrayEquals("document " + i, docs.get(i), data.document(i));
            }
            int[] stream = docs.stream().flatMapToInt(Arrays::stream).toArray();
            assertArrayEquals(Arrays.copyOfRange(stream, 10, 60), data.readTokens(10, 50));
            DsException e = assertThrows(DsException.class, () -> data.document(80));
            assertTrue(e.getMessage(), e.getMessage().contains("index=80 is outside [0, 80)"));
        }
    }

    @Test
    public void uncommittedWritersLeaveNothing() throws IOException {
        Path path = dir.resolve("discarded.dst");
        try (DatasetWriter w = new DatasetWriter(path, new DatasetWriter.Options().vocabSize(100))) {
            w.append(new int[] {1, 2});
            DsException e = assertThrows(DsException.class, () -> w.append(new int[] {5, 100}));
            assertEquals(Status.INVALID_ARG, e.getCode());
        }
        assertFalse(Files.exists(path));
        try (var files = Files.list(dir)) {
            assertEquals(0, files.count()); // no temporary file either
        }
    }

    @Test
    public void corruptFilesNameTheByteOffset() throws IOException {
        Path path = dir.resolve("cut.dst");
        writeDataset(path, 10, 5, 10);
        byte[] raw = Files.readAllBytes(path);
        Files.write(path, Arrays.copyOf(raw, raw.length - 5));
        DsException e = assertThrows(DsException.class, () -> TokenDataset.open(path));
        assertEquals(Status.CORRUPT, e.getCode());
        assertTrue(e.getMessage(), e.getMessage().contains("byte offset") && e.getMessage().contains(path.toString()));
    }

    private List<Path> corpus() throws IOException {
        Path a = dir.resolve("a.txt");
        Path b = dir.resolve("b.txt");
        Files.write(a, "first paragraph\nstill first\n\nsecond paragraph\n".getBytes(StandardCharsets.UTF_8));
        Files.write(b, "caf\u00e9 third\n\n\nfourth".getBytes(StandardCharsets.UTF_8));
        return List.of(a, b);
    }

    @Test
    public void builderSplitsParagraphsAndReportsProgress() throws IOException {
        List<Path> inputs = corpus();
        Path out = dir.resolve("built.dst");
        List<long[]> reports = new ArrayList<>();
        BuildStats stats = new DatasetBuilder().split(Split.PARAGRAPH).appendEot(true).chunkBytes(7)
                .progress((done, total, documents, tokens) -> reports.add(new long[] {done, total}) || true)
                .build(out, inputs);
        assertEquals(2, stats.files());
        assertEquals(4, stats.documents());
        assertEquals(Files.size(out), stats.bytesOut());
        assertTrue(reports.size() >= 5);
        assertTrue(reports.stream().allMatch(r -> r[0] <= r[1]));
        String[] want = {"first paragraph\nstill first", "second paragraph", "caf\u00e9 third", "fourth"};
        try (TokenDataset data = TokenDataset.open(out); Tokenizer tok = Tokenizer.byteLevel()) {
            for (int i = 0; i < want.length; i++) {
                int[] ids = data.document(i);
                assertEquals(tok.eot(), ids[ids.length - 1]);
                assertEquals(want[i], tok.decodeString(Arrays.copyOf(ids, ids.length - 1)));
            }
        }
    }

    @Test
    public void progressListenerCancelsOrThrows() throws IOException {
        List<Path> inputs = corpus();
        Path out = dir.resolve("cancelled.dst");
        DatasetBuilder builder = new DatasetBuilder().chunkBytes(7);
        DsException aborted = assertThrows(DsException.class,
                () -> builder.progress((done, total, docs, tokens) -> done < 20).build(out, inputs));
        assertEquals(Status.ABORTED, aborted.getCode());
        assertTrue(aborted.getMessage(), aborted.getMessage().contains("progress callback"));
        assertFalse(Files.exists(out));
        IllegalStateException thrown = assertThrows(IllegalStateException.class,
                () -> builder.progress((done, total, docs, tokens) -> {
                    throw new IllegalStateException("stop at " + done);
                }).build(out, inputs));
        assertTrue(thrown.getMessage().startsWith("stop at"));
        assertFalse(Files.exists(out));
        assertEquals(2, builder.progress(null).build(out, inputs).documents());
    }

    @Test
    public void samplerFollowsDistributedSamplerRules() {
        // Without shuffling the order is known: rank r takes indices r, r + world, ... of the list
        // padded by repeating it from the start (10 samples, 3 ranks: 12 slots).
        try (DistributedSampler s = new DistributedSampler(10,
                new DistributedSampler.Options().rank(1).worldSize(3).shuffle(false))) {
            assertEquals(4, s.length());
            assertArrayEquals(new long[] {1, 4, 7, 0}, s.indices(0));
        }
        try (DistributedSampler s = new DistributedSampler(100,
                new DistributedSampler.Options().rank(2).worldSize(4).seed(17))) {
            long[] epoch3 = s.indices(3);
            assertEquals(25, epoch3.length);
            assertFalse(Arrays.equals(epoch3, s.indices(4)));
            s.setEpoch(3);
            assertArrayEquals(Arrays.copyOf(epoch3, 10), s.take(10));
            assertEquals(3, s.epoch());
            assertEquals(10, s.position());
            try (DistributedSampler resumed = new DistributedSampler(100,
                    new DistributedSampler.Options().rank(2).worldSize(4).seed(17))) {
                resumed.setCursor(3, 10);
                assertArrayEquals(Arrays.copyOfRange(epoch3, 10, 25), resumed.take(100));
                assertEquals(0, resumed.take(5).length);
            }
            Set<Long> all = new HashSet<>();
            for (int r = 0; r < 4; r++) {
                try (DistributedSampler q = new DistributedSampler(100,
                        new DistributedSampler.Options().rank(r).worldSize(4).seed(17))) {
                    for (long i : q.indices(3)) {
                        all.add(i);
                    }
                }
            }
            assertEquals(100, all.size()); // the ranks' shares cover the dataset
        }
    }

    @Test
    public void curriculumSchedulesMatchTheFormula() {
        try (Curriculum c = Curriculum.create(new Curriculum.Options().schedule(Schedule.FIXED_LINEAR)
                .minDifficulty(8).maxDifficulty(1024).totalCurriculumStep(100).difficultyStep(8))) {
            long[][] expected = {{0, 8}, {1, 16}, {10, 104}, {33, 336}, {99, 1008}, {100, 1024}, {150, 1024}};
            for (long[] e : expected) {
                assertEquals("step " + e[0], e[1], c.difficulty(e[0]));
            }
            assertEquals(512, c.update(50));
            assertEquals(512, c.current());
        }
        try (Curriculum c = Curriculum.create(new Curriculum.Options().schedule(Schedule.FIXED_DISCRETE)
                .minDifficulty(1).maxDifficulty(3).discrete(new long[] {1, 2, 3}, new long[] {5, 10}))) {
            assertEquals(1, c.difficulty(5));
            assertEquals(2, c.difficulty(6));
            assertEquals(3, c.difficulty(11));
        }
        DsException e = assertThrows(DsException.class,
                () -> Curriculum.create(new Curriculum.Options().schedule(Schedule.FIXED_LINEAR).minDifficulty(8)
                        .maxDifficulty(64).difficultyStep(8)));
        assertTrue(e.getMessage(), e.getMessage().contains("total_curriculum_step"));
    }

    @Test
    public void customScheduleIsCalledAndItsExceptionsRethrown() {
        try (Curriculum c = Curriculum.create(new Curriculum.Options().minDifficulty(0).maxDifficulty(1000)
                .custom(step -> step * step + 3))) {
            assertEquals(52, c.difficulty(7));
        }
        try (Curriculum c = Curriculum.create(new Curriculum.Options().minDifficulty(0).maxDifficulty(10)
                .custom(step -> {
                    throw new ArithmeticException("step " + step);
                }))) {
            ArithmeticException thrown = assertThrows(ArithmeticException.class, () -> c.difficulty(4));
            assertEquals("step 4", thrown.getMessage());
            assertThrows(ArithmeticException.class, () -> c.update(2));
        }
    }

    @Test
    public void loaderWindowsMatchTheDataAndResume() {
        Path path = dir.resolve("windows.dst");
        List<int[]> docs = writeDataset(path, 40, 500, 999);
        int[] stream = docs.stream().flatMapToInt(Arrays::stream).toArray();
        int windows = (stream.length - 65) / 64 + 1;
        DataLoader.Options options = new DataLoader.Options().seqLen(65).windowStride(64).microBatchSize(4)
                .gradientAccumulationSteps(3).rank(1, 2).seed(11).numWorkers(2);
        List<Long> seen = new ArrayList<>();
        Cursor cursor;
        List<Long> afterCursor = new ArrayList<>();
        try (TokenDataset data = TokenDataset.open(path); DataLoader loader = DataLoader.create(data, options)) {
            for (Batch batch : loader) {
                try (batch; Tensor tokens = batch.tokens(); Tensor ids = batch.sampleIds()) {
                    BatchInfo info = batch.info();
                    assertArrayEquals(new long[] {info.rows(), 65}, tokens.shape());
                    int[] t = tokens.toIntArray();
                    long[] samples = ids.toLongArray();
                    for (int r = 0; r < samples.length; r++) {
                        int from = (int) samples[r] * 64;
                        assertArrayEquals(Arrays.copyOfRange(stream, from, from + 65), Arrays.copyOfRange(t, r * 65, r * 65 + 65));
                        seen.add(samples[r]);
                    }
                    assertNull(batch.cuSeqlens());
                }
            }
            for (int i = 0; i < 5; i++) {
                loader.next().close(); // into the second epoch
            }
            cursor = loader.cursor();
            for (Batch batch : loader) {
                try (batch; Tensor ids = batch.sampleIds()) {
                    for (long s : ids.toLongArray()) {
                        afterCursor.add(s);
                    }
                }
            }
            assertEquals((loader.length() + 5) / 3, cursor.globalStep());
        }
        try (DistributedSampler s = new DistributedSampler(windows,
                new DistributedSampler.Options().rank(1).worldSize(2).seed(11))) {
            long[] expected = s.indices(0);
            assertEquals(expected.length, seen.size());
            for (int i = 0; i < expected.length; i++) {
                assertEquals("position " + i, expected[i], (long) seen.get(i));
            }
        }
        assertEquals(1, cursor.epoch());
        assertEquals(5, cursor.position());
        try (TokenDataset data = TokenDataset.open(path); DataLoader resumed = DataLoader.create(data, options)) {
            resumed.setCursor(cursor);
            List<Long> again = new ArrayList<>();
            for (Batch batch : resumed) {
                try (batch; Tensor ids = batch.sampleIds()) {
                    for (long s : ids.toLongArray()) {
                        again.add(s);
                    }
                }
            }
            assertEquals(afterCursor, again);
        }
    }

    @Test
    public void customCurriculumRunsOnLoaderThreads() {
        Path path = dir.resolve("docs.dst");
        List<int[]> docs = writeDataset(path, 120, 1, 300);
        Set<Thread> callers = ConcurrentHashMap.newKeySet();
        Curriculum curriculum = Curriculum.create(new Curriculum.Options().minDifficulty(8).maxDifficulty(64).custom(step -> {
            callers.add(Thread.currentThread());
            return Math.min(8 * step, 64);
        }));
        try (TokenDataset data = TokenDataset.open(path);
                DataLoader loader = DataLoader.create(data, new DataLoader.Options().mode(DataMode.DOCUMENTS)
                        .microBatchSize(2).gradientAccumulationSteps(1).shuffle(false).padId(-1).numWorkers(3)
                        .curriculum(curriculum))) {
            curriculum.close(); // the loader keeps it, and its schedule
            long step = 0;
            for (Batch batch : loader) {
                try (batch; Tensor tokens = batch.tokens(); Tensor lengths = batch.lengths(); Tensor ids = batch.sampleIds()) {
                    long cut = Math.min(8 * (step + 1), 64);
                    assertEquals(step, batch.info().globalStep());
                    assertEquals(cut, batch.info().difficulty());
                    int columns = (int) tokens.shape()[1];
                    int[] t = tokens.toIntArray();
                    int[] len = lengths.toIntArray();
                    long[] samples = ids.toLongArray();
                    for (int r = 0; r < samples.length; r++) {
                        int[] want = docs.get((int) samples[r]);
                        want = Arrays.copyOf(want, (int) Math.min(want.length, cut));
                        assertEquals(want.length, len[r]);
                        assertArrayEquals(want, Arrays.copyOfRange(t, r * columns, r * columns + want.length));
                    }
                }
                step++;
            }
            assertEquals(60, step);
        }
        assertFalse(callers.isEmpty());
        assertFalse(callers.contains(Thread.currentThread())); // loader workers, attached to the JVM
    }

    @Test
    public void dynamicBatchingPacksEveryDocumentOnce() {
        Path path = dir.resolve("packed.dst");
        int[] lengths = new int[300];
        try (DatasetWriter w = new DatasetWriter(path)) {
            for (int d = 0; d < lengths.length; d++) {
                lengths[d] = 1 + random.nextInt(299);
                int[] ids = new int[lengths[d]];
                Arrays.fill(ids, d + 1);
                w.addDocument(ids);
            }
            w.commit();
        }
        Set<Long> seen = new HashSet<>();
        try (TokenDataset data = TokenDataset.open(path);
                DataLoader loader = DataLoader.create(data, new DataLoader.Options().mode(DataMode.DOCUMENTS)
                        .microBatchSize(1).gradientAccumulationSteps(2).dynamicBatching(true, 1024)
                        .lrScaling(LrScaling.LINEAR))) {
            for (Batch batch : loader) {
                try (batch; Tensor cu = batch.cuSeqlens(); Tensor ids = batch.sampleIds(); Tensor tokens = batch.tokens()) {
                    assertNotNull(cu);
                    int[] starts = cu.toIntArray();
                    int[] t = tokens.toIntArray();
                    long[] samples = ids.toLongArray();
                    assertEquals(1024, t.length);
                    for (int k = 0; k < samples.length; k++) {
                        assertEquals(lengths[(int) samples[k]], starts[k + 1] - starts[k]);
                        assertEquals(samples[k] + 1, t[starts[k]]); // document d holds the id d + 1
                        assertTrue(seen.add(samples[k]));
                    }
                    assertTrue(batch.info().lrScale() > 0);
                }
            }
            assertTrue(loader.infoJson().contains("\"max_tokens\": 1024"));
        }
        assertTrue(seen.size() > 250);
        assertEquals(0.2, LrScaling.LINEAR.scale(4, 8, 0.1), 1e-12);
        assertEquals(0.2, LrScaling.SQRT.scale(4, 16, 0.1), 1e-12);
    }

    @Test
    public void closedObjectsThrowAndMetricFilesAreWritten() throws IOException {
        Tokenizer tok = Tokenizer.byteLevel();
        tok.close();
        assertThrows(IllegalStateException.class, () -> tok.encode("x"));
        Path metric = dir.resolve("len.metric");
        Curriculum.writeMetricFile(metric, new long[] {5, 1, 9});
        byte[] raw = Files.readAllBytes(metric);
        assertEquals("DSMETRIC", new String(raw, 0, 8, StandardCharsets.US_ASCII));
        assertEquals(32 + 3 * 8, raw.length);
    }
}
