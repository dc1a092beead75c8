package dsabi

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/dsabi/dsabi-go/internal/swig"
)

// DType is the element type of a tensor (enum ds_dtype).
type DType int32

// The element types of dsabi.h. The FP8 types are reserved for future kernels.
const (
	DTypeF32     DType = 0
	DTypeF16     DType = 1
	DTypeBF16    DType = 2
	DTypeF64     DType = 3
	DTypeI8      DType = 4
	DTypeU8      DType = 5
	DTypeI32     DType = 6
	DTypeI64     DType = 7
	DTypeFP8E4M3 DType = 8
	DTypeFP8E5M2 DType = 9
)

// String is the library's name of the dtype: "f32", "bf16", ... ("invalid" for unknown values).
func (d DType) String() string { return swig.Dtype_name(int(d)) }

// Size is the size of one element in bytes, 0 for an unknown dtype.
func (d DType) Size() int {
	var n int64
	if err := call(func() { n = swig.Dtype_size(int(d)) }); err != nil {
		return 0
	}
	return int(n)
}

// Element is a Go type that tensor data is copied to and from (FromSlice, ToSlice, SetSlice).
type Element interface {
	float32 | float64 | int8 | uint8 | int32 | int64
}

func dtypeOf[T Element]() DType {
	var zero T
	switch any(zero).(type) {
	case float32:
		return DTypeF32
	case float64:
		return DTypeF64
	case int8:
		return DTypeI8
	case uint8:
		return DTypeU8
	case int32:
		return DTypeI32
	default: // int64
		return DTypeI64
	}
}

// Tensor is an n-dimensional view (dtype, shape, strides in elements, device) on memory that the
// library owns, that the caller lends (WrapPointer) or that came through DLPack. Close it when
// done. A Tensor must not be used from several goroutines at once.
type Tensor struct {
	h swig.TensorHandle // nil once closed
	// A tensor's layout never changes: it is read once.
	dtype      DType
	shape      []int64
	strides    []int64
	device     Device
	contiguous bool
	nbytes     int64
}

// NewTensor creates a zero-filled, contiguous tensor owned by the library. No shape makes a
// scalar.
func NewTensor(dtype DType, dev Device, shape ...int64) (*Tensor, error) {
	var h swig.TensorHandle
	if err := call(func() { h = swig.TensorHandleCreate(int(dtype), shape, int(dev.Type), dev.Index) }); err != nil {
		return nil, err
	}
	return newTensor(h)
}

// WrapPointer makes a tensor on memory at ptr without copying. strides are in elements (nil:
// C-contiguous). The memory is RETAINED: it must stay valid until the tensor and everything
// exported from it are gone, so it must be memory that Go does not manage (C.malloc, CUDA, mmap, or
// another tensor's data) - never a Go slice.
func WrapPointer(ptr uintptr, dtype DType, shape, strides []int64, dev Device) (*Tensor, error) {
	var h swig.TensorHandle
	err := call(func() {
		h = swig.TensorHandleWrap(int64(ptr), int(dtype), shape, strides, int(dev.Type), dev.Index)
	})
	if err != nil {
		return nil, err
	}
	return newTensor(h)
}

// ImportDLPack takes ownership of a DLManagedTensor* from another framework; its deleter runs when
// the last tensor using the memory is gone. On error the caller keeps ownership.
func ImportDLPack(managed uintptr) (*Tensor, error) {
	var h swig.TensorHandle
	if err := call(func() { h = swig.TensorHandleFrom_dlpack(int64(managed)) }); err != nil {
		return nil, err
	}
	return newTensor(h)
}

// DeleteDLPack calls the deleter of a DLManagedTensor* that nobody took (from ExportDLPack).
func DeleteDLPack(managed uintptr) {
	swig.Dlpack_delete(int64(managed))
}

