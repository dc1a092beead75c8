package dsabi_test

import (
	"fmt"

	dsabi "github.com/dsabi/dsabi-go"
)

func ExampleParseConfig() {
	cfg, err := dsabi.ParseConfig(`{
		// hjson, as DeepSpeed reads it
		"train_batch_size": 32,
		"gradient_accumulation_steps": 2,
	}`, &dsabi.ConfigOptions{WorldSize: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cfg.Close()
	micro, _ := cfg.Int64("train_micro_batch_size_per_gpu")
	fmt.Println("micro batch per GPU:", micro)
	// Output: micro batch per GPU: 4
}

func ExampleFromSlice() {
	t, err := dsabi.FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	t.Fill(0.5)
	values, _ := dsabi.ToSlice[float32](t)
	fmt.Println(t, values)
	// Output: Tensor(f32[2 3], cpu:0) [0.5 0.5 0.5 0.5 0.5 0.5]
}
