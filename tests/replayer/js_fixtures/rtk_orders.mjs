// Redux Toolkit (Immer) reducers, for the mutation guard's clean pass. Needs @reduxjs/toolkit
// resolvable from where this file is copied (tests link samples/js/node_modules beside it).
import { combineReducers, createReducer, createSlice } from '@reduxjs/toolkit';

const orders = createSlice({
  name: 'orders',
  initialState: { byId: {}, count: 0 },
  reducers: {},
  extraReducers: (builder) =>
    builder
      .addCase('order/created', (state, event) => {
        state.byId[event.id] = { id: event.id, lines: [] };
        state.count += 1;
      })
      .addCase('line/added', (state, event) => {
        state.byId[event.id].lines.push({ sku: event.sku });
      }),
});

const seen = createReducer({ n: 0 }, (builder) =>
  builder.addDefaultCase((state) => {
    state.n += 1;
  }),
);

export const reducer = combineReducers({ orders: orders.reducer, seen });
