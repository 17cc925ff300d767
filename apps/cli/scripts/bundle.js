#!/usr/bin/env node
// `pnpm bundle`: one portable tme for Linux x86-64 (glibc ≥ Debian 12's), for cluster nodes without root, apt or
// Node.js. It packs the built workspace (run `pnpm build` first):
//   bin/tme                      a POSIX sh launcher: the bundled Node.js runs the bundled CLI
//   lib/node                     the Node.js runtime this machine runs (stripped)
//   lib/tme.js                   the CLI and every workspace package and npm dependency in one file (esbuild), the
//                                report's browser libraries (d3, Observable Plot) inlined as text
//   lib/gpu-check.js, bin/tme-gpu-check   the GPU check (test/gpu/check.js, check.sh): agreement, example, benchmark
//   lib/tme.node                 the native addon; RUNPATH $ORIGIN finds the FFTW3f beside it
//   lib/libfftw3f*.so.3          the CPU path's FFT library (a GPU node rarely has it)
//   lib/vulkan/libvulkan.so.1    a Vulkan loader, opened only when the system has none (the system's knows its drivers)
//   data/1tii.pdb                the molecule `tme example` simulates
// into dist-bundle/tme-<version>-linux-x64.tar.xz (or --out DIR). --dir-only leaves the folder unpacked (tests).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..', '..');
const cli = path.join(root, 'apps', 'cli');
const version = require(path.join(cli, 'package.json')).version;

