/**
 * The unbiased pass@k estimator of Chen et al. (2021) as the CRUXEval and LiveCodeBench harnesses
 * compute it: `1 - prod(1 - k / arange(n - c + 1, n + 1))`, and 1 when `n - c < k`.
 */
export function passAtK(n: number, c: number, k: number): number {
  if (
    !Number.isInteger(n) ||
    !Number.isInteger(c) ||
    !Number.isInteger(k) ||
    n < 0 ||
    c < 0 ||
    c > n ||
    k < 1
  ) {
    throw new RangeError(`passAtK needs integers 0 <= c <= n and k >= 1, got n=${n} c=${c} k=${k}`);
  }
  if (n - c < k) return 1;
  let product = 1;
  for (let i = n - c + 1; i <= n; i += 1) product *= 1 - k / i;
  return 1 - product;
}

/** Mean of per-item pass@k values, ×100 (the harnesses' reported figure); undefined for no items. */
export function meanPassAtK(
  results: readonly { n: number; c: number }[],
  k: number,
): number | undefined {
  const usable = results.filter((r) => r.n > 0);
  if (usable.length === 0) return undefined;
  return (usable.reduce((sum, r) => sum + passAtK(r.n, r.c, k), 0) / usable.length) * 100;
}
