package dsabi

import (
	"fmt"

	"github.com/dsabi/dsabi-go/internal/swig"
)

// Status is a ds_status_t: 0 is success, positive values are non-error outcomes, negative values
// are errors in stable bands (-1..-99 general, -100.. device, -200.. communication, -300.. I/O,
// -400.. configuration). New codes may be added.
type Status int32

// The status codes of dsabi.h (enum ds_status_code).
const (
	StatusOK                Status = 0
	StatusInProgress        Status = 1
	StatusAborted           Status = 2
	StatusInvalidArg        Status = -1
	StatusNoMem             Status = -2
	StatusInvalidHandle     Status = -3
	StatusBufferTooSmall    Status = -4
	StatusUnsupported       Status = -5
	StatusVersion           Status = -6
	StatusState             Status = -7
	StatusNotFound          Status = -8
	StatusType              Status = -9
	StatusInternal          Status = -98
	StatusUnknown           Status = -99
	StatusDevice            Status = -100
	StatusNoDevice          Status = -101
	StatusDeviceNoMem       Status = -102
	StatusDeviceMismatch    Status = -103
	StatusComm              Status = -200
	StatusCommTimeout       Status = -201
	StatusCommPeer          Status = -202
	StatusCommMismatch      Status = -203
	StatusIO                Status = -300
	StatusCorrupt           Status = -301
	StatusConfig            Status = -400
	StatusConfigParse       Status = -401
	StatusConfigUnknownKey  Status = -402
	StatusConfigValue       Status = -403
	StatusConfigBatch       Status = -404
	StatusConfigUnsupported Status = -405
)

// String is the library's text for the code (ds_status_str), e.g. "invalid argument".
func (s Status) String() string {
	return swig.Status_str(int(s))
}

// band is the first code of the error band s belongs to (-100, -200, ...), or s itself for the
// general codes.
func (s Status) band() Status {
	if s > -100 {
		return s
	}
	return s / 100 * 100
}

// Error is a failed dsabi call: the status code and the library's message for it (the function,
// the argument or config key path, the value and what was expected).
//
// Use errors.As to get at the code, or errors.Is with the Err* values to test for a code or a
// band:
//
//	var dsErr *dsabi.Error
//	if errors.As(err, &dsErr) && dsErr.Code == dsabi.StatusConfigBatch { ... }
//	if errors.Is(err, dsabi.ErrConfig) { ... } // any configuration error
type Error struct {
	Code Status
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s [%s, %d]", e.Msg, e.Code, int32(e.Code))
}

// Is reports whether target is an *Error with the same code or, when target's code is the first
// code of a band (StatusDevice, StatusComm, StatusIO, StatusConfig), with a code in that band.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t.Code == e.Code {
		return true
	}
	return t.Code <= -100 && t.Code%100 == 0 && e.Code.band() == t.Code
}

// Values for errors.Is. The band values (ErrDevice, ErrComm, ErrIO, ErrConfig) match every code of
// their band.
var (
	ErrAborted       error = &Error{Code: StatusAborted}
	ErrInvalidArg    error = &Error{Code: StatusInvalidArg}
	ErrInvalidHandle error = &Error{Code: StatusInvalidHandle}
	ErrUnsupported   error = &Error{Code: StatusUnsupported}
	ErrNotFound      error = &Error{Code: StatusNotFound}
	ErrType          error = &Error{Code: StatusType}
	ErrNoDevice      error = &Error{Code: StatusNoDevice}
	ErrDevice        error = &Error{Code: StatusDevice}
	ErrComm          error = &Error{Code: StatusComm}
	ErrIO            error = &Error{Code: StatusIO}
	ErrConfig        error = &Error{Code: StatusConfig}
)

// errClosed is returned by every method of a closed object.
func errClosed(what string) error {
	return &Error{Code: StatusInvalidHandle, Msg: "dsabi: the " + what + " is closed"}
}
