import * as fs from 'node:fs';
import { writeFileAtomic } from './atomic-write';
import { ioReason } from './binary-file';
import { TmeError, invalidOption } from './errors';

/** One `loop_` table: labels (without the leading underscore) in file order, rows of raw strings. */
export interface StarLoop {
  labels: string[];
  rows: string[][];
}

/** One `_key value` pair (key without the leading underscore). */
export interface StarPair {
  key: string;
  value: string;
}

/** One `data_NAME` block. Pairs and loops keep file order among themselves; pairs are written before loops. */
export interface StarBlock {
  /** The text after `data_` (may be ""). */
  name: string;
  /** The number of a `# version NNNNN` line before the block (RELION writes 30001, 50001), if any. */
  version?: string;
  /** Other comment lines met in or before the block, without `#`, in order (written before `data_`). */
  comments: string[];
  pairs: StarPair[];
  loops: StarLoop[];
}

export interface StarFile {
  blocks: StarBlock[];
}

/** Above this a STAR file would not fit one JavaScript string. */
const MAX_STAR_BYTES = 500 * 1024 * 1024;

interface Token { text: string; line: number; quoted: boolean }

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\v' || c === '\f';
}

/** Lines with none of these characters split on whitespace alone (the common case: RELION loop rows). */
const PLAIN_LINE = /^[^'"#;]*$/;
const WHITESPACE = /[ \t\r\v\f]+/;

/** Tokens as parallel arrays (millions of loop values must not each cost an object). */
class StarTokens {
  readonly texts: string[] = [];
  /** Indices of quoted tokens (rare: a set, not a flag per token). */
  private readonly quotedAt = new Set<number>();
  /** firstTokenOfLine[k] = index of the first token on line k + 1, for error messages. */
  private readonly firstTokenOfLine: number[] = [];
  /** Whole-line comments, each with the index of the token it comes before, in order. */
  readonly comments: { before: number; text: string }[] = [];

  constructor(text: string, private readonly file: string | undefined) {
    const lines = text.split('\n');
    for (let li = 0; li < lines.length; li++) {
      const line = lines[li]!;
      const lineNo = li + 1;
      this.firstTokenOfLine.push(this.texts.length);
      if (PLAIN_LINE.test(line)) {
        const trimmed = line.trim();
        if (trimmed !== '') {
          const parts = trimmed.split(WHITESPACE);
          for (let k = 0; k < parts.length; k++) this.texts.push(parts[k]!);
        }
        continue;
      }
      if (line.startsWith(';')) {
        // CIF text field: everything up to a line starting with ';' is one value.
        const parts = [line.slice(1)];
        let end = li + 1;
        while (end < lines.length && !lines[end]!.startsWith(';')) parts.push(lines[end++]!);
        if (end >= lines.length) this.fail(lineNo, 'text field opened with ";" is never closed');
        this.push(parts.join('\n').replace(/\r$/, ''), lineNo, true);
        // The lines the field spans start with this token too.
        while (li < end) { li++; this.firstTokenOfLine.push(this.texts.length - 1); }
        continue;
      }
      let i = 0;
      const n = line.length;
      while (i < n) {
        const c = line[i]!;
        if (isSpace(c)) { i++; continue; }
        if (c === '#') {
          // Whole-line comments are kept; trailing ones (RELION's "_label #3" column numbers) are not.
          if (line.slice(0, i).trim() === '') this.comment(line.slice(i + 1).replace(/\r$/, ''));
          break;
        }
        if (c === '"' || c === "'") {
          // A quote closes only when followed by whitespace or the end of the line (CIF 1.1 rule).
          let j = i + 1;
          while (j < n && !(line[j] === c && (j + 1 === n || isSpace(line[j + 1]!)))) j++;
          if (j >= n) this.fail(lineNo, `unterminated ${c === '"' ? 'double' : 'single'}-quoted string`);
          this.push(line.slice(i + 1, j), lineNo, true);
          i = j + 1;
          continue;
        }
        let j = i;
        while (j < n && !isSpace(line[j]!)) j++;
        this.push(line.slice(i, j), lineNo, false);
        i = j;
      }
    }
  }

  get length(): number { return this.texts.length; }

  at(i: number): Token | undefined {
    return i < this.texts.length ? { text: this.texts[i]!, line: this.lineOf(i), quoted: this.quotedAt.has(i) } : undefined;
  }

  /** 1-based line of token i (binary search: only needed for messages). */
  lineOf(i: number): number {
    let lo = 0;
    let hi = this.firstTokenOfLine.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.firstTokenOfLine[mid]! <= i) lo = mid; else hi = mid - 1;
    }
    return lo + 1;
  }

  private push(text: string, _line: number, quoted: boolean): void {
    if (quoted) this.quotedAt.add(this.texts.length);
    this.texts.push(text);
  }

  private comment(text: string): void {
    this.comments.push({ before: this.texts.length, text });
  }

  /** True when token i is an unquoted reserved word or label (ends a loop's values). */
  reserved(i: number): boolean {
    if (this.quotedAt.size > 0 && this.quotedAt.has(i)) return false;
    const t = this.texts[i]!;
    const c = t.charCodeAt(0);
    // Fast reject: only '_' and the letters d, l, s, g (either case) can start a reserved token.
    if (c !== 95 && c !== 100 && c !== 68 && c !== 108 && c !== 76 && c !== 115 && c !== 83 && c !== 103 && c !== 71) return false;
    return isReserved({ text: t, line: 0, quoted: false });
  }

  fail(line: number, problem: string): never {
    throw new TmeError('ERR_TME_FORMAT', `line ${line}: ${problem}`, { file: this.file });
  }
}

