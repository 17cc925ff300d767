import type { DeviceInfo, DeviceSpec } from './types';

/** Preference of `pickDevice('auto')`: discrete GPU, then integrated or virtual GPU; never lavapipe. */
const GPU_RANK: Record<string, number> = { 'discrete-gpu': 0, 'integrated-gpu': 1, 'virtual-gpu': 2 };

/**
 * Chooses a device from a listing (pure: the facade passes listDevices()). 'auto' prefers a discrete GPU, then
 * an integrated or virtual one, else the FFTW CPU path — a Vulkan CPU device (lavapipe) is about ten times
 * slower than FFTW, so it is only used when asked for by index or as 'vulkan-cpu'. Returns undefined when the
 * selector matches nothing; the facade turns that into ERR_TME_NO_DEVICE.
 */
export function chooseDevice(devices: readonly DeviceInfo[], selector: DeviceSpec): DeviceInfo | undefined {
  const cpu = devices.find((d) => d.id === 'cpu');
  const gpus = devices
    .filter((d) => d.api === 'vulkan' && d.type in GPU_RANK)
    .sort((a, b) => (GPU_RANK[a.type] ?? 9) - (GPU_RANK[b.type] ?? 9) || b.memoryBytes - a.memoryBytes);
  switch (selector) {
    case 'cpu':
      return cpu;
    case 'gpu':
      return gpus[0];
    case 'auto':
      return gpus[0] ?? cpu;
    case 'vulkan-cpu':
      return devices.find((d) => d.api === 'vulkan' && d.type === 'cpu');
    default:
      return devices.find((d) => d.api === 'vulkan' && d.index === selector);
  }
}
