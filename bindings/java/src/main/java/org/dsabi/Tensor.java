package org.dsabi;

import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.function.Consumer;

/**
 * An n-dimensional view (dtype, shape, strides, device) on memory that the library owns
 * ({@link #create}), that a direct {@link ByteBuffer} provides ({@link #wrap}, zero-copy), or that
 * came through DLPack ({@link #fromDLPack}).
 *
 * <pre>{@code
 * try (Tensor t = Tensor.create(DType.F32, 2, 3)) {
 *     t.fill(1.5);
 *     float[] values = t.toFloatArray();          // a copy
 *     FloatBuffer view = t.asByteBuffer().asFloatBuffer();  // no copy
 * }
 * }</pre>
 *
 * After {@link #close()} every method throws {@link IllegalStateException}. Memory shared with
 * buffers from {@link #asByteBuffer()} or DLPack exports stays valid while they are in use.
 */
public final class Tensor extends NativeResource {
    private static final Cleaner VIEW_CLEANER = Cleaner.create();

    private final TensorHandle handle;
    private final Object keepAlive; // the buffer whose memory a wrapped tensor uses, or null

    private Tensor(TensorHandle handle, Object keepAlive) {
        super("Tensor", handle, releaser(TensorHandle.getCPtr(handle), keepAlive));
        this.handle = handle;
        this.keepAlive = keepAlive;
    }

    private static Runnable releaser(long ptr, Object keepAlive) {
        return () -> {
            DsabiJNI.delete_TensorHandle(ptr);
            Reference.reachabilityFence(keepAlive); // the memory outlives the tensor
        };
    }

    // ---- creation -------------------------------------------------------------------------------

    /** A new zero-filled, contiguous CPU tensor. No dimensions make a scalar. */
    public static Tensor create(DType dtype, long... shape) {
        return create(dtype, Device.CPU, shape);
    }

    /** A new zero-filled, contiguous tensor on a device. */
    public static Tensor create(DType dtype, Device device, long... shape) {
        return new Tensor(TensorHandle.create(dtype.code(), shape, device.type().code(), device.index()), null);
    }

    /**
     * A C-contiguous CPU tensor on the memory of a direct buffer, without copying, from the
     * buffer's position on. The tensor keeps the buffer reachable while it lives. Write and read
     * the buffer in {@link ByteOrder#nativeOrder()}.
     */
    public static Tensor wrap(ByteBuffer buffer, DType dtype, long... shape) {
        return wrap(buffer, dtype, shape, null);
    }

    /** Like {@link #wrap(ByteBuffer, DType, long...)} with strides in elements (null: C-contiguous). */
    public static Tensor wrap(ByteBuffer buffer, DType dtype, long[] shape, long[] strides) {
        long need = spanBytes(dtype, shape, strides);
        if (buffer.remaining() < need) {
            throw new IllegalArgumentException("the buffer has " + buffer.remaining() + " bytes left but the tensor spans "
                    + need);
        }
        long address = DsabiNative.buffer_address(buffer) + buffer.position();
        TensorHandle h = TensorHandle.wrap(address, dtype.code(), shape, strides, DeviceType.CPU.code(), 0);
        return new Tensor(h, buffer);
    }

    /** A CPU tensor holding a copy of values, with the given shape (default: 1-D, all values). */
    public static Tensor of(float[] values, long... shape) {
        return create(DType.F32, shapeFor(shape, values.length)).copyFrom(values);
    }

    public static Tensor of(double[] values, long... shape) {
        return create(DType.F64, shapeFor(shape, values.length)).copyFrom(values);
    }

    public static Tensor of(int[] values, long... shape) {
        return create(DType.I32, shapeFor(shape, values.length)).copyFrom(values);
    }

    public static Tensor of(long[] values, long... shape) {
        return create(DType.I64, shapeFor(shape, values.length)).copyFrom(values);
    }

    // ---- DLPack ---------------------------------------------------------------------------------

    /**
     * Exports the tensor as a {@code DLManagedTensor*} sharing its memory, for native code that
     * speaks DLPack. The receiver must call its deleter exactly once, or pass the address to
     * {@link #deleteDLPack} or {@link #fromDLPack}.
     */
    public long toDLPack() {
        return handle().to_dlpack();
    }

