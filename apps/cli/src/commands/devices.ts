import type { Command } from 'commander';
import { listDevices } from '@tme/engine';

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

export function register(program: Command): void {
  program
    .command('devices')
    .description('List the compute devices tme can use and the one --device auto picks')
    .option('--json', 'print JSON: { backend, devices, auto }')
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
    });
}
