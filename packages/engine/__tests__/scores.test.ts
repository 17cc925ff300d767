import { planScore, resolveScore, SCORE_NAMES } from '../src/scores';

describe('score names', () => {
  it.each([
    ['CC', 'cc'], ['lcc', 'lcc'], ['CORR', 'corr'], ['CAM', 'cam'], ['FLC', 'flc'], ['FLCSphericalMask', 'flc-sphere'],
    ['flcsphericalmask', 'flc-sphere'], ['flc-sphere', 'flc-sphere'], ['MCC', 'mcc'],
  ])('%s → %s', (alias, name) => expect(resolveScore(alias)).toBe(name));

  it('rejects other names with the house message', () => {
    expect(() => resolveScore('batchFLC')).toThrow(/^Expected one of cc, lcc, corr, cam, flc, flc-sphere, mcc .* but received "batchFLC" of type string$/);
  });

  it('maps every score onto a backend score and counts its FFTs', () => {
    expect(SCORE_NAMES.map((s) => [s, planScore(s).backendScore, planScore(s).fftsPerRotation])).toEqual([
      ['cc', 'cc', 2], ['lcc', 'cc', 2], ['corr', 'flc-sphere', 2], ['cam', 'flc-sphere', 2], ['flc', 'flc', 5],
      ['flc-sphere', 'flc-sphere', 2], ['mcc', 'mcc', 9],
    ]);
    expect(planScore('lcc').laplace).toBe(true);
    expect(planScore('cam').standardise).toBe(true);
    expect(planScore('mcc').needsTargetMask).toBe(true);
  });
});
