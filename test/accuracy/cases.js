// The cases of the accuracy suite. Every search is the real `tme run` with default flags plus the data's own
// metadata (--tilt-angles, --dose, --defocus, --voltage, --cs, --amplitude-contrast) and an angular step.
'use strict';

/** SNR ladders (signal variance over the particles' voxels ÷ noise variance), easy → where detection fails. */
const LADDER = {
  '1tii': [0.1, 0.04, 0.02, 0.01, 0.005],
  '6zu5': [0.1, 0.04, 0.02, 0.01, 0.005],
};
/** The "moderate" SNR of each molecule: orientation, crowded, border and tiling rows. */
const MODERATE = { '1tii': 0.04, '6zu5': 0.04 };
/**
 * Detection-only rows use a coarse step; the asymmetric ribosome's orientation row the 10°; 1TII's
 * orientation row 15° (the bundled example's step: its 10° search would cost another ~15 min on 2 cores).
 */
const DETECT_STEP = 20;
const ORIENT_STEP = 10;
const ORIENT_STEP_1TII = 15;

const LAMELLA_1TII = { molecule: '1tii', shape: [80, 256, 256], particles: 60, geometrySeed: 21 };
const LAMELLA_6ZU5 = { molecule: '6zu5', shape: [120, 200, 200], particles: 40, geometrySeed: 11 };

const fmt = (snr) => (Number.isFinite(snr) ? String(snr) : 'inf');

function cases() {
  const out = [];
  LADDER['1tii'].forEach((snr, i) => out.push({
    id: `1tii-ladder-snr${fmt(snr)}`, group: 'ladder', step: DETECT_STEP,
    spec: { ...LAMELLA_1TII, snr, noiseSeed: 100 + i },
  }));
  LADDER['6zu5'].forEach((snr, i) => out.push({
    id: `6zu5-ladder-snr${fmt(snr)}`, group: 'ladder', step: DETECT_STEP,
    spec: { ...LAMELLA_6ZU5, snr, noiseSeed: 200 + i },
  }));
  // Orientations at the 10° step, with a refined row (tme peaks JOB --refine on the same match).
  out.push({
    id: '6zu5-orientation', group: 'orientation', step: ORIENT_STEP, refine: true,
    spec: { ...LAMELLA_6ZU5, snr: MODERATE['6zu5'], noiseSeed: 300 },
  });
  out.push({
    id: '1tii-orientation', group: 'orientation', step: ORIENT_STEP_1TII, refine: true,
    spec: { ...LAMELLA_1TII, snr: MODERATE['1tii'], noiseSeed: 301 },
  });
  // Crowded: as many particles as fit with centres down to 0.7 particle diameters apart.
  out.push({
    id: '1tii-crowded', group: 'crowded', step: DETECT_STEP,
    spec: { ...LAMELLA_1TII, particles: 400, minSeparation: 0.7, geometrySeed: 31, snr: MODERATE['1tii'], noiseSeed: 400 },
  });
  // Flat zero-filled border: 12 zero planes at each z face (the slab inside a thicker reconstruction) and 24 zero
  // columns at high x (outside the field of view); particles anywhere in the data, up to 3 voxels from its edge.
  const border = { ...LAMELLA_6ZU5, geometrySeed: 41, zeroBorder: { z: 12, x: 24 } };
  out.push({ id: '6zu5-zero-border', group: 'border', step: DETECT_STEP, spec: { ...border, snr: MODERATE['6zu5'], noiseSeed: 500 } });
  out.push({ id: '6zu5-zero-border-noise-free', group: 'border', step: DETECT_STEP, spec: { ...border, snr: Infinity, noiseSeed: 501 } });
  // Tiling: the same data as the moderate 1TII ladder row, searched in forced tiles; compared map to map.
  const moderate = out.find((c) => c.id === `1tii-ladder-snr${fmt(MODERATE['1tii'])}`);
  out.push({
    id: '1tii-tiled', group: 'tiling', step: DETECT_STEP, tile: '104,152,152', compareTo: moderate.id,
    spec: { ...moderate.spec },
  });
  return out;
}

/** Pure-noise lamellae searched with every score; false-alarm density near the faces vs the interior. */
const NOISE_SCORES = ['cc', 'lcc', 'corr', 'cam', 'flc', 'flc-sphere', 'mcc'];
const NOISE_STEP = 30;
function noiseCases() {
  const base = { molecule: '1tii', shape: [64, 128, 128], particles: 0, snr: 1, geometrySeed: 51, targetMask: true };
  const kinds = [
    { kind: 'white', spec: { ...base, noise: 'white', noiseSeed: 600 } },
    { kind: 'wedge', spec: { ...base, noise: 'wedge', noiseSeed: 601 } },
    { kind: 'wedge+zero-border', spec: { ...base, noise: 'wedge', noiseSeed: 602, zeroBorder: { z: 8, x: 16 } } },
  ];
  const out = [];
  for (const k of kinds) for (const score of NOISE_SCORES) out.push({ id: `noise-${k.kind}-${score}`, kind: k.kind, score, step: NOISE_STEP, spec: { ...k.spec } });
  return out;
}

module.exports = { cases, noiseCases, LADDER, MODERATE, DETECT_STEP, ORIENT_STEP, NOISE_STEP, NOISE_SCORES };
