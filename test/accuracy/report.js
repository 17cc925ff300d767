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
  return `${what}**${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB** (tme ${r.build && r.build.product ? `${r.build.product.split(' ')[0]}${r.build.productDirty ? ' with local changes' : ''}` : r.build && r.build.describe ? r.build.describe : '?'}; ${r.date.slice(0, 10)}; `
    + `whole suite ${fmt(r.totalSeconds / 60, 0)} min; load average at start ${(m.loadAverage || []).map((x) => x.toFixed(1)).join('/')})`;
}

function caseRow(c) {
  if (c.error) return `| ${c.id} | ${c.molecule || '—'} | ${shape(c.shape)} | — | ${c.snr} | ${c.step}° | — | run failed: ${String(c.error).split('\n')[0].replace(/\|/g, '\\|').slice(0, 200)} ||||||||||| `;
  const border = c.zeroBorder ? ` (zero border z ${c.zeroBorder.z}, x ${c.zeroBorder.x})` : '';
  const angle = c.medianAngle === null || c.medianAngle === undefined ? '—'
    : `${fmt(c.medianAngle, 1)}°${typeof c.medianAnglePseudoC5 === 'number' ? ` (${fmt(c.medianAnglePseudoC5, 1)}° mod C5)` : ''}`;
  const flips = `${c.flips}${typeof c.flipsExplainedByPseudoC5 === 'number' && c.flips ? ` (${c.flipsExplainedByPseudoC5} C5)` : ''}`;
  const tile = c.tile ? `tiles ${c.tile}${c.mapDiff ? `; max \\|Δscore\\| ${fmt(c.mapDiff.maxAbsDiff, 4)} vs untiled` : ''}` : '';
  return `| ${c.id} | ${c.molecule} | ${shape(c.shape)}${border} | ${c.particles} | ${c.snr === 'inf' ? '∞ (no noise)' : fmt(c.snr, 4)} | ${c.step}° | ${c.refine ? 'yes' : 'no'}${tile ? ` (${tile})` : ''} `
    + `| ${fmt(c.recall)} | ${fmt(c.recallFaces)} (${c.faceParticles}) | ${fmt(c.recallInterior)} (${c.interiorParticles}) | ${fmt(c.precision)} (${c.picks}) | ${c.falsePicksNearParticle ?? '—'} / ${c.falsePicksAway ?? '—'} | ${fmt(c.f1)} `
    + `| ${angle} | ${flips} | ${fmt(c.medianPositionError, 1)} | ${fmt(c.maxScore, 3)} | ${fmt(c.wallSeconds, 0)} s |`;
}

/** The issue's proof, checked on one results file: what the fixed product must show. */
function proof(r) {
  const ok = (b) => (b ? 'yes' : '**no**');
  const rows = [];
  // The twins (-refined, -global) repeat their case's picks; detection is judged once per case.
  const twin = (c) => /-(refined|global)$/.test(c.id);
  const strong = r.cases.filter((c) => !c.error && !twin(c) && typeof c.recallInterior === 'number' && c.recallInterior >= 0.95);
  const weak = strong.filter((c) => !(c.recall >= 0.95));
  rows.push(`| recall ≥ 0.95 of all particles (faces included) wherever interior recall ≥ 0.95 | ${ok(weak.length === 0)} | ${strong.length} such cases; all-particle recall there ${strong.map((c) => `${c.id} ${fmt(c.recall)}`).join(', ') || '—'} |`);
  // Above a false-alarm threshold: tme's own picks at its own (face-aware) threshold where the run measured them,
  // else local maxima of the raw map above one common threshold.
  const noise = (r.noise || []).filter((n) => !n.error && n.kind !== 'wedge+zero-border');
  const density = (n) => (typeof n.picksRatio === 'number' ? n.picksRatio : n.ratio);
  const high = noise.filter((n) => !(density(n) <= 1.2));
  const how = noise.some((n) => typeof n.picksRatio === 'number')
    ? `tme's picks above its own threshold at ${noise[0].falseAlarmsForPicks} expected false alarms`
    : 'local maxima of the map above a common threshold';
  rows.push(`| false-alarm density at the faces ≤ 1.2× the interior's, on noise | ${ok(high.length === 0)} | ${how}: ${noise.map((n) => `${n.kind} ${n.score} ${fmt(density(n))}`).join(', ')} |`);
  const normalised = (n) => n.score !== 'cc' && n.score !== 'lcc'; // cc and lcc (cc on Laplacians) are not normalised
  const over = [...r.cases.filter((c) => !c.error && c.maxScore > 1 + 1e-4).map((c) => `${c.id} ${fmt(c.maxScore, 3)}`),
    ...(r.noise || []).filter((n) => !n.error && normalised(n) && n.maxScore > 1 + 1e-4).map((n) => `noise ${n.kind} ${n.score} ${fmt(n.maxScore, 3)}`)];
  rows.push(`| no normalised score above 1 (every case; on noise every score but cc and lcc) | ${ok(over.length === 0)} | ${over.length ? `above 1: ${over.join(', ')}` : 'none above 1'} |`);
  // The orientation case of the asymmetric molecule: its refined row and the same picks with the global angles.
  const refined = r.cases.filter((c) => !c.error && c.refine && c.group === 'orientation' && c.molecule === '6zu5');
  const unrefined = (c) => r.cases.find((u) => !u.refine && u.group === 'orientation' && u.molecule === c.molecule && u.id.replace(/-(refined|global)$/, '') === c.id.replace(/-(refined|global)$/, '')) || {};
  rows.push(`| refinement: median angle < half the step on the asymmetric molecule at moderate SNR | ${ok(refined.length > 0 && refined.every((c) => c.medianAngle < c.step / 2))} | ${refined.map((c) => `${c.id}: ${fmt(c.medianAngle, 1)}° at ${c.step}° (unrefined ${fmt(unrefined(c).medianAngle, 1)}°), ${c.flips} flips`).join('; ') || '—'} |`);
  const tiled = r.cases.filter((c) => !c.error && c.mapDiff);
  rows.push(`| tiled search = untiled search | ${ok(tiled.every((c) => c.mapDiff.maxAbsDiffOverStd < 0.01))} | ${tiled.map((c) => `max \\|Δ\\| ${fmt(c.mapDiff.maxAbsDiff, 4)} = ${fmt(c.mapDiff.maxAbsDiffOverStd, 3)} σ of the map, ${fmt(100 * c.mapDiff.fractionDiffering, 1)} % of voxels differ`).join('; ') || '—'} |`);
  return ['| the issue\'s proof | holds | evidence |', '|---|---|---|', ...rows, ''].join('\n');
}

