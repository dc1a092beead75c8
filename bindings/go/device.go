package dsabi

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dsabi/dsabi-go/internal/swig"
)

// DeviceType is a ds_dev_type; the values are DLPack's DLDeviceType codes.
type DeviceType int32

// The device types of dsabi.h.
const (
	DeviceCPU  DeviceType = 1
	DeviceCUDA DeviceType = 2
)

func (t DeviceType) String() string {
	switch t {
	case DeviceCPU:
		return "cpu"
	case DeviceCUDA:
		return "cuda"
	}
	return fmt.Sprintf("DeviceType(%d)", int32(t))
}

// Device is a device type and index. Its String form is "cpu:0" or "cuda:1".
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host.
var CPU = Device{Type: DeviceCPU}

// CUDA is GPU number index.
func CUDA(index int) Device { return Device{Type: DeviceCUDA, Index: index} }

// ParseDevice parses "cpu", "cuda" or "cuda:<index>".
func ParseDevice(text string) (Device, error) {
	kind, index, hasIndex := strings.Cut(strings.ToLower(strings.TrimSpace(text)), ":")
	d := Device{}
	switch kind {
	case "cpu":
		d.Type = DeviceCPU
	case "cuda":
		d.Type = DeviceCUDA
	default:
		return Device{}, fmt.Errorf("dsabi: cannot parse device %q: expected cpu or cuda:<index>", text)
	}
	if hasIndex {
		i, err := strconv.Atoi(index)
		if err != nil || i < 0 {
			return Device{}, fmt.Errorf("dsabi: cannot parse device %q: bad index", text)
		}
		d.Index = i
	}
	return d, nil
}

func (d Device) String() string { return fmt.Sprintf("%s:%d", d.Type, d.Index) }

// DeviceCount is the number of devices of a type: 1 for the CPU; the visible GPUs for CUDA (0
// without the CUDA backend, a driver or a GPU).
func DeviceCount(t DeviceType) (n int, err error) {
	err = call(func() { n = swig.Dev_count(int(t)) })
	return n, err
}

// DeviceInfo is what the library reports about a device (ds_dev_info_t).
type DeviceInfo struct {
	Device                 Device
	Name                   string // "cpu" (and the processor model) or the GPU's product name
	TotalMemoryBytes       uint64
	FreeMemoryBytes        uint64 // at the time of the query
	ComputeCapabilityMajor int    // CUDA only, else 0
	ComputeCapabilityMinor int
	MultiprocessorCount    int // CUDA SMs, or logical CPU cores
}

// Info describes the device; ErrNoDevice if it is not present.
func (d Device) Info() (DeviceInfo, error) {
	var raw swig.DevInfo
	if err := call(func() { raw = swig.NewDevInfo(int(d.Type), d.Index) }); err != nil {
		return DeviceInfo{}, err
	}
	defer swig.DeleteDevInfo(raw)
	return DeviceInfo{
		Device:                 Device{Type: DeviceType(raw.GetDevice_type()), Index: raw.GetDevice_index()},
		Name:                   raw.GetName(),
		TotalMemoryBytes:       raw.GetTotal_memory_bytes(),
		FreeMemoryBytes:        raw.GetFree_memory_bytes(),
		ComputeCapabilityMajor: raw.GetCompute_capability_major(),
		ComputeCapabilityMinor: raw.GetCompute_capability_minor(),
		MultiprocessorCount:    raw.GetMultiprocessor_count(),
	}, nil
}

// Synchronize waits until all work queued on the device has finished (a no-op on the CPU).
func (d Device) Synchronize() error {
	return call(func() { swig.Dev_synchronize(int(d.Type), d.Index) })
}
