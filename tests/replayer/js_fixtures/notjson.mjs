// Returns states JSON cannot carry, by event type; the rest copies event.state.
export function reducer(state = { ok: true }, event) {
  switch (event.type) {
    case 'nan': return { a: { b: NaN } };
    case 'inf': return { x: [1, -Infinity] };
    case 'undef-array': return { list: [1, undefined, 3] };
    case 'undef-prop': return { kept: 1, dropped: undefined };
    case 'undefined': return undefined;
    case 'map': return { m: new Map([[1, 2]]) };
    case 'set': return { s: new Set([1]) };
    case 'bigint': return { n: 10n };
    case 'fn': return { f() {} };
    case 'symbol': return { s: Symbol('x') };
    case 'date': return { when: new Date(0) };
    case 'cycle': { const a = { name: 'a' }; a.self = a; return { a }; }
    case 'lone': return { s: '\ud800' };
    case 'copy': return event.state;
    default: return state;
  }
}
