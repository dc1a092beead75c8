"""Sum an array over every rank of a job, synchronously and asynchronously, in place.

    dsrun -n 4 python3 examples/python/allreduce.py     (any launcher that sets RANK, WORLD_SIZE, ...)
    python3 examples/python/allreduce.py                (a job of one rank)
"""

import numpy as np

import dsabi


def main() -> int:
    with dsabi.Comm() as comm:
        x = np.full(8, comm.rank + 1.0, dtype=np.float32)
        comm.all_reduce(x)  # every rank now holds 1 + 2 + ... + world_size

        work = comm.all_reduce(x, op="avg", async_op=True)
        # ... compute something else here ...
        work.wait()

        expected = comm.world_size * (comm.world_size + 1) / 2  # the average of equal sums is the sum
        if comm.rank == 0:
            print(f"sum over {comm.world_size} ranks: {x[0]:g} (expected {expected:g})")
        return 0 if (x == expected).all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
