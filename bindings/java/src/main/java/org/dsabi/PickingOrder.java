package org.dsabi;

/** Dynamic batching's sequence order ({@code enum ds_data_picking_order}). */
public enum PickingOrder {
    DATALOADER(ds_data_picking_order.DS_DATA_PICK_DATALOADER),
    SEQLEN(ds_data_picking_order.DS_DATA_PICK_SEQLEN),
    RANDOM(ds_data_picking_order.DS_DATA_PICK_RANDOM);

    private final int code;

    PickingOrder(int code) {
        this.code = code;
    }

    /** The {@code ds_data_picking_order} value. */
    public int code() {
        return code;
    }

    static PickingOrder fromCode(int code) {
        for (PickingOrder v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_data_picking_order " + code);
    }
}
