import { browserLibraries } from './libraries';
import { reportPage } from './page-script';
import type { ReportData } from './report-data';

const STYLE = `
:root { --ink: #1d232a; --muted: #5b6570; --line: #d8dde3; --soft: #f4f6f8; --accent: #1f6feb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 2px; }
h2 { font-size: 17px; margin: 28px 0 6px; padding-top: 10px; border-top: 1px solid var(--line); }
h3 { font-size: 14px; margin: 0 0 6px; font-weight: 600; }
.where, .note, .key { color: var(--muted); margin: 2px 0 10px; max-width: 980px; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 22px; margin: 12px 0; }
.facts dt { color: var(--muted); font-size: 12px; }
.facts dd { margin: 0; font-weight: 600; font-size: 15px; }
.facts > dt + dd { margin-right: 4px; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); }
.facts dt { grid-row: 1; } .facts dd { grid-row: 2; }
.warnings { background: #fff7e6; border: 1px solid #f0c36d; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.warnings ul { margin: 4px 0 0 18px; padding: 0; }
.error { color: #b42318; font-weight: 600; }
.controls { display: flex; flex-wrap: wrap; gap: 18px; align-items: center; margin: 8px 0 12px; }
.controls input[type=range] { width: 260px; vertical-align: middle; }
.controls output { display: inline-block; min-width: 12ch; font-variant-numeric: tabular-nums; }
button { font: inherit; padding: 4px 10px; border: 1px solid var(--line); border-radius: 5px; background: var(--soft); cursor: pointer; }
.panels { display: flex; flex-wrap: wrap; gap: 24px; }
.panel.missing { max-width: 360px; padding: 12px; background: var(--soft); border-radius: 6px; }
.ortho { display: grid; grid-template-columns: auto auto; gap: 4px; align-items: start; justify-content: start; }
.view { position: relative; background: #000; }
.view canvas { position: absolute; inset: 0; width: 100%; height: 100%; }
.view svg.overlay { position: absolute; inset: 0; width: 100%; height: 100%; cursor: crosshair; overflow: hidden; }
.view-xz { grid-column: 1; }
circle.pick { fill: none; stroke-width: 2; vector-effect: non-scaling-stroke; cursor: pointer; }
circle.pick.away { display: none; }
circle.pick.selected { stroke-width: 3.5; stroke-dasharray: 4 2; }
line.hair { stroke: #38bdf8; stroke-opacity: 0.55; stroke-width: 1; vector-effect: non-scaling-stroke; pointer-events: none; }
path.truth { stroke-width: 1.5; vector-effect: non-scaling-stroke; pointer-events: none; }
path.truth.found { stroke: #4ade80; } path.truth.missed { stroke: #f87171; } path.truth.away { display: none; }
.legend { margin-top: 8px; }
.key .swatch { display: inline-block; width: 14px; height: 10px; margin: 0 4px 0 12px; vertical-align: middle; }
.key .swatch.line { height: 0; border-top: 2px solid; } .key .swatch.dashed { border-top-style: dashed; }
.scroll { max-height: 440px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
#picks-table { width: 100%; }
#picks-table th { position: sticky; top: 0; background: var(--soft); cursor: pointer; user-select: none; text-align: right; padding: 5px 10px; border-bottom: 1px solid var(--line); }
#picks-table th[aria-sort=ascending]::after { content: " ▲"; } #picks-table th[aria-sort=descending]::after { content: " ▼"; }
#picks-table td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #eef1f4; }
#picks-table tbody tr { cursor: pointer; } #picks-table tbody tr:hover { background: #eef5ff; }
#picks-table tr.selected { background: #dbeafe; } #picks-table tr.false-positive td:last-child { color: #b42318; }
table.job th { text-align: left; color: var(--muted); font-weight: 500; padding: 3px 16px 3px 0; vertical-align: top; white-space: nowrap; }
table.job td { padding: 3px 0; word-break: break-all; }
`;

/** Text safe inside <script>…</script>: no closing tag, no comment opener. */
function scriptText(text: string): string {
  return text.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
}

/**
 * The report as one HTML file: the data as JSON, d3 and Observable Plot inlined, and the page's script. It loads
 * nothing (not even a favicon), so it opens the same from a cluster home folder, a mail attachment or offline.
 */
export function renderReportHtml(data: ReportData): string {
  // JSON inside a script element: "<" escaped, so no string in it can close the element.
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const libraries = browserLibraries().map((l) => `<script data-library="${escapeHtml(`${l.name}@${l.version}`)}">${scriptText(l.text)}</script>`);
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta name="generator" content="tme ${escapeHtml(data.tmeVersion)}">`,
    '<link rel="icon" href="data:,">',
    `<title>tme report: ${escapeHtml(data.title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    '<noscript><p>This report draws itself with JavaScript: allow scripts for this file.</p></noscript>',
    '<main id="report"></main>',
    `<script type="application/json" id="tme-report-data">${json}</script>`,
    ...libraries,
    `<script>(${scriptText(reportPage.toString())})();</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
