package dsabi

import (
	"encoding/json"
	"errors"
	"runtime"

	"github.com/dsabi/dsabi-go/internal/swig"
)

// ConfigOptions are the options of ParseConfig and LoadConfig. The zero value (or nil) means the
// defaults.
type ConfigOptions struct {
	// WorldSize is the data-parallel world size; 0 takes $WORLD_SIZE, $OMPI_COMM_WORLD_SIZE,
	// $SLURM_NTASKS, else 1.
	WorldSize int
	// Strict makes unknown top-level keys and unsupported features errors.
	Strict bool
	// RejectAuto makes "auto" values errors instead of "use the default / derive it".
	RejectAuto bool
}

func (o *ConfigOptions) flags() (worldSize, strict, acceptAuto int) {
	if o == nil {
		return 0, 0, 1
	}
	return o.WorldSize, boolInt(o.Strict), boolInt(!o.RejectAuto)
}

// JSONKind is the kind of a config value (enum ds_json_kind).
type JSONKind int32

// The JSON kinds of dsabi.h.
const (
	JSONNull   JSONKind = 0
	JSONBool   JSONKind = 1
	JSONNumber JSONKind = 2
	JSONString JSONKind = 3
	JSONArray  JSONKind = 4
	JSONObject JSONKind = 5
)

// WorldSizeSource tells where the world size of a Config came from.
type WorldSizeSource int32

// The world size sources of ds_config_get_world_size (enum ds_config_world_source).
const (
	WorldSizeFromOptions   WorldSizeSource = 0
	WorldSizeFromWorldSize WorldSizeSource = 1 // $WORLD_SIZE
	WorldSizeFromOMPI      WorldSizeSource = 2 // $OMPI_COMM_WORLD_SIZE
	WorldSizeFromSlurm     WorldSizeSource = 3 // $SLURM_NTASKS
	WorldSizeDefault       WorldSizeSource = 4 // nothing set: 1
)

// Diagnostic is a warning or note found while validating a config.
type Diagnostic struct {
	Severity string `json:"severity"` // "warning" or "info"
	Kind     string `json:"kind"`     // "unknown_key", "deprecated", "unsupported", "auto", ...
	Path     string `json:"path"`
	Message  string `json:"message"`
}

// Config is a parsed, validated DeepSpeed config with every default filled in. It is immutable,
// and its getters may be called from several goroutines at once. Values are addressed by key
// paths such as "zero_optimization.stage" or "optimizer.params.betas[1]".
type Config struct {
	h swig.ConfigHandle // nil once closed
}

// ParseConfig parses and validates a config given as JSON (with hjson comments and trailing
// commas, as DeepSpeed reads it). opts may be nil. An invalid config gives an *Error in the
// configuration band (errors.Is(err, ErrConfig)) whose message lists every problem with its key
// path.
func ParseConfig(text string, opts *ConfigOptions) (*Config, error) {
	ws, strict, auto := opts.flags()
	var h swig.ConfigHandle
	if err := call(func() { h = swig.ConfigHandleParse(text, ws, strict, auto) }); err != nil {
		return nil, err
	}
	return newConfig(h), nil
}

// LoadConfig is ParseConfig on the contents of a file; messages start with the path.
func LoadConfig(path string, opts *ConfigOptions) (*Config, error) {
	ws, strict, auto := opts.flags()
	var h swig.ConfigHandle
	if err := call(func() { h = swig.ConfigHandleLoad_file(path, ws, strict, auto) }); err != nil {
		return nil, err
	}
	return newConfig(h), nil
}

func newConfig(h swig.ConfigHandle) *Config {
	c := &Config{h: h}
	runtime.SetFinalizer(c, (*Config).Close) // a backstop only: call Close
	return c
}

// Close releases the config. It is idempotent; other methods then return ErrInvalidHandle.
func (c *Config) Close() error {
	if c.h == nil {
		return nil
	}
	runtime.SetFinalizer(c, nil)
	swig.DeleteConfigHandle(c.h)
	c.h = nil
	return nil
}

// get runs one getter on the live handle.
func (c *Config) get(f func(h swig.ConfigHandle)) error {
	if c.h == nil {
		return errClosed("Config")
	}
	defer runtime.KeepAlive(c)
	return call(func() { f(c.h) })
}

// Int64 is the integer at path (ErrType for other kinds and for numbers that are not integers).
func (c *Config) Int64(path string) (v int64, err error) {
	err = c.get(func(h swig.ConfigHandle) { v = h.Get_i64(path) })
	return v, err
}

// Float64 is the number at path.
func (c *Config) Float64(path string) (v float64, err error) {
	err = c.get(func(h swig.ConfigHandle) { v = h.Get_f64(path) })
	return v, err
}

// Bool is the boolean at path.
func (c *Config) Bool(path string) (v bool, err error) {
	err = c.get(func(h swig.ConfigHandle) { v = h.Get_bool(path) })
	return v, err
}

// Str is the string at path.
func (c *Config) Str(path string) (v string, err error) {
	err = c.get(func(h swig.ConfigHandle) { v = h.Get_str(path) })
	return v, err
}

// Count is the number of elements of the array, or members of the object, at path.
func (c *Config) Count(path string) (n int64, err error) {
	err = c.get(func(h swig.ConfigHandle) { n = h.Get_count(path) })
	return n, err
}

// Kind is the JSON kind of the value at path.
func (c *Config) Kind(path string) (k JSONKind, err error) {
	err = c.get(func(h swig.ConfigHandle) { k = JSONKind(h.Get_kind(path)) })
	return k, err
}

// Has reports whether a value exists at path.
func (c *Config) Has(path string) (bool, error) {
	_, err := c.Kind(path)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// JSON is the normalised config (path "") or the subtree at path as JSON, indented if pretty.
func (c *Config) JSON(path string, pretty bool) (text string, err error) {
	err = c.get(func(h swig.ConfigHandle) { text = h.To_json(path, pretty) })
	return text, err
}

// Unmarshal decodes the subtree at path ("" for all) into v, as encoding/json does.
func (c *Config) Unmarshal(path string, v any) error {
	text, err := c.JSON(path, false)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(text), v)
}

// Diagnostics are the warnings and notes of validation (unknown keys, deprecated keys, "auto"
// values, ...).
func (c *Config) Diagnostics() ([]Diagnostic, error) {
	var text string
	if err := c.get(func(h swig.ConfigHandle) { text = h.Diagnostics() }); err != nil {
		return nil, err
	}
	var out []Diagnostic
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// WorldSize is the data-parallel world size the batch-size rule used, and where it came from.
func (c *Config) WorldSize() (size int, source WorldSizeSource, err error) {
	err = c.get(func(h swig.ConfigHandle) {
		size = h.World_size()
		source = WorldSizeSource(h.World_size_source())
	})
	return size, source, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
