// Deterministic benchmark inputs shared by the bench scripts: the same seed gives the same volume everywhere.
'use strict';

/** n float32 values uniform in [−0.5, 0.5) from a linear congruential sequence (fast; quality is irrelevant here). */
function uniformNoise(n, seed) {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    out[i] = a / 2 ** 32 - 0.5;
  }
  return out;
}

module.exports = { uniformNoise };
