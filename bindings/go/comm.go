package dsabi

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/dsabi/dsabi-go/internal/swig"
)

// ReduceOp is the reduction of a collective (enum ds_reduce_op). ReduceAvg on integers truncates
// toward zero.
type ReduceOp int32

// The reductions of dsabi.h.
const (
	ReduceSum  ReduceOp = 0
	ReduceAvg  ReduceOp = 1
	ReduceMax  ReduceOp = 2
	ReduceMin  ReduceOp = 3
	ReduceProd ReduceOp = 4
)

// CommBackend is the transport of a communicator (enum ds_comm_backend).
type CommBackend int32

// The backends of dsabi.h.
const (
	CommBackendAuto CommBackend = 0 // Gloo for CPU tensors, NCCL for CUDA tensors
	CommBackendGloo CommBackend = 1 // Gloo for everything (CUDA tensors staged through the host)
	CommBackendNCCL CommBackend = 2 // NCCL only (CPU tensors are rejected)
)

// CommOptions are the options of NewComm. Zero and nil fields come from the environment (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT as dsrun, torchrun and the DeepSpeed launcher
// set them; Open MPI and Slurm variables as fallbacks), else the defaults.
type CommOptions struct {
	Rank, WorldSize           int // WorldSize > 0 sets both
	LocalRank, LocalWorldSize int // LocalWorldSize > 0 sets both
	MasterAddr                string
	MasterPort                int
	Timeout                   time.Duration // how long a peer may take to answer; 0: DEEPSPEED_TIMEOUT, else 10 minutes
	Backend                   CommBackend
	CheckMismatch             *bool  // agreement checks before collectives; nil: on for Gloo, off for NCCL
	StoreDir, StorePrefix     string // rendezvous through files in a shared directory
	BindAddr                  string
	Config                    *Config // its comms_logger block; read while NewComm runs only
}

// Comm is a communicator: the ranks of a job, or a group split from them. Every rank must call the
// same collectives in the same order with matching tensors (same dtype and size, contiguous).
// Methods without Async return when the result is there; the Async ones queue the call and return
// a *Work. A failed peer makes calls fail with StatusCommPeer or StatusCommTimeout within the
// timeout; the communicator is then spent (StatusState) and should be closed.
//
// Tensors are library-owned (NewTensor, FromSlice) or C memory (WrapPointer): Go memory never
// reaches the library, which keeps the tensors of queued work until it completes.
type Comm struct {
	h         swig.CommHandle
	rank      int
	worldSize int

	mu       sync.Mutex
	inflight []*Work // unfinished work, so that its tensors stay reachable until it completes
}

// NewComm joins the job (opts may be nil): it blocks until every rank has arrived or the timeout
// passed. A job of one process needs no environment.
func NewComm(opts *CommOptions) (*Comm, error) {
	o := CommOptions{}
	if opts != nil {
		o = *opts
	}
	raw := swig.NewCommOptions()
	defer swig.DeleteCommOptions(raw)
	if o.WorldSize > 0 {
		raw.SetRank(o.Rank)
		raw.SetWorld_size(o.WorldSize)
	}
	if o.LocalWorldSize > 0 {
		raw.SetLocal_rank(o.LocalRank)
		raw.SetLocal_world_size(o.LocalWorldSize)
	}
	if o.MasterPort != 0 {
		raw.SetMaster_port(o.MasterPort)
	}
	if o.Timeout > 0 {
		ms := o.Timeout.Milliseconds()
		if ms < 1 {
			ms = 1
		}
		raw.SetTimeout_ms(int(ms))
	}
	raw.SetBackend(int(o.Backend))
	if o.CheckMismatch != nil {
		raw.SetCheck_mismatch(boolInt(*o.CheckMismatch))
	}
	var h swig.CommHandle
	err := call(func() {
		h = swig.CommHandleCreate(raw, o.MasterAddr, o.StoreDir, o.StorePrefix, o.BindAddr, configHandle(o.Config))
	})
	runtime.KeepAlive(o.Config)
	if err != nil {
		return nil, err
	}
	return newComm(h)
}

func newComm(h swig.CommHandle) (*Comm, error) {
	c := &Comm{h: h}
	if err := call(func() {
		c.rank = h.Rank()
		c.worldSize = h.World_size()
	}); err != nil {
		swig.DeleteCommHandle(h)
		return nil, err
	}
	runtime.SetFinalizer(c, (*Comm).Close) // a backstop only: call Close
	return c, nil
}

