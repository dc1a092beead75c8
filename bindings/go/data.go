package dsabi

// The data pipeline: token datasets, tokenizers, the distributed sampler, curriculum learning and
// the prefetching loader (ds_data_*, ds_sampler_*).
//
// Arrays cross by copy: ids go in as []int32 (copied into library memory for the call), ids and
// indices come out as new slices. Batches are the exception: their fields are Tensors on the
// batch's memory.

/*
#include <stdint.h>
#include <dsabi.h>

extern int32_t dsabiGoProgress(uint64_t, uint64_t, uint64_t, uint64_t, void*);
extern int64_t dsabiGoDifficulty(int64_t, void*);

// Install the Go callbacks in option structs of the generated layer (addresses as integers: they
// are C memory). handle 0 removes them.
static void dsabi_go_set_progress(uintptr_t opts, uintptr_t handle) {
	ds_data_build_options_t* o = (ds_data_build_options_t*)opts;
	o->progress = handle ? (ds_data_progress_fn)dsabiGoProgress : NULL;
	o->progress_user_data = (void*)handle;
}

static void dsabi_go_set_schedule(uintptr_t opts, uintptr_t handle) {
	ds_data_curriculum_options_t* o = (ds_data_curriculum_options_t*)opts;
	o->custom_fn = handle ? (ds_data_difficulty_fn)dsabiGoDifficulty : NULL;
	o->custom_user_data = (void*)handle;
}
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/cgo"

	"github.com/dsabi/dsabi-go/internal/swig"
)

// Ptr returns a pointer to v, for the optional fields of option structs.
func Ptr[T any](v T) *T { return &v }

// Split is how BuildDataset splits text into documents (enum ds_data_split).
type Split int32

// The splits of dsabi.h.
const (
	SplitFile      Split = 0 // each input file is one document
	SplitLine      Split = 1 // each non-empty line, without its newline
	SplitParagraph Split = 2 // blocks separated by blank lines
	SplitDelimiter Split = 3 // text between occurrences of BuildOptions.Delimiter
)

// Verify is how much OpenDataset checks (enum ds_data_verify).
type Verify int32

// The verification levels of dsabi.h.
const (
	VerifyHeader  Verify = 0 // header fields, checksum and sizes
	VerifyOffsets Verify = 1 // also every document offset (the default)
	VerifyFull    Verify = 2 // also the token checksum and every id (reads the file)
)

// Schedule is a curriculum schedule (enum ds_data_schedule).
type Schedule int32

// The schedules of dsabi.h.
const (
	ScheduleFixedLinear   Schedule = 0
	ScheduleFixedRoot     Schedule = 1
	ScheduleFixedDiscrete Schedule = 2
	ScheduleCustom        Schedule = 3
)

// Floor is how fixed_linear and fixed_root treat a difficulty rounded below the minimum (enum
// ds_data_floor).
type Floor int32

// The floors of dsabi.h.
const (
	FloorNone    Floor = 0 // as DeepSpeed 0.19.6 (the default)
	FloorMin     Floor = 1 // at least MinDifficulty
	FloorStepMin Floor = 2 // at least the first multiple of DifficultyStep at or above MinDifficulty
)

// DifficultyType says what a curriculum difficulty is (enum ds_data_difficulty_type).
type DifficultyType int32

// The difficulty types of dsabi.h.
const (
	DifficultyValue      DifficultyType = 0
	DifficultyPercentile DifficultyType = 1
)

// LRScaling is dynamic batching's learning-rate scaling (enum ds_data_lr_scaling).
type LRScaling int32

// The scalings of dsabi.h.
const (
	LRScalingLinear LRScaling = 0
	LRScalingSqrt   LRScaling = 1
	LRScalingNone   LRScaling = 2
)

// PickingOrder is dynamic batching's sequence order (enum ds_data_picking_order).
type PickingOrder int32

// The picking orders of dsabi.h.
const (
	PickDataloader PickingOrder = 0
	PickSeqlen     PickingOrder = 1
	PickRandom     PickingOrder = 2
)

// DataMode is what a loader's sample is (enum ds_data_mode).
type DataMode int32

// The modes of dsabi.h.
const (
	ModeWindows   DataMode = 0 // SeqLen ids from position i * WindowStride of the token stream
	ModeDocuments DataMode = 1 // document i, cut at SeqLen when set, padded to the batch's longest
)

// Field names a tensor of a Batch (enum ds_data_field).
type Field int32

// The fields of dsabi.h.
const (
	FieldTokens      Field = 0 // [B, T] ids
	FieldLengths     Field = 1 // [B] int32: real tokens per row
	FieldSampleIDs   Field = 2 // [n] int64: the samples of the batch, in row order
	FieldCuSeqlens   Field = 3 // packed only: [segments + 1] int32 segment starts
	FieldPositionIDs Field = 4 // packed only: [B, T] int32, restarting at each sequence
	FieldSequenceIDs Field = 5 // packed only: [B, T] int32 sequence index in its row, -1 on padding
)

const (
	tokenizerBytes = 0 // DS_DATA_TOKENIZER_BYTES
	tokenizerGPT2  = 1 // DS_DATA_TOKENIZER_GPT2
)

// vector turns a tensor that a helper returned into a slice (a copy), releasing the tensor.
func vector[T Element](h swig.TensorHandle) ([]T, error) {
	t, err := newTensor(h)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return ToSlice[T](t)
}

// withVector runs f with values copied into a library-owned tensor (so Go memory stays in Go).
func withVector[T Element](values []T, f func(swig.TensorHandle)) error {
	t, err := FromSlice(values)
	if err != nil {
		return err
	}
	defer t.Close()
	return call(func() { f(t.h) })
}

func configHandle(c *Config) swig.ConfigHandle {
	if c == nil || c.h == nil {
		return nil
	}
	return c.h
}

// ---- tokenizers ---------------------------------------------------------------------------------

// Tokenizer is a byte-level or GPT-2 BPE tokenizer. Nothing is downloaded: GPT-2 needs the caller's
// vocab.json and merges.txt. Close it when done.
type Tokenizer struct {
	h swig.TokenizerHandle
}

// NewByteTokenizer makes a tokenizer with one token per byte (ids 0..255) and end-of-text 256.
func NewByteTokenizer() (*Tokenizer, error) { return newTokenizer(tokenizerBytes, "", "") }

// NewGPT2Tokenizer makes GPT-2's byte-level BPE from vocab.json (token -> id) and merges.txt.
func NewGPT2Tokenizer(vocabPath, mergesPath string) (*Tokenizer, error) {
	return newTokenizer(tokenizerGPT2, vocabPath, mergesPath)
}

func newTokenizer(kind int, vocab, merges string) (*Tokenizer, error) {
	var h swig.TokenizerHandle
	if err := call(func() { h = swig.TokenizerHandleCreate(kind, vocab, merges) }); err != nil {
		return nil, err
	}
	t := &Tokenizer{h: h}
	runtime.SetFinalizer(t, (*Tokenizer).Close) // a backstop only: call Close
	return t, nil
}

// Close releases the tokenizer. It is idempotent.
func (t *Tokenizer) Close() error {
	if t.h != nil {
		runtime.SetFinalizer(t, nil)
		swig.DeleteTokenizerHandle(t.h)
		t.h = nil
	}
	return nil
}

func (t *Tokenizer) run(f func(h swig.TokenizerHandle)) error {
	if t.h == nil {
		return errClosed("Tokenizer")
	}
	defer runtime.KeepAlive(t)
	return call(func() { f(t.h) })
}

// VocabSize is the number of token ids.
func (t *Tokenizer) VocabSize() (n int64, err error) {
	err = t.run(func(h swig.TokenizerHandle) { n = h.Vocab_size() })
	return n, err
}

// EOT is the end-of-text id (ErrNotFound for a GPT-2 vocabulary without <|endoftext|>).
func (t *Tokenizer) EOT() (id int32, err error) {
	err = t.run(func(h swig.TokenizerHandle) { id = int32(h.Eot()) })
	return id, err
}

// Encode returns the ids of text (any bytes; invalid UTF-8 is kept byte-exact).
func (t *Tokenizer) Encode(text string) ([]int32, error) {
	var ids swig.TensorHandle
	if err := t.run(func(h swig.TokenizerHandle) { ids = h.Encode(text) }); err != nil {
		return nil, err
	}
	return vector[int32](ids)
}

// Decode returns the bytes of ids; Decode(Encode(x)) == x for any bytes x.
func (t *Tokenizer) Decode(ids []int32) ([]byte, error) {
	if t.h == nil {
		return nil, errClosed("Tokenizer")
	}
	var out swig.TensorHandle
	err := withVector(ids, func(v swig.TensorHandle) { out = t.h.Decode(v) })
	runtime.KeepAlive(t)
	if err != nil {
		return nil, err
	}
	return vector[uint8](out)
}

// ---- writing and building datasets -------------------------------------------------------------------

// WriterOptions are the options of NewDatasetWriter; nil means the defaults.
type WriterOptions struct {
	TokenBytes  int   // 2 (u16 ids, default when 0) or 4 (u32)
	VocabSize   int64 // recorded in the header; > 0: ids at or above it are rejected
	BufferBytes int64 // the write buffer; 0: 8 MiB
}

// DatasetWriter writes a token dataset: documents of ids streamed with bounded memory to a
// temporary file that Commit renames into place. Close without Commit discards the file, so
//
//	w, err := dsabi.NewDatasetWriter(path, nil)
//	...
//	defer w.Close()
//	for _, doc := range docs { if err := w.AddDocument(doc); err != nil { return err } }
//	return w.Commit()
//
// leaves nothing behind on an error.
type DatasetWriter struct {
	h swig.WriterHandle
}

// NewDatasetWriter starts writing a dataset at path.
func NewDatasetWriter(path string, opts *WriterOptions) (*DatasetWriter, error) {
	o := WriterOptions{}
	if opts != nil {
		o = *opts
	}
	var h swig.WriterHandle
	err := call(func() { h = swig.WriterHandleCreate(path, o.TokenBytes, o.VocabSize, uint64(o.BufferBytes)) })
	if err != nil {
		return nil, err
	}
	w := &DatasetWriter{h: h}
	runtime.SetFinalizer(w, (*DatasetWriter).Close)
	return w, nil
}

// Close releases the writer; an uncommitted dataset is discarded. It is idempotent.
func (w *DatasetWriter) Close() error {
	if w.h != nil {
		runtime.SetFinalizer(w, nil)
		swig.DeleteWriterHandle(w.h)
		w.h = nil
	}
	return nil
}

func (w *DatasetWriter) run(f func(h swig.WriterHandle)) error {
	if w.h == nil {
		return errClosed("DatasetWriter")
	}
	defer runtime.KeepAlive(w)
	return call(func() { f(w.h) })
}

// Append adds ids to the current document.
func (w *DatasetWriter) Append(ids []int32) error {
	if w.h == nil {
		return errClosed("DatasetWriter")
	}
	defer runtime.KeepAlive(w)
	return withVector(ids, func(v swig.TensorHandle) { w.h.Append(v) })
}

// EndDocument ends the current document (an empty one is recorded with length 0).
func (w *DatasetWriter) EndDocument() error {
	return w.run(func(h swig.WriterHandle) { h.End_document() })
}

// AddDocument is Append, then EndDocument.
func (w *DatasetWriter) AddDocument(ids []int32) error {
	if err := w.Append(ids); err != nil {
		return err
	}
	return w.EndDocument()
}

// Commit finishes the file (ending an open document) and moves it into place.
func (w *DatasetWriter) Commit() error {
	return w.run(func(h swig.WriterHandle) { h.Commit() })
}

// BuildProgress is what BuildDataset reports about every chunk read.
type BuildProgress struct {
	BytesDone, BytesTotal, Documents, Tokens uint64
}

// BuildOptions are the options of BuildDataset; nil means the defaults.
type BuildOptions struct {
	Tokenizer  *Tokenizer // nil: byte-level
	Split      Split
	AppendEOT  bool   // append the tokenizer's end-of-text id to every document
	Delimiter  string // the separator of SplitDelimiter
	TokenBytes int    // 2 or 4; 0: 2 when the vocabulary fits in u16
	KeepEmpty  bool   // keep documents without tokens
	ChunkBytes int64  // read size; 0: 4 MiB
	// Progress is called on the building goroutine about every chunk; returning false stops the
	// build (StatusAborted). A panic in it stops the build too and is re-raised by BuildDataset.
	Progress func(BuildProgress) bool
}

// BuildStats is what BuildDataset did.
type BuildStats struct {
	Files, Documents, Tokens, BytesIn, BytesOut uint64
	Seconds                                     float64
}

// BuildDataset tokenizes text files into a dataset at out, streaming (memory is bounded by the chunk
// size). A build stopped by the progress callback returns an *Error with StatusAborted
// (errors.Is(err, ErrAborted)); nothing is then left at out.
func BuildDataset(out string, inputs []string, opts *BuildOptions) (BuildStats, error) {
	o := BuildOptions{}
	if opts != nil {
		o = *opts
	}
	raw := swig.NewBuildOptions()
	defer swig.DeleteBuildOptions(raw)
	raw.SetSplit(int(o.Split))
	raw.SetAppend_eot(boolInt(o.AppendEOT))
	raw.SetToken_bytes(o.TokenBytes)
	raw.SetKeep_empty(boolInt(o.KeepEmpty))
	raw.SetChunk_bytes(uint64(o.ChunkBytes))
	var progress *progressCall
	if o.Progress != nil {
		progress = &progressCall{fn: o.Progress}
		handle := cgo.NewHandle(progress)
		defer handle.Delete()
		C.dsabi_go_set_progress(C.uintptr_t(raw.Swigcptr()), C.uintptr_t(handle))
	}
	var tok swig.TokenizerHandle
	if o.Tokenizer != nil {
		if o.Tokenizer.h == nil {
			return BuildStats{}, errClosed("Tokenizer")
		}
		tok = o.Tokenizer.h
		defer runtime.KeepAlive(o.Tokenizer)
	}
	var stats swig.DataBuildStats
	err := call(func() { stats = swig.Data_build(out, inputs, raw, tok, o.Delimiter) })
	if progress != nil && progress.panicked != nil {
		if err == nil {
			swig.DeleteDataBuildStats(stats)
		}
		panic(progress.panicked)
	}
	if err != nil {
		return BuildStats{}, err
	}
	defer swig.DeleteDataBuildStats(stats)
	return BuildStats{Files: stats.GetN_files(), Documents: stats.GetN_documents(), Tokens: stats.GetN_tokens(),
		BytesIn: stats.GetBytes_in(), BytesOut: stats.GetBytes_out(), Seconds: stats.GetSeconds()}, nil
}

// WriteMetric writes a per-sample metric file (one value per window or document), for curriculum
// metric buckets.
func WriteMetric(path string, values []int64) error {
	return withVector(values, func(v swig.TensorHandle) { swig.Data_metric_write(path, v) })
}

// ScaleLR is DeepSpeed's scale_lr: the learning rate for a dynamic batch of batchSize sequences,
// when baseBatchSize sequences take baseLR.
func ScaleLR(method LRScaling, baseBatchSize, batchSize int64, baseLR float64) (lr float64, err error) {
	err = call(func() { lr = swig.Data_scale_lr(int(method), baseBatchSize, batchSize, baseLR) })
	return lr, err
}

// ---- reading datasets ------------------------------------------------------------------------------

// DatasetOptions are the options of OpenDataset; nil means the defaults.
type DatasetOptions struct {
	Verify           *Verify // nil: VerifyOffsets
	MaxResidentBytes int64   // mapped pages kept resident before they are released; 0: 256 MiB
}

// DatasetInfo holds the header facts of a dataset.
type DatasetInfo struct {
	FormatVersion uint32
	TokenBytes    int
	Documents     uint64
	Tokens        uint64
	FileBytes     uint64
	VocabSize     int64 // 0: unknown
	TokensCRC32C  uint32
}

// Dataset is an open token dataset: memory-mapped, read only, safe for concurrent use.
type Dataset struct {
	h swig.DataHandle
}

// OpenDataset opens and validates a dataset. A corrupt or truncated file gives StatusCorrupt with a
// message naming the file and the byte offset.
func OpenDataset(path string, opts *DatasetOptions) (*Dataset, error) {
	o := DatasetOptions{}
	if opts != nil {
		o = *opts
	}
	verify := VerifyOffsets
	if o.Verify != nil {
		verify = *o.Verify
	}
	var h swig.DataHandle
	if err := call(func() { h = swig.DataHandleOpen(path, int(verify), uint64(o.MaxResidentBytes)) }); err != nil {
		return nil, err
	}
	d := &Dataset{h: h}
	runtime.SetFinalizer(d, (*Dataset).Close)
	return d, nil
}

// Close closes the dataset; loaders keep it open until they are closed. It is idempotent.
func (d *Dataset) Close() error {
	if d.h != nil {
		runtime.SetFinalizer(d, nil)
		swig.DeleteDataHandle(d.h)
		d.h = nil
	}
	return nil
}

func (d *Dataset) run(f func(h swig.DataHandle)) error {
	if d.h == nil {
		return errClosed("Dataset")
	}
	defer runtime.KeepAlive(d)
	return call(func() { f(d.h) })
}

// Info reads the header facts.
func (d *Dataset) Info() (DatasetInfo, error) {
	var info DatasetInfo
	err := d.run(func(h swig.DataHandle) {
		raw := swig.NewDataInfo(h)
		if raw.Swigcptr() == 0 {
			return // the status is pending
		}
		defer swig.DeleteDataInfo(raw)
		info = DatasetInfo{FormatVersion: uint32(raw.GetFormat_version()), TokenBytes: raw.GetToken_bytes(),
			Documents: raw.GetN_documents(), Tokens: raw.GetN_tokens(), FileBytes: raw.GetFile_bytes(),
			VocabSize: raw.GetVocab_size(), TokensCRC32C: uint32(raw.GetTokens_crc32c())}
	})
	return info, err
}

// Document returns the ids of document index.
func (d *Dataset) Document(index int64) ([]int32, error) {
	var ids swig.TensorHandle
	if err := d.run(func(h swig.DataHandle) { ids = h.Document(uint64(index)) }); err != nil {
		return nil, err
	}
	return vector[int32](ids)
}

// ReadTokens returns n ids from position first of the concatenated token stream.
func (d *Dataset) ReadTokens(first, n int64) ([]int32, error) {
	var ids swig.TensorHandle
	if err := d.run(func(h swig.DataHandle) { ids = h.Read_tokens(uint64(first), uint64(n)) }); err != nil {
		return nil, err
	}
	return vector[int32](ids)
}

// ---- distributed sampler ---------------------------------------------------------------------------

// SamplerOptions are the options of NewSampler; nil means DistributedSampler's defaults.
type SamplerOptions struct {
	Rank      int
	WorldSize int // 0: 1
	Seed      int64
	NoShuffle bool // indices in order instead of a permutation seeded Seed + epoch
	DropLast  bool // drop the tail instead of padding every rank to the same count
}

// Sampler is PyTorch's DistributedSampler, in exactly its order: this rank's share of a permutation
// seeded Seed + epoch.
type Sampler struct {
	h swig.SamplerHandle
}

// NewSampler makes a sampler over samples items.
func NewSampler(samples int64, opts *SamplerOptions) (*Sampler, error) {
	o := SamplerOptions{}
	if opts != nil {
		o = *opts
	}
	if o.WorldSize == 0 {
		o.WorldSize = 1
	}
	var h swig.SamplerHandle
	err := call(func() {
		h = swig.SamplerHandleCreate(uint64(samples), o.Rank, o.WorldSize, o.Seed, !o.NoShuffle, o.DropLast)
	})
	if err != nil {
		return nil, err
	}
	s := &Sampler{h: h}
	runtime.SetFinalizer(s, (*Sampler).Close)
	return s, nil
}

// Close releases the sampler. It is idempotent.
func (s *Sampler) Close() error {
	if s.h != nil {
		runtime.SetFinalizer(s, nil)
		swig.DeleteSamplerHandle(s.h)
		s.h = nil
	}
	return nil
}

func (s *Sampler) run(f func(h swig.SamplerHandle)) error {
	if s.h == nil {
		return errClosed("Sampler")
	}
	defer runtime.KeepAlive(s)
	return call(func() { f(s.h) })
}

// Len is the number of samples this rank gets per epoch.
func (s *Sampler) Len() (n int64, err error) {
	err = s.run(func(h swig.SamplerHandle) { n = h.Length() })
	return n, err
}

// Indices is this rank's whole share of an epoch, in order (the cursor does not move).
func (s *Sampler) Indices(epoch int64) ([]int64, error) {
	var v swig.TensorHandle
	if err := s.run(func(h swig.SamplerHandle) { v = h.Indices(epoch) }); err != nil {
		return nil, err
	}
	return vector[int64](v)
}

// SetEpoch starts epoch at position 0.
func (s *Sampler) SetEpoch(epoch int64) error {
	return s.run(func(h swig.SamplerHandle) { h.Set_epoch(epoch) })
}

// Next returns up to maxN next indices of the current epoch; an empty slice once it is exhausted.
func (s *Sampler) Next(maxN int) ([]int64, error) {
	var v swig.TensorHandle
	if err := s.run(func(h swig.SamplerHandle) { v = h.Next(uint64(maxN)) }); err != nil {
		return nil, err
	}
	return vector[int64](v)
}

// Cursor is the epoch and how many of this rank's indices of it were handed out.
func (s *Sampler) Cursor() (epoch, position int64, err error) {
	err = s.run(func(h swig.SamplerHandle) {
		epoch = h.Epoch()
		position = h.Position()
	})
	return epoch, position, err
}

// SetCursor continues exactly where a saved cursor was taken.
func (s *Sampler) SetCursor(epoch, position int64) error {
	return s.run(func(h swig.SamplerHandle) { h.Set_cursor(epoch, position) })
}

// ---- curriculum -------------------------------------------------------------------------------------

// CurriculumOptions are the settings of a Curriculum. Unset ones (nil, zero) come from Config.
type CurriculumOptions struct {
	// Config's legacy curriculum_learning block, or the data_efficiency curriculum metric named
	// Metric (or its only one). Read while NewCurriculum runs only.
	Config              *Config
	Metric              string
	Schedule            *Schedule
	Floor               Floor
	MinDifficulty       *int64
	MaxDifficulty       *int64
	TotalCurriculumStep int64
	DifficultyStep      int64
	RootDegree          float64
	// A fixed_discrete schedule: DiscreteDifficulty has one more entry than DiscreteMaxStep.
	DiscreteDifficulty []int64
	DiscreteMaxStep    []int64
	DifficultyType     *DifficultyType
	MetricPath         string // a per-sample metric file (WriteMetric) for metric-bucket sampling
	// Custom makes a custom schedule (ScheduleCustom unless Schedule is set). It may be called
	// from a loader's worker threads, so it must be safe for concurrent use; a panic in it is
	// reported on stderr and counts as difficulty 0.
	Custom func(step int64) int64
}

// Curriculum is a curriculum schedule (DeepSpeed's CurriculumScheduler).
type Curriculum struct {
	h        swig.CurriculumHandle
	schedule *scheduleRef // nil without a custom schedule
}

// NewCurriculum makes a schedule; missing or inconsistent settings give ErrInvalidArg naming the
// key.
func NewCurriculum(opts CurriculumOptions) (*Curriculum, error) {
	raw := swig.NewCurriculumOptions()
	defer swig.DeleteCurriculumOptions(raw)
	schedule := opts.Schedule
	if schedule == nil && opts.Custom != nil {
		schedule = Ptr(ScheduleCustom)
	}
	if schedule != nil {
		raw.SetSchedule_type(int(*schedule))
	}
	raw.SetFloor_mode(int(opts.Floor))
	if opts.MinDifficulty != nil {
		raw.SetMin_difficulty(*opts.MinDifficulty)
	}
	if opts.MaxDifficulty != nil {
		raw.SetMax_difficulty(*opts.MaxDifficulty)
	}
	if opts.TotalCurriculumStep != 0 {
		raw.SetTotal_curriculum_step(opts.TotalCurriculumStep)
	}
	if opts.DifficultyStep != 0 {
		raw.SetDifficulty_step(opts.DifficultyStep)
	}
	raw.SetRoot_degree(opts.RootDegree)
	if opts.DifficultyType != nil {
		raw.SetDifficulty_type(int(*opts.DifficultyType))
	}
	var ref *scheduleRef
	if opts.Custom != nil {
		ref = newScheduleRef(opts.Custom)
		C.dsabi_go_set_schedule(C.uintptr_t(raw.Swigcptr()), C.uintptr_t(ref.handle))
	}
	var h swig.CurriculumHandle
	err := call(func() {
		h = swig.CurriculumHandleCreate(raw, configHandle(opts.Config), opts.Metric, opts.MetricPath,
			opts.DiscreteDifficulty, opts.DiscreteMaxStep)
	})
	runtime.KeepAlive(opts.Config)
	if err != nil {
		ref.release()
		return nil, err
	}
	c := &Curriculum{h: h, schedule: ref}
	runtime.SetFinalizer(c, (*Curriculum).Close)
	return c, nil
}

// Close releases the curriculum; loaders built with it keep it (and its schedule) until they are
// closed. It is idempotent.
func (c *Curriculum) Close() error {
	if c.h != nil {
		runtime.SetFinalizer(c, nil)
		swig.DeleteCurriculumHandle(c.h)
		c.h = nil
		c.schedule.release()
	}
	return nil
}

func (c *Curriculum) run(f func(h swig.CurriculumHandle)) error {
	if c.h == nil {
		return errClosed("Curriculum")
	}
	defer runtime.KeepAlive(c)
	return call(func() { f(c.h) })
}

// Difficulty is the schedule's difficulty at an optimizer step (stateless).
func (c *Curriculum) Difficulty(step int64) (d int64, err error) {
	err = c.run(func(h swig.CurriculumHandle) { d = h.Difficulty(step) })
	return d, err
}

// Update is DeepSpeed's update_difficulty(step): it moves the current difficulty while it is below
// the maximum, and returns it.
func (c *Curriculum) Update(step int64) (d int64, err error) {
	err = c.run(func(h swig.CurriculumHandle) { d = h.Update(step) })
	return d, err
}

// Current is the current difficulty.
func (c *Curriculum) Current() (d int64, err error) {
	err = c.run(func(h swig.CurriculumHandle) { d = h.Current() })
	return d, err
}

// ---- loader -----------------------------------------------------------------------------------------

// LoaderOptions are the options of NewDataLoader. Zero and nil fields keep the defaults, which come
// from Config where it has the key (train_micro_batch_size_per_gpu, gradient_accumulation_steps,
// dataloader_drop_last, data_efficiency...).
type LoaderOptions struct {
	Config     *Config     // read while NewDataLoader runs only
	Curriculum *Curriculum // the loader keeps it
	Mode       DataMode
	// SeqLen: windows: ids per sample (required; T + 1 with WindowStride T gives input/target
	// pairs); documents: the cut length (0: none).
	SeqLen                    int
	WindowStride              int // 0: SeqLen
	MicroBatchSize            int
	GradientAccumulationSteps int
	Rank, WorldSize           int // this rank's place among WorldSize (0: 1) data-parallel ranks
	NoShuffle                 bool
	DropLast                  *bool
	Seed                      *int64
	NumWorkers                int
	PrefetchDepth             int   // 0: 4
	PinMemory                 *bool // nil: pinned when a CUDA device is present
	DType                     DType // DTypeI32 (also for the zero value) or DTypeI64
	PadID                     int32
	DynamicBatching           *bool
	MaxTokens                 int64
	LRScaling                 *LRScaling
	MinBatchSize              int
	MaxBatchSize              int
	PickingOrder              *PickingOrder
	StartStep                 int64
}

func (o *LoaderOptions) applyTo(raw swig.LoaderOptions) {
	raw.SetMode(int(o.Mode))
	raw.SetSeq_len(o.SeqLen)
	raw.SetWindow_stride(o.WindowStride)
	if o.MicroBatchSize != 0 {
		raw.SetMicro_batch_size(o.MicroBatchSize)
	}
	if o.GradientAccumulationSteps != 0 {
		raw.SetGradient_accumulation_steps(o.GradientAccumulationSteps)
	}
	raw.SetRank(o.Rank)
	if o.WorldSize != 0 {
		raw.SetWorld_size(o.WorldSize)
	}
	raw.SetShuffle(boolInt(!o.NoShuffle))
	if o.DropLast != nil {
		raw.SetDrop_last(boolInt(*o.DropLast))
	}
	if o.Seed != nil {
		raw.SetSeed(*o.Seed)
	}
	if o.NumWorkers != 0 {
		raw.SetNum_workers(o.NumWorkers)
	}
	if o.PrefetchDepth != 0 {
		raw.SetPrefetch_depth(o.PrefetchDepth)
	}
	if o.PinMemory != nil {
		raw.SetPin_memory(boolInt(*o.PinMemory))
	}
	if o.DType != DTypeF32 { // the zero value: keep the default (i32)
		raw.SetDtype(int(o.DType))
	}
	raw.SetPad_id(int(o.PadID))
	if o.DynamicBatching != nil {
		raw.SetDynamic_batching(boolInt(*o.DynamicBatching))
	}
	if o.MaxTokens != 0 {
		raw.SetMax_tokens(o.MaxTokens)
	}
	if o.LRScaling != nil {
		raw.SetLr_scaling_method(int(*o.LRScaling))
	}
	if o.MinBatchSize != 0 {
		raw.SetMin_batch_size(o.MinBatchSize)
	}
	if o.MaxBatchSize != 0 {
		raw.SetMax_batch_size(o.MaxBatchSize)
	}
	if o.PickingOrder != nil {
		raw.SetPicking_order(int(*o.PickingOrder))
	}
	raw.SetStart_step(o.StartStep)
}

// Cursor is where a DataLoader is: checkpoints save it, and SetCursor continues exactly there.
type Cursor struct {
	Epoch           int64
	Position        int64 // micro-batches this rank consumed in the epoch
	GlobalStep      int64 // optimizer steps consumed
	ConsumedSamples int64 // samples this rank consumed since the first epoch
}

// DataLoader hands out the micro-batches of a Dataset for one rank, prepared ahead by worker
// threads. Next returns io.EOF once at the end of each epoch; the call after it starts the next
// epoch:
//
//	for {
//		b, err := loader.Next()
//		if err == io.EOF {
//			break // end of the epoch
//		}
//		...
//	}
//
// A DataLoader must not be used from several goroutines at once.
type DataLoader struct {
	h        swig.LoaderHandle
	schedule *scheduleRef // the curriculum's custom schedule, which the workers may call
}

// NewDataLoader makes a loader over data (which it keeps open).
func NewDataLoader(data *Dataset, opts *LoaderOptions) (*DataLoader, error) {
	o := LoaderOptions{}
	if opts != nil {
		o = *opts
	}
	if data.h == nil {
		return nil, errClosed("Dataset")
	}
	raw := swig.NewLoaderOptions()
	defer swig.DeleteLoaderOptions(raw)
	o.applyTo(raw)
	var curriculum swig.CurriculumHandle
	var schedule *scheduleRef
	if o.Curriculum != nil {
		if o.Curriculum.h == nil {
			return nil, errClosed("Curriculum")
		}
		curriculum = o.Curriculum.h
		schedule = o.Curriculum.schedule.retain()
	}
	var h swig.LoaderHandle
	err := call(func() { h = swig.LoaderHandleCreate(data.h, raw, configHandle(o.Config), curriculum) })
	runtime.KeepAlive(data)
	runtime.KeepAlive(o.Config)
	runtime.KeepAlive(o.Curriculum)
	if err != nil {
		schedule.release()
		return nil, err
	}
	l := &DataLoader{h: h, schedule: schedule}
	runtime.SetFinalizer(l, (*DataLoader).Close)
	return l, nil
}

// Close stops and joins the workers and releases the loader. Batches already handed out stay
// valid. It is idempotent.
func (l *DataLoader) Close() error {
	if l.h != nil {
		runtime.SetFinalizer(l, nil)
		swig.DeleteLoaderHandle(l.h) // joins the workers: only then may the schedule go
		l.h = nil
		l.schedule.release()
	}
	return nil
}

func (l *DataLoader) run(f func(h swig.LoaderHandle)) error {
	if l.h == nil {
		return errClosed("DataLoader")
	}
	defer runtime.KeepAlive(l)
	return call(func() { f(l.h) })
}

// Next returns the next micro-batch, or io.EOF at the end of an epoch. Close the batch when done.
func (l *DataLoader) Next() (*Batch, error) {
	var b swig.BatchHandle
	if err := l.run(func(h swig.LoaderHandle) { b = h.Next() }); err != nil {
		return nil, err
	}
	if b == nil || b.Swigcptr() == 0 {
		return nil, io.EOF
	}
	batch := &Batch{h: b}
	runtime.SetFinalizer(batch, (*Batch).Close)
	return batch, nil
}

// Len is the number of micro-batches this rank gets per epoch (the current epoch's, with dynamic
// batching).
func (l *DataLoader) Len() (n int64, err error) {
	err = l.run(func(h swig.LoaderHandle) { n = h.Length() })
	return n, err
}

// Cursor tells where the loader is.
func (l *DataLoader) Cursor() (Cursor, error) {
	var c Cursor
	err := l.run(func(h swig.LoaderHandle) {
		raw := h.Cursor()
		if raw.Swigcptr() == 0 {
			return
		}
		defer swig.DeleteDataCursor(raw)
		c = Cursor{Epoch: raw.GetEpoch(), Position: raw.GetPosition(), GlobalStep: raw.GetGlobal_step(),
			ConsumedSamples: raw.GetConsumed_samples()}
	})
	return c, err
}

// SetCursor continues exactly where c was taken (batches prepared ahead are dropped).
func (l *DataLoader) SetCursor(c Cursor) error {
	raw := swig.NewDataCursor()
	defer swig.DeleteDataCursor(raw)
	raw.SetEpoch(c.Epoch)
	raw.SetPosition(c.Position)
	raw.SetGlobal_step(c.GlobalStep)
	raw.SetConsumed_samples(c.ConsumedSamples)
	return l.run(func(h swig.LoaderHandle) { h.Set_cursor(raw) })
}

// Info returns the resolved settings (mode, batch sizes, workers, sampler, curriculum, dynamic
// batching).
func (l *DataLoader) Info() (map[string]any, error) {
	var text string
	if err := l.run(func(h swig.LoaderHandle) { text = h.Info_json() }); err != nil {
		return nil, err
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(text), &info); err != nil {
		return nil, fmt.Errorf("dsabi: loader info is not JSON: %w", err)
	}
	return info, nil
}

// BatchInfo describes a micro-batch.
type BatchInfo struct {
	Epoch              int64
	Index              int64 // micro-batch index in the epoch (this rank)
	GlobalStep         int64 // the optimizer step it belongs to
	Rows, Columns      int64 // B, T
	Samples            int64 // sequences (more than Rows when packed)
	Tokens             int64 // real tokens, without padding
	Difficulty         int64 // curriculum difficulty used, or 0
	LRScale            float64
	GlobalBatchSamples int64
	Pinned             bool
}

// Batch is one micro-batch. Its fields are Tensors on the batch's memory, valid after the batch,
// the loader and the dataset are closed. Close the batch (and its tensors) when done.
type Batch struct {
	h swig.BatchHandle
}

// Close releases the batch. It is idempotent.
func (b *Batch) Close() error {
	if b.h != nil {
		runtime.SetFinalizer(b, nil)
		swig.DeleteBatchHandle(b.h)
		b.h = nil
	}
	return nil
}

func (b *Batch) run(f func(h swig.BatchHandle)) error {
	if b.h == nil {
		return errClosed("Batch")
	}
	defer runtime.KeepAlive(b)
	return call(func() { f(b.h) })
}

// Info describes the batch.
func (b *Batch) Info() (BatchInfo, error) {
	var info BatchInfo
	err := b.run(func(h swig.BatchHandle) {
		raw := swig.NewDataBatchInfo(h)
		if raw.Swigcptr() == 0 {
			return
		}
		defer swig.DeleteDataBatchInfo(raw)
		info = BatchInfo{Epoch: raw.GetEpoch(), Index: raw.GetIndex(), GlobalStep: raw.GetGlobal_step(),
			Rows: raw.GetN_rows(), Columns: raw.GetN_columns(), Samples: raw.GetN_samples(), Tokens: raw.GetN_tokens(),
			Difficulty: raw.GetDifficulty(), LRScale: raw.GetLr_scale(), GlobalBatchSamples: raw.GetGlobal_batch_samples(),
			Pinned: raw.GetPinned() != 0}
	})
	return info, err
}

// Tensor returns one field as a new Tensor (ErrNotFound when this kind of batch has none: the
// packing fields exist in packed batches only).
func (b *Batch) Tensor(f Field) (*Tensor, error) {
	var t swig.TensorHandle
	if err := b.run(func(h swig.BatchHandle) { t = h.Tensor(int(f)) }); err != nil {
		return nil, err
	}
	return newTensor(t)
}

// Tokens is the [B, T] ids.
func (b *Batch) Tokens() (*Tensor, error) { return b.Tensor(FieldTokens) }

// Lengths is the [B] real tokens per row.
func (b *Batch) Lengths() (*Tensor, error) { return b.Tensor(FieldLengths) }

// SampleIDs is the [n] dataset samples of the batch, in row order.
func (b *Batch) SampleIDs() (*Tensor, error) { return b.Tensor(FieldSampleIDs) }
