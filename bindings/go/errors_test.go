package dsabi_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	dsabi "github.com/dsabi/dsabi-go"
	"github.com/dsabi/dsabi-go/internal/swig"
)

func TestFailedCallsReturnTypedErrors(t *testing.T) {
	tests := []struct {
		name     string
		call     func() error
		code     dsabi.Status
		fragment string
	}{
		{"negative dimension", func() error { _, err := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CPU, 2, -3); return err },
			dsabi.StatusInvalidArg, "shape[1]=-3 is negative"},
		{"bad zero stage", func() error {
			_, err := dsabi.ParseConfig(`{"train_batch_size": 8, "zero_optimization": {"stage": 7}}`, nil)
			return err
		}, dsabi.StatusConfigValue, "zero_optimization.stage"},
		{"syntax error", func() error { _, err := dsabi.ParseConfig("{\n oops", nil); return err },
			dsabi.StatusConfigParse, "line 2"},
		{"unknown function", func() error { _, err := dsabi.ProcAddress("ds_no_such_function"); return err },
			dsabi.StatusNotFound, "ds_no_such_function"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var dsErr *dsabi.Error
			if !errors.As(err, &dsErr) {
				t.Fatalf("got %v (%T), want *dsabi.Error", err, err)
			}
			if dsErr.Code != tc.code {
				t.Errorf("Code = %d (%s), want %d (%s)", dsErr.Code, dsErr.Code, tc.code, tc.code)
			}
			if !strings.Contains(dsErr.Msg, tc.fragment) {
				t.Errorf("Msg = %q, want it to contain %q", dsErr.Msg, tc.fragment)
			}
		})
	}
}

