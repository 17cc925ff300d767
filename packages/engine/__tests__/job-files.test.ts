import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { matchTemplate, type MatchResult } from '../src/match';
import { ReferenceBackend } from '../src/reference-backend';
import { readJob, writeJob, JOB_FILES } from '../src/job-files';
import { CHECKPOINT_FILE, readCheckpoint, writeCheckpoint } from '../src/checkpoint';
import { ANGLES_HEADER, formatRotationTable, parseRotationTable } from '../src/angles';
import { blobTemplate, noiseVolume, rotationSet } from './helpers';

const rotations = rotationSet([['z', 0], ['z', 90], ['x', 33], ['y', 120], ['z', -150]]);
let dir: string;
let result: MatchResult;

beforeAll(async () => {
  const target = noiseVolume([8, 9, 10], 4, 3.5);
  target.origin = [10, 20, 30];
  result = await matchTemplate({ target, template: blobTemplate(5, 3.5), rotations, maskRadius: 7 }, { backend: new ReferenceBackend() });
});
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-job-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

describe('job directory', () => {
  it('writes the contract files and reads them back exactly', () => {
    fs.writeFileSync(path.join(dir, CHECKPOINT_FILE), 'stale');
    const record = writeJob(dir, result, { inputs: { target: 't.mrc', angularStep: 30 }, tmeVersion: '9.9.9' });
    expect(fs.readdirSync(dir).sort()).toEqual(['angles.tsv', 'job.json', 'rotations.mrc', 'scores.mrc']);
    const back = readJob(dir);
    expect(Buffer.from(back.scores.data.buffer).equals(Buffer.from(result.scores.data.buffer))).toBe(true);
    expect(Array.from(back.indices)).toEqual(Array.from(result.indices));
    expect(back.scores.shape).toEqual([8, 9, 10]);
    expect(back.scores.voxelSize).toEqual([3.5, 3.5, 3.5]);
    expect(back.scores.origin).toEqual([10, 20, 30]);
    for (let i = 0; i < rotations.length; i++) expect(back.rotations[i]).toBeCloseTo(rotations[i]!, 6);
    expect(back.record.tmeVersion).toBe('9.9.9');
    expect(back.record.inputs).toEqual({ target: 't.mrc', angularStep: 30 });
    expect(back.record.statistics.count).toBe(8 * 9 * 10 * 5);
    expect(back.record.statistics.perRotationMax).toHaveLength(5);
    expect(back.record.parameters.score).toBe('flc-sphere');
    expect(back.record.tilePlan.tiles).toHaveLength(1);
    expect(record.files).toEqual(JOB_FILES);
  });

  it('rotations.mrc is mode 2 with exact integers, as mrcfile reads it', () => {
    writeJob(dir, result);
    const script = `
import mrcfile, numpy as np, json, sys
with mrcfile.open(sys.argv[1], permissive=False) as m:
    d = m.data
    print(json.dumps([int(m.header.mode), list(d.shape), bool(np.all(d == np.round(d))), float(d.min()), float(d.max()), float(m.voxel_size.x)]))`;
    const out = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script, path.join(dir, 'rotations.mrc')]).toString()) as [number, number[], boolean, number, number, number];
    expect(out[0]).toBe(2);
    expect(out[1]).toEqual([8, 9, 10]);
    expect(out[2]).toBe(true);
    expect(out[3]).toBeGreaterThanOrEqual(0);
    expect(out[4]).toBeLessThanOrEqual(4);
    expect(out[5]).toBeCloseTo(3.5, 5);
  });

  it('angles.tsv holds RELION angles: scipy from_euler("ZYZ").as_matrix().T rebuilds each matrix', () => {
    const text = formatRotationTable(rotations);
    expect(text.split('\n')[0]).toBe(ANGLES_HEADER);
    const { angles } = parseRotationTable(text);
    const script = `
import json, sys
from scipy.spatial.transform import Rotation
a = json.loads(sys.stdin.read())
print(json.dumps([Rotation.from_euler('ZYZ', a[i:i+3], degrees=True).as_matrix().T.ravel().tolist() for i in range(0, len(a), 3)]))`;

// Small volumes, but the machine is shared: generous time per test.
jest.setTimeout(60_000);
    const mats = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(Array.from(angles)) }).toString()) as number[][];
    mats.forEach((m, r) => m.forEach((v, k) => expect(v).toBeCloseTo(rotations[9 * r + k]!, 6)));
  });

  it('readJob explains an unfinished or missing job', () => {
    expect(() => readJob(dir)).toThrow(/holds no tme job \(no job.json\)/);
    fs.writeFileSync(path.join(dir, 'checkpoint.bin'), '');
    expect(() => readJob(dir)).toThrow(/the job is not finished \(no job.json, a checkpoint\): continue it with the same command and --resume/);
    fs.rmSync(path.join(dir, 'checkpoint.bin'));
    expect(() => readJob(path.join(dir, 'nope'))).toThrow(/no such job folder/);
    fs.writeFileSync(path.join(dir, 'a-file'), '');
    expect(() => readJob(path.join(dir, 'a-file'))).toThrow(/is a file, not a job folder/);
    fs.rmSync(path.join(dir, 'a-file'));
    writeJob(dir, result);
    fs.writeFileSync(path.join(dir, 'angles.tsv'), 'index\trot\n');
    expect(() => readJob(dir)).toThrow(/expected the header/);
  });
});