// Close leaves the job: it waits for queued work (bounded by the timeout), then releases the
// communicator. Groups split from it keep it alive. It is idempotent.
func (c *Comm) Close() error {
	if c.h == nil {
		return nil
	}
	runtime.SetFinalizer(c, nil)
	swig.DeleteCommHandle(c.h)
	c.h = nil
	c.mu.Lock()
	c.inflight = nil
	c.mu.Unlock()
	return nil
}

func (c *Comm) run(f func(h swig.CommHandle)) error {
	if c.h == nil {
		return errClosed("Comm")
	}
	defer runtime.KeepAlive(c)
	return call(func() { f(c.h) })
}

// Rank is this process's rank in the communicator.
func (c *Comm) Rank() int { return c.rank }

// WorldSize is the number of ranks.
func (c *Comm) WorldSize() int { return c.worldSize }

// LocalRank is the rank on this host.
func (c *Comm) LocalRank() (r int, err error) {
	err = c.run(func(h swig.CommHandle) { r = h.Local_rank() })
	return r, err
}

// Info is what was resolved: rank, world_size, source, master_addr / port, store, timeout_ms,
// backends, global_ranks (of a group), comms_logger, state.
func (c *Comm) Info() (map[string]any, error) {
	var text string
	if err := c.run(func(h swig.CommHandle) { text = h.Info_json() }); err != nil {
		return nil, err
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(text), &info); err != nil {
		return nil, fmt.Errorf("dsabi: communicator info is not JSON: %w", err)
	}
	return info, nil
}

// Split is collective: ranks passing the same color form a group, ordered by key, then rank. A
// negative color joins no group and gets (nil, nil).
func (c *Comm) Split(color, key int) (*Comm, error) {
	if color < 0 {
		color = int(swig.DS_COMM_SPLIT_NONE)
	}
	var child swig.CommHandle
	if err := c.run(func(h swig.CommHandle) { child = h.Split(color, key) }); err != nil {
		return nil, err
	}
	if child == nil || child.Swigcptr() == 0 {
		return nil, nil
	}
	return newComm(child)
}

// Abort cancels queued and in-flight work (it fails with StatusAborted); later calls fail with
// StatusState. It may be called from any goroutine.
func (c *Comm) Abort() error {
	return c.run(func(h swig.CommHandle) { h.Abort() })
}

// submit runs one collective; with async, the Work keeps tensors until it completes.
func (c *Comm) submit(async bool, f func(h swig.CommHandle) swig.WorkHandle, tensors ...*Tensor) (*Work, error) {
	for _, t := range tensors {
		if t == nil || t.h == nil {
			return nil, errClosed("Tensor")
		}
	}
	var wh swig.WorkHandle
	err := c.run(func(h swig.CommHandle) { wh = f(h) })
	runtime.KeepAlive(tensors)
	c.prune()
	if err != nil || !async {
		return nil, err
	}
	w := &Work{h: wh, tensors: tensors}
	runtime.SetFinalizer(w, (*Work).Close)
	c.mu.Lock()
	c.inflight = append(c.inflight, w)
	c.mu.Unlock()
	return w, nil
}

// prune lets go of work that has finished.
func (c *Comm) prune() {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.inflight[:0]
	for _, w := range c.inflight {
		if w.pending() {
			kept = append(kept, w)
		}
	}
	for i := len(kept); i < len(c.inflight); i++ {
		c.inflight[i] = nil
	}
	c.inflight = kept
}

// AllReduce reduces t over all ranks, in place.
func (c *Comm) AllReduce(t *Tensor, op ReduceOp) error {
	_, err := c.allReduce(false, t, op)
	return err
}

// AllReduceAsync queues AllReduce.
func (c *Comm) AllReduceAsync(t *Tensor, op ReduceOp) (*Work, error) { return c.allReduce(true, t, op) }

func (c *Comm) allReduce(async bool, t *Tensor, op ReduceOp) (*Work, error) {
	return c.submit(async, func(h swig.CommHandle) swig.WorkHandle { return h.All_reduce(t.h, int(op), async) }, t)
}

// Broadcast copies root's t to every rank.
func (c *Comm) Broadcast(t *Tensor, root int) error {
	_, err := c.broadcast(false, t, root)
	return err
}

// BroadcastAsync queues Broadcast.
func (c *Comm) BroadcastAsync(t *Tensor, root int) (*Work, error) { return c.broadcast(true, t, root) }

func (c *Comm) broadcast(async bool, t *Tensor, root int) (*Work, error) {
	return c.submit(async, func(h swig.CommHandle) swig.WorkHandle { return h.Broadcast(t.h, root, async) }, t)
}

