package dsabi_test

// Communication on the ranks of a job: every collective is checked against a reduction of all
// ranks' data, which each rank computes itself (rank r's data is a known function of r). In
// `go test` this is a job of one rank; ctest also runs the test binary on 2 and 3 ranks under dsrun
// (go_comm_*), with -test.run selecting these tests, which run in source order on every rank so
// that their collectives match.

import (
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dsabi "github.com/dsabi/dsabi-go"
)

var (
	worldOnce sync.Once
	world     *dsabi.Comm
	worldErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if world != nil {
		world.Close()
	}
	os.Exit(code)
}

// worldComm is the job's communicator, with the comms logger on: one per process, because dsrun
// hands rank 0 its store's listening socket once.
func worldComm(t *testing.T) *dsabi.Comm {
	t.Helper()
	worldOnce.Do(func() {
		cfg, err := dsabi.ParseConfig(`{"train_micro_batch_size_per_gpu": 1,
			"comms_logger": {"enabled": true, "prof_all": true}}`, nil)
		if err != nil {
			worldErr = err
			return
		}
		defer cfg.Close()
		world, worldErr = dsabi.NewComm(&dsabi.CommOptions{Timeout: 30 * time.Second, Config: cfg})
	})
	if worldErr != nil {
		t.Fatal(worldErr)
	}
	return world
}

// rankValue is rank r's element i: small integers 1..4, exact in every dtype.
func rankValue(r, i int) int64 { return (int64(i)*int64(r+3)+5*int64(r))%4 + 1 }

func rankData(r, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = rankValue(r, i)
	}
	return out
}

func rankFloats(r, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rankValue(r, i))
	}
	return out
}

// reduced is the reduction over every rank's data, as the library defines it (AVG truncates).
func reduced(op dsabi.ReduceOp, worldSize, n int) []int64 {
	out := rankData(0, n)
	for r := 1; r < worldSize; r++ {
		for i, v := range rankData(r, n) {
			switch op {
			case dsabi.ReduceSum, dsabi.ReduceAvg:
				out[i] += v
			case dsabi.ReduceProd:
				out[i] *= v
			case dsabi.ReduceMax:
				if v > out[i] {
					out[i] = v
				}
			case dsabi.ReduceMin:
				if v < out[i] {
					out[i] = v
				}
			}
		}
	}
	if op == dsabi.ReduceAvg {
		for i := range out {
			out[i] /= int64(worldSize)
		}
	}
	return out
}

