"""ds_tensor_fill converts a double to f16/bf16 by round-to-nearest-even: checked bit for bit
against a float64 reference on random values and on exact ties."""

import math
import random

import numpy as np
import pytest

import dsabi

# (significand bits including the implicit one, smallest normal exponent) of the small floats.
FORMATS = {"f16": (11, -14), "bf16": (8, -126)}


def round_to_nearest_even(value: float, precision: int, min_exponent: int) -> float:
    """value rounded to `precision` significant bits, ties to even, computed exactly in float64
    (every intermediate is a small integer times a power of two). Subnormals keep the spacing of
    the smallest normal binade."""
    if value == 0.0 or not math.isfinite(value):
        return value
    _, e = math.frexp(value)  # value = m * 2**e, 0.5 <= |m| < 1
    exponent = max(e - 1, min_exponent)  # value = 1.f * 2**exponent in the normal range
    quantum = math.ldexp(1.0, exponent - (precision - 1))
    return round(value / quantum) * quantum  # round(): ties to even, exact here


def bits_of(value: float, dtype: str) -> int:
    if dtype == "f16":
        return int(np.array(value, dtype=np.float16).view(np.uint16))
    # bf16 is the top half of an f32 whose low 16 bits are zero (the rounded value fits exactly).
    as_f32 = np.array(value, dtype=np.float32).view(np.uint32)
    assert int(as_f32) & 0xFFFF == 0, f"{value!r} does not fit bf16 exactly"
    return int(as_f32) >> 16


def filled_bits(value: float, dtype: str) -> int:
    with dsabi.Tensor.create((1,), dtype=dtype) as t:
        t.fill(value)
        view = t.numpy()  # f16 -> float16 view, bf16 -> uint16 bit patterns
        return int(view.view(np.uint16)[0])


def random_values(seed: int, count: int, low_exp: int, high_exp: int):
    rng = random.Random(seed)
    for _ in range(count):
        yield rng.choice((-1.0, 1.0)) * math.ldexp(rng.random() + 0.5, rng.randint(low_exp, high_exp))


@pytest.mark.parametrize("dtype, low_exp, high_exp", [("f16", -16, 15), ("bf16", -130, 120)])
def test_random_values_round_to_nearest_even(dtype, low_exp, high_exp):
    precision, min_exponent = FORMATS[dtype]
    mismatches = []
    for i, value in enumerate(random_values(seed=1234, count=2000, low_exp=low_exp, high_exp=high_exp)):
        expected = bits_of(round_to_nearest_even(value, precision, min_exponent), dtype)
        got = filled_bits(value, dtype)
        if got != expected:
            mismatches.append((i, value, hex(expected), hex(got)))
    assert not mismatches, f"{len(mismatches)} mismatches (index, value, expected, got): {mismatches[:5]}"


@pytest.mark.parametrize(
    "dtype, value, expected",
    [
        # Exactly halfway between two neighbours: the one with an even last bit wins.
        ("bf16", 1.0 + 2.0**-8, 1.0),  # between 1 and 1+2^-7: down to 1 (even)
        ("bf16", 1.0 + 3 * 2.0**-8, 1.0 + 2.0**-6),  # between 1+2^-7 and 1+2^-6: up (even)
        ("f16", 1.0 + 2.0**-11, 1.0),
        ("f16", 1.0 + 3 * 2.0**-11, 1.0 + 2.0**-9),
        ("f16", 2049.0, 2048.0),  # f16 spacing is 2 here: 2049 is a tie, 2048 is even
        ("f16", 2051.0, 2052.0),
        # Just above a tie rounds up, in float64 precision (a float32 detour would lose this).
        ("bf16", 1.0 + 2.0**-8 + 2.0**-40, 1.0 + 2.0**-7),
    ],
)
def test_ties_go_to_even(dtype, value, expected):
    assert filled_bits(value, dtype) == bits_of(expected, dtype)


def test_reference_agrees_with_numpy_float16():
    # numpy converts float64 to float16 directly with round-to-nearest-even: the reference must match.
    for value in random_values(seed=99, count=500, low_exp=-16, high_exp=15):
        ref = round_to_nearest_even(value, *FORMATS["f16"])
        assert np.float16(value) == np.float16(ref), value
