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
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
