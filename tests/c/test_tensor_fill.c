/* f16 / bf16 conversion of ds_tensor_fill against a float64 reference on fresh random values:
 * the result must be the nearest representable value, ties to even, with correct overflow,
 * underflow (subnormals), infinities and NaN. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "dsabi.h"
#include "minitest.h"

typedef struct { int exp_bits, man_bits; int32_t dtype; const char* name; } format_t;
static const format_t F16 = {5, 10, DS_DTYPE_F16, "f16"};
static const format_t BF16 = {8, 7, DS_DTYPE_BF16, "bf16"};

/* Reference decoder, written from the IEEE-754 definition. */
static double decode(const format_t* f, uint32_t bits) {
    int bias = (1 << (f->exp_bits - 1)) - 1;
    uint32_t e = (bits >> f->man_bits) & ((1u << f->exp_bits) - 1);
    uint32_t m = bits & ((1u << f->man_bits) - 1);
    double s = (bits >> (f->exp_bits + f->man_bits)) & 1u ? -1.0 : 1.0;
    if (e == (1u << f->exp_bits) - 1) return m ? NAN : s * INFINITY;
    if (e == 0) return s * ldexp((double)m, 1 - bias - f->man_bits);
    return s * ldexp((double)(m | (1u << f->man_bits)), (int)e - bias - f->man_bits);
}

static uint16_t fill_one(const format_t* f, ds_tensor_t* t, double x) {
    (void)f; /* names the format at call sites */
    uint16_t* p = NULL;
    if (ds_tensor_fill(t, x) != DS_OK) return 0xFFFF;
    ds_tensor_get_data(t, (void**)&p);
    return p[0];
}

static uint64_t g_state;
static uint64_t next_u64(void) {
    g_state += 0x9E3779B97F4A7C15ull;
    uint64_t z = g_state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Random doubles spread over the whole range of the format, subnormals and overflow included. */
static double random_value(const format_t* f) {
    int bias = (1 << (f->exp_bits - 1)) - 1;
    int lo = 1 - bias - f->man_bits - 2, hi = bias + 2;
    int e = lo + (int)(next_u64() % (uint64_t)(hi - lo + 1));
    double m = 1.0 + (double)(next_u64() >> 11) / 9007199254740992.0;
    double v = ldexp(m, e);
    return (next_u64() & 1) ? -v : v;
}

static void check_nearest(const format_t* f, int samples) {
    int64_t shape[1] = {1};
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_create(f->dtype, 1, shape, DS_DEV_CPU, 0, &t));
    const uint32_t sign_bit = 1u << (f->exp_bits + f->man_bits);
    const uint32_t inf_bits = ((1u << f->exp_bits) - 1) << f->man_bits;
    const double max_finite = decode(f, inf_bits - 1);
    int bad = 0;
    for (int i = 0; i < samples && bad < 5; ++i) {
        double x = random_value(f);
        uint16_t b = fill_one(f, t, x);
        double y = decode(f, b);
        double ax = fabs(x);
        /* Beyond max + half an ulp of max rounds to infinity. */
        double ulp_max = max_finite - decode(f, inf_bits - 2);
        if (ax >= max_finite + ulp_max / 2) {
            if (!isinf(y) || (y < 0) != (x < 0)) { bad++; fprintf(stderr, "%s: %.17g -> %#x, expected inf\n", f->name, x, b); }
            continue;
        }
        uint32_t mag = b & ~sign_bit;
        double err = fabs(ax - fabs(y));
        double up = mag + 1 < inf_bits ? fabs(ax - decode(f, mag + 1)) : INFINITY;
        double down = mag > 0 ? fabs(ax - decode(f, mag - 1)) : INFINITY;
        int sign_ok = (mag == 0) || ((b & sign_bit) != 0) == (x < 0);
        if (err > up || err > down || !sign_ok || (err == up && (mag & 1)) || (err == down && (mag & 1))) {
            bad++;
            fprintf(stderr, "%s: %.17g -> %#x (%.17g) is not the nearest-even value\n", f->name, x, b, y);
        }
    }
    CHECK_EQ_INT(bad, 0);
    ds_tensor_destroy(t);
}