function fail(message) {
  process.stderr.write(`pnpm bundle: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { out: path.join(root, 'dist-bundle'), dirOnly: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out' && argv[i + 1]) args.out = path.resolve(argv[++i]);
    else if (a === '--dir-only') args.dirOnly = true;
    else fail(`Expected --out DIR or --dir-only but received ${a}`);
  }
  return args;
}

/** The file a shared object's soname resolves to for `binary` (from ldd), or fails naming the library. */
function resolvedLibraries(binary) {
  const text = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const found = new Map();
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+) => (\/\S+)/.exec(line);
    if (m) found.set(m[1], m[2]);
  }
  return found;
}

function copyStripped(from, to, mode) {
  fs.copyFileSync(fs.realpathSync(from), to);
  fs.chmodSync(to, mode);
  // Debug sections are most of an unstripped node (and of the addon's static glslang); the archive need not carry them.
  try {
    execFileSync('strip', ['--strip-unneeded', to], { stdio: 'ignore' });
  } catch {
    /* no binutils: ship it unstripped */
  }
}

/**
 * The report's browser libraries (d3, Observable Plot) are read from node_modules at run time, and the bundle has no
 * node_modules: its copy of @tme/report's libraries module holds their text instead.
 */
const inlineReportLibraries = {
  name: 'inline-report-libraries',
  setup(build) {
    const file = path.join(root, 'packages', 'report', 'dist', 'libraries.js');
    build.onLoad({ filter: /[\\/]libraries\.js$/ }, (args) => {
      if (path.resolve(args.path) !== file) return undefined;
      const libraries = require(file).browserLibraries();
      return { contents: `"use strict";\nconst libraries = ${JSON.stringify(libraries)};\nexports.browserLibraries = () => libraries;\n`, loader: 'js' };
    });
  },
};

/** A program and everything it requires, as one CommonJS file for the bundled Node.js. */
function oneFile(entry, outfile) {
  return require('esbuild').build({
    entryPoints: [entry], bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile, legalComments: 'none', logLevel: 'error',
    plugins: [inlineReportLibraries],
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const main = path.join(cli, 'dist', 'main.js');
  const addon = path.join(root, 'native', 'build', 'Release', 'tme.node');
  for (const f of [main, addon]) if (!fs.existsSync(f)) fail(`${path.relative(root, f)} is missing: run pnpm build first`);
  if (process.platform !== 'linux' || process.arch !== 'x64') fail(`builds linux-x64 bundles only (this is ${process.platform}-${process.arch})`);

  const name = `tme-${version}-linux-x64`;
  const stage = path.join(args.out, name);
  fs.rmSync(stage, { recursive: true, force: true });
  for (const d of ['bin', 'lib/vulkan', 'data']) fs.mkdirSync(path.join(stage, d), { recursive: true });

  // The whole CLI in one file. The addon is loaded by path at run time (@tme/native), so esbuild leaves it out.
  await oneFile(main, path.join(stage, 'lib', 'tme.js'));

  // The GPU check (test/gpu/check.sh runs it) needs nothing but the bundle either.
  await oneFile(path.join(root, 'test', 'gpu', 'check.js'), path.join(stage, 'lib', 'gpu-check.js'));
  fs.copyFileSync(path.join(root, 'test', 'gpu', 'check.sh'), path.join(stage, 'bin', 'tme-gpu-check'));
  fs.chmodSync(path.join(stage, 'bin', 'tme-gpu-check'), 0o755);

  copyStripped(process.execPath, path.join(stage, 'lib', 'node'), 0o755);
  copyStripped(addon, path.join(stage, 'lib', 'tme.node'), 0o755);
  const libs = resolvedLibraries(addon);
  for (const soname of ['libfftw3f.so.3', 'libfftw3f_threads.so.3']) {
    const file = libs.get(soname);
    if (!file) fail(`ldd does not resolve ${soname} for native/build/Release/tme.node`);
    fs.copyFileSync(fs.realpathSync(file), path.join(stage, 'lib', soname));
  }
  // The loader the addon opens here (the addon itself reports it): the bundle's fallback for a node without one.
  process.env['TME_NATIVE_PATH'] = addon;
  const loader = require(path.join(root, 'native')).vulkanRuntime().loader;
  if (!loader) fail('no Vulkan loader on this machine to bundle (Debian: libvulkan1)');
  fs.copyFileSync(fs.realpathSync(loader), path.join(stage, 'lib', 'vulkan', 'libvulkan.so.1'));

  fs.copyFileSync(path.join(root, 'packages', 'template', 'data', '1tii.pdb'), path.join(stage, 'data', '1tii.pdb'));
  fs.copyFileSync(path.join(root, 'LICENSE'), path.join(stage, 'LICENSE'));
  const launcher = [
    '#!/bin/sh',
    '# tme, portable: the bundled Node.js runs the bundled CLI; of the system it needs glibc and libstdc++ only.',
    'here=$(dirname "$(readlink -f "$0")")',
    'exec "$here/../lib/node" "$here/../lib/tme.js" "$@"',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(stage, 'bin', 'tme'), launcher, { mode: 0o755 });
  const { fftw, vkfft } = require(path.join(root, 'native')).nativeVersions();
  fs.writeFileSync(path.join(stage, 'VERSIONS'), [
    `tme ${version}`, `node ${process.version}`, `fftw ${fftw}`, `vkfft ${vkfft}`,
    `vulkan loader ${path.basename(fs.realpathSync(loader))} (used only when the system has none)`, '',
  ].join('\n'));

  if (args.dirOnly) {
    process.stdout.write(`${stage}\n`);
    return;
  }
  const archive = path.join(args.out, `${name}.tar.xz`);
  const partial = `${archive}.${process.pid}.tmp`;
  try {
    execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-C', args.out, '-cJf', partial, name], {
      env: { ...process.env, XZ_OPT: '-6 -T0' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    fs.renameSync(partial, archive);
  } finally {
    fs.rmSync(partial, { force: true });
    fs.rmSync(stage, { recursive: true, force: true });
  }
  const mib = fs.statSync(archive).size / 2 ** 20;
  process.stdout.write(`${archive} (${mib.toFixed(1)} MiB)\n`);
}

main().catch((err) => fail(err instanceof Error ? err.message : String(err)));
