package dsabi_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dsabi "github.com/dsabi/dsabi-go"
)

const baseConfig = `{
	"train_batch_size": 32,
	"gradient_accumulation_steps": 2,
	"optimizer": {"type": "AdamW", "params": {"lr": 0.0003, "betas": [0.9, 0.95]}},
	"bf16": {"enabled": true},
	"zero_optimization": {"stage": 2}
}`

// parse parses baseConfig for 4 ranks and closes it when the test ends.
func parse(t *testing.T) *dsabi.Config {
	t.Helper()
	cfg, err := dsabi.ParseConfig(baseConfig, &dsabi.ConfigOptions{WorldSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cfg.Close() })
	return cfg
}

func TestDerivedMicroBatch(t *testing.T) {
	cfg := parse(t)
	micro, err := cfg.Int64("train_micro_batch_size_per_gpu")
	if err != nil || micro != 4 { // 32 = micro * 2 * 4
		t.Fatalf("micro batch = %d, %v; want 4", micro, err)
	}
	size, source, err := cfg.WorldSize()
	if err != nil || size != 4 || source != dsabi.WorldSizeFromOptions {
		t.Errorf("WorldSize() = %d, %d, %v; want 4 from options", size, source, err)
	}
}

func TestTypedGetters(t *testing.T) {
	cfg := parse(t)
	ints := []struct {
		path string
		want int64
	}{
		{"zero_optimization.stage", 2},
		{"gradient_accumulation_steps", 2},
		{"train_batch_size", 32},
	}
	for _, tc := range ints {
		if got, err := cfg.Int64(tc.path); err != nil || got != tc.want {
			t.Errorf("Int64(%q) = %d, %v; want %d", tc.path, got, err, tc.want)
		}
	}
	floats := []struct {
		path string
		want float64
	}{
		{"optimizer.params.lr", 0.0003},
		{"optimizer.params.betas[0]", 0.9},
		{"optimizer.params.betas[1]", 0.95},
	}
	for _, tc := range floats {
		if got, err := cfg.Float64(tc.path); err != nil || got != tc.want {
			t.Errorf("Float64(%q) = %g, %v; want %g", tc.path, got, err, tc.want)
		}
	}
	if on, err := cfg.Bool("bf16.enabled"); err != nil || !on {
		t.Errorf("Bool(bf16.enabled) = %v, %v", on, err)
	}
	if typ, err := cfg.Str("optimizer.type"); err != nil || !strings.EqualFold(typ, "adamw") {
		t.Errorf("Str(optimizer.type) = %q, %v", typ, err)
	}
	if n, err := cfg.Count("optimizer.params.betas"); err != nil || n != 2 {
		t.Errorf("Count(betas) = %d, %v", n, err)
	}
	if k, err := cfg.Kind("zero_optimization"); err != nil || k != dsabi.JSONObject {
		t.Errorf("Kind(zero_optimization) = %d, %v", k, err)
	}
}

func TestGetterErrorsNameThePath(t *testing.T) {
	cfg := parse(t)
	tests := []struct {
		path     string
		target   error
		fragment string
	}{
		{"nope", dsabi.ErrNotFound, `"nope"`},
		{"optimizer.params.betas[5]", dsabi.ErrNotFound, "index 5"},
		{"optimizer.params.lr", dsabi.ErrType, "0.0003"},
		{"optimizer..type", dsabi.ErrInvalidArg, "position 10"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			_, err := cfg.Int64(tc.path)
			if !errors.Is(err, tc.target) {
				t.Fatalf("Int64(%q) error = %v, want %v", tc.path, err, tc.target)
			}
			var dsErr *dsabi.Error
			if errors.As(err, &dsErr); !strings.Contains(dsErr.Msg, tc.fragment) {
				t.Errorf("Msg = %q, want it to contain %q", dsErr.Msg, tc.fragment)
			}
		})
	}
}

func TestHasAndUnmarshal(t *testing.T) {
	cfg := parse(t)
	if ok, err := cfg.Has("fp16.enabled"); err != nil || !ok { // a default the parser filled in
		t.Errorf("Has(fp16.enabled) = %v, %v", ok, err)
	}
	if ok, err := cfg.Has("no_such_block.key"); err != nil || ok {
		t.Errorf("Has(no_such_block.key) = %v, %v", ok, err)
	}
	var params struct {
		LR    float64   `json:"lr"`
		Betas []float64 `json:"betas"`
	}
	if err := cfg.Unmarshal("optimizer.params", &params); err != nil {
		t.Fatal(err)
	}
	if params.LR != 0.0003 || len(params.Betas) != 2 || params.Betas[1] != 0.95 {
		t.Errorf("optimizer.params = %+v", params)
	}
}

