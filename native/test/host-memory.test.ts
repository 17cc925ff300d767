// The host memory the CPU path plans with: MemAvailable capped by the room under the process's cgroup memory limits
// (a SLURM job's --mem, a container's limit), read from fake /proc and /sys/fs/cgroup trees of both cgroup versions,
// and from this machine's own.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hostMemory, listDevices } from '../index';

const GiB = 2 ** 30;
let root: string;
beforeEach(() => { root = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-host-memory-')); });
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** A fake tree: /proc/meminfo with `available` bytes, /proc/self/cgroup, and files under the cgroup root. */
function tree(available: number, selfCgroup: string, files: Record<string, string>): { proc: string; cgroup: string } {
  const proc = path.join(root, 'proc');
  const cgroup = path.join(root, 'cgroup');
  fs.mkdirSync(path.join(proc, 'self'), { recursive: true });
  fs.writeFileSync(path.join(proc, 'meminfo'), `MemTotal:       99999999 kB\nMemFree:        1 kB\nMemAvailable:   ${available / 1024} kB\n`);
  fs.writeFileSync(path.join(proc, 'self', 'cgroup'), selfCgroup);
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(cgroup, file)), { recursive: true });
    fs.writeFileSync(path.join(cgroup, file), text);
  }
  return { proc, cgroup };
}

it('cgroup v2: the tightest level up the path, its usage less the inactive file cache', () => {
  const roots = tree(100 * GiB, '0::/slurm/uid_1000/job_42/step_0\n', {
    // The job's --mem (8 GiB) two levels up; the step itself unlimited; the uid level looser.
    'slurm/uid_1000/job_42/step_0/memory.max': 'max\n',
    'slurm/uid_1000/job_42/step_0/memory.current': `${GiB}\n`,
    'slurm/uid_1000/job_42/memory.max': `${8 * GiB}\n`,
    'slurm/uid_1000/job_42/memory.current': `${3 * GiB}\n`,
    'slurm/uid_1000/job_42/memory.stat': `anon ${2 * GiB}\nfile ${GiB}\ninactive_file ${0.5 * GiB}\nactive_file ${0.5 * GiB}\n`,
    'slurm/uid_1000/memory.max': `${64 * GiB}\n`,
    'slurm/uid_1000/memory.current': `${3 * GiB}\n`,
  });
  const m = hostMemory(roots);
  expect(m.memAvailableBytes).toBe(100 * GiB);
  expect(m.cgroup).toBe('/slurm/uid_1000/job_42');
  expect(m.cgroupLimitBytes).toBe(8 * GiB);
  expect(m.cgroupRoomBytes).toBe(5.5 * GiB); // 8 − (3 − 0.5)
  expect(m.availableBytes).toBe(5.5 * GiB);
});

it('cgroup v1: the memory controller\'s line, "no limit" written as 2^63, total_inactive_file', () => {
  const roots = tree(20 * GiB, '9:cpu,cpuacct:/x\n4:memory:/docker/abc\n0::/\n', {
    'memory/docker/abc/memory.limit_in_bytes': '9223372036854771712\n',
    'memory/docker/abc/memory.usage_in_bytes': `${GiB}\n`,
    'memory/docker/memory.limit_in_bytes': `${4 * GiB}\n`,
    'memory/docker/memory.usage_in_bytes': `${2 * GiB}\n`,
    'memory/docker/memory.stat': `cache ${GiB}\ninactive_file 0\ntotal_inactive_file ${GiB}\n`,
    'memory/memory.limit_in_bytes': '9223372036854771712\n',
  });
  const m = hostMemory(roots);
  expect(m.cgroup).toBe('/docker');
  expect(m.cgroupRoomBytes).toBe(3 * GiB); // 4 − (2 − 1)
  expect(m.availableBytes).toBe(3 * GiB);
});

it('a limit looser than the machine\'s free memory, no limit, and no cgroup files leave MemAvailable', () => {
  const loose = hostMemory(tree(6 * GiB, '0::/user.slice\n', { 'user.slice/memory.max': `${64 * GiB}\n`, 'user.slice/memory.current': `${GiB}\n` }));
  expect(loose.cgroupRoomBytes).toBe(63 * GiB);
  expect(loose.availableBytes).toBe(6 * GiB);
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root);
  const none = hostMemory(tree(6 * GiB, '0::/\n', { 'cgroup.controllers': 'cpu memory\n' }));
  expect([none.cgroup, none.cgroupRoomBytes, none.availableBytes]).toEqual([null, null, 6 * GiB]);
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root);
  // Usage above the limit (reclaim pending) leaves no room rather than a negative one.
  const full = hostMemory(tree(6 * GiB, '0::/a\n', { 'a/memory.max': `${GiB}\n`, 'a/memory.current': `${2 * GiB}\n` }));
  expect(full.availableBytes).toBe(0);
});

it('this machine: the CPU device\'s memory is hostMemory\'s available bytes', () => {
  const before = hostMemory();
  const cpu = listDevices().find((d) => d.index === 'cpu')!;
  const after = hostMemory();
  // Read a moment apart: within what other processes changed meanwhile.
  expect(cpu.memoryBytes).toBeGreaterThanOrEqual(Math.min(before.availableBytes, after.availableBytes) * 0.9);
  expect(cpu.memoryBytes).toBeLessThanOrEqual(Math.max(before.availableBytes, after.availableBytes) * 1.1);
  if (before.cgroupRoomBytes !== null) expect(before.availableBytes).toBeLessThanOrEqual(before.cgroupRoomBytes);
});
