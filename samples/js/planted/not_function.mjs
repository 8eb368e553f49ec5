// Planted: exports an object as `reducer` (and as default): not a function.

export const reducer = { orders: {}, count: 0 }

export default reducer
