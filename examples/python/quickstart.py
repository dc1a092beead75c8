"""dsabi from Python: parse a DeepSpeed config, look at the derived batch sizes, and move tensor
data between dsabi and NumPy without copying.

Run from a build tree:  PYTHONPATH=build/python python3 examples/python/quickstart.py
"""

import numpy as np

import dsabi

CONFIG = """
{
    // hjson, as DeepSpeed reads it: comments and trailing commas are fine
    "train_batch_size": 32,
    "gradient_accumulation_steps": 2,
    "bf16": {"enabled": true},
    "zero_optimization": {"stage": 2},
}
"""


def main() -> None:
    print(f"dsabi {dsabi.__version__}, CUDA devices: {dsabi.device_count('cuda')}")

    # The batch-size rule: train_batch_size = micro batch * accumulation steps * world size.
    with dsabi.Config.parse(CONFIG, world_size=4) as cfg:
        micro = cfg.get_int("train_micro_batch_size_per_gpu")
        print(f"micro batch per GPU: {micro}")
        print(f"ZeRO stage {cfg['zero_optimization.stage']}, gradient clipping {cfg['gradient_clipping']}")

    # Errors carry the status code and name the key path.
    try:
        dsabi.Config.parse('{"train_batch_size": 8, "zero_optimization": {"stage": 4}}')
    except dsabi.ConfigError as err:
        print(f"rejected ({err.code}): {err.message}")

    # A library-owned tensor, seen from NumPy without a copy.
    with dsabi.Tensor.full((2, 3), 0.5, dtype="f32") as t:
        view = t.numpy()
        view[0, 0] = 8.0
        print(f"{t}: {np.from_dlpack(t).tolist()}")

    # A NumPy array, seen from dsabi without a copy.
    weights = np.arange(6, dtype=np.float64)
    with dsabi.Tensor.from_numpy(weights) as w:
        w.fill(1.5)
    print(f"NumPy array after a dsabi fill: {weights.tolist()}")


if __name__ == "__main__":
    main()
