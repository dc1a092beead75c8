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
	}
	for _, p := range pairs {
		if p.got != p.want {
			t.Errorf("%s = %d, dsabi.h says %d", p.name, p.got, p.want)
		}
	}
}
