#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets (native/fuzz/corpus/<target>/):
valid-shaped inputs for every op and type of fuzz_ops, for each method and type of
fuzz_calibrated, and a few files and hint lists for fuzz_mapped_file, plus some with
special fp16 scales, raw float bits and lengths off by a few. Deterministic: rerun
after changing a target's input format (see the comment at the top of each target)."""
import os
import random

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
rng = random.Random(17)


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(bytes(data))


def payload(n):
    return [rng.randrange(256) for _ in range(n)]


# fuzz_ops: op, type, isa, rows, cols, jitter, m, change, flags, payload
# type byte b < 208 picks kTypes[b % 13]: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q4_K q5_K q6_K q8_1 q8_K
for op in range(8):
    for ti in range(13):
        for variant in range(2):
            isa = rng.randrange(3)
            rows = [1, 17, 3, 33][rng.randrange(4)]
            cols = rng.randrange(2)
            m = [1, 9, 2, 16][rng.randrange(4)]
            flags = [0, 1, 2, 4, 1 | 4, 8, 8 | 2][rng.randrange(7)]
            change = 0 if variant == 0 else 0x80 | (rng.randrange(3) << 4) | rng.randrange(8)
            head = [op, ti, isa, rows, cols, 0, m, change, flags]
            if op == 7:
                head += [rng.randrange(3)]
            write('fuzz_ops', f'op{op}-t{ti}-{variant}', head + payload(600))

# fuzz_calibrated: method, type, isa, rows, cols, n, group/sym/order/clip, damp, batch, grid, tokens, change, mode, floats
for method in range(2):
    for ti in range(9):
        for variant in range(2):
            rows = rng.randrange(1, 9)
            n = rng.randrange(1, 10)
            g = rng.randrange(4) | (rng.randrange(2) << 4) | (rng.randrange(2) << 5) | (rng.randrange(2) << 6)
            change = 0 if variant == 0 else 0x80 | (rng.randrange(4) << 4) | rng.randrange(8)
            mode = [1, 2, 0, 0x41, 0x2a][rng.randrange(5)]
            head = [method, ti, rng.randrange(3), rows, rng.randrange(2), n, g, rng.randrange(4), rng.randrange(4), rng.randrange(3), rng.randrange(3), change, mode]
            write('fuzz_calibrated', f'm{method}-t{ti}-{variant}', head + payload(1500))

# fuzz_mapped_file: flags, [extra u16], hint count, hints (kind, offset, length, value), [truncate u32], bytes
def u16(v):
    return [v & 255, (v >> 8) & 255]


def u32(v):
    return u16(v & 0xFFFF) + u16(v >> 16)


seeds = {
    'empty': [0, 0],
    'small': [0, 0] + payload(100),
    'pages-hints': [1] + u16(9000) + [4, 0] + u16(10) + u16(5000) + [0, 1] + u16(4000) + u16(300) + [0xAB, 2, 0] + u16(0) + u16(9000) + [0, 3] + u16(100) + u16(8000) + [0] + payload(50),
    'unaligned-dontneed': [1] + u16(12000) + [2, 0x21] + u16(4097) + u16(8191) + [0x5A, 3] + u16(0) + u16(12000) + [0] + payload(10),
    'truncate': [3] + u16(20000) + [1, 1] + u16(8192) + u16(100) + [7] + u32(5000) + payload(20),
    'truncate-zero': [2, 0] + u32(0) + payload(300),
    'remap-huge-offsets': [5] + u16(5000) + [3, 0x80] + u16(1) + u16(1) + [0, 0x41] + u32(0xFFFFFFFF) + u16(0) + [1, 0xC2] + u32(3) + u16(7) + [0] + payload(40),
}
for name, data in seeds.items():
    write('fuzz_mapped_file', name, data)
print('seeds written under', ROOT)
