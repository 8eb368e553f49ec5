// Prints, for every entry of tests/corpus/canonical.json, the canonical bytes (hex) and the
// state hash the worker's canonical.mjs gives for JSON.parse(entry.json). Used by
// tests/devtools/test_canonical_js.py to compare with Python byte for byte. A second argument
// names another canonical module to use (the rdt-devtools package's, for its own test).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const module = process.argv[3] ? pathToFileURL(process.argv[3]).href : '../../replayer/js/canonical.mjs';
const { canonical, stateHash } = await import(module);

const corpus = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = {};
for (const group of ['same', 'beyond_safe']) {
  out[group] = corpus[group].map((entry) => {
    const value = JSON.parse(entry.json);
    return { name: entry.name, hex: Buffer.from(canonical(value), 'utf8').toString('hex'), hash: stateHash(value) };
  });
}
process.stdout.write(JSON.stringify(out));