describe('checkpoint file', () => {
  const state = (key: string) => ({
    key, tile: 1, done: [[0, 1]] as Array<[number, number]>, elapsedMs: 12, scores: Float32Array.from([1, -Infinity, 3]), indices: Int32Array.from([0, -1, 2]),
    rotationSum: Float64Array.from([1.5, 2]), rotationSumSq: Float64Array.from([3, 4]), rotationCount: Float64Array.from([3, 3]),
    rotationMax: Float32Array.from([0.5, -Infinity]), looseSum: 0.25, looseSumSq: 0.5, looseCount: 7,
  });

  it('round-trips every field', () => {
    writeCheckpoint(dir, state('abc'));
    expect(readCheckpoint(dir, 'abc', 3, 2)).toEqual(state('abc'));
    expect(readCheckpoint(path.join(dir, 'none'), 'abc', 3, 2)).toBeUndefined();
  });

  it('writes a prefix of done rotations as version 1 (older tme resumes it), other ranges as version 2', () => {
    writeCheckpoint(dir, state('abc'));
    const file = path.join(dir, CHECKPOINT_FILE);
    expect(fs.readFileSync(file).toString('ascii', 0, 8)).toBe('TMECKPT1');
    expect(fs.readFileSync(file).toString('utf8').includes('"rotation":1,')).toBe(true);
    // A tile split across devices: rotation 1 of 2 merged, rotation 0 still running when it was written.
    const split = { ...state('abc'), done: [[1, 2]] as Array<[number, number]> };
    writeCheckpoint(dir, split);
    expect(fs.readFileSync(file).toString('ascii', 0, 8)).toBe('TMECKPT2');
    expect(readCheckpoint(dir, 'abc', 3, 2)).toEqual(split);
    // Ranges past the rotation set are refused.
    fs.writeFileSync(file, fs.readFileSync(file).toString('latin1').replace('[[1,2]]', '[[1,3]]'), 'latin1');
    expect(() => readCheckpoint(dir, 'abc', 3, 2)).toThrow(/unreadable rotation ranges/);
  });

  it('rejects truncated files, other jobs and wrong sizes', () => {
    writeCheckpoint(dir, state('abc'));
    expect(() => readCheckpoint(dir, 'xyz', 3, 2)).toThrow(expect.objectContaining({ code: 'ERR_TME_MISMATCH' }));
    expect(() => readCheckpoint(dir, 'abc', 4, 2)).toThrow(/sizes do not match/);
    const file = path.join(dir, CHECKPOINT_FILE);
    fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 60));
    expect(() => readCheckpoint(dir, 'abc', 3, 2)).toThrow(expect.objectContaining({ code: 'ERR_TME_FORMAT' }));
    fs.writeFileSync(file, 'garbage!!!!!!!!');
    expect(() => readCheckpoint(dir, 'abc', 3, 2)).toThrow(/wrong magic/);
  });
});

