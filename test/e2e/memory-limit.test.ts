/**
 * A SLURM job's --mem (or a container's limit) is a cgroup memory limit: the kernel kills a process past it without a
 * word, while /proc/meminfo shows the whole node free. tme plans with the room under that limit: run inside a cgroup
 * of this machine's own (v1 or v2, made here and removed), `tme devices` reports the CPU's memory as what is left under
 * the limit, and `tme estimate` sends a search that would not fit it out of core. Where no cgroup can be made (not root,
 * a read-only cgroupfs), the test says so and checks nothing.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TME, blobTemplate, noisyTarget, tempDir, writeVolume } from './helpers';

const LIMIT = 300 * 2 ** 20;

/** A child cgroup limited to `bytes`, or why none can be made here. */
function makeCgroup(bytes: number): { dir: string; name: string } | string {
  const self = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const v1 = self.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  const name = `tme-test-${process.pid}`;
  try {
    if (v1 !== undefined) {
      const dir = path.join('/sys/fs/cgroup/memory', v1.split(':')[2] as string, name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(bytes));
      return entered({ dir, name });
    }
    // v2: beside the root's children (a cgroup with processes cannot hand the memory controller to a child).
    if (!fs.readFileSync('/sys/fs/cgroup/cgroup.subtree_control', 'utf8').includes('memory')) return 'cgroup v2 without the memory controller';
    const dir = path.join('/sys/fs/cgroup', name);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'memory.max'), String(bytes));
    return entered({ dir, name });
  } catch (err) {
    return `no cgroup can be made here (${(err as Error).message})`;
  }
}

/** The cgroup, if a process can move into it here (delegation and namespaces can forbid it), else why not. */
function entered(c: { dir: string; name: string }): { dir: string; name: string } | string {
  const r = spawnSync('sh', ['-c', `echo $$ > '${c.dir}/cgroup.procs'`], { encoding: 'utf8' });
  if (r.status === 0) return c;
  fs.rmdirSync(c.dir);
  return `a process cannot enter ${c.dir} (${r.stderr.trim()})`;
}

/** `tme …` run inside the cgroup (the shell moves itself in, then becomes node). */
function tmeIn(dir: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const quoted = args.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const r = spawnSync('sh', ['-c', `echo $$ > '${dir}/cgroup.procs' && exec '${process.execPath}' '${TME}' ${quoted}`], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('inside a cgroup limited to 300 MiB, tme sees the room under the limit and plans a search out of core to fit it', () => {
  const cgroup = makeCgroup(LIMIT);
  if (typeof cgroup === 'string') {
    console.log(`memory-limit: skipped: ${cgroup}`);
    return;
  }
  const dir = tempDir('memory-limit');
  try {
    const devices = tmeIn(cgroup.dir, ['devices', '--json']);
    expect(devices.stderr).toBe('');
    const listing = JSON.parse(devices.stdout) as { devices: Array<{ index: string | number; memoryBytes: number }>; hostMemory: { cgroup: string; cgroupLimitBytes: number; memAvailableBytes: number } };
    const cpu = listing.devices.find((d) => d.index === 'cpu')!;
    expect(listing.hostMemory.cgroup.endsWith(`/${cgroup.name}`)).toBe(true);
    expect(listing.hostMemory.cgroupLimitBytes).toBe(LIMIT);
    expect(cpu.memoryBytes).toBeLessThanOrEqual(LIMIT);
    expect(cpu.memoryBytes).toBeGreaterThan(LIMIT / 4); // node and the addon take some of it, not most
    expect(listing.hostMemory.memAvailableBytes).toBeGreaterThan(LIMIT); // the machine itself has more

    // 160×256×256 voxels: in memory ≈ 360 MiB (tme itself and 20 B a voxel), more than the cgroup has; the machine has
    // gigabytes, so without the limit this is an in-memory search.
    const template = blobTemplate(12);
    writeVolume(path.join(dir, 'template.mrc'), template);
    writeVolume(path.join(dir, 'target.mrc'), noisyTarget([160, 256, 256], template, 3));
    const args = ['estimate', '--target', path.join(dir, 'target.mrc'), '--template', path.join(dir, 'template.mrc'), '--angular-step', '60',
      '--device', 'cpu', '--calibration', '0'];
    const limited = tmeIn(cgroup.dir, args);
    expect(limited.stderr).toBe('');
    expect(limited.stdout).toMatch(/^path: out of core \(in memory would need \d+ MiB but \d+ MiB is free\)/m);
    const free = Number(/but (\d+) MiB is free/.exec(limited.stdout)![1]);
    expect(free * 2 ** 20).toBeLessThanOrEqual(LIMIT);
    const r = spawnSync(process.execPath, [TME, ...args], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stdout).toMatch(/^path: in memory /m);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    // Empty once its processes have exited (spawnSync waited for them).
    fs.rmdirSync(cgroup.dir);
  }
}, 180_000);
