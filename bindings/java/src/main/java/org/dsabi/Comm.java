package org.dsabi;

import java.lang.ref.Reference;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A communicator: the ranks of a job, or a group split from them ({@code ds_comm_t}).
 *
 * <pre>{@code
 * try (Comm comm = Comm.create();                       // RANK, WORLD_SIZE, MASTER_ADDR... (dsrun, torchrun)
 *      Tensor grads = Tensor.of(new float[] {1, 2, 3})) {
 *     comm.allReduce(grads, ReduceOp.AVG);               // in place
 *     try (Work w = comm.allGatherAsync(shard, full)) {
 *         // ... overlap ...
 *         w.waitFor();
 *     }
 * }
 * }</pre>
 *
 * Every rank must call the same collectives in the same order with matching tensors (same dtype
 * and size, contiguous). Synchronous methods return when the result is there; the
 * {@code ...Async} ones queue the call and return a {@link Work}. A failed peer makes calls throw a
 * {@link DsException} with {@link Status#COMM_PEER} or {@link Status#COMM_TIMEOUT} within the
 * timeout; the communicator is then spent ({@link Status#STATE}) and should be closed.
 */
public final class Comm extends NativeResource {
    /** Options ({@code ds_comm_options_t}); unset ones come from the environment, else the defaults. */
    public static final class Options {
        private Integer rank;
        private Integer worldSize;
        private Integer localRank;
        private Integer localWorldSize;
        private String masterAddr;
        private Integer masterPort;
        private Duration timeout;
        private CommBackend backend = CommBackend.AUTO;
        private Boolean checkMismatch;
        private String storeDir;
        private String storePrefix;
        private String bindAddr;
        private Config config;

        /** This process's rank among worldSize (both are needed; default: RANK and WORLD_SIZE, ...). */
        public Options rank(int rank, int worldSize) {
            this.rank = rank;
            this.worldSize = worldSize;
            return this;
        }

        public Options localRank(int localRank, int localWorldSize) {
            this.localRank = localRank;
            this.localWorldSize = localWorldSize;
            return this;
        }

        /** Rank 0's address and store port (default: MASTER_ADDR, MASTER_PORT, else 127.0.0.1:29500). */
        public Options master(String addr, int port) {
            this.masterAddr = addr;
            this.masterPort = port;
            return this;
        }

        /** How long a peer may take to answer (default: DEEPSPEED_TIMEOUT minutes, else 10 minutes). */
        public Options timeout(Duration timeout) {
            this.timeout = timeout;
            return this;
        }

        public Options backend(CommBackend backend) {
            this.backend = backend;
            return this;
        }

        /** Agreement checks before collectives (default: on for Gloo, off for NCCL). Same on every rank. */
        public Options checkMismatch(boolean on) {
            this.checkMismatch = on;
            return this;
        }

        /** Rendezvous through files in a shared directory instead of rank 0's TCP store. */
        public Options fileStore(String dir, String prefix) {
            this.storeDir = dir;
            this.storePrefix = prefix;
            return this;
        }

        public Options bindAddr(String addr) {
            this.bindAddr = addr;
            return this;
        }

        /** A config whose comms_logger block configures the logger (read at creation only). */
        public Options config(Config config) {
            this.config = config;
            return this;
        }
    }

    private final CommHandle handle;
    private final int rank;
    private final int worldSize;
    // Unfinished work, so that its tensors stay reachable until it completes even when the caller
    // drops the Work; the cleaner holds the list too, for a communicator that is never closed.
    private final List<Work> inflight;

    private Comm(CommHandle handle, List<Work> inflight) {
        super("Comm", handle, releaser(CommHandle.getCPtr(handle), inflight));
        this.handle = handle;
        this.inflight = inflight;
        this.rank = handle.rank();
        this.worldSize = handle.world_size();
    }

    private static Comm adopt(CommHandle handle) {
        return new Comm(handle, new ArrayList<>());
    }

    /** Destroying the communicator waits for its queued work; then the work's tensors may go. */
    private static Runnable releaser(long ptr, List<Work> inflight) {
        return () -> {
            DsabiJNI.delete_CommHandle(ptr);
            synchronized (inflight) {
                inflight.clear();
            }
        };
    }

    /** Joins the job described by the environment (a job of one process without one). */
    public static Comm create() {
        return create(new Options());
    }

    /** Joins the job: blocks until every rank has arrived or the timeout passed. */
    public static Comm create(Options o) {
        CommOptions opts = new CommOptions();
        try {
            if (o.rank != null) {
                opts.setRank(o.rank);
                opts.setWorld_size(o.worldSize);
            }
            if (o.localRank != null) {
                opts.setLocal_rank(o.localRank);
                opts.setLocal_world_size(o.localWorldSize);
            }
            if (o.masterPort != null) {
                opts.setMaster_port(o.masterPort);
            }
            if (o.timeout != null) {
                opts.setTimeout_ms((int) Math.min(Integer.MAX_VALUE, Math.max(1, o.timeout.toMillis())));
            }
            opts.setBackend(o.backend.code());
            if (o.checkMismatch != null) {
                opts.setCheck_mismatch(o.checkMismatch ? 1 : 0);
            }
            return adopt(CommHandle.create(opts, o.masterAddr, o.storeDir, o.storePrefix, o.bindAddr,
                    Vectors.config(o.config)));
        } finally {
            opts.delete();
        }
    }

    private CommHandle handle() {
        checkOpen();
        return handle;
    }

    public int rank() {
        return rank;
    }

    public int worldSize() {
        return worldSize;
    }

    public int localRank() {
        return handle().local_rank();
    }

    /**
     * What was resolved, as JSON: rank, world_size, source, master_addr / port, store, timeout_ms,
     * backends, global_ranks (of a group), comms_logger, state.
     */
    public String infoJson() {
        return handle().info_json();
    }

    /**
     * Collective: ranks passing the same color form a group, ordered by key, then rank. A negative
     * color joins no group and gets null.
     */
    public Comm split(int color, int key) {
        CommHandle child = handle().split(color < 0 ? NativeMacros.DSABI_COMM_SPLIT_NONE : color, key);
        return child == null ? null : adopt(child);
    }

    /** Cancels queued and in-flight work (it fails with {@link Status#ABORTED}). Thread-safe. */
    public void abort() {
        handle().abort();
    }

    // ---- collectives ----------------------------------------------------------------------------

    /** Reduces t over all ranks, in place. */
    public void allReduce(Tensor t, ReduceOp op) {
        run(handle().all_reduce(t.nativeHandle(), op.code(), false));
    }

    public Work allReduceAsync(Tensor t, ReduceOp op) {
        return track(handle().all_reduce(t.nativeHandle(), op.code(), true), t);
    }

    /** Copies root's t to every rank. */
    public void broadcast(Tensor t, int root) {
        run(handle().broadcast(t.nativeHandle(), root, false));
    }

    public Work broadcastAsync(Tensor t, int root) {
        return track(handle().broadcast(t.nativeHandle(), root, true), t);
    }

    /** Reduces onto root's t; the other ranks' t is left unspecified. */
    public void reduce(Tensor t, ReduceOp op, int root) {
        run(handle().reduce(t.nativeHandle(), op.code(), root, false));
    }

    public Work reduceAsync(Tensor t, ReduceOp op, int root) {
        return track(handle().reduce(t.nativeHandle(), op.code(), root, true), t);
    }

    /** Every rank's in, concatenated in rank order, into out (worldSize times in's elements). */
    public void allGather(Tensor in, Tensor out) {
        run(handle().all_gather(in.nativeHandle(), out.nativeHandle(), false));
    }

    public Work allGatherAsync(Tensor in, Tensor out) {
        return track(handle().all_gather(in.nativeHandle(), out.nativeHandle(), true), in, out);
    }

    /** Rank r's in into outs[r] (one per rank). */
    public void allGather(Tensor in, Tensor[] outs) {
        run(handle().all_gather_list(in.nativeHandle(), pointers(outs), false));
        Reference.reachabilityFence(outs);
    }

    public Work allGatherAsync(Tensor in, Tensor[] outs) {
        Work w = track(handle().all_gather_list(in.nativeHandle(), pointers(outs), true), in, outs.clone());
        Reference.reachabilityFence(outs);
        return w;
    }

    /** Reduces in (worldSize chunks of out's size) over all ranks; rank r gets chunk r in out. */
    public void reduceScatter(Tensor in, Tensor out, ReduceOp op) {
        run(handle().reduce_scatter(in.nativeHandle(), out.nativeHandle(), op.code(), false));
    }

    public Work reduceScatterAsync(Tensor in, Tensor out, ReduceOp op) {
        return track(handle().reduce_scatter(in.nativeHandle(), out.nativeHandle(), op.code(), true), in, out);
    }

    /** Chunk r of in goes to rank r; chunk r of out comes from rank r. */
    public void allToAll(Tensor in, Tensor out) {
        run(handle().all_to_all(in.nativeHandle(), out.nativeHandle(), false));
    }

    public Work allToAllAsync(Tensor in, Tensor out) {
        return track(handle().all_to_all(in.nativeHandle(), out.nativeHandle(), true), in, out);
    }

    public void barrier() {
        run(handle().barrier(false));
    }

    public Work barrierAsync() {
        return track(handle().barrier(true));
    }

    // ---- point to point -------------------------------------------------------------------------

    /** Sends t to rank dst; returns when the peer has received it. Messages with one tag arrive in order. */
    public void send(Tensor t, int dst, int tag) {
        run(handle().send(t.nativeHandle(), dst, tag, false));
    }

    public Work sendAsync(Tensor t, int dst, int tag) {
        return track(handle().send(t.nativeHandle(), dst, tag, true), t);
    }

    /** Receives into t from rank src (same dtype and size as what it sends). */
    public void recv(Tensor t, int src, int tag) {
        run(handle().recv(t.nativeHandle(), src, tag, false));
    }

    public Work recvAsync(Tensor t, int src, int tag) {
        return track(handle().recv(t.nativeHandle(), src, tag, true), t);
    }

    // ---- comms logger ---------------------------------------------------------------------------

    /** This rank's comms logger summary as DeepSpeed's text table. */
    public String logSummary() {
        return handle().log_summary(false);
    }

    /** The same as JSON: {"rank", "world_size", "ops": [{"op", "msg_size_bytes", "count", ...}]}. */
    public String logSummaryJson() {
        return handle().log_summary(true);
    }

    public void logReset() {
        handle().log_reset();
    }

    @Override
    public String toString() {
        return isClosed() ? "Comm(closed)" : "Comm(rank " + rank + " of " + worldSize + ")";
    }

    // ---- helpers --------------------------------------------------------------------------------

    private static long[] pointers(Tensor[] tensors) {
        long[] out = new long[tensors.length];
        for (int i = 0; i < tensors.length; i++) {
            out[i] = TensorHandle.getCPtr(tensors[i].nativeHandle());
        }
        return out;
    }

    /** A synchronous call returned no work; let go of work that has finished meanwhile. */
    private void run(WorkHandle none) {
        prune();
    }

    private Work track(WorkHandle h, Object... keepAlive) {
        Work w = new Work(h, keepAlive);
        synchronized (inflight) {
            prune();
            inflight.add(w);
        }
        return w;
    }

    private void prune() {
        synchronized (inflight) {
            inflight.removeIf(Work::isDone);
        }
    }
}
