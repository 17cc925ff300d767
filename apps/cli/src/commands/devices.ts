import type { Command } from 'commander';
import { listDevices } from '@tme/engine';
import { gib } from '../units';


export function register(program: Command): void {
  program
    .command('devices')
    .description('List the compute devices tme can use and the one --device auto picks')
    .option('--json', 'print JSON: { backend, devices, auto, vulkan }')
    .action((flags: { json?: boolean }) => {
      const listing = listDevices();
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(listing, null, 2)}\n`);
        return;
      }
      const rows = listing.devices.map((d) => [
        d.index === listing.auto ? '*' : ' ', String(d.index), d.kind, gib(d.memoryBytes), d.name, d.detail ?? '',
      ]);
      const header = [' ', 'DEVICE', 'KIND', 'MEMORY', 'NAME', 'DETAIL'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
      const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
      process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
      process.stdout.write(listing.auto === null ? 'auto: no usable device\n' : `auto: ${String(listing.auto)} (marked *)\n`);
      const host = listing.hostMemory;
      if (host?.cgroup != null && host.cgroupLimitBytes !== null && host.cgroupRoomBytes !== null) {
        // A SLURM job's --mem or a container's limit: the CPU's memory above is what is left under it.
        process.stdout.write(`Host memory: ${gib(host.availableBytes)} free under the memory limit of cgroup ${host.cgroup} `
          + `(${gib(host.cgroupLimitBytes)}, ${gib(host.cgroupLimitBytes - host.cgroupRoomBytes)} in use; the machine has ${gib(host.memAvailableBytes)} free)\n`);
      }
      const vulkan = listing.vulkan;
      if (vulkan) {
        // What a cluster's support asks first: which loader and which driver (ICD) the devices came from.
        const lines = [vulkan.loader === null
          ? `Vulkan loader: none (${vulkan.error ?? 'not loaded'})`
          : `Vulkan loader: ${vulkan.loader} (${vulkan.loaderBundled ? "tme's bundled copy: the system has none" : 'the system\'s'})`];
        for (const d of vulkan.drivers) {
          lines.push(`Vulkan driver: ${d.library} (${d.manifest === null ? 'no manifest found in the loader\'s search path' : `manifest ${d.manifest}`})`);
        }
        if (vulkan.loader !== null && vulkan.drivers.length === 0) {
          lines.push(`Vulkan driver: none loaded (${vulkan.error ?? 'no ICD'}); set VK_DRIVER_FILES to the driver's manifest, e.g. /usr/share/vulkan/icd.d/nvidia_icd.json`);
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      }
    });
}