/* Exact midpoints between two neighbours must go to the even one. */
static void check_ties(const format_t* f, int samples) {
    int64_t shape[1] = {1};
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_create(f->dtype, 1, shape, DS_DEV_CPU, 0, &t));
    const uint32_t inf_bits = ((1u << f->exp_bits) - 1) << f->man_bits;
    int bad = 0;
    for (int i = 0; i < samples && bad < 5; ++i) {
        uint32_t lo = (uint32_t)(next_u64() % (inf_bits - 1));
        double mid = (decode(f, lo) + decode(f, lo + 1)) / 2; /* exact in double */
        uint16_t b = fill_one(f, t, mid);
        uint32_t expect = (lo & 1) ? lo + 1 : lo;
        if (b != expect) { bad++; fprintf(stderr, "%s: tie %.17g -> %#x, expected %#x\n", f->name, mid, b, expect); }
        uint16_t nb = fill_one(f, t, -mid);
        if (nb != (expect | (1u << (f->exp_bits + f->man_bits)))) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    ds_tensor_destroy(t);
}

TEST(f16_rounds_to_nearest_even) { check_nearest(&F16, 200000); check_ties(&F16, 20000); }
TEST(bf16_rounds_to_nearest_even) { check_nearest(&BF16, 200000); check_ties(&BF16, 20000); }

TEST(special_values) {
    int64_t shape[1] = {1};
    ds_tensor_t *h = NULL, *b = NULL;
    CHECK_OK(ds_tensor_create(DS_DTYPE_F16, 1, shape, DS_DEV_CPU, 0, &h));
    CHECK_OK(ds_tensor_create(DS_DTYPE_BF16, 1, shape, DS_DEV_CPU, 0, &b));
    CHECK_EQ_INT(fill_one(&F16, h, 1.0), 0x3C00);
    CHECK_EQ_INT(fill_one(&F16, h, -2.0), 0xC000);
    CHECK_EQ_INT(fill_one(&F16, h, 65504.0), 0x7BFF);
    CHECK_EQ_INT(fill_one(&F16, h, 65520.0), 0x7C00);          /* rounds up to inf */
    CHECK_EQ_INT(fill_one(&F16, h, ldexp(1.0, -24)), 0x0001);   /* smallest subnormal */
    CHECK_EQ_INT(fill_one(&F16, h, ldexp(1.0, -26)), 0x0000);   /* below half of it */
    CHECK_EQ_INT(fill_one(&F16, h, -0.0), 0x8000);
    CHECK_EQ_INT(fill_one(&F16, h, INFINITY), 0x7C00);
    CHECK(((fill_one(&F16, h, NAN) & 0x7C00) == 0x7C00) && (fill_one(&F16, h, NAN) & 0x3FF));
    CHECK_EQ_INT(fill_one(&BF16, b, 1.0), 0x3F80);
    CHECK_EQ_INT(fill_one(&BF16, b, 1.0 / 3.0), 0x3EAB);
    CHECK_EQ_INT(fill_one(&BF16, b, -INFINITY), 0xFF80);
    CHECK_EQ_INT(fill_one(&BF16, b, 3.39e38), 0x7F7F);          /* max finite bf16 */
    CHECK_EQ_INT(fill_one(&BF16, b, 3.4e38), 0x7F80);           /* beyond max + half ulp -> inf */
    ds_tensor_destroy(h);
    ds_tensor_destroy(b);
}

int main(void) {
    g_state = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
    printf("seed %llu\n", (unsigned long long)g_state);
    RUN(f16_rounds_to_nearest_even);
    RUN(bf16_rounds_to_nearest_even);
    RUN(special_values);
    return minitest_report();
}
