// Renders every committed benchmark result (test/bench/results/*.json) as the Markdown tables of the README's
// performance section, between <!-- bench:start --> and <!-- bench:end -->.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const fmt = (v, d = 2) => (typeof v === 'number' && Number.isFinite(v) ? Number(v.toFixed(d)).toString() : '—');

function machineLine(r) {
  const m = r.machine;
  const dev = (m.devices || []).map((d) => d.name).join(', ') || 'none';
  return `**${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB** (devices: ${dev}; ${r.date.slice(0, 10)}; load average at start ${(m.loadAverage || []).map((x) => x.toFixed(1)).join('/')})`;
}

function render(r) {
  const lines = [machineLine(r), ''];
  const match = r.suites.match;
  if (match && Array.isArray(match.cases)) {
    lines.push('| path | target | template | score | ms / rotation | ÷ FFT pair | ÷ C2R | rotations/s | ns / rotation·voxel | set-up ms | device MiB |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of match.cases) {
      lines.push(`| ${c.path} | ${c.target} (padded ${c.padded}) | ${c.template}³ | ${c.score} | ${fmt(c.perRotationMs)} | ${fmt(c.overPair)} | ${fmt(c.overC2r)} | ${fmt(c.rotationsPerSecond, 1)} | ${fmt(c.nsPerRotationVoxel, 3)} | ${fmt(c.setupMs, 0)} | ${fmt(c.deviceBytes / 2 ** 20, 0)} |`);
    }
    lines.push('');
    if (match.scaling && match.scaling.rotations) {
      lines.push(`Scaling (${match.scaling.path}, flc-sphere, 32³ template): loop time for ${match.scaling.rotations.map((s) => `${s.rotations} rotations ${fmt(s.loopMs, 0)} ms`).join(', ')}; `
        + `per rotation by target: ${match.scaling.volume.map((s) => `${s.target}³ ${fmt(s.perRotationMs)} ms (${fmt(s.nsPerPaddedVoxel, 3)} ns/padded voxel)`).join(', ')}.`);
      lines.push('');
    }
  }
  const nat = r.suites.native;
  if (nat && nat.fft) {
    const rows = [];
    for (const [p, sizes] of Object.entries(nat.fft)) for (const [k, v] of Object.entries(sizes)) rows.push(`| ${p} | ${k} | ${fmt(v.planMs, 1)} | ${fmt(v.pairMs)} | ${fmt(v.c2rMs)} |`);
    lines.push('| FFT path | size / threads | plan ms | R2C+C2R pair ms | C2R ms |', '|---|---|---|---|---|', ...rows, '');
    if (nat.lavapipeOverFftw) lines.push(`VkFFT on lavapipe ÷ FFTW3f (1 thread), same pair: ${Object.entries(nat.lavapipeOverFftw).map(([k, v]) => `${k} ${fmt(v, 1)}×`).join(', ')}.`, '');
  }
  const ex = r.suites.example;
  if (ex && typeof ex.wallSeconds === 'number') {
    lines.push(`\`tme example\` end to end: ${fmt(ex.wallSeconds, 1)} s wall (match ${fmt(ex.matchSeconds, 1)} s, ${ex.rotations} rotations on ${ex.device}); found ${ex.found}/${ex.particles}, precision ${fmt(ex.precision)}, median angular error ${fmt(ex.medianAngularErrorDegrees, 1)}°.`, '');
  }
  const f = r.suites.formats;
  if (f && typeof f.readRatio === 'number') {
    lines.push(`MRC 512×512×256 float32: read ${fmt(f.readMBps, 0)} MB/s (${fmt(f.readRatio)}× the speed of a plain fs.readFile of the same bytes), write ${fmt(f.writeMBps, 0)} MB/s (${fmt(f.writeRatio)}× fs.writeFile); read memory peak ${fmt(f.readPeakMemoryRatio)}× the float32 size.`, '');
  }
  const pk = r.suites.peaks;
  if (pk && pk.falseAlarm) {
    lines.push(`Peak calling on a ${pk.shape.join('×')} map: ${fmt(pk.falseAlarm.seconds)} s with the false-alarm threshold (${fmt(pk.falseAlarm.ratio, 1)}× one plain pass over the map), `
      + `${fmt(pk.noThreshold.seconds)} s with none (${fmt(pk.noThreshold.ratio, 1)}×); extra memory ${fmt(pk.peakRssOverMapBytes)}× the map.`, '');
  }
  const peer = r.suites.peer;
  if (peer && Array.isArray(peer.cases)) {
    lines.push(`Side by side with pyTME ${peer.pytme.version}${peer.pytme.commit ? ` (${peer.pytme.commit})` : ''}, whole processes run alternately (best of ${peer.repeats}), the same rotations (pyTME's own set, given to tme with \`--rotations\`), ${peer.pytme.workers} workers each; flc-sphere / FLCSphericalMask, ±60° wedge. Memory: peak RSS summed over the process tree.`, '');
    lines.push('| target | template | rotations | tme wall s | pyTME wall s | tme ÷ pyTME wall | tme CPU s | pyTME CPU s | tme MiB | pyTME MiB | tme ÷ pyTME memory | `tme estimate` MiB (÷ tme peak) |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of peer.cases) {
      lines.push(`| ${c.target} | ${c.template} | ${c.rotations} (${c.rotationSet}) | ${fmt(c.tme.wallSeconds, 1)} | ${fmt(c.pytme.wallSeconds, 1)} | ${fmt(c.ratios.wall)} | ${fmt(c.tme.cpuSeconds, 1)} | ${fmt(c.pytme.cpuSeconds, 1)} | ${fmt(c.tme.peakMiB, 0)} | ${fmt(c.pytme.peakMiB, 0)} | ${fmt(c.ratios.memory)} | ${c.tme.estimatedPeakMiB ? `${fmt(c.tme.estimatedPeakMiB, 0)} (${fmt(c.ratios.estimateOverPeak)})` : '—'} |`);
    }
    lines.push('');
  } else if (peer && peer.skipped) {
    lines.push(`(pyTME side by side: not measured: ${peer.skipped})`, '');
  }
  for (const [name, s] of Object.entries(r.suites)) if (s && s.error) lines.push(`(${name}: not measured: ${s.error})`, '');
  return lines.join('\n');
}

function updateReadme(root) {
  const dir = path.join(root, 'test', 'bench', 'results');
  const results = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')))
    // A machine's `pnpm bench` results; other files there (the FFT length table of the tile cost model) have no suites.
    .filter((r) => r && r.suites && r.machine) : [];
  const readme = path.join(root, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const start = '<!-- bench:start -->';
  const end = '<!-- bench:end -->';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) return;
  const body = results.length ? results.map(render).join('\n') : '(run `pnpm bench` to fill this table)';
  fs.writeFileSync(readme, `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`);
}

module.exports = { updateReadme, render };
