package org.dsabi;

/** Which transport a communicator uses ({@code enum ds_comm_backend}). */
public enum CommBackend {
    /** By tensor device: Gloo for CPU tensors, NCCL for CUDA tensors. */
    AUTO(ds_comm_backend.DS_COMM_BACKEND_AUTO),
    /** Gloo for everything (CUDA tensors are staged through host memory). */
    GLOO(ds_comm_backend.DS_COMM_BACKEND_GLOO),
    /** NCCL only (CPU tensors are rejected). */
    NCCL(ds_comm_backend.DS_COMM_BACKEND_NCCL);

    private final int code;

    CommBackend(int code) {
        this.code = code;
    }

    /** The {@code ds_comm_backend} value. */
    public int code() {
        return code;
    }

    static CommBackend fromCode(int code) {
        for (CommBackend v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_comm_backend " + code);
    }
}
