import { listDevices } from '../../index';

/** The lavapipe device index, or undefined when no Vulkan CPU device is installed (Vulkan tests then skip). */
export function lavapipeIndex(): number | undefined {
  const d = listDevices().find((x) => x.api === 'vulkan' && x.type === 'cpu');
  return d === undefined ? undefined : (d.index as number);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
}
