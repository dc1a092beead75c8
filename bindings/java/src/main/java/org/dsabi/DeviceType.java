package org.dsabi;

/** Device types ({@code enum ds_dev_type}); the codes are DLPack's DLDeviceType values. */
public enum DeviceType {
    CPU(ds_dev_type.DS_DEV_CPU),
    CUDA(ds_dev_type.DS_DEV_CUDA);

    private final int code;

    DeviceType(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    public static DeviceType fromCode(int code) {
        for (DeviceType t : values()) {
            if (t.code == code) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown ds_dev_type " + code);
    }
}
