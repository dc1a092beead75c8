"""Build a token dataset from text, then read it the way a training loop does: a DeepSpeed config
gives the micro batch, the loader prefetches on background threads, batches are zero-copy NumPy
arrays (or torch tensors through DLPack), and a cursor saved mid-epoch resumes exactly there.

    PYTHONPATH=build/python python3 examples/python/data_loader.py
"""

import os
import tempfile

import dsabi


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "hamlet.txt")
        with open(text, "w", encoding="utf-8") as f:
            for i in range(200):
                f.write(f"Paragraph {i}. To be, or not to be, that is the question: whether 'tis nobler in the mind\n"
                        "to suffer the slings and arrows of outrageous fortune.\n\n")

        # 1. Tokenize (byte-level here; dsabi.Tokenizer.gpt2(vocab, merges) for GPT-2).
        path = os.path.join(tmp, "hamlet.dst")
        dots = []
        stats = dsabi.build_dataset(path, [text], split="paragraph", append_eot=True, progress=dots.append)
        print(f"built {stats.documents} documents, {stats.tokens} tokens ({len(dots)} progress reports)")

        # 2. A loader: windows of 129 ids (128 inputs + the shifted target), micro batch from the config.
        cfg = dsabi.Config.parse({"train_batch_size": 16, "train_micro_batch_size_per_gpu": 8}, world_size=1)
        with dsabi.TokenDataset.open(path) as data:
            options = dict(config=cfg, seq_len=129, window_stride=128, num_workers=2)
            with dsabi.DataLoader(data, **options) as loader:
                print(f"{len(loader)} micro-batches per epoch")
                saved, first_after_save = None, None
                for i, batch in enumerate(loader):
                    info = batch.info
                    tokens = batch.tokens.numpy()  # [8, 129] int32, zero-copy
                    first = int(batch.sample_ids.numpy()[0])
                    print(f"step {info.global_step} micro-batch {info.index}: {tokens.shape} tokens, first window {first}")
                    if i == 3:
                        saved = loader.cursor  # after 4 micro-batches
                    if i == 4:
                        first_after_save = first
                        break

            # 3. Resume from the saved cursor: the next batch is the one that followed it.
            with dsabi.DataLoader(data, **options) as loader:
                loader.set_cursor(saved)
                first = int(loader.next_batch().sample_ids.numpy()[0])
        same = first == first_after_save
        print(f"resumed at epoch {saved.epoch} position {saved.position}: first window {first} "
              f"({'same' if same else 'DIFFERENT'})")
        return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
