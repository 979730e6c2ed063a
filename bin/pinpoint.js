#!/usr/bin/env node
// Entry point. Pinpoint runs on Node 24 LTS, which loads the TypeScript sources directly
// (type stripping); `npm install` provides Node 24 in node_modules/.bin for npm scripts and npx.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `pinpoint needs Node 24 or newer (this is ${process.version}).\n` +
      'Run it through npm (npm start, npx pinpoint …), which uses the Node 24 installed by `npm install`.\n',
  );
  process.exit(3);
}
// V8 allocation-site pretenuring misjudges a proxy: once the heap holds the config, schemas and
// modules (tens of MB), it starts promoting per-request objects (headers, buffers, handler state)
// that die a few ms later, so every scavenge copies ~13 MB and takes ~20 ms instead of ~2 ms, and
// mark-compacts follow. Off, the young generation stays young: +18 % req/s and a p99 from ~45 to
// ~15 ms on the bare proxy (docs/runtime.md, docs/benchmarks.md). Set before anything is allocated.
const { setFlagsFromString } = await import('node:v8');
if (process.env.PINPOINT_V8_PRETENURING !== '1') setFlagsFromString('--no-allocation-site-pretenuring');
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
