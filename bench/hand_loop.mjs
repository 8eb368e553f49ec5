// The baseline of bench/replay_js.py: a hand-written Node loop over the same events.
// Usage: node bench/hand_loop.mjs EVENTS.jsonl  → prints {"seconds", "cpu", "state"} as JSON.
// Reads the file, JSON.parse per line, the same reducer (bench/orders.mjs); the time covers the
// read, the parse and the reductions.
import { readFileSync } from "node:fs";
import { reducer } from "./orders.mjs";

const started = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
const text = readFileSync(process.argv[2], "utf8");
let state = reducer(undefined, { type: "@@INIT" });
let start = 0;
for (;;) {
  const end = text.indexOf("\n", start);
  if (end === -1) break;
  if (end > start) state = reducer(state, JSON.parse(text.slice(start, end)));
  start = end + 1;
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const used = process.cpuUsage(cpu0);
process.stdout.write(
  JSON.stringify({ seconds, cpu: (used.user + used.system) / 1e6, state }) + "\n",
);
