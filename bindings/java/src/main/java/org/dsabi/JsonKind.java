package org.dsabi;

/** Kinds of config values ({@code enum ds_json_kind}). */
public enum JsonKind {
    NULL(ds_json_kind.DS_JSON_NULL),
    BOOL(ds_json_kind.DS_JSON_BOOL),
    NUMBER(ds_json_kind.DS_JSON_NUMBER),
    STRING(ds_json_kind.DS_JSON_STRING),
    ARRAY(ds_json_kind.DS_JSON_ARRAY),
    OBJECT(ds_json_kind.DS_JSON_OBJECT);

    private final int code;

    JsonKind(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    static JsonKind fromCode(int code) {
        for (JsonKind k : values()) {
            if (k.code == code) {
                return k;
            }
        }
        throw new IllegalArgumentException("unknown ds_json_kind " + code);
    }
}