    /** Takes ownership of a {@code DLManagedTensor*}; on failure ownership stays with the caller. */
    public static Tensor fromDLPack(long managedTensor) {
        return new Tensor(TensorHandle.from_dlpack(managedTensor), null);
    }

    /** Deletes a {@code DLManagedTensor*} that nobody consumed. */
    public static void deleteDLPack(long managedTensor) {
        DsabiNative.dlpack_delete(managedTensor);
    }

    /** A Tensor owning a handle that a generated helper just returned (batches, token ids...). */
    static Tensor adopt(TensorHandle handle) {
        return new Tensor(handle, null);
    }

    /** The live handle, for the other classes of the package (collectives, writers...). */
    TensorHandle nativeHandle() {
        return handle();
    }

    // ---- properties -----------------------------------------------------------------------------

    private TensorHandle handle() {
        checkOpen();
        return handle;
    }

    public DType dtype() {
        return DType.fromCode(handle().dtype());
    }

    public int ndim() {
        return handle().ndim();
    }

    public long[] shape() {
        TensorHandle h = handle();
        long[] dims = new long[h.ndim()];
        for (int i = 0; i < dims.length; i++) {
            dims[i] = h.dim(i);
        }
        return dims;
    }

    /** Strides in elements. */
    public long[] strides() {
        TensorHandle h = handle();
        long[] strides = new long[h.ndim()];
        for (int i = 0; i < strides.length; i++) {
            strides[i] = h.stride(i);
        }
        return strides;
    }

    public long numel() {
        return handle().numel();
    }

    public long nbytes() {
        return handle().nbytes();
    }

    public Device device() {
        TensorHandle h = handle();
        return Device.of(DeviceType.fromCode(h.device_type()), h.device_index());
    }

    public boolean isContiguous() {
        return handle().is_contiguous();
    }

    /** Address of the first element. */
    public long dataAddress() {
        return handle().data_ptr();
    }

    // ---- operations -----------------------------------------------------------------------------

    /** Sets every element (round to nearest even for F16/BF16; integer dtypes need an integral value). */
    public Tensor fill(double value) {
        handle().fill(value);
        return this;
    }

    /** Copies src into this tensor: same dtype and shape, any devices and strides. */
    public Tensor copyFrom(Tensor src) {
        handle().copy_from(src.handle());
        return this;
    }

    /** A new contiguous, library-owned copy on a device. */
    public Tensor cloneTo(Device device) {
        return new Tensor(handle().clone(device.type().code(), device.index()), null);
    }

    /** A new contiguous, library-owned copy on the same device. */
    public Tensor copy() {
        return cloneTo(device());
    }

    // ---- Java data ------------------------------------------------------------------------------

    /**
     * A direct buffer in native byte order over this CPU tensor's memory (no copy). The buffer
     * holds its own reference to the memory, so it stays valid after the tensor is closed. The
     * tensor must be contiguous.
     */
    public ByteBuffer asByteBuffer() {
        TensorHandle h = handle();
        if (h.device_type() != DeviceType.CPU.code()) {
            throw new IllegalStateException("asByteBuffer() needs a CPU tensor, this one is on " + device()
                    + "; use cloneTo(Device.CPU)");
        }
        if (!h.is_contiguous()) {
            throw new IllegalStateException("asByteBuffer() needs a contiguous tensor; use copy()");
        }
        long nbytes = h.nbytes();
        if (nbytes == 0) {
            return ByteBuffer.allocateDirect(0).order(ByteOrder.nativeOrder());
        }
        long export = h.to_dlpack(); // keeps the memory alive for as long as the buffer
        ByteBuffer view;
        try {
            view = DsabiNative.byte_buffer_at(h.data_ptr(), nbytes);
        } catch (RuntimeException | Error e) {
            DsabiNative.dlpack_delete(export);
            throw e;
        }
        VIEW_CLEANER.register(view, () -> DsabiNative.dlpack_delete(export));
        return view.order(ByteOrder.nativeOrder());
    }

    public float[] toFloatArray() {
        float[] out = new float[checkedLength(DType.F32)];
        hostView().asFloatBuffer().get(out);
        return out;
    }

