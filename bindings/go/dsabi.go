// Package dsabi is the Go binding of dsabi, DeepSpeed's training and inference system behind a
// stable C ABI.
//
//	cfg, err := dsabi.ParseConfig(`{"train_batch_size": 32, "gradient_accumulation_steps": 2}`,
//		&dsabi.ConfigOptions{WorldSize: 4})
//	if err != nil { ... }
//	defer cfg.Close()
//	micro, err := cfg.Int64("train_micro_batch_size_per_gpu") // 4
//
// Failed calls return an *Error carrying the status code and the library's message. Config and
// Tensor hold library handles: Close them when done (a finalizer releases forgotten ones, but only
// eventually). Go memory is never handed to the library beyond a call: tensor data moves in and
// out by copy, and WrapPointer accepts only memory that Go does not manage.
//
// The package refuses, at initialisation, a libdsabi of another major.minor version than the one
// it was generated for.
package dsabi

import (
	"encoding/json"
	"fmt"

	"github.com/dsabi/dsabi-go/internal/swig"
)

func init() {
	if err := checkLibraryVersion(swig.DS_VERSION_NUMBER, int(swig.Version_number()), swig.Version_string()); err != nil {
		panic(err)
	}
}

// checkLibraryVersion refuses a library whose major.minor differs from the bindings' (version
// numbers are major*10000 + minor*100 + patch).
func checkLibraryVersion(builtFor, loaded int, loadedText string) error {
	if builtFor/100 != loaded/100 {
		return fmt.Errorf("dsabi: the libdsabi that was loaded is version %s (%d), but this package was built "+
			"for %d.%d.x (%d)", loadedText, loaded, builtFor/10000, builtFor/100%100, builtFor)
	}
	return nil
}

// Version is the version of the loaded library, e.g. "0.1.0".
func Version() string { return swig.Version_string() }

// VersionNumber is major*10000 + minor*100 + patch of the loaded library.
func VersionNumber() int { return int(swig.Version_number()) }

// BuildInfo describes the build and run time of the library: version, compiler, features,
// dependency versions, and whether the CUDA backend is loaded (and why not).
func BuildInfo() (map[string]any, error) {
	var text string
	if err := call(func() { text = swig.Lib_build_info() }); err != nil {
		return nil, err
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(text), &info); err != nil {
		return nil, fmt.Errorf("dsabi: build info is not JSON: %w", err)
	}
	return info, nil
}

// LibOptions are the options of Init. The zero value means the defaults.
type LibOptions struct {
	// LogLevel of the default sink; nil takes $DSABI_LOG_LEVEL, else LogWarn.
	LogLevel *LogLevel
	// NoCUDA keeps the library CPU-only (the CUDA backend is not loaded).
	NoCUDA bool
	// CUDABackendPath is the CUDA backend module; "" takes $DSABI_CUDA_BACKEND, else
	// libdsabi_cuda.so next to libdsabi.
	CUDABackendPath string
}

// Init initialises the library with options. It is optional (any call initialises the library
// with the defaults), and only the first initialisation has an effect.
func Init(opts LibOptions) error {
	level := swig.DS_UNSET_I32
	if opts.LogLevel != nil {
		level = int(*opts.LogLevel)
	}
	loadCUDA := 1
	if opts.NoCUDA {
		loadCUDA = 0
	}
	return call(func() { swig.Lib_init(level, loadCUDA, opts.CUDABackendPath) })
}

// Shutdown releases global resources and unloads backends; it fails with StatusState while CUDA
// tensors are alive. The next call initialises the library again.
func Shutdown() error {
	return call(swig.Lib_shutdown)
}

// LastError is the message of the most recent failing call on the calling OS thread. Goroutines
// move between threads: use the Msg of the returned *Error instead.
func LastError() string { return swig.Last_error() }

// ClearLastError clears the calling OS thread's last error.
func ClearLastError() { swig.Last_error_clear() }

// ProcAddress is the address of an exported dsabi function (ds_get_proc_address), for FFI use.
func ProcAddress(name string) (uintptr, error) {
	var addr int64
	err := call(func() { addr = swig.Get_proc_address(name) })
	return uintptr(addr), err
}
