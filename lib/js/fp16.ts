// fp16 / bf16 scalar conversions (reference §1.1, §1.2).
// The encoders work on the float32 bit pattern so that the result is the
// correctly rounded conversion of the f32 value (JS numbers are float64; a
// float64 -> fp16 rounding would double-round).

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** f32 -> IEEE binary16 bits: nearest-even, subnormals kept, overflow to inf, NaN -> sign|0x7E00. */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  const u = scratchU32[0];
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  // 0x477FF000 = 65520, the midpoint between 65504 and 2^16; the tie goes to the even (inf) side.
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a >= 0x38800000) {
    // Normal fp16. Rebias the exponent (127 -> 15) and round the 13 dropped bits;
    // a mantissa carry correctly bumps the exponent.
    const h = (a - 0x38000000) >>> 13;
    const rem = a & 0x1fff;
    return sign | (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0) ? h + 1 : h);
  }
  // Subnormal fp16 (units of 2^-24). Below 2^-25 everything rounds to zero; exactly
  // 2^-25 is a tie that goes to the even value 0, which the general path also gives.
  const e = a >>> 23;
  if (e < 102) return sign;
  const mant = (a & 0x7fffff) | 0x800000;
  const shift = 126 - e; // 14..24
  const h = mant >>> shift;
  const rem = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  // h + 1 may reach 0x400, which is exactly the encoding of the smallest normal.
  return sign | (rem > half || (rem === half && (h & 1) !== 0) ? h + 1 : h);
}

/** All 65536 fp16 patterns decoded once; decoding is then a single indexed load. */
const F16_TABLE = new Float32Array(65536);
{
  const bits = new Uint32Array(F16_TABLE.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      const v = mant * 2 ** -24; // exact in f32
      F16_TABLE[h] = sign ? -v : v;
    } else if (exp === 31) {
      bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else {
      bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
}

/** fp16 bits -> f32 value (exact). */
export function f16BitsToF32(h: number): number {
  return F16_TABLE[h & 0xffff];
}

/** f32 -> bf16 bits, as ggml_compute_fp32_to_bf16: nearest-even, NaN forced quiet. */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  const u = scratchU32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x0040;
  // u + 0x8000 <= 0xFF808000 for non-NaN u, so the sum never wraps past 2^32.
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

/** bf16 bits -> f32 value (exact). */
export function bf16BitsToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0];
}
