// Prints, for every entry of tests/corpus/canonical.json, the canonical bytes (hex) and the
// state hash the worker's canonical.mjs gives for JSON.parse(entry.json). Used by
// tests/devtools/test_canonical_js.py to compare with Python byte for byte.
import { readFileSync } from 'node:fs';
import { canonical, stateHash } from '../../replayer/js/canonical.mjs';

const corpus = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = {};
for (const group of ['same', 'beyond_safe']) {
  out[group] = corpus[group].map((entry) => {
    const value = JSON.parse(entry.json);
    return { name: entry.name, hex: Buffer.from(canonical(value), 'utf8').toString('hex'), hash: stateHash(value) };
  });
}
process.stdout.write(JSON.stringify(out));
