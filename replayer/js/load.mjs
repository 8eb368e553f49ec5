// Loading the reducer and collecting its identity.
//
// loadReducer(path, name) imports the file (ES module or CommonJS, as Node decides from its
// extension and the nearest package.json), follows the dotted export name, and returns
// {reducer, identity}. Every problem is a LoadFailure whose message is one line.
//
// The identity is a JSON text that changes when the reducer file, any local module it loads
// (ES modules seen by a module.register() load hook, CommonJS files in require.cache), the
// nearest package.json of the reducer (it decides how .js files load), or the name@version of
// any package under node_modules that it loads changes; it also names the Node version.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const HERE = dirname(fileURLToPath(import.meta.url));
const NODE_MODULES = `${sep}node_modules${sep}`;

export class LoadFailure extends Error {}

function oneLine(text) {
  return String(text).split(/\s+/).filter(Boolean).join(' ');
}

function shortPath(text) {
  return text.startsWith('file://') ? fileURLToPath(text) : text;
}

/** Where a load error happened, from its stack: "file:line" or null. */
export function errorLocation(error) {
  const stack = typeof error?.stack === 'string' ? error.stack : '';
  const first = stack.split('\n', 1)[0];
  const head = /^((?:file:\/\/)?\/.*):(\d+)$/.exec(first);
  if (head) return `${shortPath(head[1])}:${head[2]}`;
  for (const line of stack.split('\n')) {
    const frame = /(?:\(|^at )((?:file:\/\/)?\/[^()]+?):(\d+):\d+\)?$/.exec(line.trim());
    if (frame) return `${shortPath(frame[1])}:${frame[2]}`;
  }
  return null;
}

/** Where a SyntaxError is, for ES modules (Node 20 gives no location): `node --check` each. */
function syntaxLocation(files) {
  for (const file of [...files].reverse()) {
    if (file.includes(NODE_MODULES) && files.length > 1) continue;
    const run = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10000 });
    if (run.status === 0) continue;
    const first = (run.stderr || '').split('\n', 1)[0];
    const head = /^(.*):(\d+)$/.exec(first);
    if (head) return `${shortPath(head[1])}:${head[2]}`;
  }
  return null;
}

function describeError(error, loadedFiles) {
  if (error instanceof Error) {
    const name = error.name || 'Error';
    let message = oneLine(error.message);
    if (error.code === 'ERR_MODULE_NOT_FOUND' || error.code === 'MODULE_NOT_FOUND') {
      message = message.replace(/ Require stack:.*$/, '');
      return `${name}: ${message}`;
    }
    let where = errorLocation(error);
    if (where === null && error.name === 'SyntaxError') where = syntaxLocation(loadedFiles());
    return where ? `${name}: ${message} (at ${where})` : `${name}: ${message}`;
  }
  return `threw ${typeof error} ${oneLine(String(error))}`;
}

function kindOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  if (type === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`;
  return `a ${type}`;
}

function follow(namespace, name, label) {
  const parts = name.split('.');
  let target;
  const first = parts[0];
  const fallback = namespace.default;
  if (first in namespace) {
    target = namespace[first];
  } else if (fallback !== null && (typeof fallback === 'object' || typeof fallback === 'function') && first in fallback) {
    target = fallback[first]; // CommonJS whose named exports Node could not detect
  } else {
    throw new LoadFailure(`${label} has no export ${JSON.stringify(first)}`);
  }
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i];
    if (target === null || (typeof target !== 'object' && typeof target !== 'function') || !(part in target)) {
      throw new LoadFailure(`${label} has no export ${JSON.stringify(parts.slice(0, i + 1).join('.'))}`);
    }
    target = target[part];
  }
  if (typeof target !== 'function') throw new LoadFailure(`${name} is ${kindOf(target)}, not a function`);
  return target;
}

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

function packageOf(path) {
  const at = path.lastIndexOf(NODE_MODULES);
  const rest = path.slice(at + NODE_MODULES.length).split(sep);
  const name = rest[0].startsWith('@') ? `${rest[0]}${sep}${rest[1]}` : rest[0];
  return path.slice(0, at + NODE_MODULES.length) + name;
}

function nearestPackageJson(file) {
  let folder = dirname(file);
  for (;;) {
    const candidate = join(folder, 'package.json');
    try {
      return [candidate, readFileSync(candidate)];
    } catch {
      const up = dirname(folder);
      if (up === folder || folder.endsWith(`${sep}node_modules`)) return null;
      folder = up;
    }
  }
}

/** The identity JSON text for a reducer at `file`, exported as `name`, given the loaded files. */
export function identityOf(file, name, loaded) {
  const modules = new Map();
  const packages = new Set();
  const roots = new Map();
  for (const path of loaded) {
    if (path.startsWith(HERE + sep)) continue;
    if (path.includes(NODE_MODULES)) {
      const root = packageOf(path);
      if (!roots.has(root)) {
        let label;
        try {
          const meta = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
          label = `${meta.name}@${meta.version}`;
        } catch {
          label = `${root}@unknown`;
        }
        roots.set(root, label);
      }
      packages.add(roots.get(root));
      continue;
    }
    try {
      modules.set(path, sha256(readFileSync(path)));
    } catch {
      modules.set(path, 'unreadable');
    }
  }
  const manifest = nearestPackageJson(file);
  if (manifest && !manifest[0].includes(NODE_MODULES)) modules.set(manifest[0], sha256(manifest[1]));
  return JSON.stringify({
    format: 1,
    node: process.version,
    export: name,
    modules: [...modules.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
    packages: [...packages].sort(),
  });
}

/** Import `file` and return {reducer, identity}; throws LoadFailure (one line) on any problem. */
export async function loadReducer(file, name) {
  const { port1, port2 } = new MessageChannel();
  register(new URL('./hooks.mjs', import.meta.url), { data: { port: port2 }, transferList: [port2] });
  const label = file;
  const loaded = new Set([file]);
  const collect = () => {
    for (let message; (message = receiveMessageOnPort(port1)); ) {
      try {
        loaded.add(fileURLToPath(message.message));
      } catch {
        // not a file URL
      }
    }
    return [...loaded];
  };
  let namespace;
  try {
    namespace = await import(pathToFileURL(file).href);
  } catch (error) {
    throw new LoadFailure(describeError(error, collect));
  }
  collect();
  port1.close();
  for (const path of Object.keys(require.cache)) loaded.add(path);
  const reducer = follow(namespace, name, label);
  return { reducer, identity: identityOf(file, name, loaded) };
}