func TestInvalidConfigs(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		opts     *dsabi.ConfigOptions
		code     dsabi.Status
		fragment string
	}{
		{"batch", `{"train_batch_size": 32, "train_micro_batch_size_per_gpu": 3, "gradient_accumulation_steps": 2}`,
			&dsabi.ConfigOptions{WorldSize: 4}, dsabi.StatusConfigBatch, "train_batch_size=32"},
		{"unknown key in a strict block", `{"train_batch_size": 8, "zero_optimization": {"bogus_key": 1}}`,
			nil, dsabi.StatusConfigUnknownKey, "zero_optimization.bogus_key"},
		{"strict top level", `{"train_batch_size": 8, "my_custom_key": 1}`,
			&dsabi.ConfigOptions{Strict: true}, dsabi.StatusConfigUnknownKey, "my_custom_key"},
		{"auto rejected", `{"train_batch_size": 8, "train_micro_batch_size_per_gpu": "auto"}`,
			&dsabi.ConfigOptions{RejectAuto: true}, dsabi.StatusConfigValue, "accept_auto"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := dsabi.ParseConfig(tc.text, tc.opts)
			if cfg != nil {
				cfg.Close()
			}
			var dsErr *dsabi.Error
			if !errors.As(err, &dsErr) || dsErr.Code != tc.code {
				t.Fatalf("error = %v, want code %d", err, tc.code)
			}
			if !errors.Is(err, dsabi.ErrConfig) {
				t.Errorf("errors.Is(err, ErrConfig) = false for %v", err)
			}
			if !strings.Contains(dsErr.Msg, tc.fragment) {
				t.Errorf("Msg = %q, want it to contain %q", dsErr.Msg, tc.fragment)
			}
		})
	}
}

func TestDiagnostics(t *testing.T) {
	cfg, err := dsabi.ParseConfig(`{"train_batch_size": 8, "my_custom_key": 1}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cfg.Close() })
	diags, err := cfg.Diagnostics()
	if err != nil {
		t.Fatal(err)
	}
	want := dsabi.Diagnostic{Severity: "warning", Kind: "unknown_key", Path: "my_custom_key"}
	for _, d := range diags {
		if d.Severity == want.Severity && d.Kind == want.Kind && d.Path == want.Path {
			return
		}
	}
	t.Errorf("Diagnostics() = %+v, want one like %+v", diags, want)
}

func TestLoadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ds_config.json")
	if err := os.WriteFile(path, []byte(baseConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := dsabi.LoadConfig(path, &dsabi.ConfigOptions{WorldSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if micro, err := cfg.Int64("train_micro_batch_size_per_gpu"); err != nil || micro != 2 {
		t.Errorf("micro batch = %d, %v; want 2", micro, err)
	}
	missing := filepath.Join(t.TempDir(), "missing.json")
	_, err = dsabi.LoadConfig(missing, nil)
	var dsErr *dsabi.Error
	if !errors.As(err, &dsErr) || dsErr.Code != dsabi.StatusIO || !strings.Contains(dsErr.Msg, missing) {
		t.Errorf("LoadConfig(missing) error = %v, want StatusIO naming the path", err)
	}
}

func TestWorldSizeFromEnvironment(t *testing.T) {
	t.Setenv("WORLD_SIZE", "8")
	cfg, err := dsabi.ParseConfig(baseConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if size, source, err := cfg.WorldSize(); err != nil || size != 8 || source != dsabi.WorldSizeFromWorldSize {
		t.Errorf("WorldSize() = %d, %d, %v; want 8 from $WORLD_SIZE", size, source, err)
	}
}

func TestClosedConfig(t *testing.T) {
	cfg, err := dsabi.ParseConfig(baseConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := cfg.Int64("train_batch_size"); !errors.Is(err, dsabi.ErrInvalidHandle) {
		t.Errorf("Int64 after Close: %v, want ErrInvalidHandle", err)
	}
}
