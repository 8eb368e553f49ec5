// Imports a sibling local module.
import { step } from './helpers.mjs';
export function reducer(state = { n: 0 }, event) {
  return event.type === '@@INIT' ? state : { n: state.n + step };
}
