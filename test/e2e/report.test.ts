/**
 * The HTML report in a real browser: `tme example` writes DIR/run/report.html, and Debian's Chromium (driven by
 * playwright-core, no browser download) opens it from the file alone. No console error and no request may occur;
 * the pick markers in the DOM must be the picks of picks.tsv; moving the z slider must change the slice; a table row
 * must take the views to its pick; the screenshot must show structure (not a blank page). And `tme report` itself:
 * its one line, its PNG, its errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { runTme, tempDir } from './helpers';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) {
  // eslint-disable-next-line no-console
  console.warn(`skipped: the report's browser test needs Debian's chromium at ${CHROMIUM} (apt-get install chromium); CI installs it`);
}

let dir: string;
let example: string;
let exampleSaid: string;
let context: BrowserContext;
let page: Page;
const consoleErrors: string[] = [];
const requests: string[] = [];

(haveChromium ? describe : describe.skip)('the report of tme example, in Chromium', () => {
  beforeAll(async () => {
    dir = tempDir('report');
    example = path.join(dir, 'example');
    const r = await runTme(['example', example], { timeoutMs: 590_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    exampleSaid = r.stdout;
    expect(r.stdout).toMatch(new RegExp(`^tme example: report ${path.join(example, 'run', 'report.html')} \\([\\d.]+ (KiB|MiB)\\)$`, 'm'));
    // The CI network is closed: without the background-networking flags Chromium's own connections are refused
    // (and logged); the page itself must not need any.
    context = await chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), {
      executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('request', (q) => requests.push(q.url()));
    const file = path.join(example, 'run', 'report.html');
    await page.goto(`file://${file}`);
    await page.waitForSelector('#slices[data-ready=true]', { timeout: 30_000 });
  }, 660_000);

  afterAll(async () => {
    await context?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads with no console error and no request but its own file', () => {
    expect(consoleErrors).toEqual([]);
    expect(requests.filter((u) => !u.startsWith('data:'))).toEqual([`file://${path.join(example, 'run', 'report.html')}`]);
  }, 30_000);

  it('draws one marker per pick of picks.tsv, at its position, in every view', async () => {
    const rows = fs.readFileSync(path.join(example, 'run', 'picks.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t').slice(0, 3).map(Number));
    expect(rows.length).toBeGreaterThanOrEqual(10);
    for (const view of ['tomogram-xy', 'tomogram-xz', 'tomogram-yz', 'scores-xy', 'scores-xz', 'scores-yz']) {
      const markers = await page.$$eval(`#${view}-overlay circle.pick`, (cs) => cs.map((c) => ['x', 'y', 'z'].map((a) => Number(c.getAttribute(`data-${a}`)))));
      expect(markers).toEqual(rows);
    }
    // The view opens on the best pick: its marker is shown (not away) in the xy views, at full radius.
    const best = await page.$eval('#scores-xy-overlay circle.pick[data-rank="0"]', (c) => ({ away: c.classList.contains('away'), r: Number(c.getAttribute('r')) }));
    expect(best.away).toBe(false);
    expect(await page.inputValue('#z-slider')).toBe(String(Math.round(rows[0]![2]!)));
  }, 30_000);

  it('shows another slice when the z slider moves, and the markers of that slice', async () => {
    const rows = fs.readFileSync(path.join(example, 'run', 'picks.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t').map(Number));
    const radius = await page.$eval('#tme-report-data', (s) => (JSON.parse(s.textContent as string) as { markerRadius: number }).markerRadius);
    const pixels = (): Promise<string> => page.$eval('#tomogram-xy', (c) => (c as unknown as { toDataURL(): string }).toDataURL());
    const shown = (): Promise<number[]> => page.$$eval('#tomogram-xy-overlay circle.pick:not(.away)', (cs) => cs.map((c) => Number(c.getAttribute('data-rank'))));
    const cut = (z: number): number[] => rows.map((r, k) => [k, r[2] as number]).filter(([, pz]) => Math.abs((pz as number) - z) < radius).map(([k]) => k as number);
    const start = Number(await page.inputValue('#z-slider'));
    expect(await shown()).toEqual(cut(start));
    const before = await pixels();
    const label = await page.textContent('#z-value');
    await page.fill('#z-slider', '3');
    expect(await page.inputValue('#z-slider')).toBe('3');
    expect(await page.textContent('#z-value')).toMatch(/^3 of 64 /);
    expect(await page.textContent('#z-value')).not.toBe(label);
    expect(await pixels()).not.toBe(before);
    // The markers shown are those whose sphere the new slice cuts.
    expect(await shown()).toEqual(cut(3));
    expect(cut(3)).not.toEqual(cut(start));
  }, 30_000);

  it('takes the views to a pick when its table row is clicked, and sorts the table by a column', async () => {
    const rows = fs.readFileSync(path.join(example, 'run', 'picks.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t').map(Number));
    const last = rows.length - 1;
    await page.click(`#pick-${last}`);
    expect(await page.inputValue('#z-slider')).toBe(String(Math.round(rows[last]![2]!)));
    expect(await page.$eval(`#tomogram-xy-overlay circle.pick[data-rank="${last}"]`, (c) => c.classList.contains('selected') && !c.classList.contains('away'))).toBe(true);
    const order = (): Promise<number[]> => page.$$eval('#picks-table tbody tr', (trs) => trs.map((tr) => Number(tr.getAttribute('data-rank'))));
    const byX = rows.map((r, k) => [k, r[0] as number]).sort((a, b) => (b[1] as number) - (a[1] as number)).map(([k]) => k as number);
    // A first click sorts a value column high to low (the best score first), a second low to high.
    await page.click('#picks-table th[data-key="x"]');
    expect(await order()).toEqual(byX);
    await page.click('#picks-table th[data-key="x"]');
    expect(await order()).toEqual([...byX].reverse());
  }, 30_000);

  it('shows the truth section with the example\'s own recall, and the histogram and orientation plots', async () => {
    const said = /found (\d+) of (\d+) particles \(recall ([\d.]+)\), precision ([\d.]+)/.exec(exampleSaid) as RegExpExecArray;
    const truth = await page.textContent('#truth');
    expect(truth).toContain(`Found ${said[1]} of ${said[2]} particles (recall ${said[3]})`);
    expect(truth).toContain(`(precision ${said[4]})`);
    expect(await page.$$eval('#histogram-plot rect', (r) => r.length)).toBeGreaterThan(20);
    expect(await page.$$eval('#angles-plot circle', (c) => c.length)).toBeGreaterThanOrEqual(12);
    expect(await page.textContent('#histogram')).toMatch(/threshold 0\.\d+ · 1 expected false positive/);
  }, 30_000);

  it('renders a page with structure: images in the slices, text and plots elsewhere (a screenshot)', async () => {
    await page.evaluate('window.scrollTo(0, 0)');
    const shot = PNG.sync.read(await page.screenshot({ fullPage: true, path: path.join(dir, 'report.png') }));
    const slices = PNG.sync.read(await page.locator('#tomogram-panel .ortho').screenshot());
    /** Fraction of pixels that are not the white background. */
    const inked = (png: PNG): number => {
      let n = 0;
      for (let i = 0; i < png.data.length; i += 4) if (png.data[i]! < 235 || png.data[i + 1]! < 235 || png.data[i + 2]! < 235) n++;
      return n / (png.width * png.height);
    };
    // eslint-disable-next-line no-console
    console.log(`report screenshot ${shot.width}×${shot.height}: ${(100 * inked(shot)).toFixed(1)} % inked; tomogram views ${(100 * inked(slices)).toFixed(1)} %`);
    expect(shot.height).toBeGreaterThan(2000);
    expect(inked(shot)).toBeGreaterThan(0.1);
    expect(inked(shot)).toBeLessThan(0.7);
    // The xy, yz and xz views fill three of the four cells of their grid.
    expect(inked(slices)).toBeGreaterThan(0.6);
  }, 30_000);

  it('tme report writes the page and the PNG of the slab views, and says so in one line', async () => {
    const out = path.join(dir, 'again.html');
    const r = await runTme(['report', path.join(example, 'run'), '-o', out, '--png', '--truth', path.join(example, 'truth.tsv')], { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^tme report: ${out} \\([\\d.]+ MiB\\); ${path.join(dir, 'again.png')} \\(slab z \\d+–\\d+, \\d+ picks?\\)\\n$`));
    const png = PNG.sync.read(fs.readFileSync(path.join(dir, 'again.png')));
    expect([png.width, png.height]).toEqual([2 * 128 * 3 + 8, 128 * 3]);
    expect(fs.statSync(out).size).toBeLessThan(5e6);
  }, 70_000);
});

describe('tme report errors', () => {
  let job: string;
  beforeAll(() => { job = tempDir('report-errors'); });
  afterAll(() => fs.rmSync(job, { recursive: true, force: true }));

  it.each([
    [['report', '/nonexistent/job'], /^tme: \/nonexistent\/job: no such job folder\n$/],
    [['report', '/nonexistent/job', '--truth-distance', '3'], /^tme: Expected it only with --truth <tsv> for --truth-distance but received "3" of type string\n$/],
    [['report', '/nonexistent/job', '--truth', 'x.tsv', '--truth-distance', '-1'], /^tme: Expected a number of voxels > 0 for --truth-distance but received "-1" of type string\n$/],
  ])('tme %j fails in one line', async (args, message) => {
    const r = await runTme(args as string[], { timeoutMs: 30_000 });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
  }, 40_000);

  it('names a folder that holds no job', async () => {
    const r = await runTme(['report', job], { timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`tme: ${job}: holds no tme job (no job.json): name a folder that tme match or tme run wrote\n`);
  }, 40_000);
});
