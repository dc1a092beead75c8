import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import org.dsabi.Config;
import org.dsabi.ConfigException;
import org.dsabi.DType;
import org.dsabi.Device;
import org.dsabi.DeviceType;
import org.dsabi.Dsabi;
import org.dsabi.Tensor;

/**
 * dsabi from Java: parse a DeepSpeed config, look at the derived batch sizes, and exchange tensor
 * data with Java buffers and arrays.
 *
 * <pre>
 * java -Djava.library.path=build/java/lib -cp build/java/classes:build/java/example-classes Quickstart
 * </pre>
 */
public final class Quickstart {
    private static final String CONFIG = "{\n"
            + "  // hjson, as DeepSpeed reads it: comments and trailing commas are fine\n"
            + "  \"train_batch_size\": 32,\n"
            + "  \"gradient_accumulation_steps\": 2,\n"
            + "  \"zero_optimization\": {\"stage\": 2},\n"
            + "}\n";

    public static void main(String[] args) {
        System.out.println("dsabi " + Dsabi.version() + ", CUDA devices: " + Device.count(DeviceType.CUDA));

        // The batch-size rule: train_batch_size = micro batch * accumulation steps * world size.
        try (Config cfg = Config.parse(CONFIG, new Config.Options().worldSize(4))) {
            System.out.println("micro batch per GPU: " + cfg.getLong("train_micro_batch_size_per_gpu"));
            System.out.println("ZeRO stage " + cfg.getLong("zero_optimization.stage") + ", gradient clipping "
                    + cfg.getDouble("gradient_clipping"));
        }

        // Errors carry the status code and name the key path.
        try {
            Config.parse("{\"train_batch_size\": 8, \"zero_optimization\": {\"stage\": 4}}").close();
        } catch (ConfigException e) {
            System.out.println("rejected (" + e.getCode() + "): " + e.getLibraryMessage());
        }

        // A library-owned tensor: copies in and out, or a zero-copy view.
        try (Tensor t = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3)) {
            FloatBuffer view = t.asByteBuffer().asFloatBuffer();
            view.put(0, 10f);
            System.out.println(t + ": " + Arrays.toString(t.toFloatArray()));
        }

        // A direct buffer, used by the library without a copy.
        ByteBuffer buffer = ByteBuffer.allocateDirect(4 * Float.BYTES).order(ByteOrder.nativeOrder());
        try (Tensor wrapped = Tensor.wrap(buffer, DType.F32, 4)) {
            wrapped.fill(0.25);
        }
        System.out.println("buffer after a dsabi fill: " + buffer.getFloat(0) + ", " + buffer.getFloat(12));
    }
}
