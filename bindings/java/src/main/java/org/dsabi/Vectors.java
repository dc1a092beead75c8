package org.dsabi;

/** Arrays in and out of the generated layer, which passes them as CPU tensors (data.i). */
final class Vectors {
    private Vectors() {}

    static int[] ints(TensorHandle h) {
        try (Tensor t = Tensor.adopt(h)) {
            return t.toIntArray();
        }
    }

    static long[] longs(TensorHandle h) {
        try (Tensor t = Tensor.adopt(h)) {
            return t.toLongArray();
        }
    }

    static byte[] bytes(TensorHandle h) {
        try (Tensor t = Tensor.adopt(h)) {
            return t.toByteArray();
        }
    }

    /** Ids as a library-owned i32 tensor (a copy), for one call. */
    static Tensor of(int[] values) {
        return Tensor.of(values);
    }

    static ConfigHandle config(Config c) {
        return c == null ? null : c.nativeHandle();
    }

    static String path(java.nio.file.Path p) {
        return p == null ? null : p.toString();
    }
}
