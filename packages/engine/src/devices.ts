import { isTmeError } from '@tme/formats';
import type { DeviceId, DeviceInfo, MatchBackend } from './backend';
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
