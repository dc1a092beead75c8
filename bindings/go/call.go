package dsabi

import (
	"runtime"

	"github.com/dsabi/dsabi-go/internal/swig"
)

// call runs f, which makes one fallible call into the generated layer, and returns the error that
// call left pending. The pending status and ds_last_error() are thread-local in C, so the
// goroutine stays on one OS thread from the call until both are read.
func call(f func()) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f()
	return takeError()
}

func takeError() error {
	st := Status(swig.Take_status_go())
	if st == StatusOK {
		return nil
	}
	return &Error{Code: st, Msg: swig.Error_message_go()}
}
