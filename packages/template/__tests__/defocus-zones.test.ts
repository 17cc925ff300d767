import { defocusZones, electronWavelength, tiltWeightingFilter, zoneRanges, type FilterOptions, type Tilt } from '../src';
import type { Zyx } from '@tme/formats';

const tilts: Tilt[] = [];
for (let a = -60; a <= 60; a += 3) tilts.push({ angle: a, ctf: { defocus: 30000, voltage: 300, sphericalAberration: 2.7, amplitudeContrast: 0.07 } });
const options: FilterOptions = { tiltWeighting: { tilts, slabWidth: 'spacing', flipPhase: false } };

describe('defocusZones', () => {
  it('splits where the defocus span exceeds the π/4 phase bound at the filter\'s highest frequency', () => {
    // 2 Å voxels: k = 0.25 Å⁻¹, bound 1/(2λk²) = 406 Å. x: 512 Å · sin 60° = 443 Å → ⌈443 / 203⌉ = 3 zones; z: 200 Å → 1.
    const z = defocusZones({ options, shape: [100, 64, 256], voxelSize: [2, 2, 2], handedness: 1 });
    expect(z.boundAngstrom).toBeCloseTo(1 / (2 * electronWavelength(300) * 0.0625), 6);
    expect(Math.round(z.boundAngstrom)).toBe(406);
    expect(z.splits).toEqual([1, 1, 3]);
    expect(z.options).toHaveLength(3);
    // A thick volume splits along z too (z span 800 Å · cos 0 → ⌈800 / 203⌉ = 4).
    expect(defocusZones({ options, shape: [400, 64, 256], voxelSize: [2, 2, 2], handedness: 1 }).splits).toEqual([4, 1, 3]);
    // A low-pass moves the bound (10 Å: 2 540 Å) and the zones go; so does handedness 0; a tilt axis x splits y.
    expect(defocusZones({ options: { ...options, bandPass: { lowpassAngstrom: 10 } }, shape: [100, 64, 256], voxelSize: [2, 2, 2], handedness: 1 }).splits).toEqual([1, 1, 1]);
    expect(defocusZones({ options, shape: [100, 64, 256], voxelSize: [2, 2, 2], handedness: 0 }).options).toHaveLength(1);
    const ax = { tiltWeighting: { ...options.tiltWeighting!, tiltAxis: 'x' as const } };
    expect(defocusZones({ options: ax, shape: [100, 256, 64], voxelSize: [2, 2, 2], handedness: 1 }).splits).toEqual([1, 3, 1]);
  });

  it('gives each zone the per-tilt CTFs at its centre: defocus Δf + h·(x·sin θ − z·cos θ)', () => {
    const shape: Zyx = [100, 64, 256];
    const z = defocusZones({ options, shape, voxelSize: [2, 2, 2], handedness: -1 });
    const [x0, xn] = zoneRanges(256, 3)[2]!;
    const x = (x0 + (xn - 1) / 2 - 255 / 2) * 2;
    expect(z.options[2]!.tiltWeighting!.positionAngstrom).toEqual({ x, z: 0 });
    // The zone's filter is the per-tilt filter with each tilt's defocus moved by h·x·sin θ.
    const grid: Zyx = [16, 16, 16];
    const zone = tiltWeightingFilter(grid, [2, 2, 2], z.options[2]!.tiltWeighting!);
    const moved = tiltWeightingFilter(grid, [2, 2, 2], { ...options.tiltWeighting!, tilts: tilts.map((t) => ({ ...t, ctf: { ...t.ctf!, defocus: 30000 - x * Math.sin((t.angle * Math.PI) / 180) } })) });
    let diff = 0;
    for (let i = 0; i < zone.length; i++) diff = Math.max(diff, Math.abs(zone[i]! - moved[i]!));
    expect(diff).toBeLessThan(1e-5);
    // One CTF for the series: the zones follow the height only (θ = 0), defocus Δf − h·z.
    const one = defocusZones({ options: { ctf: { ctf: { defocus: 30000 } } }, shape: [400, 64, 256], voxelSize: [2, 2, 2], handedness: 1 });
    expect(one.splits).toEqual([4, 1, 1]);
    const [z0, zn] = zoneRanges(400, 4)[0]!;
    expect(one.options[0]!.ctf!.ctf.defocus).toBeCloseTo(30000 - (z0 + (zn - 1) / 2 - 399 / 2) * 2, 6);
  });
});
