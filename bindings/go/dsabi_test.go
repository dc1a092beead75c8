package dsabi_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	dsabi "github.com/dsabi/dsabi-go"
)

func TestVersion(t *testing.T) {
	var major, minor, patch int
	if _, err := fmt.Sscanf(dsabi.Version(), "%d.%d.%d", &major, &minor, &patch); err != nil {
		t.Fatal(err)
	}
	if got, want := dsabi.VersionNumber(), major*10000+minor*100+patch; got != want {
		t.Errorf("VersionNumber() = %d, want %d", got, want)
	}
}

func TestBuildInfo(t *testing.T) {
	info, err := dsabi.BuildInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info["version"] != dsabi.Version() {
		t.Errorf("build info version %v, library %s", info["version"], dsabi.Version())
	}
	features, _ := info["features"].(map[string]any)
	if features["go"] != true {
		t.Errorf("features = %v, want go: true", features)
	}
}

func TestLogHandlerReceivesMessages(t *testing.T) {
	var mu sync.Mutex
	var debug []string
	err := dsabi.SetLogHandler(func(level dsabi.LogLevel, message string) {
		if level == dsabi.LogDebug {
			mu.Lock()
			debug = append(debug, message)
			mu.Unlock()
		}
	}, dsabi.LogDebug)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dsabi.SetLogLevel(dsabi.LogError) })

	if _, err := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CPU, -1); err == nil {
		t.Fatal("a negative dimension was accepted")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, m := range debug { // failed calls are logged at DEBUG, naming the function
		if strings.Contains(m, "ds_tensor_create") {
			return
		}
	}
	t.Errorf("debug messages %q do not mention ds_tensor_create", debug)
}

func TestSetLogLevelRejectsBadLevels(t *testing.T) {
	if err := dsabi.SetLogLevel(dsabi.LogLevel(9)); !errors.Is(err, dsabi.ErrInvalidArg) {
		t.Errorf("SetLogLevel(9) = %v, want ErrInvalidArg", err)
	}
	if err := dsabi.SetLogHandler(func(dsabi.LogLevel, string) {}, dsabi.LogLevel(-1)); !errors.Is(err, dsabi.ErrInvalidArg) {
		t.Errorf("SetLogHandler(level -1) = %v, want ErrInvalidArg", err)
	}
}

func TestProcAddress(t *testing.T) {
	if addr, err := dsabi.ProcAddress("ds_tensor_create"); err != nil || addr == 0 {
		t.Errorf("ProcAddress(ds_tensor_create) = %#x, %v", addr, err)
	}
}

func TestInitAndShutdown(t *testing.T) {
	level := dsabi.LogError
	if err := dsabi.Init(dsabi.LibOptions{LogLevel: &level, NoCUDA: true}); err != nil { // no effect: already initialised
		t.Fatal(err)
	}
	if err := dsabi.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if n, err := dsabi.DeviceCount(dsabi.DeviceCPU); err != nil || n != 1 { // initialises again
		t.Errorf("DeviceCount after Shutdown = %d, %v", n, err)
	}
}

// Errors are collected per call, not per thread: goroutines failing at the same time each get
// their own message, even though the C side keeps it thread-local.
func TestConcurrentErrorsKeepTheirMessages(t *testing.T) {
	var wg sync.WaitGroup
	for i := 1; i <= 16; i++ {
		wg.Add(1)
		go func(dim int64) {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				_, err := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CPU, 1, -dim)
				want := fmt.Sprintf("shape[1]=%d is negative", -dim)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("got %v, want a message with %q", err, want)
					return
				}
			}
		}(int64(i))
	}
	wg.Wait()
}
