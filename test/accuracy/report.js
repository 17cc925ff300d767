// Renders every committed accuracy result (test/accuracy/results/*.json) as the Markdown tables of
// test/accuracy/README.md, between <!-- accuracy:start --> and <!-- accuracy:end -->.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const fmt = (v, d = 2) => (typeof v === 'number' && Number.isFinite(v) ? Number(v.toFixed(d)).toString() : '—');
const shape = (s) => (Array.isArray(s) ? `${s[0]}×${s[1]}×${s[2]}` : '—');

function title(r) {
  const m = r.machine;
  const what = r.label ? `**${r.label}** — ` : '';
  return `${what}**${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB** (tme ${r.build && r.build.describe ? r.build.describe : '?'}; ${r.date.slice(0, 10)}; `
    + `whole suite ${fmt(r.totalSeconds / 60, 0)} min; load average at start ${(m.loadAverage || []).map((x) => x.toFixed(1)).join('/')})`;
}

function caseRow(c) {
  if (c.error) return `| ${c.id} | ${c.molecule || '—'} | ${shape(c.shape)} | — | ${c.snr} | ${c.step}° | — | run failed: ${String(c.error).split('\n')[0].replace(/\|/g, '\\|').slice(0, 200)} |||||||||| `;
  const border = c.zeroBorder ? ` (zero border z ${c.zeroBorder.z}, x ${c.zeroBorder.x})` : '';
  const angle = c.medianAngle === null || c.medianAngle === undefined ? '—'
    : `${fmt(c.medianAngle, 1)}°${typeof c.medianAnglePseudoC5 === 'number' ? ` (${fmt(c.medianAnglePseudoC5, 1)}° mod C5)` : ''}`;
  const flips = `${c.flips}${typeof c.flipsExplainedByPseudoC5 === 'number' && c.flips ? ` (${c.flipsExplainedByPseudoC5} C5)` : ''}`;
  const tile = c.tile ? `tiles ${c.tile}${c.mapDiff ? `; max \\|Δscore\\| ${fmt(c.mapDiff.maxAbsDiff, 4)} vs untiled` : ''}` : '';
  return `| ${c.id} | ${c.molecule} | ${shape(c.shape)}${border} | ${c.particles} | ${c.snr === 'inf' ? '∞ (no noise)' : fmt(c.snr, 4)} | ${c.step}° | ${c.refine ? 'yes' : 'no'}${tile ? ` (${tile})` : ''} `
    + `| ${fmt(c.recall)} | ${fmt(c.recallFaces)} (${c.faceParticles}) | ${fmt(c.recallInterior)} (${c.interiorParticles}) | ${fmt(c.precision)} (${c.picks}) | ${fmt(c.f1)} `
    + `| ${angle} | ${flips} | ${fmt(c.medianPositionError, 1)} | ${fmt(c.maxScore, 3)} | ${fmt(c.wallSeconds, 0)} s |`;
}

function render(r) {
  const lines = [title(r), ''];
  lines.push('| case | molecule | shape (z×y×x) | particles | SNR | step | refine | recall | faces (n) | interior (n) | precision (picks) | F1 | median angle | flips > 90° | median pos. err (vox) | max score | wall |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const c of r.cases) lines.push(caseRow(c));
  lines.push('');
  if (r.noise && r.noise.length) {
    lines.push(`Pure noise (${shape(r.noise[0].shape)}, 1TII template ${r.noise[0].templateBox}³, ${r.noise[0].step}° step, the lamella's tilt/dose/CTF flags): `
      + 'local maxima above a common threshold (the 1000 highest) per voxel, within half a template box of a face ÷ interior (± Poisson s.e.).', '');
    lines.push('| noise | score | face ÷ interior | z faces ÷ interior | exceedance ratio | max score (face / interior / zero border) | picks at default threshold | wall |');
    lines.push('|---|---|---|---|---|---|---|---|');
    for (const n of r.noise) {
      if (n.error) { lines.push(`| ${n.kind} | ${n.score} | run failed: ${String(n.error).split('\n')[0].replace(/\|/g, '\\|').slice(0, 200)} ||||||`); continue; }
      lines.push(`| ${n.kind} | ${n.score} | ${fmt(n.ratio)} ± ${fmt(n.ratioStdErr)} | ${fmt(n.ratioZFaces)} | ${fmt(n.exceedanceRatio)} | ${fmt(n.maxScore, 3)} (${fmt(n.maxScoreFace, 3)} / ${fmt(n.maxScoreInterior, 3)} / ${fmt(n.maxScoreZeroBorder, 3)}) | ${n.picksAtDefaultThreshold} | ${fmt(n.wallSeconds, 0)} s |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

function updateReadme(dir) {
  const resultsDir = path.join(dir, 'results');
  const files = fs.existsSync(resultsDir) ? fs.readdirSync(resultsDir).filter((f) => f.endsWith('.json')).sort() : [];
  const results = files.map((f) => JSON.parse(fs.readFileSync(path.join(resultsDir, f), 'utf8')));
  const readme = path.join(dir, 'README.md');
  if (!fs.existsSync(readme)) return;
  const text = fs.readFileSync(readme, 'utf8');
  const start = '<!-- accuracy:start -->';
  const end = '<!-- accuracy:end -->';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) return;
  const body = results.length ? results.map(render).join('\n') : '(run `pnpm accuracy` to fill this table)';
  fs.writeFileSync(readme, `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`);
}

module.exports = { updateReadme, render };

if (require.main === module) updateReadme(__dirname);
