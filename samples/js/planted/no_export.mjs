// Planted: exports a reducer under another name (`reduce`) and no default, so `:reducer` and
// `:default` are missing exports.

import { reducer as twin } from '../sales_order.mjs'

export const reduce = twin
