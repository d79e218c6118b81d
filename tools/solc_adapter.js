#!/usr/bin/env node
// Lets py-solc-x (and so ape-solidity and Slither) drive solcjs, the official
// Solidity compiler built to WebAssembly, as if it were a native `solc` binary.
// No native solc can be downloaded on our machines; the npm package can.
//
// It answers the two calls they make:
//   solc --version
//   solc --standard-json [--base-path DIR] [--include-path DIR]... [--allow-paths A,B]
// Using the JS API (not the solcjs CLI) avoids the CLI's faults: it has no
// --allow-paths, prints ">>>" lines before the JSON, and loses output past 128 KiB
// when stdout is a pipe because it exits before the pipe drains.
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

function parseArguments(argv) {
  const options = { version: false, standardJson: false, basePath: null, searchPaths: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const argument = argv[i];
    if (argument === '--version') options.version = true;
    else if (argument === '--standard-json') options.standardJson = true;
    else if (argument === '--base-path') options.basePath = argv[++i];
    else if (argument === '--include-path') options.searchPaths.push(argv[++i]);
    else if (argument === '--allow-paths') options.searchPaths.push(...argv[++i].split(','));
    else if (argument !== '-') {
      throw new Error(`unsupported argument ${argument}: this adapter only serves --version and --standard-json`);
    }
  }
  // Slither's crytic-compile calls without --base-path; solc would then resolve
  // imports from the current directory, so do the same.
  options.basePath = path.resolve(options.basePath || process.cwd());
  return options;
}

function importReader(options) {
  const roots = [options.basePath, ...options.searchPaths.map((p) => path.resolve(p))];
  return (importPath) => {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.join(root, importPath));
    for (const candidate of candidates) {
      if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
        return { contents: fs.readFileSync(candidate, 'utf8') };
      }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(', ')})` };
  };
}

function main() {
  const options = parseArguments(process.argv.slice(2));
  if (options.version) {
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return;
  }
  if (!options.standardJson) {
    throw new Error('expected --version or --standard-json');
  }
  const input = fs.readFileSync(0, 'utf8');
  process.stdout.write(solc.compile(input, { import: importReader(options) }));
}

try {
  main();
} catch (error) {
  process.stderr.write(`solc adapter: ${error.message}\n`);
  process.exitCode = 1;
}
