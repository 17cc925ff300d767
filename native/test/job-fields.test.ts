import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

// The TypeScript job types and the C++ readers that take them apart are two statements of one contract: a field added
// on one side only is either ignored by the addon or never sent by TypeScript. These tests fail when they differ.

const addon = fs.readFileSync(path.join(__dirname, '..', 'src', 'addon.cc'), 'utf8');
const typesFile = path.join(__dirname, '..', 'lib', 'types.ts');

/** The top-level field names a C++ reader takes from its object `o` (nested objects such as outputRegion's are its). */
function fieldsReadBy(signature: string): string[] {
  const start = addon.indexOf(signature);
  if (start < 0) throw new Error(`addon.cc has no ${signature}`);
  const end = addon.indexOf('\n}\n', start);
  const body = addon.slice(start, end);
  const names = new Set<string>();
  const patterns = [
    /\bo\.Get\("([A-Za-z]+)"\)/g,
    /\bread(?:Int|Finite)\(o, "([A-Za-z]+)"/g,
    /\b(?:read|view)Typed<[^>]+>\(o, "([A-Za-z]+)"/g,
  ];
  for (const re of patterns) for (const m of body.matchAll(re)) names.add(m[1] as string);
  return [...names].sort();
}

/** The property names of an exported interface of types.ts. */
function fieldsOf(name: string): string[] {
  const source = ts.createSourceFile(typesFile, fs.readFileSync(typesFile, 'utf8'), ts.ScriptTarget.Latest, true);
  const found = source.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name);
  if (!found) throw new Error(`types.ts has no interface ${name}`);
  return found.members.filter(ts.isPropertySignature).map((m) => (m.name as ts.Identifier).text).sort();
}

describe('the TypeScript job types are the C++ readers’ fields, one for one', () => {
  it.each([
    ['NativeMatchJob', 'MatchJob readJob('],
    ['NativeOrientationJob', 'OrientationJob readOrientationJob('],
    ['MatchMemoryQuery', 'Napi::Value EstimateMatchMemory('],
  ])('%s ⇔ %s', (type, reader) => {
    expect(fieldsOf(type)).toEqual(fieldsReadBy(reader));
  });

  it('would notice a field on one side only', () => {
    expect(fieldsReadBy('MatchJob readJob(')).toContain('keepSetup');
    expect(fieldsOf('NativeMatchJob')).toContain('keepSetup');
    expect(fieldsOf('NativeMatchJob')).not.toEqual([...fieldsReadBy('MatchJob readJob('), 'extra'].sort());
  });
});
