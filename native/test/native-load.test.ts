import { TmeError } from '@tme/errors';

// Each jest test file gets a fresh module registry, so this file's copy of the facade has not loaded the addon.
describe('loading the addon', () => {
  const saved = process.env['TME_NATIVE_PATH'];
  afterEach(() => {
    if (saved === undefined) delete process.env['TME_NATIVE_PATH'];
    else process.env['TME_NATIVE_PATH'] = saved;
  });
  it('a missing addon is one ERR_TME_NATIVE_LOAD naming the path and the fixes; importing never throws', async () => {
    process.env['TME_NATIVE_PATH'] = '/nonexistent/tme.node';
    const native = await import('../index');
    expect(native.isNativeAvailable()).toBe(false);
    let caught: unknown;
    try {
      native.listDevices();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TmeError);
    expect(caught).toMatchObject({ code: 'ERR_TME_NATIVE_LOAD' });
    expect((caught as Error).message).toContain('/nonexistent/tme.node');
    expect((caught as Error).message).toContain('pnpm run build');
    await expect(native.runMatch({} as never)).rejects.toMatchObject({ code: 'ERR_TME_NATIVE_LOAD' });
  });
});
