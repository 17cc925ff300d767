import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { TmeError } from '@tme/errors';
import { chooseDevice, isFastSize, listDevices, nextFastShape, nextFastSize, pickDevice, vulkanRuntime, type DeviceInfo } from '../index';

function fake(id: string, type: DeviceInfo['type'], memoryBytes = 1e9): DeviceInfo {
  const vulkan = id !== 'cpu';
  return {
    id, index: vulkan ? Number(id) : 'cpu', api: vulkan ? 'vulkan' : 'fftw', name: `${type} ${id}`, type, memoryBytes,
    maxStorageBufferRange: vulkan ? 2 ** 31 : null, apiVersion: '1.3.0', driverVersion: vulkan ? 1 : null,
    driver: null, threads: vulkan ? null : 2,
  };
}

describe('listDevices', () => {
  const devices = listDevices();
  it('ends with the FFTW CPU path, with the host RAM and thread count', () => {
    const cpu = devices[devices.length - 1]!;
    expect(cpu).toMatchObject({ id: 'cpu', index: 'cpu', api: 'fftw', type: 'cpu', maxStorageBufferRange: null });
    expect(cpu.memoryBytes).toBeGreaterThan(2 ** 28);
    expect(cpu.threads).toBeGreaterThanOrEqual(1);
  });
  it('lists lavapipe as a Vulkan CPU device with its 128 MiB binding limit', () => {
    const lvp = devices.find((d) => d.api === 'vulkan' && d.name.startsWith('llvmpipe'));
    if (lvp === undefined) return; // no lavapipe installed
    expect(lvp.type).toBe('cpu');
    expect(lvp.maxStorageBufferRange).toBe(134217728);
    expect(lvp.apiVersion).toMatch(/^1\.\d+\.\d+$/);
    // The driver's own name, from VK_KHR_driver_properties: what tells a support ticket which driver served it.
    expect(lvp.driver?.name).toBe('llvmpipe');
    expect(lvp.driver?.info).toMatch(/Mesa/);
  });
  it('names the Vulkan loader it opened (the system\'s here) and the driver libraries (ICDs) it loaded', () => {
    const runtime = vulkanRuntime();
    if (!devices.some((d) => d.name.startsWith('llvmpipe'))) return;
    expect(runtime.loader).toMatch(/\/libvulkan\.so\.1$/);
    expect(runtime.loaderBundled).toBe(false);
    expect(runtime.drivers.some((f) => /\/libvulkan_lvp\.so$/.test(f))).toBe(true);
    // The loader itself is not a driver.
    expect(runtime.drivers.some((f) => /libvulkan\.so/.test(f))).toBe(false);
    expect(runtime.error).toBeNull();
  });
});

describe('pickDevice', () => {
  it("'auto' on a machine without a GPU is the FFTW path, never lavapipe", () => {
    expect(pickDevice('auto').id).toBe('cpu');
    expect(pickDevice().id).toBe('cpu');
  });
  it("'gpu' without a GPU throws ERR_TME_NO_DEVICE naming what exists", () => {
    expect(() => pickDevice('gpu')).toThrow(TmeError);
    try {
      pickDevice('gpu');
    } catch (err) {
      expect((err as TmeError).code).toBe('ERR_TME_NO_DEVICE');
      expect((err as TmeError).message).toContain('cpu: CPU (FFTW3f');
    }
  });
  it("'vulkan-cpu' and an index choose lavapipe explicitly; an unknown index throws", () => {
    const lvp = listDevices().find((d) => d.api === 'vulkan' && d.type === 'cpu');
    if (lvp) {
      expect(pickDevice('vulkan-cpu').id).toBe(lvp.id);
      expect(pickDevice(lvp.index as number).id).toBe(lvp.id);
    }
    expect(() => pickDevice(99)).toThrow(expect.objectContaining({ code: 'ERR_TME_NO_DEVICE' }));
  });
  it('prefers a discrete GPU, then integrated, then virtual, then the CPU path (pure choice)', () => {
    const cpu = fake('cpu', 'cpu');
    const lvp = fake('0', 'cpu');
    const igpu = fake('1', 'integrated-gpu', 8e9);
    const dgpu = fake('2', 'discrete-gpu', 4e9);
    const vgpu = fake('3', 'virtual-gpu');
    expect(chooseDevice([lvp, igpu, dgpu, vgpu, cpu], 'auto')).toBe(dgpu);
    expect(chooseDevice([lvp, vgpu, igpu, cpu], 'auto')).toBe(igpu);
    expect(chooseDevice([lvp, vgpu, cpu], 'gpu')).toBe(vgpu);
    expect(chooseDevice([lvp, cpu], 'auto')).toBe(cpu);
    expect(chooseDevice([lvp, cpu], 'gpu')).toBeUndefined();
    expect(chooseDevice([lvp, igpu, cpu], 'cpu')).toBe(cpu);
    expect(chooseDevice([lvp, igpu, cpu], 1)).toBe(igpu);
    // Two discrete GPUs: the one with more memory.
    const big = fake('4', 'discrete-gpu', 80e9);
    expect(chooseDevice([dgpu, big, cpu], 'auto')).toBe(big);
  });
});

describe('nextFastShape', () => {
  it('rounds each axis up to 2·3·5·7-smooth sizes, x even', () => {
    expect(nextFastShape([33, 61, 127])).toEqual([35, 63, 128]);
    expect(nextFastShape([64, 64, 63])).toEqual([64, 64, 64]);
    expect(nextFastShape([11, 13, 15])).toEqual([12, 14, 16]);
    expect(nextFastShape([1, 1, 1])).toEqual([1, 1, 2]);
  });
  it('returns sizes that are fast and minimal', () => {
    for (let n = 1; n < 300; n++) {
      const m = nextFastSize(n);
      expect(isFastSize(m)).toBe(true);
      for (let k = n; k < m; k++) expect(isFastSize(k)).toBe(false);
    }
  });
});

describe('without a Vulkan loader', () => {
  it('loads, lists only the CPU path with the reason, and runs FFTs on the CPU', () => {
    // A fresh process: the loader is opened once per process.
    const script = `
      const b = require(${JSON.stringify(path.join(__dirname, '..', 'build', 'Release', 'tme.node'))});
      const l = b.listDevices();
      const s = b.fftForward('cpu', new Float32Array(8).fill(1), [2, 2, 2]);
      let code = null;
      try { b.fftForward(0, new Float32Array(8), [2, 2, 2]); } catch (e) { code = e.code; }
      console.log(JSON.stringify({ vulkan: l.vulkan.length, error: l.vulkanError, dc: s[0], code }));`;
    const out = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, TME_VULKAN_LIBRARY: '/nonexistent/libvulkan.so.1' }, encoding: 'utf8',
    });
    expect(out.status).toBe(0);
    const result = JSON.parse(out.stdout.trim().split('\n').pop()!) as { vulkan: number; error: string; dc: number; code: string };
    expect(result.vulkan).toBe(0);
    expect(result.error).toContain('no Vulkan loader');
    expect(result.dc).toBe(8);
    expect(result.code).toBe('ERR_TME_NO_DEVICE');
  });
});