function render(r) {
  const lines = [title(r), '', proof(r)];
  lines.push('| case | molecule | shape (z×y×x) | particles | SNR | step | refine | recall | faces (n) | interior (n) | precision (picks) | false picks: near a particle / away | F1 | median angle | flips > 90° | median pos. err (vox) | max score | wall |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const c of r.cases) lines.push(caseRow(c));
  lines.push('');
  if (r.peers && r.peers.length) {
    lines.push('Side by side with pyTME (same lamella and template map; see each row\'s note for its flags):', '');
    lines.push('| tool | case | step | recall | faces (n) | interior (n) | precision (picks) | median angle | flips > 90° | max score | wall | note |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const p of r.peers) {
      lines.push(`| ${p.tool} | ${p.case} | ${p.step}° | ${fmt(p.recall)} | ${fmt(p.recallFaces)} (${p.faceParticles}) | ${fmt(p.recallInterior)} (${p.interiorParticles}) | ${fmt(p.precision)} (${p.picks}) | ${fmt(p.medianAngle, 1)}° | ${p.flips} | ${fmt(p.maxScore, 3)} | ${fmt(p.wallSeconds, 0)} s | ${p.note || ''} |`);
    }
    lines.push('');
  }
  if (r.noise && r.noise.length) {
    const own = r.noise.find((n) => typeof n.picksRatio === 'number');
    lines.push(`Pure noise (${shape(r.noise[0].shape)}, 1TII template ${r.noise[0].templateBox}³, ${r.noise[0].step}° step, the lamella's tilt/dose/CTF flags): `
      + 'per voxel within half a template box of a face ÷ in the interior (± Poisson s.e.), of the local maxima above a common threshold (the 1000 highest) of the raw map'
      + (own ? `, and of tme's own picks above its own threshold at ${own.falseAlarmsForPicks} expected false alarms (what a user gets; the threshold is raised near the faces where the map's upper tail is wider)` : '') + '.', '');
    lines.push('| noise | score | map maxima: face ÷ interior | z faces ÷ interior | exceedance ratio | tme\'s picks: face ÷ interior (picks) | max score (face / interior / zero border) | picks at default threshold | wall |');
    lines.push('|---|---|---|---|---|---|---|---|---|');
    for (const n of r.noise) {
      if (n.error) { lines.push(`| ${n.kind} | ${n.score} | run failed: ${String(n.error).split('\n')[0].replace(/\|/g, '\\|').slice(0, 200)} |||||||`); continue; }
      const picks = typeof n.picksRatio === 'number' ? `${fmt(n.picksRatio)} ± ${fmt(n.picksRatioStdErr)} (${n.picks})` : '—';
      lines.push(`| ${n.kind} | ${n.score} | ${fmt(n.ratio)} ± ${fmt(n.ratioStdErr)} | ${fmt(n.ratioZFaces)} | ${fmt(n.exceedanceRatio)} | ${picks} | ${fmt(n.maxScore, 3)} (${fmt(n.maxScoreFace, 3)} / ${fmt(n.maxScoreInterior, 3)} / ${fmt(n.maxScoreZeroBorder, 3)}) | ${n.picksAtDefaultThreshold} | ${fmt(n.wallSeconds, 0)} s |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

function updateReadme(dir) {
  const resultsDir = path.join(dir, 'results');
  const files = fs.existsSync(resultsDir) ? fs.readdirSync(resultsDir).filter((f) => f.endsWith('.json')).sort() : [];
  // The suite's own results only: results/ also holds the background and zones scripts' tables.
  const results = files.map((f) => JSON.parse(fs.readFileSync(path.join(resultsDir, f), 'utf8')))
    .filter((r) => r && r.machine && typeof r.date === 'string' && Array.isArray(r.cases));
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