// Reduce reduces onto root's t; the other ranks' t is left unspecified.
func (c *Comm) Reduce(t *Tensor, op ReduceOp, root int) error {
	_, err := c.reduce(false, t, op, root)
	return err
}

// ReduceAsync queues Reduce.
func (c *Comm) ReduceAsync(t *Tensor, op ReduceOp, root int) (*Work, error) {
	return c.reduce(true, t, op, root)
}

func (c *Comm) reduce(async bool, t *Tensor, op ReduceOp, root int) (*Work, error) {
	return c.submit(async, func(h swig.CommHandle) swig.WorkHandle { return h.Reduce(t.h, int(op), root, async) }, t)
}

// AllGather gathers every rank's in, concatenated in rank order, into out (WorldSize times in's
// elements).
func (c *Comm) AllGather(in, out *Tensor) error {
	_, err := c.allGather(false, in, out)
	return err
}

// AllGatherAsync queues AllGather.
func (c *Comm) AllGatherAsync(in, out *Tensor) (*Work, error) { return c.allGather(true, in, out) }

func (c *Comm) allGather(async bool, in, out *Tensor) (*Work, error) {
	return c.submit(async, func(h swig.CommHandle) swig.WorkHandle { return h.All_gather(in.h, out.h, async) }, in, out)
}

// AllGatherList gathers rank r's in into outs[r] (one tensor per rank).
func (c *Comm) AllGatherList(in *Tensor, outs []*Tensor) error {
	_, err := c.allGatherList(false, in, outs)
	return err
}

// AllGatherListAsync queues AllGatherList.
func (c *Comm) AllGatherListAsync(in *Tensor, outs []*Tensor) (*Work, error) {
	return c.allGatherList(true, in, outs)
}

func (c *Comm) allGatherList(async bool, in *Tensor, outs []*Tensor) (*Work, error) {
	for _, t := range outs {
		if t == nil || t.h == nil {
			return nil, errClosed("Tensor")
		}
	}
	addresses := make([]uintptr, len(outs)) // handle addresses: C memory, not Go pointers
	for i, t := range outs {
		addresses[i] = t.h.Swigcptr()
	}
	all := append([]*Tensor{in}, outs...)
	return c.submit(async, func(h swig.CommHandle) swig.WorkHandle { return h.All_gather_list(in.h, addresses, async) }, all...)
}

// ReduceScatter reduces in (WorldSize chunks of out's size) over all ranks; rank r gets chunk r in
// out.
func (c *Comm) ReduceScatter(in, out *Tensor, op ReduceOp) error {
	_, err := c.reduceScatter(false, in, out, op)
	return err
}

// ReduceScatterAsync queues ReduceScatter.
func (c *Comm) ReduceScatterAsync(in, out *Tensor, op ReduceOp) (*Work, error) {
	return c.reduceScatter(true, in, out, op)
}

func (c *Comm) reduceScatter(async bool, in, out *Tensor, op ReduceOp) (*Work, error) {
	return c.submit(async, func(h swig.CommHandle) swig.WorkHandle {
		return h.Reduce_scatter(in.h, out.h, int(op), async)
	}, in, out)
}

// AllToAll sends chunk r of in to rank r; chunk r of out comes from rank r.
func (c *Comm) AllToAll(in, out *Tensor) error {
	_, err := c.allToAll(false, in, out)
	return err
}

// AllToAllAsync queues AllToAll.
func (c *Comm) AllToAllAsync(in, out *Tensor) (*Work, error) { return c.allToAll(true, in, out) }

func (c *Comm) allToAll(async bool, in, out *Tensor) (*Work, error) {
	return c.submit(async, func(h swig.CommHandle) swig.WorkHandle { return h.All_to_all(in.h, out.h, async) }, in, out)
}

// Barrier waits until every rank has arrived.
func (c *Comm) Barrier() error {
	_, err := c.submit(false, func(h swig.CommHandle) swig.WorkHandle { return h.Barrier(false) })
	return err
}

// BarrierAsync queues Barrier.
func (c *Comm) BarrierAsync() (*Work, error) {
	return c.submit(true, func(h swig.CommHandle) swig.WorkHandle { return h.Barrier(true) })
}

// Send sends t to rank dst; it returns when the peer has received it. Messages between two ranks
// with one tag arrive in order.
func (c *Comm) Send(t *Tensor, dst, tag int) error {
	_, err := c.send(false, t, dst, tag)
	return err
}

// SendAsync queues Send.
func (c *Comm) SendAsync(t *Tensor, dst, tag int) (*Work, error) { return c.send(true, t, dst, tag) }

