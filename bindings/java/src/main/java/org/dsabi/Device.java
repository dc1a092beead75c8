package org.dsabi;

import java.util.Locale;
import java.util.Objects;

/** A device: {@link #CPU}, or {@code Device.cuda(i)}. Immutable; {@code toString()} is "cuda:1". */
public final class Device {
    public static final Device CPU = new Device(DeviceType.CPU, 0);

    private final DeviceType type;
    private final int index;

    private Device(DeviceType type, int index) {
        this.type = Objects.requireNonNull(type, "type");
        this.index = index;
    }

    public static Device of(DeviceType type, int index) {
        return type == DeviceType.CPU && index == 0 ? CPU : new Device(type, index);
    }

    public static Device cuda(int index) {
        return new Device(DeviceType.CUDA, index);
    }

    /** Parses "cpu", "cuda" or "cuda:&lt;index&gt;". */
    public static Device parse(String text) {
        String s = text.trim().toLowerCase(Locale.ROOT);
        int colon = s.indexOf(':');
        String kind = colon < 0 ? s : s.substring(0, colon);
        int index = colon < 0 ? 0 : Integer.parseInt(s.substring(colon + 1));
        switch (kind) {
            case "cpu":
                return of(DeviceType.CPU, index);
            case "cuda":
                return of(DeviceType.CUDA, index);
            default:
                throw new IllegalArgumentException("cannot parse device \"" + text + "\": expected cpu or cuda:<index>");
        }
    }

    /** Number of devices of a type: 1 for the CPU; visible GPUs for CUDA (0 without the backend). */
    public static int count(DeviceType type) {
        return DsabiNative.dev_count(type.code());
    }

    public DeviceType type() {
        return type;
    }

    public int index() {
        return index;
    }

    /** Describes the device; a {@link DeviceException} ({@link Status#NO_DEVICE}) if it is absent. */
    public DeviceInfo info() {
        DevInfo raw = new DevInfo(type.code(), index);
        try {
            return new DeviceInfo(this, raw.getName(), raw.getTotal_memory_bytes(), raw.getFree_memory_bytes(),
                    raw.getCompute_capability_major(), raw.getCompute_capability_minor(),
                    raw.getMultiprocessor_count());
        } finally {
            raw.delete();
        }
    }

    /** Waits until all work queued on the device has finished (a no-op on the CPU). */
    public void synchronize() {
        DsabiNative.dev_synchronize(type.code(), index);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Device && ((Device) o).type == type && ((Device) o).index == index;
    }

    @Override
    public int hashCode() {
        return type.hashCode() * 31 + index;
    }

    @Override
    public String toString() {
        return type.name().toLowerCase(Locale.ROOT) + ":" + index;
    }
}