const isKeyword = (t: Token, word: string): boolean => !t.quoted && t.text.toLowerCase().startsWith(word);
const isLabel = (t: Token): boolean => !t.quoted && t.text.startsWith('_');
const isReserved = (t: Token): boolean => isKeyword(t, 'data_') || isKeyword(t, 'loop_') || isLabel(t)
  || isKeyword(t, 'save_') || isKeyword(t, 'global_') || isKeyword(t, 'stop_');

/** Parses STAR text (RELION's flavour of STAR/CIF). `file` names the source in errors. */
export function parseStar(text: string, file?: string): StarFile {
  if (text.includes('\0')) throw new TmeError('ERR_TME_FORMAT', 'not a STAR file: binary content (NUL bytes)', { file });
  const lex: StarTokens = new StarTokens(text, file);
  const blocks: StarBlock[] = [];
  let block: StarBlock | undefined;
  const pendingComments: string[] = [];
  let nextComment = 0;
  const takeComments = (upTo: number, _from: number): void => {
    while (nextComment < lex.comments.length && lex.comments[nextComment]!.before <= upTo) {
      pendingComments.push(lex.comments[nextComment++]!.text);
    }
  };
  let consumedComments = -1;
  let i = 0;
  const flushInto = (b: StarBlock | undefined, idx: number): void => {
    takeComments(idx, consumedComments + 1);
    consumedComments = idx;
    if (b === undefined) return;
    for (const c of pendingComments.splice(0)) b.comments.push(c);
  };
  while (i < lex.length) {
    const t = lex.at(i)!;
    if (isKeyword(t, 'data_')) {
      takeComments(i, consumedComments + 1);
      consumedComments = i;
      const comments = pendingComments.splice(0);
      let version: string | undefined;
      let vIdx = -1;
      comments.forEach((c, k) => { if (/^\s*version\s+\S+\s*$/.test(c)) vIdx = k; });
      if (vIdx >= 0) {
        version = /^\s*version\s+(\S+)/.exec(comments[vIdx]!)![1]!;
        comments.splice(vIdx, 1);
      }
      // Comments before a data_ line belong to that block (the writer puts them there).
      block = { name: t.text.slice(5), comments, pairs: [], loops: [] };
      if (version !== undefined) block.version = version;
      blocks.push(block);
      i++;
      continue;
    }
    if (block === undefined) lex.fail(t.line, `"${t.text.slice(0, 40)}" before the first data_ block`);
    flushInto(block, i);
    if (isKeyword(t, 'loop_')) {
      i++;
      const labels: string[] = [];
      while (i < lex.length && isLabel(lex.at(i)!)) labels.push(lex.texts[i++]!.slice(1));
      if (labels.length === 0) lex.fail(t.line, 'loop_ without labels');
      const first = i;
      while (i < lex.length && !lex.reserved(i)) i++;
      const count = i - first;
      if (count % labels.length !== 0) {
        lex.fail(lex.lineOf(i - (count % labels.length)), `loop in data_${block.name} has ${labels.length} labels but its last row has ${count % labels.length} values`);
      }
      const rows: string[][] = [];
      for (let r = first; r < i; r += labels.length) rows.push(lex.texts.slice(r, r + labels.length));
      block.loops.push({ labels, rows });
      flushInto(block, i - 1);
      continue;
    }
    if (isLabel(t)) {
      const v = lex.at(i + 1);
      if (v === undefined || isReserved(v)) lex.fail(t.line, `${t.text} has no value`);
      block.pairs.push({ key: t.text.slice(1), value: v.text });
      i += 2;
      flushInto(block, i - 1);
      continue;
    }
    lex.fail(t.line, `unexpected "${t.text.slice(0, 40)}" in data_${block.name} outside a loop`);
  }
  takeComments(lex.length, consumedComments + 1);
  if (block !== undefined) block.comments.push(...pendingComments.splice(0));
  if (blocks.length === 0) throw new TmeError('ERR_TME_FORMAT', 'not a STAR file: no data_ block', { file });
  return { blocks };
}

/** Reads a STAR file. */
export function readStar(path: string): StarFile {
  let text: string;
  try {
    const size = fs.statSync(path).size;
    if (size > MAX_STAR_BYTES) throw new TmeError('ERR_TME_UNSUPPORTED', `STAR file of ${size} bytes is larger than the ${MAX_STAR_BYTES} tme reads`, { file: path });
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof TmeError) throw err;
    throw new TmeError('ERR_TME_IO', `cannot read: ${ioReason(err)}`, { file: path, cause: err });
  }
  return parseStar(text, path);
}

