package org.dsabi;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.FixMethodOrder;
import org.junit.Test;
import org.junit.runners.MethodSorters;

/**
 * Communication on the ranks of a job: each collective checked against a reduction of all ranks'
 * data, which every rank computes itself (rank r's data is a known function of r). A job of one
 * rank in java_junit; 2 and 3 ranks under dsrun (ctest java_comm_*). Every rank runs the same
 * tests in the same (name) order, so their collectives match.
 */
@FixMethodOrder(MethodSorters.NAME_ASCENDING)
public class CommTest {
    private static Comm comm;
    private static int rank;
    private static int world;

    @BeforeClass
    public static void join() {
        try (Config cfg = Config.parse("{\"train_micro_batch_size_per_gpu\": 1,"
                + " \"comms_logger\": {\"enabled\": true, \"prof_all\": true}}")) {
            comm = Comm.create(new Comm.Options().timeout(Duration.ofSeconds(30)).config(cfg));
        }
        rank = comm.rank();
        world = comm.worldSize();
    }

    @AfterClass
    public static void leave() {
        comm.close();
    }

    /** Rank r's data: small integers 1..4, exact in every dtype, different on every rank. */
    static long value(int r, int i) {
        return ((long) i * (r + 3) + 5L * r) % 4 + 1;
    }

