package dsabi_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	dsabi "github.com/dsabi/dsabi-go"
)

// seeded returns a random source with a fresh seed, logged so that a failure can be replayed.
func seeded(t *testing.T) *rand.Rand {
	t.Helper()
	seed := rand.Int63()
	t.Logf("seed %d", seed)
	return rand.New(rand.NewSource(seed))
}

func randomIDs(r *rand.Rand, n, vocab int) []int32 {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(r.Intn(vocab))
	}
	return ids
}

// writeDataset writes docs documents with lengths in [minLen, maxLen] and returns them.
func writeDataset(t *testing.T, path string, r *rand.Rand, docs, minLen, maxLen int) [][]int32 {
	t.Helper()
	w, err := dsabi.NewDatasetWriter(path, &dsabi.WriterOptions{VocabSize: 50257})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	out := make([][]int32, docs)
	for d := range out {
		out[d] = randomIDs(r, minLen+r.Intn(maxLen-minLen+1), 50257)
		if err := w.AddDocument(out[d]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return out
}

func openDataset(t *testing.T, path string) *dsabi.Dataset {
	t.Helper()
	d, err := dsabi.OpenDataset(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestByteTokenizerRoundTripsAnyBytes(t *testing.T) {
	r := seeded(t)
	tok, err := dsabi.NewByteTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	if n, _ := tok.VocabSize(); n != 257 {
		t.Errorf("VocabSize() = %d, want 257", n)
	}
	if id, _ := tok.EOT(); id != 256 {
		t.Errorf("EOT() = %d, want 256", id)
	}
	raw := make([]byte, 4096)
	r.Read(raw)
	ids, err := tok.Encode(string(raw))
	if err != nil || len(ids) != 4096 || ids[7] != int32(raw[7]) {
		t.Fatalf("Encode: %d ids, %v", len(ids), err)
	}
	back, err := tok.Decode(ids)
	if err != nil || string(back) != string(raw) {
		t.Errorf("Decode(Encode(x)) != x (%v)", err)
	}
	_, err = tok.Decode([]int32{65, 300})
	if !errors.Is(err, dsabi.ErrInvalidArg) || !strings.Contains(err.Error(), "ids[1]=300") {
		t.Errorf("Decode of an id outside the vocabulary: %v", err)
	}
}

func TestWriterAndDatasetRoundTrip(t *testing.T) {
	r := seeded(t)
	path := filepath.Join(t.TempDir(), "rt.dst")
	docs := writeDataset(t, path, r, 80, 0, 300)
	full := dsabi.VerifyFull
	d, err := dsabi.OpenDataset(path, &dsabi.DatasetOptions{Verify: &full})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	info, err := d.Info()
	if err != nil {
		t.Fatal(err)
	}
	var tokens uint64
	var stream []int32
	for _, doc := range docs {
		tokens += uint64(len(doc))
		stream = append(stream, doc...)
	}
	st, _ := os.Stat(path)
	want := dsabi.DatasetInfo{FormatVersion: 1, TokenBytes: 2, Documents: 80, Tokens: tokens, FileBytes: uint64(st.Size()),
		VocabSize: 50257, TokensCRC32C: info.TokensCRC32C}
	if info != want {
		t.Errorf("Info() = %+v, want %+v", info, want)
	}
	for i, doc := range docs {
		got, err := d.Document(int64(i))
		if err != nil || !reflect.DeepEqual(got, doc) {
			t.Fatalf("document %d: %v, %v; want %v", i, got, err, doc)
		}
	}
	if got, _ := d.ReadTokens(10, 50); !reflect.DeepEqual(got, stream[10:60]) {
		t.Errorf("ReadTokens(10, 50) = %v, want %v", got, stream[10:60])
	}
	if _, err := d.Document(80); !errors.Is(err, dsabi.ErrInvalidArg) {
		t.Errorf("Document(80) of 80: %v", err)
	}
}

func TestUncommittedWriterLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.dst")
	w, err := dsabi.NewDatasetWriter(path, &dsabi.WriterOptions{VocabSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append([]int32{5, 100}); !errors.Is(err, dsabi.ErrInvalidArg) {
		t.Errorf("Append of id 100 with vocabulary 100: %v", err)
	}
	w.Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
	if err := w.Append([]int32{1}); !errors.Is(err, dsabi.ErrInvalidHandle) {
		t.Errorf("Append after Close: %v", err)
	}
}

func TestCorruptDatasetNamesTheByteOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cut.dst")
	writeDataset(t, path, seeded(t), 10, 5, 10)
	raw, _ := os.ReadFile(path)
	os.WriteFile(path, raw[:len(raw)-5], 0o644)
	_, err := dsabi.OpenDataset(path, nil)
	var dsErr *dsabi.Error
	if !errors.As(err, &dsErr) || dsErr.Code != dsabi.StatusCorrupt || !strings.Contains(dsErr.Msg, "byte offset") {
		t.Errorf("OpenDataset of a truncated file: %v", err)
	}
}

func corpus(t *testing.T) (string, []string) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.txt")
	b := filepath.Join(dir, "b.txt")
	os.WriteFile(a, []byte("first paragraph\nstill first\n\nsecond paragraph\n"), 0o644)
	os.WriteFile(b, []byte("caf\u00e9 third\n\n\nfourth"), 0o644)
	return dir, []string{a, b}
}

func TestBuildDatasetSplitsParagraphsAndReportsProgress(t *testing.T) {
	dir, inputs := corpus(t)
	out := filepath.Join(dir, "built.dst")
	var reports []dsabi.BuildProgress
	stats, err := dsabi.BuildDataset(out, inputs, &dsabi.BuildOptions{Split: dsabi.SplitParagraph, AppendEOT: true,
		ChunkBytes: 7, Progress: func(p dsabi.BuildProgress) bool { reports = append(reports, p); return true }})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(out)
	if stats.Files != 2 || stats.Documents != 4 || stats.BytesOut != uint64(st.Size()) {
		t.Errorf("stats = %+v", stats)
	}
	if len(reports) < 5 {
		t.Errorf("%d progress reports with 7-byte chunks", len(reports))
	}
	tok, _ := dsabi.NewByteTokenizer()
	defer tok.Close()
	d := openDataset(t, out)
	want := []string{"first paragraph\nstill first", "second paragraph", "caf\u00e9 third", "fourth"}
	for i, text := range want {
		ids, _ := d.Document(int64(i))
		if ids[len(ids)-1] != 256 {
			t.Errorf("document %d does not end with the end-of-text id", i)
		}
		if got, _ := tok.Decode(ids[:len(ids)-1]); string(got) != text {
			t.Errorf("document %d = %q, want %q", i, got, text)
		}
	}
}

func TestBuildProgressCancelsOrPanics(t *testing.T) {
	dir, inputs := corpus(t)
	out := filepath.Join(dir, "cancelled.dst")
	_, err := dsabi.BuildDataset(out, inputs, &dsabi.BuildOptions{ChunkBytes: 7,
		Progress: func(p dsabi.BuildProgress) bool { return p.BytesDone < 20 }})
	if !errors.Is(err, dsabi.ErrAborted) || !strings.Contains(err.Error(), "progress callback") {
		t.Errorf("a build whose progress returned false: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a cancelled build left %s", out)
	}
	func() {
		defer func() {
			if r := recover(); r != "stop" {
				t.Errorf("recovered %v, want the callback's panic", r)
			}
		}()
		dsabi.BuildDataset(out, inputs, &dsabi.BuildOptions{ChunkBytes: 7,
			Progress: func(dsabi.BuildProgress) bool { panic("stop") }})
	}()
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a build that panicked left %s", out)
	}
	if stats, err := dsabi.BuildDataset(out, inputs, nil); err != nil || stats.Documents != 2 {
		t.Errorf("build after a panic: %+v, %v", stats, err)
	}
	if _, err := dsabi.BuildDataset(out, []string{filepath.Join(dir, "nope.txt")}, nil); !errors.Is(err, dsabi.ErrIO) ||
		!strings.Contains(err.Error(), "nope.txt") {
		t.Errorf("a missing input: %v", err)
	}
}

func TestSamplerFollowsDistributedSamplerRules(t *testing.T) {
	// Without shuffling the order is known: rank r takes indices r, r + world, ... of the list
	// padded by repeating it from the start (10 samples, 3 ranks: 12 slots).
	s, err := dsabi.NewSampler(10, &dsabi.SamplerOptions{Rank: 1, WorldSize: 3, NoShuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _ := s.Indices(0); !reflect.DeepEqual(got, []int64{1, 4, 7, 0}) {
		t.Errorf("Indices(0) = %v", got)
	}
	seen := map[int64]bool{}
	var epoch3 []int64
	for r := 0; r < 4; r++ {
		q, _ := dsabi.NewSampler(100, &dsabi.SamplerOptions{Rank: r, WorldSize: 4, Seed: 17})
		idx, _ := q.Indices(3)
		for _, i := range idx {
			seen[i] = true
		}
		if r == 2 {
			epoch3 = idx
			q.SetEpoch(3)
			if got, _ := q.Next(10); !reflect.DeepEqual(got, idx[:10]) {
				t.Errorf("Next(10) = %v, want %v", got, idx[:10])
			}
			if e, p, _ := q.Cursor(); e != 3 || p != 10 {
				t.Errorf("Cursor() = %d, %d", e, p)
			}
		}
		q.Close()
	}
	if len(seen) != 100 {
		t.Errorf("the ranks' shares cover %d of 100 samples", len(seen))
	}
	resumed, _ := dsabi.NewSampler(100, &dsabi.SamplerOptions{Rank: 2, WorldSize: 4, Seed: 17})
	defer resumed.Close()
	resumed.SetCursor(3, 10)
	if got, _ := resumed.Next(100); !reflect.DeepEqual(got, epoch3[10:]) {
		t.Errorf("resumed Next = %v, want %v", got, epoch3[10:])
	}
	if got, _ := resumed.Next(5); len(got) != 0 {
		t.Errorf("Next after the epoch = %v", got)
	}
}

func TestCurriculumSchedules(t *testing.T) {
	c, err := dsabi.NewCurriculum(dsabi.CurriculumOptions{Schedule: dsabi.Ptr(dsabi.ScheduleFixedLinear),
		MinDifficulty: dsabi.Ptr[int64](8), MaxDifficulty: dsabi.Ptr[int64](1024), TotalCurriculumStep: 100,
		DifficultyStep: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// d = floor(step / 100 * 1016 + 8), rounded down to a multiple of 8, at most 1024
	for step, want := range map[int64]int64{0: 8, 1: 16, 10: 104, 33: 336, 99: 1008, 100: 1024, 150: 1024} {
		if got, _ := c.Difficulty(step); got != want {
			t.Errorf("Difficulty(%d) = %d, want %d", step, got, want)
		}
	}
	if d, _ := c.Update(50); d != 512 {
		t.Errorf("Update(50) = %d", d)
	}
	discrete, err := dsabi.NewCurriculum(dsabi.CurriculumOptions{Schedule: dsabi.Ptr(dsabi.ScheduleFixedDiscrete),
		MinDifficulty: dsabi.Ptr[int64](1), MaxDifficulty: dsabi.Ptr[int64](3),
		DiscreteDifficulty: []int64{1, 2, 3}, DiscreteMaxStep: []int64{5, 10}})
	if err != nil {
		t.Fatal(err)
	}
	defer discrete.Close()
	for step, want := range map[int64]int64{5: 1, 6: 2, 10: 2, 11: 3} {
		if got, _ := discrete.Difficulty(step); got != want {
			t.Errorf("discrete Difficulty(%d) = %d, want %d", step, got, want)
		}
	}
	_, err = dsabi.NewCurriculum(dsabi.CurriculumOptions{Schedule: dsabi.Ptr(dsabi.ScheduleFixedLinear),
		MinDifficulty: dsabi.Ptr[int64](8), MaxDifficulty: dsabi.Ptr[int64](64), DifficultyStep: 8})
	if !errors.Is(err, dsabi.ErrInvalidArg) || !strings.Contains(err.Error(), "total_curriculum_step") {
		t.Errorf("a schedule without total_curriculum_step: %v", err)
	}
}

func TestLoaderWindowsMatchTheDataAndResume(t *testing.T) {
	r := seeded(t)
	path := filepath.Join(t.TempDir(), "windows.dst")
	docs := writeDataset(t, path, r, 40, 500, 999)
	var stream []int32
	for _, doc := range docs {
		stream = append(stream, doc...)
	}
	windows := int64((len(stream)-65)/64 + 1)
	opts := &dsabi.LoaderOptions{SeqLen: 65, WindowStride: 64, MicroBatchSize: 4, GradientAccumulationSteps: 3,
		Rank: 1, WorldSize: 2, Seed: dsabi.Ptr[int64](11), NumWorkers: 2}
	d := openDataset(t, path)
	loader, err := dsabi.NewDataLoader(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer loader.Close()
	epoch := func(l *dsabi.DataLoader, check bool) []int64 {
		var ids []int64
		for {
			b, err := l.Next()
			if err == io.EOF {
				return ids
			}
			if err != nil {
				t.Fatal(err)
			}
			tokens, _ := b.Tokens()
			samples, _ := b.SampleIDs()
			tok, _ := dsabi.ToSlice[int32](tokens)
			sid, _ := dsabi.ToSlice[int64](samples)
			if check {
				if shape := tokens.Shape(); !reflect.DeepEqual(shape, []int64{int64(len(sid)), 65}) {
					t.Fatalf("tokens shape %v for %d samples", shape, len(sid))
				}
				for row, s := range sid {
					if !reflect.DeepEqual(tok[row*65:row*65+65], stream[s*64:s*64+65]) {
						t.Fatalf("sample %d does not hold window %d of the data", row, s)
					}
				}
			}
			ids = append(ids, sid...)
			tokens.Close()
			samples.Close()
			b.Close()
		}
	}
	first := epoch(loader, true)
	s, _ := dsabi.NewSampler(windows, &dsabi.SamplerOptions{Rank: 1, WorldSize: 2, Seed: 11})
	defer s.Close()
	if want, _ := s.Indices(0); !reflect.DeepEqual(first, want) {
		t.Errorf("the loader's order is not the sampler's")
	}
	for i := 0; i < 5; i++ {
		b, _ := loader.Next()
		b.Close()
	}
	cursor, err := loader.Cursor()
	if err != nil || cursor.Epoch != 1 || cursor.Position != 5 {
		t.Errorf("Cursor() = %+v, %v", cursor, err)
	}
	rest := epoch(loader, false)
	resumed, err := dsabi.NewDataLoader(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	if err := resumed.SetCursor(cursor); err != nil {
		t.Fatal(err)
	}
	if again := epoch(resumed, false); !reflect.DeepEqual(again, rest) {
		t.Errorf("a resumed loader continues differently")
	}
}

func TestCustomCurriculumRunsOnLoaderThreads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs.dst")
	docs := writeDataset(t, path, seeded(t), 120, 1, 300)
	var mu sync.Mutex
	steps := map[int64]bool{}
	c, err := dsabi.NewCurriculum(dsabi.CurriculumOptions{MinDifficulty: dsabi.Ptr[int64](8),
		MaxDifficulty: dsabi.Ptr[int64](64), Custom: func(step int64) int64 {
			mu.Lock()
			steps[step] = true
			mu.Unlock()
			if 8*step < 64 {
				return 8 * step
			}
			return 64
		}})
	if err != nil {
		t.Fatal(err)
	}
	d := openDataset(t, path)
	loader, err := dsabi.NewDataLoader(d, &dsabi.LoaderOptions{Mode: dsabi.ModeDocuments, MicroBatchSize: 2,
		GradientAccumulationSteps: 1, NoShuffle: true, PadID: -1, NumWorkers: 3, Curriculum: c})
	if err != nil {
		t.Fatal(err)
	}
	defer loader.Close()
	c.Close() // the loader keeps the curriculum, and its schedule
	for step := int64(0); ; step++ {
		b, err := loader.Next()
		if err == io.EOF {
			if step != 60 {
				t.Errorf("%d micro-batches, want 60", step)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		info, _ := b.Info()
		cut := 8 * (step + 1)
		if cut > 64 {
			cut = 64
		}
		if info.GlobalStep != step || info.Difficulty != cut {
			t.Fatalf("batch %d: step %d difficulty %d, want difficulty %d", step, info.GlobalStep, info.Difficulty, cut)
		}
		tokens, _ := b.Tokens()
		samples, _ := b.SampleIDs()
		tok, _ := dsabi.ToSlice[int32](tokens)
		sid, _ := dsabi.ToSlice[int64](samples)
		columns := int(tokens.Shape()[1])
		for row, s := range sid {
			want := docs[s]
			if int64(len(want)) > cut {
				want = want[:cut]
			}
			if !reflect.DeepEqual(tok[row*columns:row*columns+len(want)], want) {
				t.Fatalf("batch %d row %d is not document %d cut at %d", step, row, s, cut)
			}
		}
		tokens.Close()
		samples.Close()
		b.Close()
	}
	if !steps[1] || !steps[8] {
		t.Errorf("the schedule was asked for steps %v", steps)
	}
}

func TestDynamicBatchingPacksEveryDocumentOnce(t *testing.T) {
	r := seeded(t)
	path := filepath.Join(t.TempDir(), "packed.dst")
	w, _ := dsabi.NewDatasetWriter(path, nil)
	lengths := make([]int, 300)
	for i := range lengths {
		lengths[i] = 1 + r.Intn(299)
		ids := make([]int32, lengths[i])
		for k := range ids {
			ids[k] = int32(i + 1)
		}
		w.AddDocument(ids)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	d := openDataset(t, path)
	loader, err := dsabi.NewDataLoader(d, &dsabi.LoaderOptions{Mode: dsabi.ModeDocuments, MicroBatchSize: 1,
		GradientAccumulationSteps: 2, DynamicBatching: dsabi.Ptr(true), MaxTokens: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer loader.Close()
	seen := map[int64]bool{}
	for {
		b, err := loader.Next()
		if err == io.EOF {
			break
		}
		cu, err := b.Tensor(dsabi.FieldCuSeqlens)
		if err != nil {
			t.Fatal(err)
		}
		starts, _ := dsabi.ToSlice[int32](cu)
		samples, _ := b.SampleIDs()
		sid, _ := dsabi.ToSlice[int64](samples)
		tokens, _ := b.Tokens()
		tok, _ := dsabi.ToSlice[int32](tokens)
		for k, s := range sid {
			if int(starts[k+1]-starts[k]) != lengths[s] || tok[starts[k]] != int32(s+1) || seen[s] {
				t.Fatalf("sequence %d of a pack is not document %d once", k, s)
			}
			seen[s] = true
		}
		cu.Close()
		samples.Close()
		tokens.Close()
		b.Close()
	}
	info, _ := loader.Info()
	dropped := info["dynamic_batching"].(map[string]any)["dropped_tail"].(float64)
	if len(seen) != 300-int(dropped) {
		t.Errorf("%d documents packed, %v dropped, of 300", len(seen), dropped)
	}
	if lr, _ := dsabi.ScaleLR(dsabi.LRScalingSqrt, 4, 16, 0.1); fmt.Sprintf("%.6f", lr) != "0.200000" {
		t.Errorf("ScaleLR(sqrt, 4, 16, 0.1) = %v", lr)
	}
}

func TestWindowsBatchHasNoPackingFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.dst")
	writeDataset(t, path, seeded(t), 4, 100, 100)
	d := openDataset(t, path)
	loader, err := dsabi.NewDataLoader(d, &dsabi.LoaderOptions{SeqLen: 16, MicroBatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer loader.Close()
	b, err := loader.Next()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Tensor(dsabi.FieldCuSeqlens); !errors.Is(err, dsabi.ErrNotFound) {
		t.Errorf("CuSeqlens of a windows batch: %v", err)
	}
	if _, err := dsabi.NewDataLoader(d, &dsabi.LoaderOptions{}); !errors.Is(err, dsabi.ErrInvalidArg) ||
		!strings.Contains(err.Error(), "seq_len=0") {
		t.Errorf("a windows loader without SeqLen: %v", err)
	}
}
