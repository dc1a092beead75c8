package dsabi

// The log sink is the one piece that needs cgo here: the library calls a Go function.

/*
#cgo LDFLAGS: -ldsabi
#include <stdint.h>
#include <dsabi.h>

extern void dsabiGoLogSink(int32_t level, char* message, void* user_data);
*/
import "C"

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/dsabi/dsabi-go/internal/swig"
)

// LogLevel is a ds_log_level, most severe first.
type LogLevel int32

// The log levels of dsabi.h.
const (
	LogNone  LogLevel = 0
	LogError LogLevel = 1
	LogWarn  LogLevel = 2
	LogInfo  LogLevel = 3
	LogDebug LogLevel = 4
)

// LogHandler receives library messages. It runs synchronously on the thread that logs (possibly a
// library thread) and must not call back into dsabi.
type LogHandler func(level LogLevel, message string)

var (
	// The handler the sink calls; read without locking, as the sink may run on any thread.
	logHandler atomic.Pointer[LogHandler]
	// Serialises SetLogHandler and SetLogLevel (ds_lib_set_log is not thread-safe).
	logSetMu sync.Mutex
)

//export dsabiGoLogSink
func dsabiGoLogSink(level C.int32_t, message *C.char, _ unsafe.Pointer) {
	if h := logHandler.Load(); h != nil {
		(*h)(LogLevel(level), C.GoString(message))
	}
}

// SetLogHandler sends library messages of maxLevel or more severe to h, or back to the default
// stderr sink when h is nil. Process-global.
func SetLogHandler(h LogHandler, maxLevel LogLevel) error {
	logSetMu.Lock()
	defer logSetMu.Unlock()
	if h == nil {
		if err := setSink(nil, maxLevel); err != nil {
			return err
		}
		logHandler.Store(nil)
		return nil
	}
	previous := logHandler.Swap(&h) // in place before the library may call the sink
	if err := setSink(C.ds_log_fn(C.dsabiGoLogSink), maxLevel); err != nil {
		logHandler.Store(previous)
		return err
	}
	return nil
}

func setSink(sink C.ds_log_fn, maxLevel LogLevel) error {
	runtime.LockOSThread() // ds_last_error() is per thread
	defer runtime.UnlockOSThread()
	if st := Status(C.ds_lib_set_log(sink, nil, C.int32_t(maxLevel))); st < 0 {
		return &Error{Code: st, Msg: C.GoString(C.ds_last_error())}
	}
	return nil
}

// SetLogLevel logs to stderr (the default sink) at maxLevel or more severe, removing a handler.
func SetLogLevel(maxLevel LogLevel) error {
	logSetMu.Lock()
	defer logSetMu.Unlock()
	if err := call(func() { swig.Lib_set_log_level(int(maxLevel)) }); err != nil {
		return err
	}
	logHandler.Store(nil)
	return nil
}
