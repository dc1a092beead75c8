package org.dsabi;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import org.junit.Test;

public class TensorTest {
    @Test
    public void createdTensorsAreZeroFilledAndContiguous() {
        try (Tensor t = Tensor.create(DType.F64, 2, 3, 4)) {
            assertArrayEquals(new long[] {2, 3, 4}, t.shape());
            assertArrayEquals(new long[] {12, 4, 1}, t.strides());
            assertEquals(3, t.ndim());
            assertEquals(24, t.numel());
            assertEquals(24 * 8, t.nbytes());
            assertEquals(DType.F64, t.dtype());
            assertEquals(Device.CPU, t.device());
            assertTrue(t.isContiguous());
            assertArrayEquals(new double[24], t.toDoubleArray(), 0.0);
            assertEquals("Tensor(f64[2, 3, 4], cpu:0)", t.toString());
        }
    }

    @Test
    public void dtypeSizesAndNames() {
        assertEquals(2, DType.BF16.size());
        assertEquals("bf16", DType.BF16.libraryName());
        assertEquals(8, DType.I64.size());
        assertEquals(DType.U8, DType.fromCode(DType.U8.code()));
    }

    @Test
    public void arraysRoundTripThroughCopies() {
        float[] values = {1.5f, -2f, 3.25f, 4f, 5f, 6f};
        try (Tensor t = Tensor.of(values, 2, 3)) {
            assertArrayEquals(new long[] {2, 3}, t.shape());
            assertArrayEquals(values, t.toFloatArray(), 0f);
        }
        try (Tensor t = Tensor.of(new long[] {Long.MAX_VALUE, -1})) {
            assertArrayEquals(new long[] {Long.MAX_VALUE, -1}, t.toLongArray());
        }
        try (Tensor t = Tensor.of(new int[] {7, 8, 9})) {
            assertArrayEquals(new int[] {7, 8, 9}, t.toIntArray());
        }
    }

    @Test
    public void fillCopyAndClone() {
        try (Tensor a = Tensor.create(DType.I32, 4); Tensor b = Tensor.create(DType.I32, 4)) {
            a.fill(-7);
            b.copyFrom(a);
            assertArrayEquals(new int[] {-7, -7, -7, -7}, b.toIntArray());
            try (Tensor c = a.copy()) {
                a.fill(1);
                assertArrayEquals(new int[] {-7, -7, -7, -7}, c.toIntArray());
                assertNotEquals(a.dataAddress(), c.dataAddress());
            }
        }
    }

    @Test
    public void invalidArgumentsCarryTheirCode() {
        DsException shape = assertThrows(DsException.class, () -> Tensor.create(DType.F32, 2, -3));
        assertEquals(Status.INVALID_ARG, shape.getCode());
        assertTrue(shape.getMessage(), shape.getMessage().contains("shape[1]=-3 is negative"));
        assertEquals(shape.getLibraryMessage(), Dsabi.lastError());

        try (Tensor ints = Tensor.create(DType.I32, 1); Tensor wide = Tensor.create(DType.F64, 1)) {
            DsException fill = assertThrows(DsException.class, () -> ints.fill(0.5));
            assertEquals(Status.INVALID_ARG, fill.getCode());
            DsException copy = assertThrows(DsException.class, () -> ints.copyFrom(wide));
            assertTrue(copy.getMessage(), copy.getMessage().contains("dtype differs"));
        }
    }

    @Test
    public void directBuffersAreWrappedWithoutCopying() {
        ByteBuffer buffer = ByteBuffer.allocateDirect(6 * 4).order(ByteOrder.nativeOrder());
        FloatBuffer floats = buffer.asFloatBuffer();
        for (int i = 0; i < 6; i++) {
            floats.put(i, i);
        }
        try (Tensor t = Tensor.wrap(buffer, DType.F32, 2, 3)) {
            t.fill(2.5);
            assertEquals(2.5f, floats.get(5), 0f); // the tensor wrote into the buffer
            floats.put(0, -1f);
            assertEquals(-1f, t.toFloatArray()[0], 0f); // and reads what Java wrote
        }
    }

    @Test
    public void wrappingRespectsPositionAndStrides() {
        ByteBuffer buffer = ByteBuffer.allocateDirect(8 * 4).order(ByteOrder.nativeOrder());
        for (int i = 0; i < 8; i++) {
            buffer.putFloat(i * 4, i);
        }
        buffer.position(4); // start at element 1
        try (Tensor everyOther = Tensor.wrap(buffer, DType.F32, new long[] {3}, new long[] {2})) {
            assertFalse(everyOther.isContiguous());
            assertArrayEquals(new float[] {1, 3, 5}, everyOther.toFloatArray(), 0f);
        }
        IllegalArgumentException tooSmall = assertThrows(IllegalArgumentException.class,
                () -> Tensor.wrap(buffer, DType.F32, 8));
        assertTrue(tooSmall.getMessage(), tooSmall.getMessage().contains("28 bytes left"));
    }

    @Test
    public void heapBuffersAreRejected() {
        DsException e = assertThrows(DsException.class, () -> Tensor.wrap(ByteBuffer.allocate(16), DType.F32, 4));
        assertEquals(Status.INVALID_ARG, e.getCode());
        assertTrue(e.getMessage(), e.getMessage().contains("direct"));
    }

    @Test
    public void byteBufferViewSharesMemoryAndOutlivesTheTensor() {
        Tensor t = Tensor.create(DType.F32, 4);
        FloatBuffer view = t.asByteBuffer().asFloatBuffer();
        t.fill(3f);
        assertEquals(3f, view.get(3), 0f);
        view.put(0, 9f);
        assertEquals(9f, t.toFloatArray()[0], 0f);
        t.close();
        System.gc();
        assertEquals(3f, view.get(1), 0f); // the view holds a DLPack export of the memory
    }

    @Test
    public void dlpackRoundTripSharesMemory() {
        try (Tensor t = Tensor.of(new double[] {1, 2, 3})) {
            long managed = t.toDLPack();
            try (Tensor back = Tensor.fromDLPack(managed)) {
                assertEquals(t.dataAddress(), back.dataAddress());
                back.fill(8);
                assertArrayEquals(new double[] {8, 8, 8}, t.toDoubleArray(), 0.0);
            }
            long unused = t.toDLPack();
            Tensor.deleteDLPack(unused);
        }
    }

    @Test
    public void closedTensorThrows() {
        Tensor t = Tensor.create(DType.F32, 2);
        t.close();
        t.close();
        assertThrows(IllegalStateException.class, () -> t.fill(1));
        try (Tensor other = Tensor.create(DType.F32, 2)) {
            assertThrows(IllegalStateException.class, () -> other.copyFrom(t));
        }
    }
}
