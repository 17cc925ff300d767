// The synthetic agreement case shared by the GPU check (check.js) and the tiled-filters e2e test: one definition.
const { createVolume } = require('@tme/formats');
const { rotateBox } = require('@tme/engine');
const { quaternionToMatrix, randomQuaternion, seededRandom } = require('@tme/rotations');
const { whiteningProfile } = require('@tme/template');

const VOXEL = 10;
const SHAPE = [30, 44, 40];
const BOX = [10, 10, 10];

function normal(random) {
  let u = 0;
  while (u === 0) u = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/**
 * An asymmetric blob template, three rotated copies of it in noise (one across a tile boundary of the e2e test's
 * splits), `rotations` random rotations, and an ellipsoid mask (flc's rotated mask must differ from a sphere's).
 */
function makeCase({ seed = 11, rotations: count = 8 } = {}) {
  const random = seededRandom(seed);
  const n = BOX[0] * BOX[1] * BOX[2];
  const t = new Float32Array(n);
  const mask = new Float32Array(n);
  const blobs = [[5, 5, 5, 2.2, 1], [3, 6, 4, 1.5, 0.8], [6, 3, 7, 1.2, 0.6]];
  for (let z = 0, i = 0; z < BOX[0]; z++) for (let y = 0; y < BOX[1]; y++) for (let x = 0; x < BOX[2]; x++, i++) {
    for (const [bz, by, bx, s, a] of blobs) t[i] += a * Math.exp(-((z - bz) ** 2 + (y - by) ** 2 + (x - bx) ** 2) / (2 * s * s));
    mask[i] = ((z - 5) / 4.5) ** 2 + ((y - 5) / 3.5) ** 2 + ((x - 5) / 4) ** 2 <= 1 ? 1 : 0;
  }
  const target = new Float32Array(SHAPE[0] * SHAPE[1] * SHAPE[2]);
  for (let i = 0; i < target.length; i++) target[i] = 0.3 * normal(random);
  for (const [cz, cy, cx] of [[15, 22, 20], [6, 9, 31], [24, 35, 8]]) {
    const r = rotateBox(t, BOX, quaternionToMatrix(randomQuaternion(random)), 'linear');
    for (let z = 0; z < BOX[0]; z++) for (let y = 0; y < BOX[1]; y++) for (let x = 0; x < BOX[2]; x++) {
      const [pz, py, px] = [cz + z - 5, cy + y - 5, cx + x - 5];
      if (pz < 0 || py < 0 || px < 0 || pz >= SHAPE[0] || py >= SHAPE[1] || px >= SHAPE[2]) continue;
      target[(pz * SHAPE[1] + py) * SHAPE[2] + px] += r[(z * BOX[1] + y) * BOX[2] + x];
    }
  }
  const rotations = new Float64Array(9 * count);
  for (let k = 0; k < count; k++) rotations.set(quaternionToMatrix(randomQuaternion(random)), 9 * k);
  const v = [VOXEL, VOXEL, VOXEL];
  return { target: createVolume(target, SHAPE, v), template: createVolume(t, BOX, v), templateMask: createVolume(mask, BOX, v), rotations };
}

/** The filters both check: none, wedges, per-tilt dose and CTF, band-pass, whitening, all together. */
function filterSet(made) {
  const tilts = [];
  for (let a = -60, k = 0; a <= 60; a += 3, k++) {
    tilts.push({ angle: a, dose: 3 * Math.abs(a / 3), ctf: { defocus: 30000 + 40 * k, voltage: 300, sphericalAberration: 2.7, amplitudeContrast: 0.07 } });
  }
  return [
    ['no filter', {}],
    ['continuous ±60° wedge', { wedge: { tiltRange: [-60, 60] } }],
    ['per-tilt wedge with dose', { tiltWeighting: { tilts: tilts.map(({ angle, dose }) => ({ angle, dose })), slabWidth: 'spacing', cosineWeighting: true } }],
    ['per-tilt CTF', { tiltWeighting: { tilts, slabWidth: 'spacing', flipPhase: false } }],
    ['band-pass', { bandPass: { lowpassAngstrom: 35, highpassAngstrom: 200 } }],
    ['whitening', { whitening: whiteningProfile(made.target) }],
    ['all together', { wedge: { tiltRange: [-50, 60] }, ctf: { ctf: { defocus: 25000 }, flipPhase: true }, bandPass: { lowpassAngstrom: 30 }, whitening: whiteningProfile(made.target) }],
  ];
}

module.exports = { SHAPE, BOX, VOXEL, makeCase, filterSet };
