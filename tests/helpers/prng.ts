/**
 * Test helper (not used by hop itself): a tiny seeded PRNG (mulberry32) and
 * random value builders for the codecs' property tests. Same seed, same cases.
 *
 * @module
 */

/** A seeded source of random values. */
export interface Rng {
  /** Float in [0, 1). */
  next(): number;
  /** Integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** One element of `items`. */
  pick<T>(items: readonly T[]): T;
  /** A string of `len` characters drawn from `alphabet` (code points). */
  string(alphabet: string, minLen: number, maxLen: number): string;
}

/** A mulberry32 generator seeded with `seed`. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick,
    string(alphabet, minLen, maxLen) {
      const chars = [...alphabet];
      const len = int(minLen, maxLen);
      let s = "";
      for (let i = 0; i < len; i++) s += pick(chars);
      return s;
    },
  };
}

/** Letters, digits and the strict name punctuation. */
export const SAFE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+_.";
/** Characters that stress encoders: blanks, separators, escapes, non-ASCII, astral. */
export const TRICKY_CHARS = " %#:,$/\\\t\r\n\0é€😀ß日本";
