// Command quickstart shows dsabi from Go: parse a DeepSpeed config, look at the derived batch
// sizes, and move tensor data between Go slices and the library.
//
// It is built and run inside the build tree's copy of the module:
//
//	cd build/go/dsabi-go && go run ./examples/quickstart
package main

import (
	"errors"
	"fmt"
	"log"

	dsabi "github.com/dsabi/dsabi-go"
)

const config = `{
	// hjson, as DeepSpeed reads it: comments and trailing commas are fine
	"train_batch_size": 32,
	"gradient_accumulation_steps": 2,
	"zero_optimization": {"stage": 2},
}`

func main() {
	cudaDevices, err := dsabi.DeviceCount(dsabi.DeviceCUDA)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("dsabi %s, CUDA devices: %d\n", dsabi.Version(), cudaDevices)

	// The batch-size rule: train_batch_size = micro batch * accumulation steps * world size.
	cfg, err := dsabi.ParseConfig(config, &dsabi.ConfigOptions{WorldSize: 4})
	if err != nil {
		log.Fatal(err)
	}
	micro, err := cfg.Int64("train_micro_batch_size_per_gpu")
	if err != nil {
		log.Fatal(err)
	}
	clipping, _ := cfg.Float64("gradient_clipping")
	fmt.Println("micro batch per GPU:", micro)
	fmt.Println("gradient clipping (a default filled in):", clipping)
	cfg.Close()

	// Errors carry the status code and name the key path.
	_, err = dsabi.ParseConfig(`{"train_batch_size": 8, "zero_optimization": {"stage": 4}}`, nil)
	var dsErr *dsabi.Error
	if errors.As(err, &dsErr) {
		fmt.Printf("rejected (%d): %s\n", dsErr.Code, dsErr.Msg)
	}

	// Tensor data moves in and out of Go slices by copy.
	t, err := dsabi.FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	if err := t.Fill(0.25); err != nil {
		log.Fatal(err)
	}
	values, err := dsabi.ToSlice[float32](t)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t, values)
}
