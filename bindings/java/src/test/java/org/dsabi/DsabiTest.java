package org.dsabi;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.Test;

public class DsabiTest {
    @Test
    public void versionMatchesTheHeader() {
        String[] parts = Dsabi.version().split("\\.");
        long expected = Long.parseLong(parts[0]) * 10000 + Long.parseLong(parts[1]) * 100 + Long.parseLong(parts[2]);
        assertEquals(expected, Dsabi.versionNumber());
        assertEquals(Dsabi.headerVersionNumber(), Dsabi.versionNumber());
    }

    @Test
    public void buildInfoIsJson() {
        String info = Dsabi.buildInfoJson();
        assertTrue(info, info.startsWith("{") && info.endsWith("}"));
        assertTrue(info, info.contains("\"version\":\"" + Dsabi.version() + "\""));
        assertTrue(info, info.contains("\"java\":true"));
    }

    @Test
    public void statusCodesAndTexts() {
        assertEquals(-403, Status.CONFIG_VALUE);
        assertEquals("invalid argument", Status.describe(Status.INVALID_ARG));
        DsException e = DsException.of(-450, "boom".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        assertTrue(e instanceof ConfigException);
        assertEquals(-450, e.getCode());
    }

    @Test
    public void logHandlerReceivesMessages() {
        List<String> debug = new ArrayList<>();
        Dsabi.setLogHandler((level, message) -> {
            if (level == LogLevel.DEBUG) {
                debug.add(message);
            }
        }, LogLevel.DEBUG);
        try {
            assertThrows(DsException.class, () -> Tensor.create(DType.F32, -1));
        } finally {
            Dsabi.setLogLevel(LogLevel.ERROR);
        }
        // Failed calls are logged at DEBUG, naming the function.
        assertTrue(debug.toString(), debug.stream().anyMatch(m -> m.contains("ds_tensor_create")));
    }

    @Test
    public void throwingLogHandlerDoesNotBreakTheCall() {
        Dsabi.setLogHandler((level, message) -> {
            throw new IllegalStateException("handler failed");
        }, LogLevel.DEBUG);
        try {
            DsException e = assertThrows(DsException.class, () -> Tensor.create(DType.F32, -1));
            assertEquals(Status.INVALID_ARG, e.getCode());
        } finally {
            Dsabi.setLogLevel(LogLevel.ERROR);
        }
    }

    @Test
    public void procAddressFindsExportedFunctions() {
        assertNotEquals(0, Dsabi.procAddress("ds_config_parse"));
        DsException e = assertThrows(DsException.class, () -> Dsabi.procAddress("ds_no_such_function"));
        assertEquals(Status.NOT_FOUND, e.getCode());
    }

    @Test
    public void lastErrorCanBeCleared() {
        assertThrows(DsException.class, () -> Tensor.create(DType.F32, -1));
        assertTrue(Dsabi.lastError().contains("ds_tensor_create"));
        Dsabi.clearLastError();
        assertEquals("", Dsabi.lastError());
    }

    @Test
    public void cpuDeviceIsDescribed() {
        assertEquals(1, Device.count(DeviceType.CPU));
        DeviceInfo info = Device.CPU.info();
        assertEquals(Device.CPU, info.device());
        assertTrue(info.multiprocessorCount() >= 1);
        assertTrue(info.totalMemoryBytes() >= info.freeMemoryBytes());
        Device.CPU.synchronize();
        assertEquals(Device.cuda(2), Device.parse("cuda:2"));
    }

    @Test
    public void absentDevicesAreDeviceExceptions() {
        org.junit.Assume.assumeTrue("a CUDA device is present", Device.count(DeviceType.CUDA) == 0);
        DeviceException e = assertThrows(DeviceException.class, () -> Tensor.create(DType.F32, Device.cuda(0), 2));
        assertEquals(Status.NO_DEVICE, e.getCode());
        assertThrows(DeviceException.class, () -> Device.cuda(0).info());
    }

    @Test
    public void initIsIdempotentAndShutdownReinitialises() {
        Dsabi.init(LogLevel.ERROR, false, null); // the library is initialised already: no effect
        Dsabi.shutdown();
        assertEquals(1, Device.count(DeviceType.CPU)); // the next call initialises it again
    }
}
