package org.dsabi;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.Test;

/** Ops against references computed with plain loops on random data (CPU tensors). */
public class OpsTest {
    private final Random rng = new Random(1234);

    private float[] randn(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rng.nextGaussian();
        }
        return v;
    }

    private static void assertClose(String what, double[] expected, float[] actual, double rtol, double atol) {
        assertEquals(what + ": length", expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            double tol = atol + rtol * Math.abs(expected[i]);
            if (!(Math.abs(expected[i] - actual[i]) <= tol)) {
                throw new AssertionError(what + "[" + i + "] = " + actual[i] + ", expected " + expected[i] + " +- " + tol);
            }
        }
    }

    private static void assertClose(String what, double[] expected, float[] actual) {
        assertClose(what, expected, actual, 1e-5, 1e-6);
    }

    // ---- CPU ISA and threads --------------------------------------------------------------------

    @Test
    public void cpuIsaAndThreads() {
        CpuIsa current = Ops.cpuIsa(); // the CPU's best, or what DSABI_CPU_ISA chose
        assertNotNull(current);
        int supported = 0;
        try {
            for (CpuIsa isa : CpuIsa.values()) {
                try {
                    Ops.setCpuIsa(isa);
                } catch (DsException e) {
                    assertEquals(Status.UNSUPPORTED, e.getCode());
                    continue;
                }
                assertEquals(isa, Ops.cpuIsa());
                assertEquals("the supported sets are the lowest ones", supported, isa.ordinal());
                supported++;
            }
        } finally {
            Ops.setCpuIsa(current);
        }
        assertEquals(current, Ops.cpuIsa());
        assertTrue(supported > current.ordinal());

        int threads = Ops.numThreads();
        assertTrue(threads >= 1);
        try {
            Ops.setNumThreads(2);
            assertEquals(2, Ops.numThreads());
        } finally {
            Ops.setNumThreads(0);
        }
        assertEquals(threads, Ops.numThreads());
    }

    // ---- options --------------------------------------------------------------------------------

    @Test
    public void optionDefaultsComeFromTheLibrary() {
        Ops.OptimOptions adamw = new Ops.OptimOptions(OptimKind.ADAMW);
        assertEquals(1e-3f, adamw.lr(), 0f);
        assertEquals(0.9f, adamw.beta1(), 0f);
        assertEquals(0.999f, adamw.beta2(), 0f);
        assertEquals(1e-8f, adamw.eps(), 0f);
        assertEquals(1e-2f, adamw.weightDecay(), 0f);
        assertTrue(adamw.biasCorrection());
        assertTrue(adamw.checkFinite());
        assertEquals(1f, adamw.gradScale(), 0f);
        Ops.OptimOptions sgd = new Ops.OptimOptions(OptimKind.SGD).momentum(0.9f).nesterov(true);
        assertEquals(0.9f, sgd.momentum(), 0f);
        assertTrue(sgd.nesterov());
        assertEquals(0f, sgd.dampening(), 0f);
        Ops.OptimOptions lamb = new Ops.OptimOptions(OptimKind.LAMB);
        assertEquals(10f, lamb.maxCoeff(), 0f);
        assertEquals(0.01f, lamb.minCoeff(), 0f);

        Ops.GemmOptions gemm = new Ops.GemmOptions();
        assertEquals(1f, gemm.alpha(), 0f);
        assertEquals(0f, gemm.beta(), 0f);
        assertEquals(Epilogue.NONE, gemm.epilogue());
        assertTrue(new Ops.GemmOptions().transB(true).epilogue(Epilogue.BIAS_GELU).transB());
        assertEquals(0f, new Ops.AttnOptions().scale(), 0f);
        assertEquals(128, new Ops.QuantOptions().groupSize());
        assertEquals(4, new Ops.QuantOptions().bits(4).bits());
    }

    // ---- optimizers -----------------------------------------------------------------------------

    @Test
    public void adamwStepMatchesTheReference() {
        int[] sizes = {7, 33, 1};
        int steps = 3;
        float lr = 1e-2f;
        float b1 = 0.9f;
        float b2 = 0.95f;
        float eps = 1e-8f;
        float wd = 0.1f;
        Tensor[] params = new Tensor[sizes.length];
        Tensor[] grads = new Tensor[sizes.length];
        Tensor[] m = new Tensor[sizes.length];
        Tensor[] v = new Tensor[sizes.length];
        double[][] rp = new double[sizes.length][];
        double[][] rm = new double[sizes.length][];
        double[][] rv = new double[sizes.length][];
        float[][] g = new float[sizes.length][];
        try {
            for (int t = 0; t < sizes.length; t++) {
                float[] p0 = randn(sizes[t]);
                g[t] = randn(sizes[t]);
                params[t] = Tensor.of(p0);
                grads[t] = Tensor.of(g[t]);
                m[t] = Tensor.create(DType.F32, sizes[t]);
                v[t] = Tensor.create(DType.F32, sizes[t]);
                rp[t] = new double[sizes[t]];
                for (int i = 0; i < sizes[t]; i++) {
                    rp[t][i] = p0[i];
                }
                rm[t] = new double[sizes[t]];
                rv[t] = new double[sizes[t]];
            }
            Ops.OptimOptions opts = new Ops.OptimOptions(OptimKind.ADAMW).lr(lr).betas(b1, b2).eps(eps).weightDecay(wd);
            for (int step = 1; step <= steps; step++) {
                assertFalse(Ops.optimStep(opts, step, params, grads, m, v, null));
                for (int t = 0; t < sizes.length; t++) {
                    for (int i = 0; i < sizes[t]; i++) {
                        rm[t][i] = b1 * rm[t][i] + (1 - b1) * (double) g[t][i];
                        rv[t][i] = b2 * rv[t][i] + (1 - b2) * (double) g[t][i] * g[t][i];
                        rp[t][i] *= 1 - (double) lr * wd;
                        double denom = Math.sqrt(rv[t][i]) / Math.sqrt(1 - Math.pow(b2, step)) + eps;
                        rp[t][i] -= lr / (1 - Math.pow(b1, step)) * rm[t][i] / denom;
                    }
                }
            }
            for (int t = 0; t < sizes.length; t++) {
                assertClose("param " + t, rp[t], params[t].toFloatArray());
                assertClose("exp_avg " + t, rm[t], m[t].toFloatArray());
                assertClose("exp_avg_sq " + t, rv[t], v[t].toFloatArray());
            }

            // A non-finite gradient skips the step and writes nothing.
            float[] before = params[0].toFloatArray();
            float[] bad = g[0].clone();
            bad[2] = Float.NaN;
            grads[0].copyFrom(bad);
            assertTrue(Ops.optimStep(opts, steps + 1, params, grads, m, v, null));
            assertArrayEquals(before, params[0].toFloatArray(), 0f);
        } finally {
            closeAll(params, grads, m, v);
        }
    }

    // ---- reductions, scale, cast ----------------------------------------------------------------

    @Test
    public void globalNormScaleAndNonfinite() {
        float[] a = randn(5);
        float[] b = randn(1001);
        double sum = 0;
        for (float x : a) {
            sum += (double) x * x;
        }
        for (float x : b) {
            sum += (double) x * x;
        }
        try (Tensor ta = Tensor.of(a); Tensor tb = Tensor.of(b, 7, 143)) {
            assertEquals(Math.sqrt(sum), Ops.globalNorm(ta, tb), 1e-6 * Math.sqrt(sum));
            assertFalse(Ops.findNonfinite(ta, tb));
            Ops.scale(0.5, ta, tb);
            double[] half = new double[a.length];
            for (int i = 0; i < a.length; i++) {
                half[i] = a[i] * 0.5;
            }
            assertClose("scaled", half, ta.toFloatArray());
            float[] withInf = tb.toFloatArray();
            withInf[1000] = Float.POSITIVE_INFINITY;
            tb.copyFrom(withInf);
            assertTrue(Ops.findNonfinite(ta, tb));
            assertTrue(Double.isInfinite(Ops.globalNorm(tb)) || Double.isNaN(Ops.globalNorm(tb)));
        }
    }

    @Test
    public void castRoundsToNearestEven() {
        float[] x = randn(37);
        x[0] = 1.00390625f; // exactly between two bf16 values: rounds to the even one (1.0)
        x[1] = 1.01171875f; // between 1.0078125 and 1.015625: rounds to even 1.015625
        try (Tensor src = Tensor.of(x); Tensor bf = Tensor.create(DType.BF16, 37); Tensor wide = Tensor.create(DType.F64, 37)) {
            Ops.cast(src, bf);
            ByteBuffer bytes = ByteBuffer.wrap(bf.toByteArray()).order(ByteOrder.nativeOrder());
            for (int i = 0; i < 37; i++) {
                int u = Float.floatToRawIntBits(x[i]);
                int expected = (int) (((u & 0xffffffffL) + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
                assertEquals("bf16 bits of " + x[i], expected, bytes.getShort(i * 2) & 0xffff);
            }
            Ops.cast(src, wide, 2f);
            double[] out = wide.toDoubleArray();
            for (int i = 0; i < 37; i++) {
                assertEquals((double) x[i] * 2, out[i], 0.0);
            }
        }
    }

    // ---- transformer ops ------------------------------------------------------------------------

    @Test
    public void layerNormMatchesTheReference() {
        int n = 4;
        int d = 33;
        float[] x = randn(n * d);
        float[] w = randn(d);
        float[] b = randn(d);
        double[] expected = new double[n * d];
        double[] expectedRstd = new double[n];
        for (int r = 0; r < n; r++) {
            double mean = 0;
            for (int i = 0; i < d; i++) {
                mean += x[r * d + i];
            }
            mean /= d;
            double var = 0;
            for (int i = 0; i < d; i++) {
                var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
            }
            double rstd = 1 / Math.sqrt(var / d + 1e-5);
            expectedRstd[r] = rstd;
            for (int i = 0; i < d; i++) {
                expected[r * d + i] = (x[r * d + i] - mean) * rstd * w[i] + b[i];
            }
        }
        try (Tensor tx = Tensor.of(x, n, d); Tensor tw = Tensor.of(w); Tensor tb = Tensor.of(b);
                Tensor y = Tensor.create(DType.F32, n, d); Tensor mean = Tensor.create(DType.F32, n);
                Tensor rstd = Tensor.create(DType.F32, n)) {
            assertEquals(y, Ops.layerNorm(tx, tw, tb, 1e-5f, y, mean, rstd));
            assertClose("y", expected, y.toFloatArray(), 1e-4, 1e-5);
            assertClose("rstd", expectedRstd, rstd.toFloatArray(), 1e-4, 1e-6);
        }
    }

    private static double erf(double x) {
        // Abramowitz and Stegun 7.1.26 is too coarse; integrate the series (|x| < 6 is plenty here).
        double sum = x;
        double term = x;
        for (int k = 1; k < 200; k++) {
            term *= -x * x / k;
            double next = term / (2 * k + 1);
            sum += next;
            if (Math.abs(next) < 1e-17) {
                break;
            }
        }
        return 2 / Math.sqrt(Math.PI) * sum;
    }

    private static double activate(Activation act, double x) {
        switch (act) {
            case GELU_TANH:
                return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
            case GELU:
                return 0.5 * x * (1 + erf(x / Math.sqrt(2)));
            case SILU:
                return x / (1 + Math.exp(-x));
            default:
                return Math.max(x, 0);
        }
    }

    @Test
    public void activationsMatchTheReference() {
        float[] x = randn(64);
        for (Activation act : Activation.values()) {
            double[] expected = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                expected[i] = activate(act, x[i] * 2);
                x[i] *= 2;
            }
            try (Tensor tx = Tensor.of(x); Tensor y = Tensor.create(DType.F32, x.length)) {
                Ops.activation(act, tx, y);
                assertClose(act.toString(), expected, y.toFloatArray(), 1e-5, 1e-6);
                Ops.activation(act, tx, tx); // y may alias x
                assertClose(act + " in place", expected, tx.toFloatArray(), 1e-5, 1e-6);
            }
            for (int i = 0; i < x.length; i++) {
                x[i] /= 2;
            }
        }
    }

    @Test
    public void softmaxAndCrossEntropy() {
        int n = 3;
        int v = 11;
        float[] logits = randn(n * v);
        int[] targets = {4, -100, 10};
        double[] soft = new double[n * v];
        double[] losses = new double[n];
        double[] grads = new double[n * v];
        for (int r = 0; r < n; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < v; i++) {
                max = Math.max(max, logits[r * v + i]);
            }
            double sum = 0;
            for (int i = 0; i < v; i++) {
                sum += Math.exp(logits[r * v + i] - max);
            }
            double lse = Math.log(sum) + max;
            for (int i = 0; i < v; i++) {
                soft[r * v + i] = Math.exp(logits[r * v + i] - lse);
            }
            if (targets[r] != -100) {
                losses[r] = lse - logits[r * v + targets[r]];
                for (int i = 0; i < v; i++) {
                    grads[r * v + i] = (soft[r * v + i] - (i == targets[r] ? 1 : 0)) / n;
                }
            }
        }
        try (Tensor tl = Tensor.of(logits, n, v); Tensor tt = Tensor.of(targets); Tensor y = Tensor.create(DType.F32, n, v);
                Tensor loss = Tensor.create(DType.F32, n); Tensor dl = Tensor.create(DType.F32, n, v)) {
            Ops.softmax(tl, 1f, y);
            assertClose("softmax", soft, y.toFloatArray());
            Ops.crossEntropy(tl, tt, -100, 1f / n, loss, dl);
            assertClose("losses", losses, loss.toFloatArray(), 1e-5, 1e-5);
            assertClose("dlogits", grads, dl.toFloatArray(), 1e-4, 1e-6);
        }
    }

    // ---- GEMM -----------------------------------------------------------------------------------

    @Test
    public void gemmWithTransposedWeightAndBias() {
        int m = 5;
        int k = 19;
        int n = 7;
        float[] a = randn(m * k);
        float[] w = randn(n * k); // [N, K], a torch Linear weight
        float[] bias = randn(n);
        float[] c0 = randn(m * n);
        double[] ab = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    s += (double) a[i * k + p] * w[j * k + p];
                }
                ab[i * n + j] = s;
            }
        }
        try (Tensor ta = Tensor.of(a, m, k); Tensor tw = Tensor.of(w, n, k); Tensor tb = Tensor.of(bias);
                Tensor c = Tensor.create(DType.F32, m, n)) {
            Ops.gemm(ta, tw, tb, c, new Ops.GemmOptions().transB(true).epilogue(Epilogue.BIAS));
            double[] expected = new double[m * n];
            for (int i = 0; i < m * n; i++) {
                expected[i] = ab[i] + bias[i % n];
            }
            assertClose("a w^T + bias", expected, c.toFloatArray(), 1e-4, 1e-4);
            c.copyFrom(c0);
            Ops.gemm(ta, tw, null, c, new Ops.GemmOptions().transB(true).alpha(0.5f).beta(1f));
            for (int i = 0; i < m * n; i++) {
                expected[i] = 0.5 * ab[i] + c0[i];
            }
            assertClose("0.5 a w^T + c", expected, c.toFloatArray(), 1e-4, 1e-4);
        }
    }

    // ---- quantization ---------------------------------------------------------------------------

    @Test
    public void quantizeDequantizeRoundTrip() {
        int n = 3;
        int k = 64;
        int group = 32;
        float[] x = randn(n * k);
        Ops.QuantOptions opts = new Ops.QuantOptions().bits(8).groupSize(group).symmetric(true);
        try (Tensor tx = Tensor.of(x, n, k); Tensor q = Tensor.create(DType.I8, n, k);
                Tensor scales = Tensor.create(DType.F32, n, k / group); Tensor y = Tensor.create(DType.F32, n, k)) {
            Ops.quantize(tx, q, scales, null, opts);
            Ops.dequantize(q, scales, null, y, opts);
            byte[] qs = q.toByteArray();
            float[] s = scales.toFloatArray();
            float[] back = y.toFloatArray();
            for (int i = 0; i < n * k; i++) {
                float scale = s[(i / k) * (k / group) + (i % k) / group];
                assertTrue("q in range", qs[i] >= -127 && qs[i] <= 127);
                assertEquals("dequantize is q * scale", (double) qs[i] * scale, back[i], 1e-6 * Math.abs(back[i]) + 1e-7);
                assertTrue("|x - y| <= scale / 2 at " + i, Math.abs(x[i] - back[i]) <= scale * 0.5001 + 1e-6);
            }
        }
    }

    // ---- attention ------------------------------------------------------------------------------

    @Test
    public void causalGroupedQueryAttention() {
        int s = 3;
        int skv = 4;
        int hq = 2;
        int hkv = 1;
        int d = 8;
        float[] q = randn(s * hq * d);
        float[] k = randn(skv * hkv * d);
        float[] v = randn(skv * hkv * d);
        double scale = 1 / Math.sqrt(d);
        double[] expected = new double[s * hq * d];
        double[] expectedLse = new double[hq * s];
        for (int h = 0; h < hq; h++) {
            int kh = h / (hq / hkv);
            for (int i = 0; i < s; i++) {
                double[] scores = new double[skv];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < skv; j++) {
                    if (j > i + (skv - s)) {
                        scores[j] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    double dot = 0;
                    for (int e = 0; e < d; e++) {
                        dot += (double) q[(i * hq + h) * d + e] * k[(j * hkv + kh) * d + e];
                    }
                    scores[j] = dot * scale;
                    max = Math.max(max, scores[j]);
                }
                double sum = 0;
                for (int j = 0; j < skv; j++) {
                    sum += Math.exp(scores[j] - max);
                }
                expectedLse[h * s + i] = Math.log(sum) + max;
                for (int e = 0; e < d; e++) {
                    double o = 0;
                    for (int j = 0; j < skv; j++) {
                        o += Math.exp(scores[j] - max) / sum * v[(j * hkv + kh) * d + e];
                    }
                    expected[(i * hq + h) * d + e] = o;
                }
            }
        }
        try (Tensor tq = Tensor.of(q, 1, s, hq, d); Tensor tk = Tensor.of(k, 1, skv, hkv, d);
                Tensor tv = Tensor.of(v, 1, skv, hkv, d); Tensor o = Tensor.create(DType.F32, 1, s, hq, d);
                Tensor lse = Tensor.create(DType.F32, 1, hq, s)) {
            Ops.attention(tq, tk, tv, o, lse, new Ops.AttnOptions().causal(true));
            assertClose("o", expected, o.toFloatArray(), 1e-4, 1e-5);
            assertClose("lse", expectedLse, lse.toFloatArray(), 1e-5, 1e-5);
        }
    }

    // ---- errors ---------------------------------------------------------------------------------

    @Test
    public void badShapesThrowWithTheArgumentName() {
        try (Tensor x = Tensor.create(DType.F32, 4, 8); Tensor w = Tensor.create(DType.F32, 9);
                Tensor y = Tensor.create(DType.F32, 4, 8)) {
            DsException e = assertThrows(DsException.class, () -> Ops.layerNorm(x, w, null, 1e-5f, y, null, null));
            assertEquals(Status.INVALID_ARG, e.getCode());
            assertTrue(e.getMessage(), e.getLibraryMessage().contains("weight"));
            assertTrue(e.getMessage(), e.getLibraryMessage().contains("[9]"));
        }
        Tensor closed = Tensor.create(DType.F32, 3);
        closed.close();
        assertThrows(IllegalStateException.class, () -> Ops.scale(2.0, closed));
    }

    private static void closeAll(Tensor[]... lists) {
        for (Tensor[] list : lists) {
            for (Tensor t : list) {
                if (t != null) {
                    t.close();
                }
            }
        }
    }
}
