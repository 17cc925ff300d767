/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import type * as D3 from 'd3';
import type * as PlotLibrary from '@observablehq/plot';
import type { ReportData, ReportPick } from './report-data';
import type { VolumePreview } from './volume-preview';

// The page's globals, defined by the inlined libraries.
declare const d3: typeof D3;
declare const Plot: typeof PlotLibrary;

/**
 * The page's own script. The page carries it as text (`reportPage.toString()`), so it must stand alone: it uses
 * nothing of this module but types, and only the browser's globals, d3 and Plot. It reads the JSON the page holds
 * and builds every section; each section is drawn on its own, so one that fails shows its error and the rest stay.
 */
export function reportPage(): void {
  const data = JSON.parse((document.getElementById('tme-report-data') as HTMLElement).textContent as string) as ReportData;
  const root = document.getElementById('report') as HTMLElement;
  const [NZ, NY, NX] = data.shape;
  const R = data.markerRadius;
  const fmt = (v: number | null | undefined, digits = 3): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : String(Number(v.toPrecision(digits))));
  const fixed = (v: number | null | undefined, digits: number): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));

  function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    for (const c of children) e.append(c);
    return e;
  }
  const SVG = 'http://www.w3.org/2000/svg';
  function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }
  function section(id: string, title: string, note?: string): HTMLElement {
    const s = el('section', { id }, el('h2', {}, title));
    if (note) s.append(el('p', { class: 'note' }, note));
    root.append(s);
    return s;
  }
  /** Runs one section's drawing; an exception becomes a visible message in that section (and the console). */
  function guarded(target: HTMLElement, draw: () => void | Promise<void>): void {
    const fail = (err: unknown): void => {
      target.append(el('p', { class: 'error' }, `This part could not be drawn: ${err instanceof Error ? err.message : String(err)}`));
      console.error(err);
    };
    try {
      const r = draw();
      if (r instanceof Promise) r.catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  // ---- colours: one scale for the picks' scores everywhere ----
  const scores = data.picks.map((p) => p.score).filter((s) => Number.isFinite(s));
  const lo = data.histogram.threshold ?? (scores.length ? Math.min(...scores) : 0);
  const hi = scores.length ? Math.max(...scores, lo) : lo + 1;
  const colourDomain: [number, number] = hi > lo ? [lo, hi] : [lo - 1e-6, lo + 1e-6];
  const colourOf = d3.scaleSequential(d3.interpolatePlasma).domain(colourDomain).clamp(true);

  // ---- header ----
  const h = data.histogram;
  const t = data.truth;
  const head = el('header', {},
    el('h1', {}, `tme report: ${data.title}`),
    el('p', { class: 'where' }, `${data.jobDir} · finished ${data.createdAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} · tme ${data.tmeVersion}`));
  const facts: Array<[string, string]> = [
    ['picks', String(data.picks.length)],
    ['threshold', h.threshold === null ? 'none' : `${fmt(h.threshold, 4)} (${h.thresholdKind})`],
    ['expected false positives', h.expectedFalsePositives === null ? 'unknown' : fmt(h.expectedFalsePositives, 3)],
    ['rotations', String(data.angles.rotations)],
  ];
  if (t) {
    facts.push(['recall', `${t.recall.toFixed(2)} (${t.matched} of ${t.truthCount})`], ['precision', t.precision.toFixed(2)],
      ['median angular error', t.medianAngularError === null ? '—' : `${t.medianAngularError.toFixed(1)}°`]);
  }
  head.append(el('dl', { class: 'facts' }, ...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])));
  root.append(head);
  if (data.warnings.length > 0) {
    root.append(el('div', { class: 'warnings', id: 'warnings' }, el('strong', {}, `The run printed ${data.warnings.length} warning${data.warnings.length === 1 ? '' : 's'}:`),
      el('ul', {}, ...data.warnings.map((w) => el('li', {}, w)))));
  }

  // ---- slices ----
  const slices = section('slices', 'Slices', 'The tomogram and the best-score map side by side, each as an xy view with its xz (below) and yz (right) '
    + 'views through the cross-hair. Picks are circles coloured by score, drawn where the sphere of a third of the template box cuts the plane; '
    + 'click a view to move the cross-hair, a circle or a table row to go to a pick. The slab averages the tomogram and takes the maximum '
    + 'of the score map over its thickness.');
  const cursor = { x: Math.floor(NX / 2), y: Math.floor(NY / 2), z: Math.floor(NZ / 2) };
  let selected = -1;
  const previews: Array<{ name: 'tomogram' | 'scores'; label: string; preview: VolumePreview }> = [];
  if ('preview' in data.tomogram) previews.push({ name: 'tomogram', label: 'tomogram', preview: data.tomogram.preview });
  previews.push({ name: 'scores', label: data.scoresFile === 'scores.mrc' ? 'best score' : data.scoresFile, preview: data.scores });
  const bin = Math.max(...previews.map((p) => p.preview.bin));
  // Start on the best pick, else the middle.
  const best = data.picks[0];
  if (best) Object.assign(cursor, { x: Math.round(best.x), y: Math.round(best.y), z: Math.round(best.z) });

  const controls = el('div', { class: 'controls' });
  const zSlider = el('input', { type: 'range', id: 'z-slider', min: '0', max: String(NZ - 1), step: '1', value: String(cursor.z), 'aria-label': 'z' });
  const zLabel = el('output', { id: 'z-value' });
  const slabMax = Math.max(bin, 4 * R);
  const slabSlider = el('input', { type: 'range', id: 'slab', min: String(bin), max: String(slabMax), step: String(bin), value: String(Math.min(slabMax, Math.max(bin, Math.round(R / bin) * bin))), 'aria-label': 'slab thickness' });
  const slabLabel = el('output', { id: 'slab-value' });
  const save = el('button', { type: 'button', id: 'save-png' }, 'Save xy views as PNG');
  controls.append(el('label', {}, 'z ', zSlider, ' ', zLabel), el('label', {}, 'slab ', slabSlider, ' ', slabLabel), save);
  slices.append(controls);
  const panels = el('div', { class: 'panels' });
  slices.append(panels);
  if ('missing' in data.tomogram) panels.append(el('div', { class: 'panel missing', id: 'tomogram-missing' }, el('h3', {}, 'tomogram'), el('p', {}, `Not shown: ${data.tomogram.missing}.`)));
  slices.append(el('div', { class: 'legend', id: 'score-legend' }));

  type Axis = 'xy' | 'xz' | 'yz';
  interface View { axis: Axis; canvas: HTMLCanvasElement; overlay: SVGSVGElement; markers: SVGCircleElement[]; hair: [SVGLineElement, SVGLineElement] }
  interface Panel { name: string; label: string; preview: VolumePreview; bytes: Uint8Array; views: View[] }
  const panelList: Panel[] = [];
  const extent = { x: Math.ceil(NX / bin) * bin, y: Math.ceil(NY / bin) * bin, z: Math.ceil(NZ / bin) * bin };
  // css px per voxel: both panels (xy and yz side by side) in one row of the page, the xy view at most 440 px wide.
  const perPanel = (Math.min(1190, document.documentElement.clientWidth - 48) - 24 * (previews.length - 1)) / previews.length - 4;
  const scale = Math.max(0.2, Math.min(440 / extent.x, perPanel / (extent.x + extent.z)));
  const axesOf: Record<Axis, ['x' | 'y' | 'z', 'x' | 'y' | 'z']> = { xy: ['x', 'y'], xz: ['x', 'z'], yz: ['z', 'y'] };

  function makeView(panel: string, axis: Axis): View {
    const [u, v] = axesOf[axis];
    const w = extent[u] * scale;
    const hgt = extent[v] * scale;
    const wrap = el('div', { class: `view view-${axis}` });
    wrap.style.width = `${w}px`;
    wrap.style.height = `${hgt}px`;
    const canvas = el('canvas', { id: `${panel}-${axis}` });
    const overlay = svg('svg', { class: 'overlay', viewBox: `0 0 ${extent[u]} ${extent[v]}`, preserveAspectRatio: 'none', id: `${panel}-${axis}-overlay`, 'data-view': `${panel}-${axis}` });
    const hair: [SVGLineElement, SVGLineElement] = [svg('line', { class: 'hair' }), svg('line', { class: 'hair' })];
    overlay.append(...hair);
    const markers = data.picks.map((p) => {
      const c = svg('circle', {
        class: 'pick', 'data-rank': p.rank, 'data-x': p.x, 'data-y': p.y, 'data-z': p.z, 'data-score': p.score,
        cx: p[u] + 0.5, cy: p[v] + 0.5, r: R, stroke: colourOf(p.score),
      });
      const title = svg('title');
      title.textContent = `pick ${p.rank}: (${fixed(p.x, 1)}, ${fixed(p.y, 1)}, ${fixed(p.z, 1)}), score ${fmt(p.score, 4)}`;
      c.append(title);
      c.addEventListener('click', (ev) => { ev.stopPropagation(); selectPick(p.rank, true); });
      overlay.append(c);
      return c;
    });
    if (axis === 'xy' && data.truth) {
      for (const q of data.truth.particles) {
        const m = svg('path', { class: `truth ${q.found ? 'found' : 'missed'}`, 'data-z': q.z, d: `M${q.x + 0.5 - 1.5},${q.y + 0.5}h3M${q.x + 0.5},${q.y + 0.5 - 1.5}v3` });
        overlay.append(m);
      }
    }
    overlay.addEventListener('click', (ev) => {
      const box = overlay.getBoundingClientRect();
      const a = Math.floor(((ev.clientX - box.left) / box.width) * extent[u]);
      const b = Math.floor(((ev.clientY - box.top) / box.height) * extent[v]);
      const limit = { x: NX - 1, y: NY - 1, z: NZ - 1 };
      cursor[u] = Math.max(0, Math.min(limit[u], a));
      cursor[v] = Math.max(0, Math.min(limit[v], b));
      draw();
    });
    wrap.append(canvas, overlay);
    return { axis, canvas, overlay, markers, hair };
  }

  /** One plane (or slab) of a preview as grey pixels: mean (tomogram) or max (scores) over the slab. */
  function paint(p: Panel, view: View): void {
    const [bz, by, bx] = p.preview.shape;
    const b = p.preview.bin;
    const slab = Number(slabSlider.value);
    const half = Math.floor(Math.max(1, Math.round(slab / b)) / 2);
    const useMax = p.preview.reduce === 'max';
    const at = { x: Math.floor(cursor.x / b), y: Math.floor(cursor.y / b), z: Math.floor(cursor.z / b) };
    const n = { x: bx, y: by, z: bz };
    const [u, v] = axesOf[view.axis];
    const w = axisWord(view.axis);
    const width = n[u];
    const height = n[v];
    view.canvas.width = width;
    view.canvas.height = height;
    const ctx = view.canvas.getContext('2d') as CanvasRenderingContext2D;
    const img = ctx.createImageData(width, height);
    const from = Math.max(0, at[w] - half);
    const to = Math.min(n[w] - 1, at[w] + half);
    const idx = (c: Record<'x' | 'y' | 'z', number>): number => (c.z * by + c.y) * bx + c.x;
    const c = { x: 0, y: 0, z: 0 };
    for (let j = 0; j < height; j++) {
      for (let i = 0; i < width; i++) {
        c[u] = i;
        c[v] = j;
        let acc = 0;
        for (let k = from; k <= to; k++) {
          c[w] = k;
          const val = p.bytes[idx(c)] as number;
          acc = useMax ? Math.max(acc, val) : acc + val;
        }
        const g = useMax ? acc : acc / (to - from + 1);
        const o = 4 * (j * width + i);
        img.data[o] = g;
        img.data[o + 1] = g;
        img.data[o + 2] = g;
        img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }
  function axisWord(axis: Axis): 'x' | 'y' | 'z' {
    return axis === 'xy' ? 'z' : axis === 'xz' ? 'y' : 'x';
  }

  /** Circles where each pick's sphere cuts the view's plane; the cross-hair. */
  function placeMarkers(view: View): void {
    const w = axisWord(view.axis);
    const [u, v] = axesOf[view.axis];
    view.markers.forEach((m, k) => {
      const p = data.picks[k] as ReportPick;
      const d = p[w] - cursor[w];
      const inside = Math.abs(d) < R;
      m.setAttribute('r', String(inside ? Math.max(1, Math.sqrt(R * R - d * d)) : R));
      m.classList.toggle('away', !inside);
      m.classList.toggle('selected', p.rank === selected);
    });
    for (const q of view.overlay.querySelectorAll<SVGPathElement>('path.truth')) {
      q.classList.toggle('away', Math.abs(Number(q.dataset['z']) - cursor.z) >= R);
    }
    const [h1, h2] = view.hair;
    const a = cursor[u] + 0.5;
    const b = cursor[v] + 0.5;
    Object.entries({ x1: a, x2: a, y1: 0, y2: extent[v] }).forEach(([k, val]) => h1.setAttribute(k, String(val)));
    Object.entries({ x1: 0, x2: extent[u], y1: b, y2: b }).forEach(([k, val]) => h2.setAttribute(k, String(val)));
  }

  function draw(): void {
    zSlider.value = String(cursor.z);
    zLabel.textContent = `${cursor.z} of ${NZ} (x ${cursor.x}, y ${cursor.y})`;
    slabLabel.textContent = `${slabSlider.value} voxel${slabSlider.value === '1' ? '' : 's'}`;
    for (const p of panelList) {
      for (const view of p.views) {
        paint(p, view);
        placeMarkers(view);
      }
    }
    document.dispatchEvent(new CustomEvent('tme-drawn', { detail: { ...cursor } }));
  }

  function selectPick(rank: number, scrollTable: boolean): void {
    const p = data.picks.find((q) => q.rank === rank);
    if (!p) return;
    selected = rank;
    Object.assign(cursor, { x: Math.round(p.x), y: Math.round(p.y), z: Math.round(p.z) });
    draw();
    for (const row of document.querySelectorAll('#picks-table tbody tr')) row.classList.toggle('selected', row.id === `pick-${rank}`);
    if (scrollTable) document.getElementById(`pick-${rank}`)?.scrollIntoView({ block: 'nearest' });
  }

  async function decode(b64: string): Promise<Uint8Array> {
    const raw = atob(b64);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function savePng(): void {
    const xy = panelList.map((p) => p.views.find((v) => v.axis === 'xy') as View);
    const k = Math.max(1, Math.ceil(512 / Math.max(...xy.map((v) => v.canvas.width))));
    const gap = 8;
    const out = document.createElement('canvas');
    out.width = xy.reduce((s, v) => s + v.canvas.width * k, 0) + gap * (xy.length - 1);
    out.height = Math.max(...xy.map((v) => v.canvas.height * k));
    const ctx = out.getContext('2d') as CanvasRenderingContext2D;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, out.width, out.height);
    let left = 0;
    for (const view of xy) {
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(view.canvas, left, 0, view.canvas.width * k, view.canvas.height * k);
      const perVoxel = (view.canvas.width * k) / extent.x;
      ctx.lineWidth = 2;
      view.markers.forEach((m) => {
        if (m.classList.contains('away')) return;
        ctx.strokeStyle = m.getAttribute('stroke') ?? '#fff';
        ctx.beginPath();
        ctx.arc(left + Number(m.getAttribute('cx')) * perVoxel, Number(m.getAttribute('cy')) * perVoxel, Number(m.getAttribute('r')) * perVoxel, 0, 2 * Math.PI);
        ctx.stroke();
      });
      left += view.canvas.width * k + gap;
    }
    const a = el('a', { href: out.toDataURL('image/png'), download: `${data.title}-z${cursor.z}-slab${slabSlider.value}.png` });
    a.click();
  }

  guarded(slices, async () => {
    for (const p of previews) {
      const panel = el('div', { class: 'panel', id: `${p.name}-panel` }, el('h3', {}, `${p.label} (${p.preview.bin > 1 ? `binned ${p.preview.bin}×, ${p.preview.reduce}` : 'full resolution'})`));
      const grid = el('div', { class: 'ortho' });
      const views = (['xy', 'yz', 'xz'] as Axis[]).map((a) => makeView(p.name, a));
      for (const v of views) grid.append(v.overlay.parentNode as Node);
      panel.append(grid);
      panels.append(panel);
      panelList.push({ name: p.name, label: p.label, preview: p.preview, bytes: await decode(p.preview.gzipBase64), views });
    }
    zSlider.addEventListener('input', () => { cursor.z = Number(zSlider.value); draw(); });
    slabSlider.addEventListener('input', draw);
    save.addEventListener('click', savePng);
    const legend = Plot.legend({ color: { type: 'sequential', scheme: 'plasma', domain: colourDomain, label: 'pick score' } });
    (document.getElementById('score-legend') as HTMLElement).append(legend as Node);
    draw();
    slices.dataset['ready'] = 'true';
  });

  // ---- histogram ----
  const hist = section('histogram', 'Score histogram', h.source === 'call'
    ? `Best score of every voxel searched (log count), the Gaussian fitted to its centre (${h.fit.method}), the threshold of the peak call and the picks' scores (ticks). `
      + 'The dashed line is how many false positives the search\'s noise model expects at or above each score over the calling region: where it crosses 1, one noise peak is expected.'
    : 'Best score of every voxel searched (log count) and the Gaussian fitted to its centre. This folder has no peak call report (picks.report.json), so no threshold is shown.');
  guarded(hist, () => {
    const bins = h.counts.map((count, k) => ({ x1: h.edges[k] as number, x2: h.edges[k + 1] as number, count })).filter((b) => b.count > 0);
    const fitted = h.fitted.map((f, k) => ({ x: ((h.edges[k] as number) + (h.edges[k + 1] as number)) / 2, f })).filter((d) => d.f >= 0.5);
    const top = Math.max(1, ...h.counts);
    const curve = (h.falsePositiveCurve ?? []).map(([x, n]) => ({ x, n })).filter((d) => d.n >= 0.01 && d.n <= top * 10);
    const marks: PlotLibrary.Markish[] = [
      Plot.rectY(bins, { x1: 'x1', x2: 'x2', y1: 0.5, y2: 'count', fill: '#9aa5b1', title: (b: { x1: number; x2: number; count: number }) => `${fmt(b.x1, 4)} – ${fmt(b.x2, 4)}: ${b.count} voxels` }),
      Plot.line(fitted, { x: 'x', y: 'f', stroke: '#1f6feb', strokeWidth: 1.5 }),
      Plot.line(curve, { x: 'x', y: 'n', stroke: '#c2410c', strokeDasharray: '4,3', strokeWidth: 1.5, clip: true }),
      Plot.ruleX(data.picks, { x: 'score', y1: 0.5, y2: 2, stroke: (p: ReportPick) => colourOf(p.score), strokeWidth: 2 }),
    ];
    if (h.threshold !== null) {
      marks.push(Plot.ruleX([h.threshold], { stroke: '#111', strokeWidth: 1.5 }),
        Plot.text([h.threshold], { x: (d: number) => d, y: top, text: () => `threshold ${fmt(h.threshold, 4)}${h.expectedFalsePositives !== null ? ` · ${fmt(h.expectedFalsePositives, 3)} expected false positive${h.expectedFalsePositives === 1 ? '' : 's'}` : ''}`, textAnchor: 'start', dx: 4, dy: -4 }));
    }
    const chart = Plot.plot({
      width: 900, height: 340, marginLeft: 60, x: { label: 'best score' }, y: { type: 'log', label: 'voxels', domain: [0.5, top * 3], grid: true },
      marks,
    });
    chart.id = 'histogram-plot';
    hist.append(chart);
    const key = el('p', { class: 'key' },
      el('span', { class: 'swatch', style: 'background:#9aa5b1' }), ' voxels ',
      el('span', { class: 'swatch line', style: 'border-color:#1f6feb' }), ` fitted Gaussian (mean ${fmt(h.fit.mean, 3)}, σ ${fmt(h.fit.std, 3)}) `,
      ...(curve.length ? [el('span', { class: 'swatch line dashed', style: 'border-color:#c2410c' }), ' expected false positives ≥ score '] : []));
    hist.append(key);
    if (h.reason) hist.append(el('p', { class: 'note' }, `${h.reason}${h.regionVoxels !== null ? ` (${h.regionVoxels} voxels called).` : ''}`));
  });

  // ---- picks table ----
  const table = section('picks', 'Picks', data.picksMissing ?? `${data.picks.length} picks from ${data.picksFile}. Angles are tme's RELION ZYZ (rot, tilt, psi) in degrees`
    + `${data.picks.some((p) => p.angleChange !== null) ? ', after refinement (Δ: how far refinement turned the global search\'s orientation)' : ''}. Click a column to sort, a row to go to the pick.`);
  guarded(table, () => {
    if (data.picks.length === 0) return;
    interface Column { key: string; label: string; value: (p: ReportPick) => number | null; show: (p: ReportPick) => string }
    const columns: Column[] = [
      { key: 'rank', label: '#', value: (p) => p.rank, show: (p) => String(p.rank) },
      { key: 'x', label: 'x', value: (p) => p.x, show: (p) => fmt(p.x, 6) },
      { key: 'y', label: 'y', value: (p) => p.y, show: (p) => fmt(p.y, 6) },
      { key: 'z', label: 'z', value: (p) => p.z, show: (p) => fmt(p.z, 6) },
      { key: 'rot', label: 'rot', value: (p) => p.rot, show: (p) => fixed(p.rot, 1) },
      { key: 'tilt', label: 'tilt', value: (p) => p.tilt, show: (p) => fixed(p.tilt, 1) },
      { key: 'psi', label: 'psi', value: (p) => p.psi, show: (p) => fixed(p.psi, 1) },
      { key: 'score', label: 'score', value: (p) => p.score, show: (p) => fixed(p.score, 4) },
    ];
    if (data.picks.some((p) => p.zScore !== null)) columns.push({ key: 'zScore', label: 'z-score', value: (p) => p.zScore, show: (p) => fixed(p.zScore, 2) });
    if (data.picks.some((p) => p.localSnr !== null)) columns.push({ key: 'localSnr', label: 'local SNR', value: (p) => p.localSnr, show: (p) => fixed(p.localSnr, 2) });
    if (data.picks.some((p) => p.angleChange !== null)) columns.push({ key: 'angleChange', label: 'Δ°', value: (p) => p.angleChange, show: (p) => fixed(p.angleChange, 1) });
    if (data.truth) {
      columns.push({
        key: 'truth', label: 'truth', value: (p) => (p.truth ? p.truth.angularError : null),
        show: (p) => (p.truth ? `#${p.truth.index}: ${p.truth.distance.toFixed(1)} vx, ${p.truth.angularError.toFixed(1)}°` : 'false positive'),
      });
    }
    const tbody = el('tbody');
    const rows = new Map<number, HTMLTableRowElement>();
    for (const p of data.picks) {
      const tr = el('tr', { id: `pick-${p.rank}`, 'data-rank': String(p.rank) }, ...columns.map((c) => el('td', c.key === 'score' ? { class: 'num score' } : { class: 'num' }, c.show(p))));
      (tr.children[columns.findIndex((c) => c.key === 'score')] as HTMLElement).style.borderLeft = `6px solid ${colourOf(p.score)}`;
      if (p.truth === null) tr.classList.add('false-positive');
      tr.addEventListener('click', () => {
        selectPick(p.rank, false);
        document.getElementById('slices')?.scrollIntoView({ block: 'start' });
      });
      rows.set(p.rank, tr);
      tbody.append(tr);
    }
    let sortKey = 'rank';
    let ascending = true;
    const headRow = el('tr');
    for (const c of columns) {
      const th = el('th', { 'data-key': c.key, title: `sort by ${c.label}` }, c.label);
      th.addEventListener('click', () => {
        ascending = sortKey === c.key ? !ascending : c.key === 'rank';
        sortKey = c.key;
        const sorted = [...data.picks].sort((a, b) => {
          const va = c.value(a) ?? -Infinity;
          const vb = c.value(b) ?? -Infinity;
          return ascending ? va - vb : vb - va;
        });
        for (const p of sorted) tbody.append(rows.get(p.rank) as HTMLTableRowElement);
        for (const other of headRow.children) other.removeAttribute('aria-sort');
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      });
      headRow.append(th);
    }
    table.append(el('div', { class: 'scroll' }, el('table', { id: 'picks-table' }, el('thead', {}, headRow), tbody)));
  });

  // ---- angles ----
  const a = data.angles;
  const covering = a.covering === null ? '' : ` The ${a.rotations} rotations searched${a.symmetry && a.symmetry !== 'C1' ? ` (asymmetric unit of ${a.symmetry})` : ''} `
    + `come within ${a.covering.toFixed(1)}° of every orientation (${a.coveringSource === 'measured' ? 'measured covering angle of the list' : 'covering bound of the sampling'}${a.angularStep !== null ? `; angular step ${a.angularStep}°` : ''}).`;
  const angles = section('angles', 'Orientations', `Where each pick's rotation sends the template's z axis, on an equal-area map of the sphere (longitude = RELION rot, latitude = 90° − tilt; `
    + `psi, the turn about that axis, is not shown). Grey dots: the directions of the searched rotations.${covering}`);
  guarded(angles, () => {
    const chart = Plot.plot({
      width: 720, height: 380, projection: 'equal-earth',
      marks: [
        Plot.sphere({ stroke: '#999' }), Plot.graticule({ stroke: '#ddd' }),
        Plot.dot(a.sampling, { x: (d: [number, number]) => d[0], y: (d: [number, number]) => d[1], r: 1.5, fill: '#a0a0a0' }),
        Plot.dot(data.picks, {
          x: (p: ReportPick) => p.direction[0], y: (p: ReportPick) => p.direction[1], r: 4.5, fill: (p: ReportPick) => colourOf(p.score), stroke: '#222', strokeWidth: 0.7,
          title: (p: ReportPick) => `pick ${p.rank}: rot ${fixed(p.rot, 1)}°, tilt ${fixed(p.tilt, 1)}°, psi ${fixed(p.psi, 1)}°`,
        }),
      ],
    });
    chart.id = 'angles-plot';
    angles.append(chart);
  });

  // ---- truth ----
  if (t) {
    const truth = section('truth', 'Against the truth', `${t.file}: a pick finds a particle when it lies within ${t.maxDistance} voxels of it (each particle found once, best pick first).`);
    truth.append(el('p', {}, `Found ${t.matched} of ${t.truthCount} particles (recall ${t.recall.toFixed(2)}); ${t.pickCount - t.matched} of ${t.pickCount} picks are false positives (precision ${t.precision.toFixed(2)}); `
      + `median angular error ${t.medianAngularError === null ? '—' : `${t.medianAngularError.toFixed(1)}°`}.`));
    const missed = t.particles.map((q, k) => ({ ...q, k })).filter((q) => !q.found);
    if (missed.length > 0) truth.append(el('p', {}, `Missed: ${missed.map((q) => `#${q.k} at (${q.x}, ${q.y}, ${q.z})`).join(', ')} (red crosses in the xy views).`));
  }

  // ---- job ----
  const job = section('job', 'Job');
  job.append(el('table', { class: 'job' }, el('tbody', {}, ...data.job.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v))))));
}
