import { SingleBar } from 'cli-progress';

/** What the renderer shows; the engine's MatchProgress has these fields. */
export interface ProgressUpdate {
  done: number;
  total: number;
  tile: number;
  tiles: number;
  device: string;
}

/** The out-of-core target filter's passes (the engine's VolumeFilterProgress): steps over all three. */
export interface FilterProgressUpdate {
  pass: number;
  done: number;
  total: number;
}

export interface ProgressRenderer {
  update(progress: ProgressUpdate): void;
  /** Before the tiles: the target filter's passes over a tomogram larger than memory. */
  filter(progress: FilterProgressUpdate): void;
  stop(): void;
}

export interface ProgressChoice {
  /** --quiet: never render. */
  quiet?: boolean;
  /** --progress: render even when stderr is not a TTY or CI is set. */
  force?: boolean;
  stream?: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
}

/** Progress is drawn only for a person watching: stderr is a TTY and CI is unset, unless forced; --quiet wins. */
export function progressWanted(choice: ProgressChoice): boolean {
  if (choice.quiet) return false;
  if (choice.force) return true;
  const stream = choice.stream ?? process.stderr;
  const env = choice.env ?? process.env;
  return stream.isTTY === true && (env['CI'] === undefined || env['CI'] === '');
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

/**
 * A one-line bar on stderr: rotations done/total, rate (rotations per second, over this run: a resumed job does not
 * count the work it inherited), ETA, device and tile. Rate and ETA are computed here, from wall time.
 */
export function createProgressRenderer(choice: ProgressChoice = {}): ProgressRenderer {
  if (!progressWanted(choice)) return { update: () => undefined, filter: () => undefined, stop: () => undefined };
  const stream = choice.stream ?? process.stderr;
  const bar = new SingleBar({
    stream,
    format: '{bar} {percentage}% | {value}/{total} rotations | {rate}/s | ETA {etaText} | {device} | tile {tileText}',
    hideCursor: true,
    clearOnComplete: false,
    noTTYOutput: choice.force === true,
    notTTYSchedule: 2000,
    barsize: 24,
  });
  let started = false;
  let firstDone = 0;
  let firstTime = 0;
  // The filter's passes get a bar of their own, ended when the first tile's progress comes.
  let filterBar: SingleBar | undefined;
  let filterStarted = 0;
  return {
    filter(p) {
      const now = Date.now();
      if (!filterBar) {
        filterBar = new SingleBar({
          stream, format: '{bar} {percentage}% | filtering the target out of core: pass {pass}/3 | ETA {etaText}',
          hideCursor: true, clearOnComplete: false, noTTYOutput: choice.force === true, notTTYSchedule: 2000, barsize: 24,
        });
        filterStarted = now;
        filterBar.start(p.total, p.done, { pass: p.pass, etaText: '--' });
        return;
      }
      const seconds = (now - filterStarted) / 1000;
      filterBar.update(p.done, { pass: p.pass, etaText: p.done > 0 && seconds > 0 ? duration(((p.total - p.done) * seconds) / p.done) : '--' });
    },
    update(p) {
      const now = Date.now();
      if (filterBar) { filterBar.stop(); filterBar = undefined; }
      if (!started) {
        started = true;
        firstDone = p.done;
        firstTime = now;
        bar.start(p.total, p.done, { rate: '--', etaText: '--', device: p.device, tileText: `${p.tile + 1}/${p.tiles}` });
        return;
      }
      const seconds = (now - firstTime) / 1000;
      const rate = seconds > 0 ? (p.done - firstDone) / seconds : 0;
      bar.update(p.done, {
        rate: rate > 0 ? (rate >= 100 ? rate.toFixed(0) : rate.toFixed(1)) : '--',
        etaText: rate > 0 ? duration((p.total - p.done) / rate) : '--',
        device: p.device,
        tileText: `${p.tile + 1}/${p.tiles}`,
      });
    },
    stop() {
      filterBar?.stop();
      if (started) bar.stop();
    },
  };
}
