package dsabi

// The library calls these Go functions through the C function pointers that data.go installs in
// option structs: the progress of BuildDataset (on the building thread) and custom curriculum
// schedules (on any thread, loader workers included). user_data is a cgo.Handle.
//
// (A file with //export directives may only declare C functions in its preamble.)

/*
#include <stdint.h>
*/
import "C"

import (
	"fmt"
	"os"
	"runtime/cgo"
	"sync/atomic"
	"unsafe"
)

// progressCall is what a build's progress callback reaches through its handle.
type progressCall struct {
	fn       func(BuildProgress) bool
	panicked any // what fn panicked with; re-raised once the build has returned
}

//export dsabiGoProgress
func dsabiGoProgress(done, total, documents, tokens C.uint64_t, user unsafe.Pointer) (stop C.int32_t) {
	p := cgo.Handle(uintptr(user)).Value().(*progressCall)
	defer func() {
		// A panic cannot unwind through the library's C frames: stop the build and re-panic after.
		if r := recover(); r != nil {
			p.panicked = r
			stop = 1
		}
	}()
	if p.fn(BuildProgress{BytesDone: uint64(done), BytesTotal: uint64(total), Documents: uint64(documents),
		Tokens: uint64(tokens)}) {
		return 0
	}
	return 1
}

// scheduleRef keeps a custom schedule reachable from C for as long as a native curriculum may call
// it: the Curriculum and every DataLoader built with it hold one reference each, because a loader
// keeps the native curriculum after the Curriculum is closed.
type scheduleRef struct {
	handle cgo.Handle
	users  atomic.Int32
}

func newScheduleRef(fn func(step int64) int64) *scheduleRef {
	r := &scheduleRef{handle: cgo.NewHandle(fn)}
	r.users.Store(1)
	return r
}

func (r *scheduleRef) retain() *scheduleRef {
	if r != nil {
		r.users.Add(1)
	}
	return r
}

func (r *scheduleRef) release() {
	if r != nil && r.users.Add(-1) == 0 {
		r.handle.Delete()
	}
}

//export dsabiGoDifficulty
func dsabiGoDifficulty(step C.int64_t, user unsafe.Pointer) (difficulty C.int64_t) {
	fn := cgo.Handle(uintptr(user)).Value().(func(int64) int64)
	defer func() {
		// Nothing can return an error from here (this may be a loader thread): report the panic on
		// stderr, as an unrecovered goroutine would, and count the difficulty as 0.
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "dsabi: the custom curriculum schedule panicked at step %d: %v\n", int64(step), r)
			difficulty = 0
		}
	}()
	return C.int64_t(fn(int64(step)))
}
