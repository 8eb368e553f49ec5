// The order-stream reducer of bench/orders.py, in JavaScript, for bench/replay_js.py.
// Bounded state (open orders only; submitted ones fold into totals); the same states as the
// Python twin for the same events.

export function reducer(state, event) {
  if (state === undefined || state === null) {
    state = { orders: {}, submitted: 0, revenue: 0, refunds_negative: 0 };
  }
  switch (event.type) {
    case "order/created": {
      const order = { customer: event.customer, lines: {}, total: 0 };
      return { ...state, orders: { ...state.orders, [event.id]: order } };
    }
    case "order/line-added": {
      const old = state.orders[event.order];
      const amount = event.qty * event.price;
      const line = { sku: event.sku, qty: event.qty, price: event.price };
      const order = { ...old, lines: { ...old.lines, [event.sku]: line }, total: old.total + amount };
      return { ...state, orders: { ...state.orders, [event.order]: order } };
    }
    case "order/submitted": {
      const orders = { ...state.orders };
      const order = orders[event.order];
      delete orders[event.order];
      return {
        ...state,
        orders,
        submitted: state.submitted + 1,
        revenue: state.revenue + order.total,
        refunds_negative: state.refunds_negative + (order.total < 0 ? 1 : 0),
      };
    }
    default:
      return state;
  }
}

export default reducer;
