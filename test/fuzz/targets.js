// What the fuzzer feeds: every reader and parser of a file a user hands tme, each called the way the CLI calls it
// (the parse and what the CLI does next with the result: tilts from metadata, a template simulated from a model,
// picks validated). Seeds are real files from the repository's fixtures, or written here by tme's own writers.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const formats = require('@tme/formats');
const template = require('@tme/template');
const peaks = require('@tme/peaks');
const rotations = require('@tme/rotations');
const exp = require('@tme/export');

const root = path.join(__dirname, '..', '..');
const fixture = (...p) => fs.readFileSync(path.join(root, ...p));
const templateFixture = (name) => fixture('packages', 'template', '__tests__', 'fixtures', name);

/** Small volumes written by tme's writers (MRC float32 and float16, EM), read back through a temporary file. */
function writtenVolume(ext, options) {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'tme-fuzz-seed-'));
  try {
    const file = path.join(dir, `seed${ext}`);
    const data = new Float32Array(6 * 5 * 4).map((_, i) => Math.sin(i) * 3);
    formats.writeVolume(file, formats.createVolume(data, [6, 5, 4], [4.5, 4.5, 4.5]), options);
    return fs.readFileSync(file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function dynamoSeed() {
  const rotation = new Float64Array([0, -1, 0, 1, 0, 0, 0, 0, 1]);
  const picks = [
    { position: [10, 20, 30], rotation, score: 0.4 },
    { position: [5.5, 6.25, 7], rotation: new Float64Array([1, 0, 0, 0, 1, 0, 0, 0, 1]), score: 0.3, detail: 2 },
  ];
  return Buffer.from(exp.formatDynamoTable(picks));
}

function quaternionNpy() {
  const header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }";
  const padded = header.padEnd(128 - 10 - 1, ' ') + '\n';
  const h = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(h, 0);
  h[6] = 1; h[7] = 0;
  h.writeUInt16LE(padded.length, 8);
  const data = Buffer.alloc(8 * 12);
  [0, 0, 0, 1, 0.5, 0.5, 0.5, 0.5, 0, 0.7071, 0, 0.7071].forEach((v, i) => data.writeDoubleLE(v, 8 * i));
  return Buffer.concat([h, Buffer.from(padded, 'latin1'), data]);
}

const text = (b) => b.toString('utf8');

/**
 * Each target: a name, its seeds, the file extension its reader dispatches on, and `run(bytes, file)` that does
 * what tme does with such a file. A TmeError is a clean refusal; anything else thrown is a crash.
 */
const TARGETS = [
  { name: 'mrc', ext: '.mrc', seeds: () => [writtenVolume('.mrc'), writtenVolume('.mrc', { mode: 12 }), writtenVolume('.mrc', { nstart: [1, 2, 3], labels: ['a', 'b'] })], run: (_b, file) => formats.readVolume(file) },
  { name: 'em', ext: '.em', seeds: () => [writtenVolume('.em')], run: (_b, file) => formats.readVolume(file) },
  ...['pdb', 'cif', 'bcif'].map((ext) => ({
    name: ext, ext: `.${ext}`, async: true,
    seeds: () => [fixture('packages', 'formats', '__tests__', 'fixtures', `two-models.${ext}`)],
    // As `tme match --template model.pdb` against a 96-voxel target at 5 Å: the model simulated, its box bounded.
    run: async (_b, file) => {
      const model = await formats.readStructure(file);
      if (model.x.length > 0) template.simulateDensity(model, { voxelSize: 5, unknownElements: 'carbon', maxEdge: 96, file });
    },
  })),
  { name: 'star', ext: '.star', seeds: () => [fixture('packages', 'export', '__tests__', 'fixtures', 'peer128_flcs_a15.relion4.star'), fixture('packages', 'export', '__tests__', 'fixtures', 'peer128_flcs_a15.relion5.star')],
    run: (b, file) => exp.readStarPicks(formats.parseStar(text(b), file), {}, file) },
  { name: 'relion5-tomograms', ext: '.star', seeds: () => [templateFixture('tomograms.star')],
    run: (b, file) => {
      const rows = template.parseRelionTomograms(text(b), { file });
      const row = template.selectRelionTomogram(rows, { name: rows[0]?.name }, { file });
      template.relionMicroscope(row);
    } },
  { name: 'relion5-tilt-series', ext: '.star', seeds: () => [templateFixture('TS_01.star')],
    run: (b, file) => template.tiltsFromRelion({ name: '' }, template.parseRelionTiltSeries(text(b), { file })) },
  { name: 'tlt', ext: '.tlt', seeds: () => [templateFixture('ts01.rawtlt'), templateFixture('ts01_two_columns.tlt')],
    run: (b, file) => template.buildTilts({ angles: template.parseTiltAngles(text(b), { file }) }) },
  { name: 'dose', ext: '.txt', seeds: () => [templateFixture('ts01_dose.txt')], run: (b, file) => template.parseDoseFile(text(b), { file }) },
  { name: 'mdoc', ext: '.mdoc', seeds: () => [templateFixture('ts01.mrc.mdoc'), templateFixture('ts01_200kV.mrc.mdoc')],
    run: (b, file) => { const m = template.parseMdoc(text(b), { file }); template.tiltsFromMdoc(m); template.mdocMicroscope(m); } },
  { name: 'imod-defocus', ext: '.defocus', seeds: () => [templateFixture('ts01_v2.defocus'), templateFixture('ts01_v3.defocus')],
    run: (b, file) => template.imodDefocusPerView(template.parseImodDefocus(text(b), { file }), 10) },
  { name: 'ctffind', ext: '.txt', seeds: () => [templateFixture('ts01_ctffind.txt')],
    run: (b, file) => { const r = template.parseCtffind(text(b), { file }); template.ctffindMicroscope(r); } },
  { name: 'warp-xml', ext: '.xml', seeds: () => [templateFixture('TS_01.xml'), templateFixture('TS_01_inverted.xml')],
    run: (b, file) => { const x = template.parseWarpXml(text(b), { file }); template.tiltsFromWarp(x); template.warpMicroscope(x); } },
  { name: 'orientations-tsv', ext: '.tsv', seeds: () => [fixture('packages', 'export', '__tests__', 'fixtures', 'peer128_flcs_a15.orientations.tsv')],
    run: (b, file) => peaks.parseOrientationsTsv(text(b), file) },
  { name: 'dynamo-tbl', ext: '.tbl', seeds: () => [dynamoSeed()], run: (b, file) => exp.validatePicks(exp.parseDynamoTable(text(b), file)) },
  { name: 'rotation-list', ext: '.txt', seeds: () => [Buffer.from('0 0 0\n10 20 30\n-45 90 180\n'), Buffer.from('1 0 0 0 1 0 0 0 1\n0 -1 0 1 0 0 0 0 1\n')],
    // Every convention; refused only when all three refuse.
    run: (b, file) => {
      const refusals = [];
      for (const convention of ['relion', 'pytme', 'matrix']) {
        try { rotations.readRotationList(text(b), convention, file); } catch (err) { if (!formats.isTmeError(err)) throw err; refusals.push(err); }
      }
      if (refusals.length === 3) throw refusals[0];
    } },
  { name: 'rotation-npy', ext: '.npy', seeds: () => [quaternionNpy()],
    run: (b, file) => { const a = formats.parseNpy(new Uint8Array(b), file); rotations.rotationsFromQuaternionArray(a.shape, Float64Array.from(a.data), file); } },
];

module.exports = { TARGETS };