func fromSlice[T dsabi.Element](t *testing.T, data []T, shape ...int64) *dsabi.Tensor {
	t.Helper()
	x, err := dsabi.FromSlice(data, shape...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func TestCommRankAndSizeComeFromTheEnvironment(t *testing.T) {
	c := worldComm(t)
	wantRank, wantSize, source := 0, 1, "default"
	if v := os.Getenv("RANK"); v != "" {
		wantRank, _ = strconv.Atoi(v)
		wantSize, _ = strconv.Atoi(os.Getenv("WORLD_SIZE"))
		source = "torchrun_env"
	}
	if c.Rank() != wantRank || c.WorldSize() != wantSize {
		t.Errorf("rank %d of %d, want %d of %d", c.Rank(), c.WorldSize(), wantRank, wantSize)
	}
	info, err := c.Info()
	if err != nil || info["source"] != source {
		t.Errorf("Info()[source] = %v (%v), want %s", info["source"], err, source)
	}
}

func TestCommAllReduceEveryOp(t *testing.T) {
	c := worldComm(t)
	ops := []dsabi.ReduceOp{dsabi.ReduceSum, dsabi.ReduceAvg, dsabi.ReduceMax, dsabi.ReduceMin, dsabi.ReduceProd}
	for _, op := range ops {
		for _, n := range []int{3, 5000} {
			x := fromSlice(t, rankData(c.Rank(), n))
			if err := c.AllReduce(x, op); err != nil {
				t.Fatal(err)
			}
			if got, _ := dsabi.ToSlice[int64](x); !reflect.DeepEqual(got, reduced(op, c.WorldSize(), n)) {
				t.Errorf("op %d, n %d: wrong result", op, n)
			}
		}
	}
	f := fromSlice(t, rankFloats(c.Rank(), 1000))
	if err := c.AllReduce(f, dsabi.ReduceAvg); err != nil {
		t.Fatal(err)
	}
	got, _ := dsabi.ToSlice[float32](f)
	for i, v := range got {
		var sum float64
		for r := 0; r < c.WorldSize(); r++ {
			sum += float64(rankValue(r, i))
		}
		if v != float32(sum/float64(c.WorldSize())) {
			t.Fatalf("f32 average at %d: %v, want %v", i, v, sum/float64(c.WorldSize()))
		}
	}
}

func TestCommAsyncWorkCompletes(t *testing.T) {
	c := worldComm(t)
	xs := make([]*dsabi.Tensor, 4)
	works := make([]*dsabi.Work, 4)
	for k := range xs {
		xs[k] = fromSlice(t, rankData(c.Rank(), 20000+k))
		w, err := c.AllReduceAsync(xs[k], dsabi.ReduceSum)
		if err != nil {
			t.Fatal(err)
		}
		works[k] = w
	}
	for k := len(works) - 1; k >= 0; k-- {
		if done, err := works[k].WaitTimeout(30 * time.Second); !done || err != nil {
			t.Fatalf("work %d: done %v, %v", k, done, err)
		}
		works[k].Close()
	}
	for k, x := range xs {
		if got, _ := dsabi.ToSlice[int64](x); !reflect.DeepEqual(got, reduced(dsabi.ReduceSum, c.WorldSize(), 20000+k)) {
			t.Errorf("async all_reduce %d: wrong result", k)
		}
	}
}

func TestCommBroadcastAndReduceToTheLastRank(t *testing.T) {
	c := worldComm(t)
	root := c.WorldSize() - 1
	x := fromSlice(t, rankData(c.Rank(), 1000))
	if err := c.Broadcast(x, root); err != nil {
		t.Fatal(err)
	}
	if got, _ := dsabi.ToSlice[int64](x); !reflect.DeepEqual(got, rankData(root, 1000)) {
		t.Error("broadcast: not the root's data")
	}
	y := fromSlice(t, rankData(c.Rank(), 1000))
	if err := c.Reduce(y, dsabi.ReduceSum, root); err != nil {
		t.Fatal(err)
	}
	if got, _ := dsabi.ToSlice[int64](y); c.Rank() == root && !reflect.DeepEqual(got, reduced(dsabi.ReduceSum, c.WorldSize(), 1000)) {
		t.Error("reduce: wrong sum on the root")
	}
}

func TestCommGathersScatterAndAllToAll(t *testing.T) {
	c := worldComm(t)
	w, r := c.WorldSize(), c.Rank()
	in := fromSlice(t, rankData(r, 7))
	full, _ := dsabi.NewTensor(dsabi.DTypeI64, dsabi.CPU, int64(w), 7)
	defer full.Close()
	if err := c.AllGather(in, full); err != nil {
		t.Fatal(err)
	}
	got, _ := dsabi.ToSlice[int64](full)
	parts := make([]*dsabi.Tensor, w)
	for q := range parts {
		if !reflect.DeepEqual(got[7*q:7*q+7], rankData(q, 7)) {
			t.Errorf("all_gather: block %d", q)
		}
		parts[q], _ = dsabi.NewTensor(dsabi.DTypeI64, dsabi.CPU, 7)
		defer parts[q].Close()
	}
	work, err := c.AllGatherListAsync(in, parts)
	if err != nil {
		t.Fatal(err)
	}
	if err := work.Wait(); err != nil {
		t.Fatal(err)
	}
	for q, p := range parts {
		if got, _ := dsabi.ToSlice[int64](p); !reflect.DeepEqual(got, rankData(q, 7)) {
			t.Errorf("all_gather_list: part %d", q)
		}
	}
	n := 6 * w
	big := fromSlice(t, rankData(r, n))
	mine, _ := dsabi.NewTensor(dsabi.DTypeI64, dsabi.CPU, 6)
	defer mine.Close()
	if err := c.ReduceScatter(big, mine, dsabi.ReduceSum); err != nil {
		t.Fatal(err)
	}
	if got, _ := dsabi.ToSlice[int64](mine); !reflect.DeepEqual(got, reduced(dsabi.ReduceSum, w, n)[6*r:6*r+6]) {
		t.Error("reduce_scatter: wrong chunk")
	}
	out, _ := dsabi.NewTensor(dsabi.DTypeI64, dsabi.CPU, int64(n))
	defer out.Close()
	if err := c.AllToAll(big, out); err != nil {
		t.Fatal(err)
	}
	got, _ = dsabi.ToSlice[int64](out)
	for q := 0; q < w; q++ {
		if !reflect.DeepEqual(got[6*q:6*q+6], rankData(q, n)[6*r:6*r+6]) {
			t.Errorf("all_to_all: chunk from rank %d", q)
		}
	}
}

func TestCommSendAndReceiveAroundARing(t *testing.T) {
	c := worldComm(t)
	w, r := c.WorldSize(), c.Rank()
	if w == 1 {
		t.Skip("point to point needs two ranks")
	}
	got, _ := dsabi.NewTensor(dsabi.DTypeI64, dsabi.CPU, 300)
	defer got.Close()
	recv, err := c.RecvAsync(got, (r+w-1)%w, 3)
	if err != nil {
		t.Fatal(err)
	}
	send, err := c.SendAsync(fromSlice(t, rankData(r, 300)), (r+1)%w, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []*dsabi.Work{send, recv} {
		if err := w.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := dsabi.ToSlice[int64](got); !reflect.DeepEqual(v, rankData((r+w-1)%w, 300)) {
		t.Error("ring: not the previous rank's data")
	}
}

func TestCommWaitTimesOutWhileAPeerIsLate(t *testing.T) {
	c := worldComm(t)
	if c.WorldSize() == 1 {
		t.Skip("needs a peer that is late")
	}
	switch c.Rank() {
	case 0:
		got, _ := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CPU, 8)
		defer got.Close()
		work, err := c.RecvAsync(got, 1, 9)
		if err != nil {
			t.Fatal(err)
		}
		if done, err := work.WaitTimeout(50 * time.Millisecond); done || err != nil {
			t.Errorf("WaitTimeout(50ms) before the peer sent: %v, %v", done, err)
		}
		if done, err := work.WaitTimeout(30 * time.Second); !done || err != nil {
			t.Fatalf("WaitTimeout(30s): %v, %v", done, err)
		}
		if v, _ := dsabi.ToSlice[float32](got); !reflect.DeepEqual(v, rankFloats(1, 8)) {
			t.Error("late message: wrong data")
		}
	case 1:
		time.Sleep(500 * time.Millisecond)
		if err := c.Send(fromSlice(t, rankFloats(1, 8)), 0, 9); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
}

func TestCommSplitIntoGroups(t *testing.T) {
	c := worldComm(t)
	w, r := c.WorldSize(), c.Rank()
	var members []int // same parity, descending (key = -rank)
	for q := w - 1; q >= 0; q-- {
		if q%2 == r%2 {
			members = append(members, q)
		}
	}
	group, err := c.Split(r%2, -r)
	if err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	index := 0
	for i, q := range members {
		if q == r {
			index = i
		}
	}
	if group.WorldSize() != len(members) || group.Rank() != index {
		t.Errorf("group: rank %d of %d, want %d of %d", group.Rank(), group.WorldSize(), index, len(members))
	}
	x := fromSlice(t, rankData(r, 50))
	if err := group.AllReduce(x, dsabi.ReduceSum); err != nil {
		t.Fatal(err)
	}
	want := make([]int64, 50)
	for _, q := range members {
		for i, v := range rankData(q, 50) {
			want[i] += v
		}
	}
	if got, _ := dsabi.ToSlice[int64](x); !reflect.DeepEqual(got, want) {
		t.Error("group sum: wrong")
	}
	color := 1
	if r == 0 {
		color = -1
	}
	rest, err := c.Split(color, 0)
	if err != nil {
		t.Fatal(err)
	}
	if (rest == nil) != (r == 0) {
		t.Fatalf("Split with color %d gave %v", color, rest)
	}
	if rest != nil {
		defer rest.Close()
		if rest.WorldSize() != w-1 || rest.Rank() != r-1 {
			t.Errorf("rest: rank %d of %d", rest.Rank(), rest.WorldSize())
		}
	}
}

func TestCommMismatchedSizesFailOnEveryRank(t *testing.T) {
	c := worldComm(t)
	if c.WorldSize() == 1 {
		t.Skip("needs ranks that disagree")
	}
	x, _ := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CPU, int64(10+c.Rank()))
	defer x.Close()
	err := c.AllReduce(x, dsabi.ReduceSum)
	var dsErr *dsabi.Error
	if !errors.As(err, &dsErr) || dsErr.Code != dsabi.StatusCommMismatch || !strings.Contains(dsErr.Msg, "ranks disagree") {
		t.Fatalf("mismatched all_reduce: %v", err)
	}
	if !errors.Is(err, dsabi.ErrComm) {
		t.Error("a mismatch is not in the communication band")
	}
	y := fromSlice(t, []float32{1, 1, 1})
	if err := c.AllReduce(y, dsabi.ReduceSum); err != nil {
		t.Fatal(err) // the communicator is still usable
	}
	if got, _ := dsabi.ToSlice[float32](y); got[2] != float32(c.WorldSize()) {
		t.Errorf("after a mismatch: %v", got)
	}
}

func TestCommArgumentErrorsComeBeforeCommunicating(t *testing.T) {
	c := worldComm(t)
	in, _ := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CPU, 2)
	out, _ := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CPU, 3)
	defer in.Close()
	defer out.Close()
	if err := c.AllGather(in, out); !errors.Is(err, dsabi.ErrInvalidArg) || !strings.Contains(err.Error(), "out has 3 elements") {
		t.Errorf("all_gather into a wrong size: %v", err)
	}
	closed, _ := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CPU, 2)
	closed.Close()
	if err := c.AllReduce(closed, dsabi.ReduceSum); !errors.Is(err, dsabi.ErrInvalidHandle) {
		t.Errorf("all_reduce of a closed tensor: %v", err)
	}
}

func TestCommLoggerCountsOperations(t *testing.T) {
	c := worldComm(t)
	if err := c.LogReset(); err != nil {
		t.Fatal(err)
	}
	x, _ := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CPU, 256)
	defer x.Close()
	for i := 0; i < 3; i++ {
		if err := c.AllReduce(x, dsabi.ReduceSum); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.LogSummary()
	if err != nil {
		t.Fatal(err)
	}
	if s.Rank != c.Rank() || s.WorldSize != c.WorldSize() || len(s.Ops) != 1 {
		t.Fatalf("summary %+v", s)
	}
	if op := s.Ops[0]; op.Op != "all_reduce" || op.Count != 3 || op.MsgSizeBytes != 1024 || len(op.LatenciesMs) != 3 {
		t.Errorf("row %+v", op)
	}
	if table, _ := c.LogTable(); !strings.Contains(table, "all_reduce") {
		t.Errorf("table:\n%s", table)
	}
}
