import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TmeError, isTmeError } from '@tme/formats';
import * as native from '@tme/native';
import { isDeviceList, type DeviceId, type DeviceInfo, type DeviceSelection, type MatchBackend } from './backend';
import { NativeBackend, defaultBackend } from './native-backend';

/** A Vulkan driver (ICD) the loader opened, and the manifest that names it (null when none of the loader's search
 *  folders has one: a driver found through a path tme does not search). */
export interface VulkanDriver {
  library: string;
  manifest: string | null;
}

/** The Vulkan loader and drivers behind the device list. */
export interface VulkanSetup {
  loader: string | null;
  /** True when the system had no loader and the portable bundle's own copy is in use. */
  loaderBundled: boolean;
  drivers: VulkanDriver[];
  error: string | null;
}

export interface DeviceListing {
  backend: string;
  devices: DeviceInfo[];
  /** What `device: 'auto'` picks; null when nothing is usable. */
  auto: DeviceId | null;
  /** The native backend's Vulkan loader and drivers; null for other backends. */
  vulkan: VulkanSetup | null;
  /** What the CPU device's memory is made of (MemAvailable, the cgroup's limit); null for other backends. */
  hostMemory: native.HostMemory | null;
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
  const own = backend instanceof NativeBackend;
  return { backend: backend.name, devices, auto, vulkan: own ? vulkanSetup() : null, hostMemory: own ? native.hostMemory() : null };
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

function vulkanSetup(): VulkanSetup {
  const runtime = native.vulkanRuntime();
  const manifests = driverManifests(process.env);
  return {
    loader: runtime.loader,
    loaderBundled: runtime.loaderBundled,
    drivers: runtime.drivers.map((library) => ({ library, manifest: manifestOf(library, manifests) })),
    error: runtime.error,
  };
}

/** The manifest files the Vulkan loader reads on Linux, in its order: VK_DRIVER_FILES (or the older
 *  VK_ICD_FILENAMES) alone when set, else VK_ADD_DRIVER_FILES then the XDG config and data folders' vulkan/icd.d
 *  with /etc and /usr/local/etc between them (the loader's documented search). */
export function driverManifests(env: NodeJS.ProcessEnv): string[] {
  const list = (value: string | undefined): string[] => (value ?? '').split(':').filter((p) => p !== '');
  const expand = (entry: string): string[] => {
    try {
      if (!fs.statSync(entry).isDirectory()) return [entry];
      return fs.readdirSync(entry).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(entry, f));
    } catch {
      return [];
    }
  };
  const only = list(env['VK_DRIVER_FILES']).length > 0 ? list(env['VK_DRIVER_FILES']) : list(env['VK_ICD_FILENAMES']);
  if (only.length > 0) return only.flatMap(expand);
  const home = env['HOME'] ?? os.homedir();
  const configHome = env['XDG_CONFIG_HOME'] || path.join(home, '.config');
  const configDirs = list(env['XDG_CONFIG_DIRS']).length > 0 ? list(env['XDG_CONFIG_DIRS']) : ['/etc/xdg'];
  const dataHome = env['XDG_DATA_HOME'] || path.join(home, '.local', 'share');
  const dataDirs = list(env['XDG_DATA_DIRS']).length > 0 ? list(env['XDG_DATA_DIRS']) : ['/usr/local/share', '/usr/share'];
  const folders = [configHome, ...configDirs, '/usr/local/etc', '/etc', dataHome, ...dataDirs].map((d) => path.join(d, 'vulkan', 'icd.d'));
  return [...list(env['VK_ADD_DRIVER_FILES']).flatMap(expand), ...folders.flatMap(expand)];
}

function realpathOr(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return file;
  }
}

/** The first manifest whose library_path is `library`: the same file for a path, the same name for a bare name
 *  (which the loader hands to dlopen's search). */
function manifestOf(library: string, manifests: string[]): string | null {
  const real = realpathOr(library);
  for (const manifest of manifests) {
    let named: unknown;
    try {
      named = (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { ICD?: { library_path?: unknown } }).ICD?.library_path;
    } catch {
      continue;
    }
    if (typeof named !== 'string' || named === '') continue;
    if (!named.includes('/')) {
      if (path.basename(library) === named || path.basename(real) === named) return manifest;
      continue;
    }
    const file = path.isAbsolute(named) ? named : path.resolve(path.dirname(manifest), named);
    if (realpathOr(file) === real) return manifest;
  }
  return null;
}
