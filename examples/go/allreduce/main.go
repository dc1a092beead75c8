// Command allreduce sums a tensor over every rank of a job, synchronously and asynchronously.
//
//	cd build/go/dsabi-go && go build -o allreduce ./examples/allreduce && dsrun -n 4 ./allreduce
package main

import (
	"fmt"
	"log"
	"os"

	dsabi "github.com/dsabi/dsabi-go"
)

func main() {
	comm, err := dsabi.NewComm(nil) // rendezvous from RANK, WORLD_SIZE, MASTER_ADDR, ...
	if err != nil {
		log.Fatal(err)
	}
	defer comm.Close()

	t, err := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CPU, 8)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	t.Fill(float64(comm.Rank() + 1))

	// Synchronous: every rank then holds 1 + 2 + ... + world size.
	if err := comm.AllReduce(t, dsabi.ReduceSum); err != nil {
		log.Fatal(err)
	}

	// Asynchronous: queue the average, do other work, then wait.
	work, err := comm.AllReduceAsync(t, dsabi.ReduceAvg)
	if err != nil {
		log.Fatal(err)
	}
	// ... compute something else here ...
	if err := work.Wait(); err != nil {
		log.Fatal(err)
	}
	work.Close()

	values, _ := dsabi.ToSlice[float32](t)
	expected := float32(comm.WorldSize()*(comm.WorldSize()+1)) / 2 // the average of equal sums is the sum
	if comm.Rank() == 0 {
		fmt.Printf("sum over %d ranks: %g (expected %g)\n", comm.WorldSize(), values[0], expected)
	}
	if values[0] != expected || values[7] != expected {
		os.Exit(1)
	}
}