func TestErrorsIsMatchesCodesAndBands(t *testing.T) {
	batch := &dsabi.Error{Code: dsabi.StatusConfigBatch, Msg: "train_batch_size: 32 != 3 * 2 * 4"}
	wrapped := fmt.Errorf("loading ds_config.json: %w", batch)
	tests := []struct {
		target error
		want   bool
	}{
		{dsabi.ErrConfig, true}, // the configuration band
		{&dsabi.Error{Code: dsabi.StatusConfigBatch}, true},
		{dsabi.ErrInvalidArg, false},
		{dsabi.ErrDevice, false},
		{errors.New("other"), false},
	}
	for _, tc := range tests {
		if got := errors.Is(wrapped, tc.target); got != tc.want {
			t.Errorf("errors.Is(%v, %v) = %v, want %v", wrapped, tc.target, got, tc.want)
		}
	}
	if got, want := batch.Error(), "train_batch_size: 32 != 3 * 2 * 4 [inconsistent batch size configuration, -404]"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestStatusStringIsTheLibraryText(t *testing.T) {
	if got := dsabi.StatusInvalidArg.String(); got != "invalid argument" {
		t.Errorf("StatusInvalidArg.String() = %q", got)
	}
}

// The Go constants are written out (SWIG exposes enums as variables); they must equal dsabi.h.
func TestConstantsMatchTheHeader(t *testing.T) {
	pairs := []struct {
		name      string
		got, want int
	}{
		{"StatusInvalidHandle", int(dsabi.StatusInvalidHandle), int(swig.DS_ERR_INVALID_HANDLE)},
		{"StatusNotFound", int(dsabi.StatusNotFound), int(swig.DS_ERR_NOT_FOUND)},
		{"StatusInternal", int(dsabi.StatusInternal), int(swig.DS_ERR_INTERNAL)},
		{"StatusDeviceMismatch", int(dsabi.StatusDeviceMismatch), int(swig.DS_ERR_DEVICE_MISMATCH)},
		{"StatusCommMismatch", int(dsabi.StatusCommMismatch), int(swig.DS_ERR_COMM_MISMATCH)},
		{"StatusCorrupt", int(dsabi.StatusCorrupt), int(swig.DS_ERR_CORRUPT)},
		{"StatusConfigUnsupported", int(dsabi.StatusConfigUnsupported), int(swig.DS_ERR_CONFIG_UNSUPPORTED)},
		{"DTypeBF16", int(dsabi.DTypeBF16), int(swig.DS_DTYPE_BF16)},
		{"DTypeFP8E5M2", int(dsabi.DTypeFP8E5M2), int(swig.DS_DTYPE_FP8_E5M2)},
		{"DeviceCUDA", int(dsabi.DeviceCUDA), int(swig.DS_DEV_CUDA)},
		{"LogDebug", int(dsabi.LogDebug), int(swig.DS_LOG_DEBUG)},
		{"JSONObject", int(dsabi.JSONObject), int(swig.DS_JSON_OBJECT)},
		{"StatusAborted", int(dsabi.StatusAborted), int(swig.DS_ABORTED)},
		{"WorldSizeFromOptions", int(dsabi.WorldSizeFromOptions), int(swig.DS_WORLD_FROM_OPTIONS)},
		{"WorldSizeFromWorldSize", int(dsabi.WorldSizeFromWorldSize), int(swig.DS_WORLD_FROM_WORLD_SIZE)},
		{"WorldSizeFromOMPI", int(dsabi.WorldSizeFromOMPI), int(swig.DS_WORLD_FROM_OMPI)},
		{"WorldSizeFromSlurm", int(dsabi.WorldSizeFromSlurm), int(swig.DS_WORLD_FROM_SLURM)},
		{"WorldSizeDefault", int(dsabi.WorldSizeDefault), int(swig.DS_WORLD_DEFAULT)},
		{"ReduceSum", int(dsabi.ReduceSum), int(swig.DS_REDUCE_SUM)},
		{"ReduceAvg", int(dsabi.ReduceAvg), int(swig.DS_REDUCE_AVG)},
		{"ReduceMax", int(dsabi.ReduceMax), int(swig.DS_REDUCE_MAX)},
		{"ReduceMin", int(dsabi.ReduceMin), int(swig.DS_REDUCE_MIN)},
		{"ReduceProd", int(dsabi.ReduceProd), int(swig.DS_REDUCE_PROD)},
		{"CommBackendAuto", int(dsabi.CommBackendAuto), int(swig.DS_COMM_BACKEND_AUTO)},
		{"CommBackendGloo", int(dsabi.CommBackendGloo), int(swig.DS_COMM_BACKEND_GLOO)},
		{"CommBackendNCCL", int(dsabi.CommBackendNCCL), int(swig.DS_COMM_BACKEND_NCCL)},
		{"SplitFile", int(dsabi.SplitFile), int(swig.DS_DATA_SPLIT_FILE)},
		{"SplitLine", int(dsabi.SplitLine), int(swig.DS_DATA_SPLIT_LINE)},
		{"SplitParagraph", int(dsabi.SplitParagraph), int(swig.DS_DATA_SPLIT_PARAGRAPH)},
		{"SplitDelimiter", int(dsabi.SplitDelimiter), int(swig.DS_DATA_SPLIT_DELIMITER)},
		{"VerifyHeader", int(dsabi.VerifyHeader), int(swig.DS_DATA_VERIFY_HEADER)},
		{"VerifyOffsets", int(dsabi.VerifyOffsets), int(swig.DS_DATA_VERIFY_OFFSETS)},
		{"VerifyFull", int(dsabi.VerifyFull), int(swig.DS_DATA_VERIFY_FULL)},
		{"ScheduleFixedLinear", int(dsabi.ScheduleFixedLinear), int(swig.DS_DATA_SCHEDULE_FIXED_LINEAR)},
		{"ScheduleFixedRoot", int(dsabi.ScheduleFixedRoot), int(swig.DS_DATA_SCHEDULE_FIXED_ROOT)},
		{"ScheduleFixedDiscrete", int(dsabi.ScheduleFixedDiscrete), int(swig.DS_DATA_SCHEDULE_FIXED_DISCRETE)},
		{"ScheduleCustom", int(dsabi.ScheduleCustom), int(swig.DS_DATA_SCHEDULE_CUSTOM)},
		{"FloorNone", int(dsabi.FloorNone), int(swig.DS_DATA_FLOOR_NONE)},
		{"FloorMin", int(dsabi.FloorMin), int(swig.DS_DATA_FLOOR_MIN)},
		{"FloorStepMin", int(dsabi.FloorStepMin), int(swig.DS_DATA_FLOOR_STEP_MIN)},
		{"DifficultyValue", int(dsabi.DifficultyValue), int(swig.DS_DATA_DIFFICULTY_VALUE)},
		{"DifficultyPercentile", int(dsabi.DifficultyPercentile), int(swig.DS_DATA_DIFFICULTY_PERCENTILE)},
		{"LRScalingLinear", int(dsabi.LRScalingLinear), int(swig.DS_DATA_LR_SCALING_LINEAR)},
		{"LRScalingSqrt", int(dsabi.LRScalingSqrt), int(swig.DS_DATA_LR_SCALING_SQRT)},
		{"LRScalingNone", int(dsabi.LRScalingNone), int(swig.DS_DATA_LR_SCALING_NONE)},
		{"PickDataloader", int(dsabi.PickDataloader), int(swig.DS_DATA_PICK_DATALOADER)},
		{"PickSeqlen", int(dsabi.PickSeqlen), int(swig.DS_DATA_PICK_SEQLEN)},
		{"PickRandom", int(dsabi.PickRandom), int(swig.DS_DATA_PICK_RANDOM)},
		{"ModeWindows", int(dsabi.ModeWindows), int(swig.DS_DATA_MODE_WINDOWS)},
		{"ModeDocuments", int(dsabi.ModeDocuments), int(swig.DS_DATA_MODE_DOCUMENTS)},
		{"FieldTokens", int(dsabi.FieldTokens), int(swig.DS_DATA_FIELD_TOKENS)},
		{"FieldLengths", int(dsabi.FieldLengths), int(swig.DS_DATA_FIELD_LENGTHS)},
		{"FieldSampleIDs", int(dsabi.FieldSampleIDs), int(swig.DS_DATA_FIELD_SAMPLE_IDS)},
		{"FieldCuSeqlens", int(dsabi.FieldCuSeqlens), int(swig.DS_DATA_FIELD_CU_SEQLENS)},
		{"FieldPositionIDs", int(dsabi.FieldPositionIDs), int(swig.DS_DATA_FIELD_POSITION_IDS)},
		{"FieldSequenceIDs", int(dsabi.FieldSequenceIDs), int(swig.DS_DATA_FIELD_SEQUENCE_IDS)},
	}
	for _, p := range pairs {
		if p.got != p.want {
			t.Errorf("%s = %d, dsabi.h says %d", p.name, p.got, p.want)
		}
	}
}
