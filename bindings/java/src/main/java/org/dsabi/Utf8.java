package org.dsabi;

import java.nio.charset.StandardCharsets;

/**
 * Strings cross JNI as real UTF-8 bytes (JNI's own string functions use "modified UTF-8", which
 * mangles NUL and characters outside the BMP). Used by the generated code; see dsabi_java.i.
 */
final class Utf8 {
    private Utf8() {}

    static byte[] encode(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    static String decode(byte[] bytes) {
        return bytes == null ? null : new String(bytes, StandardCharsets.UTF_8);
    }

    static byte[][] encodeAll(String[] strings) {
        if (strings == null) {
            return null;
        }
        byte[][] out = new byte[strings.length][];
        for (int i = 0; i < strings.length; i++) {
            out[i] = encode(strings[i]);
        }
        return out;
    }
}
