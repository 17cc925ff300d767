import { TME_ERROR_CODES, TmeError, invalidOption, isTmeError } from '../src';

describe('TmeError', () => {
  it('carries a stable code and names its file first in the one-line form', () => {
    const e = new TmeError('ERR_TME_FORMAT', 'not an MRC file', { file: 'a.mrc' });
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('ERR_TME_FORMAT');
    expect(e.oneLine).toBe('a.mrc: not an MRC file');
    expect(new TmeError('ERR_TME_IO', 'x.mrc: cannot read', { file: 'x.mrc' }).oneLine).toBe('x.mrc: cannot read');
    expect(isTmeError(e, 'ERR_TME_FORMAT')).toBe(true);
    expect(isTmeError(e, 'ERR_TME_IO')).toBe(false);
    expect(isTmeError(new Error('plain'))).toBe(false);
  });

  it('invalidOption names the flag and quotes what was received', () => {
    const e = invalidOption('--angular-step', 'a number in (0, 180]', '-5');
    expect(e.code).toBe('ERR_TME_INVALID_OPTION');
    expect(e.message).toBe('Expected a number in (0, 180] for --angular-step but received "-5" of type string');
  });

  it('has each code once', () => {
    expect(new Set(TME_ERROR_CODES).size).toBe(TME_ERROR_CODES.length);
    expect(TME_ERROR_CODES.every((c) => /^ERR_TME_[A-Z_]+$/.test(c))).toBe(true);
  });
});
