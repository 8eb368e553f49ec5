// The state is the last event, exactly as the reducer received it.
export function reducer(state = null, event) {
  return event.type === '@@INIT' ? state : { event, isFrozen: Object.isFrozen(event) };
}
