// Command dataloader builds a token dataset from text, then reads it the way a training loop does:
// a DeepSpeed config gives the micro batch, the loader prefetches on background threads, and a
// cursor saved mid-epoch resumes exactly there.
//
//	cd build/go/dsabi-go && go run ./examples/dataloader
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	dsabi "github.com/dsabi/dsabi-go"
)

func main() {
	dir, err := os.MkdirTemp("", "dsabi-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var text strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&text, "Paragraph %d. To be, or not to be, that is the question: whether 'tis nobler in the mind\n"+
			"to suffer the slings and arrows of outrageous fortune.\n\n", i)
	}
	textPath := filepath.Join(dir, "hamlet.txt")
	if err := os.WriteFile(textPath, []byte(text.String()), 0o644); err != nil {
		log.Fatal(err)
	}

	// 1. Tokenize (byte-level here; BuildOptions.Tokenizer from NewGPT2Tokenizer for GPT-2).
	path := filepath.Join(dir, "hamlet.dst")
	stats, err := dsabi.BuildDataset(path, []string{textPath}, &dsabi.BuildOptions{Split: dsabi.SplitParagraph,
		AppendEOT: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("built %d documents, %d tokens\n", stats.Documents, stats.Tokens)

	// 2. A loader: windows of 129 ids (128 inputs + the shifted target), micro batch from the config.
	cfg, err := dsabi.ParseConfig(`{"train_batch_size": 16, "train_micro_batch_size_per_gpu": 8}`,
		&dsabi.ConfigOptions{WorldSize: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer cfg.Close()
	data, err := dsabi.OpenDataset(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer data.Close()
	opts := &dsabi.LoaderOptions{Config: cfg, SeqLen: 129, WindowStride: 128, NumWorkers: 2}
	loader, err := dsabi.NewDataLoader(data, opts)
	if err != nil {
		log.Fatal(err)
	}
	n, _ := loader.Len()
	fmt.Printf("%d micro-batches per epoch\n", n)
	var saved dsabi.Cursor
	var firstAfterSave int64
	for i := 0; i < 5; i++ {
		batch, err := loader.Next()
		if err == io.EOF {
			break // the end of the epoch
		} else if err != nil {
			log.Fatal(err)
		}
		info, _ := batch.Info()
		ids, _ := batch.SampleIDs()
		samples, _ := dsabi.ToSlice[int64](ids)
		fmt.Printf("step %d micro-batch %d: [%d x %d] tokens, first window %d\n", info.GlobalStep, info.Index,
			info.Rows, info.Columns, samples[0])
		if i == 3 {
			saved, _ = loader.Cursor() // after 4 micro-batches
		}
		if i == 4 {
			firstAfterSave = samples[0]
		}
		ids.Close()
		batch.Close()
	}
	loader.Close()

	// 3. Resume from the saved cursor: the next batch is the one that followed it.
	loader, err = dsabi.NewDataLoader(data, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer loader.Close()
	if err := loader.SetCursor(saved); err != nil {
		log.Fatal(err)
	}
	batch, err := loader.Next()
	if err != nil {
		log.Fatal(err)
	}
	defer batch.Close()
	ids, _ := batch.SampleIDs()
	defer ids.Close()
	samples, _ := dsabi.ToSlice[int64](ids)
	verdict := "same"
	if samples[0] != firstAfterSave {
		verdict = "DIFFERENT"
	}
	fmt.Printf("resumed at epoch %d position %d: first window %d (%s)\n", saved.Epoch, saved.Position, samples[0], verdict)
	if verdict != "same" {
		os.Exit(1)
	}
}
