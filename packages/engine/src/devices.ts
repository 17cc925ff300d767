import { TmeError, isTmeError } from '@tme/formats';
import { isDeviceList, type DeviceId, type DeviceInfo, type DeviceSelection, type MatchBackend } from './backend';
import { defaultBackend } from './native-backend';

export interface DeviceListing {
  backend: string;
  devices: DeviceInfo[];
  /** What `device: 'auto'` picks; null when nothing is usable. */
  auto: DeviceId | null;
}

/** Every device the backend offers, and the one 'auto' picks. */
export function listDevices(backend: MatchBackend = defaultBackend()): DeviceListing {
  const devices = backend.listDevices();
  let auto: DeviceId | null = null;
  try {
    auto = backend.pickDevice('auto');
  } catch (err) {
    if (!isTmeError(err, 'ERR_TME_NO_DEVICE')) throw err;
  }
  return { backend: backend.name, devices, auto };
}

/**
 * The devices a selection names, in its order (a device listed twice runs two workers); 'gpu:all' is every GPU the
 * backend lists. Throws ERR_TME_NO_DEVICE when one is missing or, for 'gpu:all', when there is no GPU.
 */
export function resolveDevices(selection: DeviceSelection, backend: MatchBackend = defaultBackend()): DeviceInfo[] {
  const listed = backend.listDevices();
  if (selection === 'gpu:all') {
    const gpus = listed.filter((d) => d.kind === 'gpu');
    if (gpus.length === 0) {
      throw new TmeError('ERR_TME_NO_DEVICE', `no GPU is listed (the ${backend.name} backend lists ${listed.map((d) => `${String(d.index)}: ${d.name} (${d.kind})`).join(', ')})`);
    }
    return gpus;
  }
  return (isDeviceList(selection) ? selection : [selection]).map((spec) => {
    const index = backend.pickDevice(spec);
    const device = listed.find((d) => d.index === index);
    if (!device) throw new TmeError('ERR_TME_NO_DEVICE', `device ${index} is not in the backend's device list`);
    return device;
  });
}

/** The devices of a run in a few words: their names, a device listed n times as "name ×n". */
export function devicesLabel(devices: readonly DeviceInfo[]): string {
  const counts = new Map<string, number>();
  for (const d of devices) counts.set(d.name, (counts.get(d.name) ?? 0) + 1);
  return [...counts].map(([name, n]) => (n > 1 ? `${name} ×${n}` : name)).join(' + ');
}
