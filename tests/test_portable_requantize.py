"""The portable kernels' requantization without 64-bit products (tinykd_portable.h's tk_multiply_fast)
against the reference one (tinykd_fixedpoint.h's tk_multiply), on the edge values of int32 sums,
multipliers and shifts and on millions of random ones, compiled with the host gcc."""

import subprocess

from harness import CFLAGS
from tinykd.deploy.cbackend.lower import PARAMS_HEADER, RUNTIME_DIR, params_header

CHECK = r"""
#include <stdio.h>
#include "tinykd_portable.h"

static uint32_t state = 2463534242u;
static uint32_t next(void)
{
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

int main(void)
{
    static const int32_t sums[] = {INT32_MIN, INT32_MIN + 1, -65537, -65536, -32769, -32768, -32767, -1, 0, 1,
                                   32767, 32768, 65535, 65536, INT32_MAX - 1, INT32_MAX};
    static const int32_t multipliers[] = {0, 1, 65535, 65536, 1 << 30, (1 << 30) + 1, INT32_MAX, -1};
    long differ = 0, small = 0, large = 0, i;
    int a, b, s;
    for (a = 0; a < 16; ++a) {
        for (b = 0; b < 8; ++b) {
            for (s = -33; s <= 3; ++s) {
                differ += tk_multiply_fast(sums[a], multipliers[b], s) != tk_multiply(sums[a], multipliers[b], s);
            }
        }
    }
    for (i = 0; i < 4000000; ++i) {
        const int32_t m = (int32_t)((1u << 30) | (next() >> 2)), s = -(int32_t)(1 + next() % 31);
        int32_t x = (int32_t)next();
        x >>= next() % 32; /* sums of every magnitude */
        differ += tk_multiply_fast(x, m, s) != tk_multiply(x, m, s);
        if (x >= -32768 && x <= 32767 && s >= -16) {
            ++small;
        } else {
            ++large;
        }
    }
    printf("%ld %ld %ld", differ, small, large);
    return 0;
}
"""


def test_requantization_without_64_bit_products_equals_the_reference(tmp_path):
    (tmp_path / PARAMS_HEADER).write_text(params_header())
    (tmp_path / "check.c").write_text(CHECK)
    subprocess.run(["gcc", *CFLAGS, f"-I{tmp_path}", f"-I{RUNTIME_DIR}", "check.c", "-o", "check"], cwd=tmp_path,
                   check=True)
    run = subprocess.run(["./check"], cwd=tmp_path, capture_output=True, text=True, check=True)
    differ, small, large = map(int, run.stdout.split())
    assert differ == 0
    assert small > 100_000 and large > 100_000  # both of its paths
