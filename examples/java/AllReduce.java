import org.dsabi.Comm;
import org.dsabi.DType;
import org.dsabi.ReduceOp;
import org.dsabi.Tensor;
import org.dsabi.Work;

/**
 * Sum a tensor over every rank of a job, synchronously and asynchronously.
 *
 * <pre>
 * dsrun -n 4 java -Djava.library.path=build/java/lib -cp build/java/classes:build/java/example-classes AllReduce
 * </pre>
 */
public final class AllReduce {
    public static void main(String[] args) {
        boolean ok;
        try (Comm comm = Comm.create(); // rendezvous from RANK, WORLD_SIZE, MASTER_ADDR, ...
                Tensor t = Tensor.create(DType.F32, 8).fill(comm.rank() + 1.0)) {
            comm.allReduce(t, ReduceOp.SUM); // every rank now holds 1 + 2 + ... + world size

            try (Work work = comm.allReduceAsync(t, ReduceOp.AVG)) {
                // ... compute something else here ...
                work.waitFor();
            }

            float expected = comm.worldSize() * (comm.worldSize() + 1) / 2f; // the average of equal sums
            float[] values = t.toFloatArray();
            if (comm.rank() == 0) {
                System.out.println("sum over " + comm.worldSize() + " ranks: " + values[0] + " (expected " + expected + ")");
            }
            ok = values[0] == expected && values[7] == expected;
        }
        System.exit(ok ? 0 : 1);
    }
}
