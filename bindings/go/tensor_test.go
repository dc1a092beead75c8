package dsabi_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	dsabi "github.com/dsabi/dsabi-go"
)

// newTensor creates a tensor that is closed when the test ends.
func newTensor(t *testing.T, dtype dsabi.DType, shape ...int64) *dsabi.Tensor {
	t.Helper()
	x, err := dsabi.NewTensor(dtype, dsabi.CPU, shape...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func TestNewTensorLayout(t *testing.T) {
	x := newTensor(t, dsabi.DTypeF64, 2, 3, 4)
	if got := x.Shape(); !reflect.DeepEqual(got, []int64{2, 3, 4}) {
		t.Errorf("Shape() = %v", got)
	}
	if got := x.Strides(); !reflect.DeepEqual(got, []int64{12, 4, 1}) {
		t.Errorf("Strides() = %v", got)
	}
	if x.Numel() != 24 || x.NBytes() != 24*8 || x.NDim() != 3 || !x.IsContiguous() {
		t.Errorf("numel %d, nbytes %d, ndim %d, contiguous %v", x.Numel(), x.NBytes(), x.NDim(), x.IsContiguous())
	}
	if x.Device() != dsabi.CPU || x.String() != "Tensor(f64[2 3 4], cpu:0)" {
		t.Errorf("Device() = %v, String() = %q", x.Device(), x.String())
	}
	values, err := dsabi.ToSlice[float64](x)
	if err != nil || len(values) != 24 || values[23] != 0 {
		t.Errorf("new tensor values = %v, %v; want 24 zeros", values, err)
	}
}

func TestDTypeSizes(t *testing.T) {
	tests := []struct {
		dtype dsabi.DType
		name  string
		size  int
	}{
		{dsabi.DTypeF32, "f32", 4}, {dsabi.DTypeF16, "f16", 2}, {dsabi.DTypeBF16, "bf16", 2},
		{dsabi.DTypeF64, "f64", 8}, {dsabi.DTypeI8, "i8", 1}, {dsabi.DTypeU8, "u8", 1},
		{dsabi.DTypeI32, "i32", 4}, {dsabi.DTypeI64, "i64", 8}, {dsabi.DType(42), "invalid", 0},
	}
	for _, tc := range tests {
		if tc.dtype.String() != tc.name || tc.dtype.Size() != tc.size {
			t.Errorf("DType(%d): %q, %d; want %q, %d", tc.dtype, tc.dtype.String(), tc.dtype.Size(), tc.name, tc.size)
		}
	}
}

func TestSlicesRoundTrip(t *testing.T) {
	x, err := dsabi.FromSlice([]float32{1.5, -2, 3.25, 4, 5, 6}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	if x.DType() != dsabi.DTypeF32 || !reflect.DeepEqual(x.Shape(), []int64{2, 3}) {
		t.Fatalf("FromSlice gave %v", x)
	}
	got, err := dsabi.ToSlice[float32](x)
	if err != nil || !reflect.DeepEqual(got, []float32{1.5, -2, 3.25, 4, 5, 6}) {
		t.Errorf("ToSlice = %v, %v", got, err)
	}
	if _, err := dsabi.ToSlice[int64](x); !errors.Is(err, dsabi.ErrInvalidArg) {
		t.Errorf("ToSlice with the wrong type: %v, want ErrInvalidArg", err)
	}
	if err := dsabi.SetSlice(x, []float32{1, 2}); !errors.Is(err, dsabi.ErrInvalidArg) {
		t.Errorf("SetSlice with 2 of 6 values: %v, want ErrInvalidArg", err)
	}
}

func TestFillCopyClone(t *testing.T) {
	a := newTensor(t, dsabi.DTypeI32, 4)
	b := newTensor(t, dsabi.DTypeI32, 4)
	if err := a.Fill(-7); err != nil {
		t.Fatal(err)
	}
	if err := b.CopyFrom(a); err != nil {
		t.Fatal(err)
	}
	c, err := a.Clone(dsabi.CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := a.Fill(1); err != nil {
		t.Fatal(err)
	}
	for name, x := range map[string]*dsabi.Tensor{"copy": b, "clone": c} {
		if got, _ := dsabi.ToSlice[int32](x); !reflect.DeepEqual(got, []int32{-7, -7, -7, -7}) {
			t.Errorf("%s = %v", name, got)
		}
	}
	if err := a.Fill(0.5); !errors.Is(err, dsabi.ErrInvalidArg) {
		t.Errorf("Fill(0.5) on i32: %v", err)
	}
	if err := a.CopyFrom(newTensor(t, dsabi.DTypeF32, 4)); err == nil || !strings.Contains(err.Error(), "dtype differs") {
		t.Errorf("CopyFrom(f32) into i32: %v", err)
	}
}

// WrapPointer must only see memory Go does not manage; here: another tensor's (C) memory.
func TestWrapPointerAliasesCMemory(t *testing.T) {
	owner := newTensor(t, dsabi.DTypeF32, 6)
	ptr, err := owner.DataPointer()
	if err != nil {
		t.Fatal(err)
	}
	everyOther, err := dsabi.WrapPointer(ptr, dsabi.DTypeF32, []int64{3}, []int64{2}, dsabi.CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { everyOther.Close() })
	if everyOther.IsContiguous() {
		t.Error("a stride-2 view reports contiguous")
	}
	if err := everyOther.Fill(9); err != nil {
		t.Fatal(err)
	}
	if got, _ := dsabi.ToSlice[float32](owner); !reflect.DeepEqual(got, []float32{9, 0, 9, 0, 9, 0}) {
		t.Errorf("owner after filling the view = %v", got)
	}
	if got, _ := dsabi.ToSlice[float32](everyOther); !reflect.DeepEqual(got, []float32{9, 9, 9}) {
		t.Errorf("strided read = %v", got)
	}
}

func TestDLPackRoundTripSharesMemory(t *testing.T) {
	x, err := dsabi.FromSlice([]int64{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	managed, err := x.ExportDLPack()
	if err != nil {
		t.Fatal(err)
	}
	y, err := dsabi.ImportDLPack(managed)
	if err != nil {
		dsabi.DeleteDLPack(managed)
		t.Fatal(err)
	}
	t.Cleanup(func() { y.Close() })
	px, _ := x.DataPointer()
	py, _ := y.DataPointer()
	if px != py {
		t.Errorf("data pointers differ: %#x vs %#x", px, py)
	}
	x.Close() // the import keeps the memory alive
	if got, _ := dsabi.ToSlice[int64](y); !reflect.DeepEqual(got, []int64{1, 2, 3}) {
		t.Errorf("imported values = %v", got)
	}
	if _, err := dsabi.ImportDLPack(0); !errors.Is(err, dsabi.ErrInvalidArg) {
		t.Errorf("ImportDLPack(0): %v", err)
	}
}

func TestRawBytes(t *testing.T) {
	x := newTensor(t, dsabi.DTypeBF16, 2)
	if err := x.Fill(1); err != nil {
		t.Fatal(err)
	}
	raw, err := x.Bytes()
	// bf16 1.0 is 0x3F80, the top half of f32 1.0; little-endian on the machines dsabi supports.
	if err != nil || !reflect.DeepEqual(raw, []byte{0x80, 0x3F, 0x80, 0x3F}) {
		t.Errorf("Bytes() = % x, %v", raw, err)
	}
	if err := x.SetBytes([]byte{0, 0x40, 0, 0xC0}); err != nil { // 2.0, -2.0
		t.Fatal(err)
	}
	wide, err := x.Clone(dsabi.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer wide.Close()
	if raw, _ := wide.Bytes(); !reflect.DeepEqual(raw, []byte{0, 0x40, 0, 0xC0}) {
		t.Errorf("after SetBytes: % x", raw)
	}
}

func TestClosedTensor(t *testing.T) {
	x, err := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CPU, 2)
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
	x.Close()
	for name, err := range map[string]error{
		"Fill":        x.Fill(1),
		"CopyFrom":    newTensor(t, dsabi.DTypeF32, 2).CopyFrom(x),
		"SetSlice":    dsabi.SetSlice(x, []float32{1, 2}),
		"DataPointer": func() error { _, err := x.DataPointer(); return err }(),
	} {
		if !errors.Is(err, dsabi.ErrInvalidHandle) {
			t.Errorf("%s after Close: %v, want ErrInvalidHandle", name, err)
		}
	}
}

func TestDevices(t *testing.T) {
	if n, err := dsabi.DeviceCount(dsabi.DeviceCPU); err != nil || n != 1 {
		t.Errorf("DeviceCount(CPU) = %d, %v", n, err)
	}
	info, err := dsabi.CPU.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Device != dsabi.CPU || info.MultiprocessorCount < 1 || info.TotalMemoryBytes < info.FreeMemoryBytes {
		t.Errorf("CPU info = %+v", info)
	}
	if err := dsabi.CPU.Synchronize(); err != nil {
		t.Error(err)
	}
	if d, err := dsabi.ParseDevice("cuda:3"); err != nil || d != dsabi.CUDA(3) {
		t.Errorf("ParseDevice(cuda:3) = %v, %v", d, err)
	}
	if n, _ := dsabi.DeviceCount(dsabi.DeviceCUDA); n == 0 {
		if _, err := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CUDA(0), 2); !errors.Is(err, dsabi.ErrNoDevice) {
			t.Errorf("NewTensor on cuda:0 without GPUs: %v, want ErrNoDevice", err)
		}
		if !errors.Is(func() error { _, err := dsabi.CUDA(0).Info(); return err }(), dsabi.ErrDevice) {
			t.Error("CUDA(0).Info() without GPUs is not a device-band error")
		}
	}
}
