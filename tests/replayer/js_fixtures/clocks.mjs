// Calls a clock or random source, named by the event type, and stores the result's type.
import nodeCrypto, { randomUUID as importedUUID } from 'node:crypto';
export function reducer(state = { calls: 0 }, event) {
  let out;
  switch (event.type) {
    case 'math.random': out = Math.random(); break;
    case 'date.now': out = Date.now(); break;
    case 'new-date': out = new Date().getTime(); break;
    case 'date-call': out = Date(); break;
    case 'date-arg': out = new Date(0).getTime(); break;
    case 'performance.now': out = performance.now(); break;
    case 'hrtime': out = process.hrtime()[0]; break;
    case 'hrtime.bigint': out = Number(process.hrtime.bigint() > 0n); break;
    case 'crypto.randomUUID': out = crypto.randomUUID(); break;
    case 'crypto.getRandomValues': out = crypto.getRandomValues(new Uint8Array(4)).length; break;
    case 'node.randomUUID': out = nodeCrypto.randomUUID(); break;
    case 'node.imported': out = importedUUID(); break;
    case 'node.getRandomValues': out = nodeCrypto.getRandomValues(new Uint8Array(4)).length; break;
    default: return state;
  }
  return { calls: state.calls + 1, last: typeof out };
}