// FromSlice creates a CPU tensor holding a copy of data, with the given shape (default: 1-D).
func FromSlice[T Element](data []T, shape ...int64) (*Tensor, error) {
	if len(shape) == 0 {
		shape = []int64{int64(len(data))}
	}
	t, err := NewTensor(dtypeOf[T](), CPU, shape...)
	if err != nil {
		return nil, err
	}
	if err := SetSlice(t, data); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// ToSlice copies the tensor's elements (in row-major order) into a new slice; T must match the
// tensor's dtype. Tensors on other devices or with strides are copied correctly.
func ToSlice[T Element](t *Tensor) ([]T, error) {
	if err := t.expect(dtypeOf[T]()); err != nil {
		return nil, err
	}
	out := make([]T, t.Numel())
	return out, t.transfer(asBytes(out), true)
}

// SetSlice copies data (row-major, len(data) == Numel) into the tensor; T must match its dtype.
func SetSlice[T Element](t *Tensor, data []T) error {
	if err := t.expect(dtypeOf[T]()); err != nil {
		return err
	}
	return t.transfer(asBytes(data), false)
}

func newTensor(h swig.TensorHandle) (*Tensor, error) {
	t := &Tensor{h: h}
	err := call(func() {
		t.dtype = DType(h.Dtype())
		n := h.Ndim()
		t.shape = make([]int64, n)
		t.strides = make([]int64, n)
		for i := 0; i < n; i++ {
			t.shape[i] = h.Dim(i)
			t.strides[i] = h.Stride(i)
		}
		t.device = Device{Type: DeviceType(h.Device_type()), Index: h.Device_index()}
		t.contiguous = h.Is_contiguous()
		t.nbytes = h.Nbytes()
	})
	if err != nil {
		swig.DeleteTensorHandle(h)
		return nil, err
	}
	runtime.SetFinalizer(t, (*Tensor).Close) // a backstop only: call Close
	return t, nil
}

// Close releases the tensor handle. It is idempotent; methods that touch the data then return
// ErrInvalidHandle. Memory shared with DLPack exports stays valid until they are deleted.
func (t *Tensor) Close() error {
	if t.h == nil {
		return nil
	}
	runtime.SetFinalizer(t, nil)
	swig.DeleteTensorHandle(t.h)
	t.h = nil
	return nil
}

// run runs one call on the live handle.
func (t *Tensor) run(f func(h swig.TensorHandle)) error {
	if t.h == nil {
		return errClosed("Tensor")
	}
	defer runtime.KeepAlive(t)
	return call(func() { f(t.h) })
}

// DType is the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Shape is the size of each dimension (a copy).
func (t *Tensor) Shape() []int64 { return append([]int64(nil), t.shape...) }

// Strides are the strides in elements (a copy).
func (t *Tensor) Strides() []int64 { return append([]int64(nil), t.strides...) }

// NDim is the number of dimensions.
func (t *Tensor) NDim() int { return len(t.shape) }

// Numel is the number of elements.
func (t *Tensor) Numel() int64 {
	n := int64(1)
	for _, d := range t.shape {
		n *= d
	}
	return n
}

// NBytes is Numel times the dtype size.
func (t *Tensor) NBytes() int64 { return t.nbytes }

// Device is where the memory lives.
func (t *Tensor) Device() Device { return t.device }

// IsContiguous reports whether the elements are dense in row-major order.
func (t *Tensor) IsContiguous() bool { return t.contiguous }

// DataPointer is the address of the first element (C or device memory; never dereference it from
// Go after Close).
func (t *Tensor) DataPointer() (uintptr, error) {
	var p int64
	err := t.run(func(h swig.TensorHandle) { p = h.Data_ptr() })
	return uintptr(p), err
}

// Fill sets every element to value (round to nearest even for f16/bf16; integer dtypes need an
// integral value in range).
func (t *Tensor) Fill(value float64) error {
	return t.run(func(h swig.TensorHandle) { h.Fill(value) })
}

// CopyFrom copies src into t: same dtype and shape, any devices and strides.
func (t *Tensor) CopyFrom(src *Tensor) error {
	if src.h == nil {
		return errClosed("source Tensor")
	}
	defer runtime.KeepAlive(src)
	return t.run(func(h swig.TensorHandle) { h.Copy_from(src.h) })
}

// Clone makes a contiguous, library-owned copy on dev.
func (t *Tensor) Clone(dev Device) (*Tensor, error) {
	var c swig.TensorHandle
	if err := t.run(func(h swig.TensorHandle) { c = h.Clone(int(dev.Type), dev.Index) }); err != nil {
		return nil, err
	}
	return newTensor(c)
}

// ExportDLPack returns a DLManagedTensor* sharing the tensor's memory, for native code that speaks
// DLPack. Whoever receives it must call its deleter once (or pass it to DeleteDLPack or
// ImportDLPack). It stays valid after t is closed.
func (t *Tensor) ExportDLPack() (uintptr, error) {
	var m int64
	err := t.run(func(h swig.TensorHandle) { m = h.To_dlpack() })
	return uintptr(m), err
}

// Bytes copies the elements' bytes (row-major, native byte order) whatever the dtype.
func (t *Tensor) Bytes() ([]byte, error) {
	out := make([]byte, t.nbytes)
	return out, t.transfer(out, true)
}

// SetBytes copies raw element bytes (row-major, native byte order, len == NBytes) into the tensor.
func (t *Tensor) SetBytes(data []byte) error {
	return t.transfer(data, false)
}

func (t *Tensor) String() string {
	return fmt.Sprintf("Tensor(%s%v, %s)", t.dtype, t.shape, t.device)
}

func (t *Tensor) expect(d DType) error {
	if t.dtype != d {
		return &Error{Code: StatusInvalidArg, Msg: fmt.Sprintf("dsabi: the tensor's dtype is %s, not %s", t.dtype, d)}
	}
	return nil
}

// transfer copies between the tensor and host bytes. The bytes are Go memory: the C helper lends
// them to the library only for the duration of the call.
func (t *Tensor) transfer(host []byte, toHost bool) error {
	return t.run(func(h swig.TensorHandle) {
		if toHost {
			swig.Tensor_read(h, host)
		} else {
			swig.Tensor_write(h, host)
		}
	})
}

// asBytes views a slice of numbers as its bytes.
func asBytes[T Element](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(zero)))
}
