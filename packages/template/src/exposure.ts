// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;
/**
 * Grant & Grigorieff (2015, eLife 4:e06980) critical exposure: the dose (e⁻/Å²) at which the signal at spatial
 * frequency k (1/Å) has decayed to 1/e: N_e(k) = 0.245·k^−1.665 + 2.81 (fit at 300 kV).
 */
export function criticalExposure(k: number): number {
  if (k <= 0) return Infinity;
  return 0.245 * Math.pow(k, -1.665) + 2.81;
}

/** Amplitude weight of a tilt taken after `dose` e⁻/Å² of accumulated exposure: exp(−dose / (2·N_e(k))). */
export function exposureWeight(k: number, dose: number): number {
  if (dose <= 0) return 1;
  return Math.exp(-dose / (2 * criticalExposure(k)));
}
