package org.dsabi;

/** What the library reports about a device ({@code ds_dev_info_t}). */
public final class DeviceInfo {
    private final Device device;
    private final String name;
    private final long totalMemoryBytes;
    private final long freeMemoryBytes;
    private final int computeCapabilityMajor;
    private final int computeCapabilityMinor;
    private final int multiprocessorCount;

    DeviceInfo(Device device, String name, long totalMemoryBytes, long freeMemoryBytes, int computeCapabilityMajor,
            int computeCapabilityMinor, int multiprocessorCount) {
        this.device = device;
        this.name = name;
        this.totalMemoryBytes = totalMemoryBytes;
        this.freeMemoryBytes = freeMemoryBytes;
        this.computeCapabilityMajor = computeCapabilityMajor;
        this.computeCapabilityMinor = computeCapabilityMinor;
        this.multiprocessorCount = multiprocessorCount;
    }

    public Device device() {
        return device;
    }

    /** "cpu" (with the processor model) or the GPU's product name. */
    public String name() {
        return name;
    }

    public long totalMemoryBytes() {
        return totalMemoryBytes;
    }

    /** Free memory at the time of the query. */
    public long freeMemoryBytes() {
        return freeMemoryBytes;
    }

    /** CUDA compute capability; 0 on the CPU. */
    public int computeCapabilityMajor() {
        return computeCapabilityMajor;
    }

    public int computeCapabilityMinor() {
        return computeCapabilityMinor;
    }

    /** CUDA streaming multiprocessors, or logical CPU cores. */
    public int multiprocessorCount() {
        return multiprocessorCount;
    }

    @Override
    public String toString() {
        return device + " (" + name + ", " + totalMemoryBytes / (1 << 20) + " MiB, " + multiprocessorCount + " units)";
    }
}