func (c *Comm) send(async bool, t *Tensor, dst, tag int) (*Work, error) {
	return c.submit(async, func(h swig.CommHandle) swig.WorkHandle { return h.Send(t.h, dst, tag, async) }, t)
}

// Recv receives into t from rank src (same dtype and size as what it sends).
func (c *Comm) Recv(t *Tensor, src, tag int) error {
	_, err := c.recv(false, t, src, tag)
	return err
}

// RecvAsync queues Recv.
func (c *Comm) RecvAsync(t *Tensor, src, tag int) (*Work, error) { return c.recv(true, t, src, tag) }

func (c *Comm) recv(async bool, t *Tensor, src, tag int) (*Work, error) {
	return c.submit(async, func(h swig.CommHandle) swig.WorkHandle { return h.Recv(t.h, src, tag, async) }, t)
}

// CommLogRow is one row of the comms logger's summary: an op and message size.
type CommLogRow struct {
	Op             string    `json:"op"`
	MsgSizeBytes   int64     `json:"msg_size_bytes"`
	Count          int64     `json:"count"`
	TotalLatencyMs float64   `json:"total_latency_ms"`
	AvgLatencyMs   float64   `json:"avg_latency_ms"`
	AlgbwGbps      float64   `json:"algbw_gbps"`
	BusbwGbps      float64   `json:"busbw_gbps"`
	LatenciesMs    []float64 `json:"latencies_ms"`
}

// CommLogSummary is this rank's comms logger summary (config block comms_logger).
type CommLogSummary struct {
	Rank      int          `json:"rank"`
	WorldSize int          `json:"world_size"`
	Ops       []CommLogRow `json:"ops"`
}

// LogSummary is this rank's comms logger summary.
func (c *Comm) LogSummary() (CommLogSummary, error) {
	var text string
	if err := c.run(func(h swig.CommHandle) { text = h.Log_summary(true) }); err != nil {
		return CommLogSummary{}, err
	}
	var s CommLogSummary
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return CommLogSummary{}, fmt.Errorf("dsabi: comms logger summary is not JSON: %w", err)
	}
	return s, nil
}

// LogTable is the summary as DeepSpeed's text table.
func (c *Comm) LogTable() (text string, err error) {
	err = c.run(func(h swig.CommHandle) { text = h.Log_summary(false) })
	return text, err
}

// LogReset clears the comms logger.
func (c *Comm) LogReset() error {
	return c.run(func(h swig.CommHandle) { h.Log_reset() })
}

// Work is queued communication. Wait for it; Close releases it (waiting first).
type Work struct {
	mu      sync.Mutex
	h       swig.WorkHandle
	done    bool
	tensors []*Tensor // kept until the work is complete
}

// Wait waits until the work has finished and returns its error (ErrAborted when it was aborted).
func (w *Work) Wait() error {
	_, err := w.WaitTimeout(-1)
	return err
}

// WaitTimeout waits at most d (negative: until the work finishes); it reports whether the work
// finished.
func (w *Work) WaitTimeout(d time.Duration) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return true, nil
	}
	if w.h == nil {
		return false, errClosed("Work")
	}
	ms := -1
	if d >= 0 {
		ms = int(d.Milliseconds())
	}
	var finished bool
	err := call(func() { finished = w.h.Wait(ms) })
	if err != nil || finished {
		w.done = true
		w.tensors = nil
	}
	return finished || err != nil, err
}

// Test reports whether the work has finished (then Wait returns at once).
func (w *Work) Test() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return true, nil
	}
	if w.h == nil {
		return false, errClosed("Work")
	}
	var done bool
	if err := call(func() { done = w.h.Test() }); err != nil {
		return false, err
	}
	if done {
		w.done = true
		w.tensors = nil
	}
	return done, nil
}

// pending reports whether the work may still be running, without blocking on a goroutine that is
// waiting for it.
func (w *Work) pending() bool {
	if !w.mu.TryLock() {
		return true
	}
	defer w.mu.Unlock()
	if w.done || w.h == nil {
		return false
	}
	var done bool
	if err := call(func() { done = w.h.Test() }); err != nil || done {
		w.done = true
		w.tensors = nil
	}
	return !w.done
}

// Close waits for the work (its error is for Wait), then releases it. It is idempotent.
func (w *Work) Close() error {
	w.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.h != nil {
		runtime.SetFinalizer(w, nil)
		swig.DeleteWorkHandle(w.h)
		w.h = nil
	}
	return nil
}
