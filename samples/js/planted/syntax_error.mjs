// Planted: does not parse (a missing closing brace and a stray token): loading it must fail with
// one clear line naming this file.

export function reducer(state, event) {
  if (event.type === 'order/created' {
    return state
  ]