    static float[] floats(int r, int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = value(r, i);
        }
        return out;
    }

    static long[] longs(int r, int n) {
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            out[i] = value(r, i);
        }
        return out;
    }

    /** The reduction over every rank's longs, as the library defines it (AVG truncates). */
    static long[] reduced(ReduceOp op, int n) {
        long[] out = longs(0, n);
        for (int r = 1; r < world; r++) {
            long[] x = longs(r, n);
            for (int i = 0; i < n; i++) {
                switch (op) {
                    case SUM:
                    case AVG:
                        out[i] += x[i];
                        break;
                    case PROD:
                        out[i] *= x[i];
                        break;
                    case MAX:
                        out[i] = Math.max(out[i], x[i]);
                        break;
                    default:
                        out[i] = Math.min(out[i], x[i]);
                }
            }
        }
        if (op == ReduceOp.AVG) {
            for (int i = 0; i < n; i++) {
                out[i] /= world; // non-negative: truncation toward zero
            }
        }
        return out;
    }

    @Test
    public void a_rankAndSizeComeFromTheEnvironment() {
        String envRank = System.getenv("RANK");
        assertEquals(envRank == null ? 0 : Integer.parseInt(envRank), rank);
        String envWorld = System.getenv("WORLD_SIZE");
        assertEquals(envWorld == null ? 1 : Integer.parseInt(envWorld), world);
        String info = compact(comm.infoJson());
        assertTrue(info, info.contains(envRank == null ? "\"source\":\"default\"" : "\"source\":\"torchrun_env\""));
    }

    @Test
    public void b_allReduceEveryOpOnLongs() {
        for (ReduceOp op : ReduceOp.values()) {
            for (int n : new int[] {3, 5000}) {
                try (Tensor t = Tensor.of(longs(rank, n))) {
                    comm.allReduce(t, op);
                    assertArrayEquals(op + " n=" + n, reduced(op, n), t.toLongArray());
                }
            }
        }
    }

    @Test
    public void c_allReduceFloatsAndAverage() {
        try (Tensor t = Tensor.of(floats(rank, 1000))) {
            comm.allReduce(t, ReduceOp.AVG);
            float[] got = t.toFloatArray();
            for (int i = 0; i < got.length; i++) {
                double sum = 0;
                for (int r = 0; r < world; r++) {
                    sum += value(r, i);
                }
                assertEquals("index " + i, (float) (sum / world), got[i], 0f);
            }
        }
    }

    @Test
    public void d_asyncWorkKeepsItsBufferAndCompletes() {
        java.nio.ByteBuffer buffer = java.nio.ByteBuffer.allocateDirect(100000 * 8).order(java.nio.ByteOrder.nativeOrder());
        buffer.asLongBuffer().put(longs(rank, 100000));
        Work w;
        Tensor t = Tensor.wrap(buffer, DType.I64, 100000);
        w = comm.allReduceAsync(t, ReduceOp.SUM);
        t.close(); // the Work keeps the tensor object and its buffer until completion
        System.gc();
        assertTrue(w.waitFor(Duration.ofSeconds(30)));
        assertTrue(w.isDone());
        long[] got = new long[100000];
        buffer.asLongBuffer().get(got);
        assertArrayEquals(reduced(ReduceOp.SUM, 100000), got);
        w.close();
    }

    @Test
    public void e_broadcastAndReduceToTheLastRank() {
        int root = world - 1;
        try (Tensor t = Tensor.of(longs(rank, 1000))) {
            comm.broadcast(t, root);
            assertArrayEquals(longs(root, 1000), t.toLongArray());
        }
        try (Tensor t = Tensor.of(longs(rank, 1000))) {
            comm.reduce(t, ReduceOp.SUM, root);
            if (rank == root) {
                assertArrayEquals(reduced(ReduceOp.SUM, 1000), t.toLongArray());
            }
        }
    }

    @Test
    public void f_gathersScatterAndAllToAll() {
        try (Tensor in = Tensor.of(longs(rank, 7)); Tensor full = Tensor.create(DType.I64, world, 7)) {
            comm.allGather(in, full);
            long[] got = full.toLongArray();
            for (int r = 0; r < world; r++) {
                assertArrayEquals("rank " + r, longs(r, 7), java.util.Arrays.copyOfRange(got, 7 * r, 7 * r + 7));
            }
            Tensor[] parts = new Tensor[world];
            for (int r = 0; r < world; r++) {
                parts[r] = Tensor.create(DType.I64, 7);
            }
            try (Work w = comm.allGatherAsync(in, parts)) {
                w.waitFor();
            }
            for (int r = 0; r < world; r++) {
                assertArrayEquals("part " + r, longs(r, 7), parts[r].toLongArray());
                parts[r].close();
            }
        }
        int n = 6 * world;
        try (Tensor in = Tensor.of(longs(rank, n)); Tensor mine = Tensor.create(DType.I64, 6);
                Tensor out = Tensor.create(DType.I64, n)) {
            comm.reduceScatter(in, mine, ReduceOp.SUM);
            assertArrayEquals(java.util.Arrays.copyOfRange(reduced(ReduceOp.SUM, n), 6 * rank, 6 * rank + 6),
                    mine.toLongArray());
            comm.allToAll(in, out);
            long[] got = out.toLongArray();
            for (int q = 0; q < world; q++) {
                assertArrayEquals("from rank " + q, java.util.Arrays.copyOfRange(longs(q, n), 6 * rank, 6 * rank + 6),
                        java.util.Arrays.copyOfRange(got, 6 * q, 6 * q + 6));
            }
        }
    }

    @Test
    public void g_sendAndReceiveAroundARing() {
        assumeTrue("point to point needs two ranks", world > 1);
        try (Tensor got = Tensor.create(DType.I32, 300);
                Tensor mine = Tensor.of(new int[300]).copyFrom(ints(rank, 300))) {
            Work recv = comm.recvAsync(got, (rank + world - 1) % world, 3);
            Work send = comm.sendAsync(mine, (rank + 1) % world, 3);
            send.waitFor();
            recv.waitFor();
            assertArrayEquals(ints((rank + world - 1) % world, 300), got.toIntArray());
            send.close();
            recv.close();
        }
    }

    /** JSON without whitespace, for matching (values here hold no spaces). */
    static String compact(String json) {
        return json.replaceAll("\\s", "");
    }

    static int[] ints(int r, int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = (int) value(r, i);
        }
        return out;
    }

    @Test
    public void h_waitForTimesOutWhileAPeerIsLate() throws InterruptedException {
        assumeTrue("needs a peer that is late", world > 1);
        if (rank == 0) {
            try (Tensor got = Tensor.create(DType.F32, 8); Work w = comm.recvAsync(got, 1, 9)) {
                assertFalse(w.waitFor(Duration.ofMillis(50))); // rank 1 sends half a second later
                assertTrue(w.waitFor(Duration.ofSeconds(30)));
                assertArrayEquals(floats(1, 8), got.toFloatArray(), 0f);
            }
        } else if (rank == 1) {
            Thread.sleep(500);
            try (Tensor t = Tensor.of(floats(1, 8))) {
                comm.send(t, 0, 9);
            }
        }
        comm.barrier();
    }

    @Test
    public void i_splitIntoGroups() {
        List<Integer> members = new ArrayList<>();
        for (int q = world - 1; q >= 0; q--) {
            if (q % 2 == rank % 2) {
                members.add(q); // key = -rank: descending ranks
            }
        }
        try (Comm group = comm.split(rank % 2, -rank)) {
            assertEquals(members.size(), group.worldSize());
            assertEquals(members.indexOf(rank), group.rank());
            String info = compact(group.infoJson());
            assertTrue(info, info.contains("\"global_ranks\":" + compact(members.toString())));
            try (Tensor t = Tensor.of(longs(rank, 50))) {
                group.allReduce(t, ReduceOp.SUM);
                long[] want = new long[50];
                for (int q : members) {
                    long[] x = longs(q, 50);
                    for (int i = 0; i < 50; i++) {
                        want[i] += x[i];
                    }
                }
                assertArrayEquals(want, t.toLongArray());
            }
        }
        Comm rest = comm.split(rank == 0 ? -1 : 1, 0);
        if (rank == 0) {
            assertNull(rest);
        } else {
            try (rest) {
                assertEquals(world - 1, rest.worldSize());
                assertEquals(rank - 1, rest.rank());
            }
        }
    }

    @Test
    public void j_mismatchedSizesFailOnEveryRank() {
        assumeTrue("needs ranks that disagree", world > 1);
        try (Tensor t = Tensor.create(DType.F32, 10 + rank)) {
            DsException e = assertThrows(DsException.class, () -> comm.allReduce(t, ReduceOp.SUM));
            assertEquals(Status.COMM_MISMATCH, e.getCode());
            assertTrue(e.getMessage(), e.getMessage().contains("ranks disagree"));
        }
        try (Tensor t = Tensor.create(DType.F32, 10).fill(1)) {
            comm.allReduce(t, ReduceOp.SUM); // the communicator is still usable
            assertEquals(world, t.toFloatArray()[9], 0f);
        }
    }

    @Test
    public void k_argumentErrorsComeBeforeCommunicating() {
        try (Tensor in = Tensor.create(DType.F32, 2); Tensor out = Tensor.create(DType.F32, 3)) {
            DsException e = assertThrows(DsException.class, () -> comm.allGather(in, out));
            assertEquals(Status.INVALID_ARG, e.getCode());
            assertTrue(e.getMessage(), e.getMessage().contains("out has 3 elements"));
        }
    }

    @Test
    public void l_commsLoggerCountsOperations() {
        comm.logReset();
        try (Tensor t = Tensor.create(DType.F32, 256)) {
            for (int i = 0; i < 3; i++) {
                comm.allReduce(t, ReduceOp.SUM);
            }
        }
        String json = compact(comm.logSummaryJson());
        assertTrue(json, json.matches(".*\\{\"op\":\"all_reduce\",\"msg_size_bytes\":1024,[^}]*\"count\":3,.*"));
        assertTrue(comm.logSummary().contains("all_reduce"));
    }
}