    public double[] toDoubleArray() {
        double[] out = new double[checkedLength(DType.F64)];
        hostView().asDoubleBuffer().get(out);
        return out;
    }

    public int[] toIntArray() {
        int[] out = new int[checkedLength(DType.I32)];
        hostView().asIntBuffer().get(out);
        return out;
    }

    public long[] toLongArray() {
        long[] out = new long[checkedLength(DType.I64)];
        hostView().asLongBuffer().get(out);
        return out;
    }

    /** The elements' bytes in native byte order, whatever the dtype. */
    public byte[] toByteArray() {
        byte[] out = new byte[Math.toIntExact(nbytes())];
        hostView().get(out);
        return out;
    }

    public Tensor copyFrom(float[] values) {
        checkLength(DType.F32, values.length);
        return writeHost(bytes -> bytes.asFloatBuffer().put(values));
    }

    public Tensor copyFrom(double[] values) {
        checkLength(DType.F64, values.length);
        return writeHost(bytes -> bytes.asDoubleBuffer().put(values));
    }

    public Tensor copyFrom(int[] values) {
        checkLength(DType.I32, values.length);
        return writeHost(bytes -> bytes.asIntBuffer().put(values));
    }

    public Tensor copyFrom(long[] values) {
        checkLength(DType.I64, values.length);
        return writeHost(bytes -> bytes.asLongBuffer().put(values));
    }

    @Override
    public String toString() {
        if (isClosed()) {
            return "Tensor(closed)";
        }
        return "Tensor(" + dtype().libraryName() + Arrays.toString(shape()) + ", " + device() + ")";
    }

    // ---- helpers --------------------------------------------------------------------------------

    /** This tensor's data as a buffer: a view when it is contiguous on the CPU, else a copy. */
    private ByteBuffer hostView() {
        TensorHandle h = handle();
        if (h.device_type() == DeviceType.CPU.code() && h.is_contiguous()) {
            return asByteBuffer();
        }
        try (Tensor host = cloneTo(Device.CPU)) {
            ByteBuffer copy = ByteBuffer.allocateDirect(Math.toIntExact(host.nbytes())).order(ByteOrder.nativeOrder());
            copy.put(host.asByteBuffer()).flip();
            return copy;
        }
    }

    /** Lets fill write this tensor's bytes: in place when contiguous on the CPU, else staged. */
    private Tensor writeHost(Consumer<ByteBuffer> fill) {
        TensorHandle h = handle();
        if (h.device_type() == DeviceType.CPU.code() && h.is_contiguous()) {
            fill.accept(asByteBuffer());
            return this;
        }
        ByteBuffer staging = ByteBuffer.allocateDirect(Math.toIntExact(h.nbytes())).order(ByteOrder.nativeOrder());
        fill.accept(staging);
        try (Tensor src = wrap(staging, dtype(), shape())) {
            copyFrom(src);
        }
        return this;
    }

    private int checkedLength(DType expected) {
        DType actual = dtype();
        if (actual != expected) {
            throw new IllegalStateException("the tensor's dtype is " + actual + ", not " + expected);
        }
        return Math.toIntExact(numel());
    }

    private void checkLength(DType expected, int length) {
        int numel = checkedLength(expected);
        if (numel != length) {
            throw new IllegalArgumentException(length + " values given for a tensor of " + numel + " elements");
        }
    }

    /** shape, or {length} when no shape is given; it must hold exactly length elements. */
    private static long[] shapeFor(long[] shape, int length) {
        if (shape.length == 0) {
            return new long[] {length};
        }
        long numel = 1;
        for (long d : shape) {
            numel *= d;
        }
        if (numel != length) {
            throw new IllegalArgumentException(length + " values do not fill shape " + Arrays.toString(shape));
        }
        return shape;
    }

    /** Bytes from the first element to one past the last, for a non-negative-stride layout. */
    private static long spanBytes(DType dtype, long[] shape, long[] strides) {
        long last = 0;
        long contiguous = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] == 0) {
                return 0;
            }
            long stride = strides == null ? contiguous : strides[i];
            last += (shape[i] - 1) * Math.abs(stride);
            contiguous *= shape[i];
        }
        return (last + 1) * dtype.size();
    }
}
