package org.dsabi;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

public class ConfigTest {
    static final String BASE = "{\"train_batch_size\": 32, \"gradient_accumulation_steps\": 2,"
            + " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 0.0003, \"betas\": [0.9, 0.95]}},"
            + " \"bf16\": {\"enabled\": true}, \"zero_optimization\": {\"stage\": 2}}";

    private Config config;

    @Before
    public void parseBase() {
        config = Config.parse(BASE, new Config.Options().worldSize(4));
    }

    @After
    public void closeBase() {
        config.close();
    }

    @Test
    public void derivesTheMicroBatchFromTheWorldSize() {
        // 32 = micro * 2 * 4
        assertEquals(4, config.getLong("train_micro_batch_size_per_gpu"));
        assertEquals(4, config.worldSize());
        assertEquals(WorldSizeSource.OPTIONS, config.worldSizeSource());
    }

    @Test
    public void typedGettersFollowKeyPaths() {
        assertEquals(2, config.getLong("zero_optimization.stage"));
        assertEquals(0.0003, config.getDouble("optimizer.params.lr"), 0.0);
        assertEquals(0.95, config.getDouble("optimizer.params.betas[1]"), 0.0);
        assertTrue(config.getBoolean("bf16.enabled"));
        assertEquals("adamw", config.getString("optimizer.type").toLowerCase());
        assertEquals(2, config.count("optimizer.params.betas"));
        assertEquals(JsonKind.ARRAY, config.kind("optimizer.params.betas"));
        assertEquals(JsonKind.OBJECT, config.kind("zero_optimization"));
    }

    @Test
    public void defaultsAreFilledIn() {
        assertTrue(config.contains("fp16.enabled"));
        assertFalse(config.getBoolean("fp16.enabled"));
        assertFalse(config.contains("no_such_block.key"));
        assertTrue(config.toJson().contains("\"train_micro_batch_size_per_gpu\":4"));
        assertEquals("[0.9,0.95]", config.toJson("optimizer.params.betas", false));
    }

    @Test
    public void missingKeyIsNotFound() {
        DsException e = assertThrows(DsException.class, () -> config.getLong("optimizer.params.betas[5]"));
        assertEquals(Status.NOT_FOUND, e.getCode());
        assertTrue(e.getLibraryMessage(), e.getLibraryMessage().contains("index 5"));
    }

    @Test
    public void wrongKindIsATypeError() {
        DsException e = assertThrows(DsException.class, () -> config.getLong("optimizer.params.lr"));
        assertEquals(Status.TYPE, e.getCode());
        assertTrue(e.getMessage(), e.getMessage().contains("ds_config_get_i64"));
        assertTrue(e.getMessage(), e.getMessage().endsWith("[type mismatch, -9]"));
    }

    @Test
    public void invalidValueNamesTheKeyPath() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> Config.parse("{\"train_batch_size\": 8, \"zero_optimization\": {\"stage\": 7}}"));
        assertEquals(Status.CONFIG_VALUE, e.getCode());
        assertTrue(e.getMessage(), e.getMessage().contains("zero_optimization.stage"));
    }

    @Test
    public void inconsistentBatchSizesAreRejected() {
        String json = "{\"train_batch_size\": 32, \"train_micro_batch_size_per_gpu\": 3, \"gradient_accumulation_steps\": 2}";
        ConfigException e = assertThrows(ConfigException.class, () -> Config.parse(json, new Config.Options().worldSize(4)));
        assertEquals(Status.CONFIG_BATCH, e.getCode());
    }

    @Test
    public void syntaxErrorsHaveALine() {
        ConfigException e = assertThrows(ConfigException.class, () -> Config.parse("{\"train_batch_size\": 8,\n oops}"));
        assertEquals(Status.CONFIG_PARSE, e.getCode());
        assertTrue(e.getMessage(), e.getMessage().contains("line 2"));
    }

    @Test
    public void strictModeRejectsUnknownTopLevelKeys() {
        String json = "{\"train_batch_size\": 8, \"my_custom_key\": 1}";
        try (Config loose = Config.parse(json)) {
            assertTrue(loose.diagnosticsJson().contains("\"unknown_key\""));
        }
        ConfigException e = assertThrows(ConfigException.class, () -> Config.parse(json, new Config.Options().strict(true)));
        assertEquals(Status.CONFIG_UNKNOWN_KEY, e.getCode());
    }

    @Test
    public void autoValuesFollowTheOption() {
        String json = "{\"train_batch_size\": 32, \"train_micro_batch_size_per_gpu\": \"auto\"}";
        try (Config cfg = Config.parse(json, new Config.Options().worldSize(4))) {
            assertEquals(8, cfg.getLong("train_micro_batch_size_per_gpu"));
        }
        ConfigException e = assertThrows(ConfigException.class,
                () -> Config.parse(json, new Config.Options().worldSize(4).acceptAuto(false)));
        assertEquals(Status.CONFIG_VALUE, e.getCode());
    }

    @Test
    public void loadsAFile() throws Exception {
        Path file = Files.createTempFile("ds_config", ".json");
        try {
            Files.write(file, BASE.getBytes(StandardCharsets.UTF_8));
            try (Config cfg = Config.load(file, new Config.Options().worldSize(8))) {
                assertEquals(2, cfg.getLong("train_micro_batch_size_per_gpu"));
            }
        } finally {
            Files.delete(file);
        }
        DsException e = assertThrows(DsException.class, () -> Config.load(file));
        assertEquals(Status.IO, e.getCode());
        assertTrue(e.getMessage(), e.getMessage().contains(file.toString()));
    }

    @Test
    public void nonAsciiTextSurvivesTheBoundary() {
        // Characters beyond the BMP would be mangled by JNI's modified UTF-8.
        String name = "run-\u00e9t\u00e9-\ud83d\ude80";
        try (Config cfg = Config.parse("{\"train_batch_size\": 8, \"tensorboard\": {\"enabled\": true, \"job_name\": \""
                + name + "\"}}")) {
            assertEquals(name, cfg.getString("tensorboard.job_name"));
        }
    }

    @Test
    public void closedConfigThrowsAndCloseIsIdempotent() {
        Config cfg = Config.parse(BASE);
        cfg.close();
        cfg.close();
        assertTrue(cfg.isClosed());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> cfg.getLong("train_batch_size"));
        assertEquals("this Config is closed", e.getMessage());
        assertEquals("Config(closed)", cfg.toString());
    }
}