const SIMPLE_VALUE = /^[^\s_#'"$;[\]]\S*$/;
const RESERVED_VALUE = /^(data_|loop_|save_|global_|stop_)/i;

/** A value as STAR text: quoted when empty, containing whitespace, or looking like syntax. */
export function quoteStarValue(value: string, file?: string): string {
  if (typeof value !== 'string') throw invalidOption('STAR value', 'a string', value, file);
  if (/[\n\r]/.test(value)) throw invalidOption('STAR value', 'a string without line breaks', value, file);
  if (SIMPLE_VALUE.test(value) && !RESERVED_VALUE.test(value)) return value;
  if (!/"(\s|$)/.test(value)) return `"${value}"`;
  if (!/'(\s|$)/.test(value)) return `'${value}'`;
  throw invalidOption('STAR value', 'a string that can be quoted', value, file);
}

function checkName(kind: string, name: string, file?: string): void {
  if (typeof name !== 'string' || /\s/.test(name)) throw invalidOption(kind, 'a name without whitespace', name, file);
}

/** STAR text for `star`: `# version` line, `data_` line, pairs, then loops with `_label #n` headers. */
export function formatStar(star: StarFile, file?: string): string {
  const out: string[] = [];
  for (const b of star.blocks) {
    checkName('block name', b.name, file);
    out.push('');
    for (const c of b.comments) out.push(`#${c}`);
    if (b.version !== undefined) out.push(`# version ${b.version}`);
    out.push('', `data_${b.name}`, '');
    if (b.pairs.length > 0) {
      const w = Math.max(...b.pairs.map((p) => p.key.length)) + 1;
      for (const p of b.pairs) {
        checkName('STAR key', p.key, file);
        out.push(`_${p.key.padEnd(w)} ${quoteStarValue(p.value, file)}`);
      }
      out.push('');
    }
    for (const loop of b.loops) {
      out.push('loop_');
      loop.labels.forEach((l, k) => { checkName('STAR label', l, file); out.push(`_${l} #${k + 1}`); });
      for (const row of loop.rows) {
        if (row.length !== loop.labels.length) {
          throw new TmeError('ERR_TME_INVALID_OPTION', `Expected ${loop.labels.length} values per row in data_${b.name} but received a row of ${row.length}`, { file });
        }
        out.push(row.map((v) => quoteStarValue(v, file)).join(' '));
      }
      out.push('');
    }
  }
  return `${out.join('\n')}\n`;
}

/** Writes a STAR file atomically. */
export function writeStar(path: string, star: StarFile): void {
  writeFileAtomic(path, formatStar(star, path));
}

/**
 * A number as RELION reads and writes it: fixed-point with `decimals` digits (default 6), never an exponent.
 * Integers (`decimals` 0) print without a point.
 */
export function formatStarNumber(value: number, decimals = 6): string {
  if (!Number.isFinite(value)) throw invalidOption('STAR number', 'a finite number', value);
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > 20) throw invalidOption('decimals', 'integer in [0, 20]', decimals);
  if (Math.abs(value) >= 1e21) throw invalidOption('STAR number', 'a number below 1e21 in magnitude', value);
  const s = value.toFixed(decimals);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** The block called `name` (without `data_`), or undefined. */
export function starBlock(star: StarFile, name: string): StarBlock | undefined {
  return star.blocks.find((b) => b.name === name);
}

/** The first loop of a block that has `label`, or undefined. */
export function starLoopWith(block: StarBlock, label: string): StarLoop | undefined {
  return block.loops.find((l) => l.labels.includes(label));
}

/** A column of a loop as strings. Throws ERR_TME_FORMAT when the label is missing. */
export function starColumn(loop: StarLoop, label: string, file?: string): string[] {
  const k = loop.labels.indexOf(label);
  if (k < 0) throw new TmeError('ERR_TME_FORMAT', `no column _${label} (labels: ${loop.labels.join(', ')})`, { file });
  return loop.rows.map((r) => r[k]!);
}

/** A column of a loop as numbers. Throws ERR_TME_FORMAT naming the first value that is not a number. */
export function starNumbers(loop: StarLoop, label: string, file?: string): Float64Array {
  const col = starColumn(loop, label, file);
  const out = new Float64Array(col.length);
  col.forEach((s, r) => {
    // RELION (C++ streams) writes non-finite values as nan / inf / -inf.
    const special = /^nan$/i.test(s) ? NaN : /^[+]?inf(inity)?$/i.test(s) ? Infinity : /^-inf(inity)?$/i.test(s) ? -Infinity : undefined;
    const v = special ?? Number(s);
    if (special === undefined && (s.trim() === '' || Number.isNaN(v))) {
      throw new TmeError('ERR_TME_FORMAT', `_${label} row ${r + 1} is "${s.slice(0, 40)}", not a number`, { file });
    }
    out[r] = v;
  });
  return out;
}
