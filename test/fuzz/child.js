// Runs fuzz cases of one target in this process, one after another, and reports each on stdout: "start N" before,
// then "done N ok|rejected|crash <message>". The parent (fuzz.js) kills this process when a case runs past its
// budget (a hang) and starts another from the next case; a process that dies mid-case (out of memory) is a crash.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { TARGETS } = require('./targets.js');
const { mutate, hash } = require('./mutate.js');

const [name, fromText, toText, seedText] = process.argv.slice(2);
const target = TARGETS.find((t) => t.name === name);
if (!target) {
  process.stderr.write(`fuzz child: no target ${name}\n`);
  process.exit(2);
}
const { isTmeError } = require('@tme/formats');
const seeds = target.seeds();
const textual = !['mrc', 'em', 'bcif', 'rotation-npy'].includes(target.name);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tme-fuzz-${name}-`));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

async function main() {
  for (let i = Number(fromText); i < Number(toText); i++) {
    const seed = hash(seedText, name, String(i));
    const bytes = i === 0 ? seeds[0] : mutate(seed, seeds[seed % seeds.length], textual);
    const file = path.join(dir, `case${target.ext}`);
    fs.writeFileSync(file, bytes);
    process.stdout.write(`start ${i}\n`);
    let outcome = 'ok';
    try {
      await target.run(bytes, file);
    } catch (err) {
      outcome = isTmeError(err) && err.code !== 'ERR_TME_INTERNAL'
        ? 'rejected'
        : `crash ${(err && err.constructor && err.constructor.name) || 'Error'}: ${String(err && err.message ? err.message : err).split('\n')[0].slice(0, 200)}`;
    }
    process.stdout.write(`done ${i} ${outcome}\n`);
  }
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`fuzz child: ${err && err.stack ? err.stack : err}\n`);
  process.exit(3);
});
