/**
 * Micro-benchmark: what one inbound control frame costs the relay to parse. For adversarial frames of
 * (just under) the 64 KiB inbound limit, times `parseControl(text)` against the floor, a plain
 * `JSON.parse(text)` of the same text (inside try/catch, so invalid JSON costs its throw), and prints
 * the ratio per frame, then the costliest frame against the costliest floor: what a client inside the
 * 5 msg/s limit can buy with a cleverly built frame (issue 12 point 3: the id-preserving reviver made
 * some frames cost 40 times their JSON.parse).
 *
 *   node bench/control-parse.ts [iterations=40] [rounds=15]
 *
 * Not a test: absolute figures vary by machine; the ratios are the figures to compare. Rounds
 * alternate floor and subject so neither benefits from ordering; the fastest round of each counts (on
 * a shared machine the others measure the neighbours).
 */
import { parseControl } from '../src/relay/protocol.ts';

const ITERATIONS = Number(process.argv[2] ?? 40);
const ROUNDS = Number(process.argv[3] ?? 15);
const LIMIT = 64 * 1024;

/** `head` + as many `unit`s as fit (joined by `sep`) + `tail`, within the 64 KiB frame limit. */
function fill(head: string, unit: string, sep: string, tail: string): string {
  const room = LIMIT - Buffer.byteLength(head) - Buffer.byteLength(tail);
  const n = Math.floor((room + sep.length) / (Buffer.byteLength(unit) + sep.length));
  return head + Array.from({ length: n }, () => unit).join(sep) + tail;
}

/** Nesting `[[[…]]]` as deep as fits. */
function nested(head: string, tail: string): string {
  const depth = Math.floor((LIMIT - head.length - tail.length) / 2);
  return head + '['.repeat(depth) + ']'.repeat(depth) + tail;
}

// The id comes last so an id-source scan has to cross everything before it; a big id (past 2^53) is
// the case that needs its exact source text.
const BIG = '9223372036854775807';
const frames: [string, string][] = [
  ['numbers in params', fill('{"method":"SUBSCRIBE","params":[', '1', ',', `],"id":${BIG}}`)],
  ['short strings in params', fill('{"method":"SUBSCRIBE","params":[', '"a"', ',', `],"id":${BIG}}`)],
  ['empty arrays in params', fill('{"method":"SUBSCRIBE","params":[', '[]', ',', `],"id":${BIG}}`)],
  ['objects with ids in params', fill('{"method":"SUBSCRIBE","params":[', '{"id":1}', ',', `],"id":${BIG}}`)],
  ['thousands of top-level keys', fill('{', '"k":0', ',', `,"method":"SUBSCRIBE","params":[],"id":${BIG}}`)],
  ['thousands of keys, [] values', fill('{', '"k":[]', ',', `,"method":"SUBSCRIBE","params":[],"id":${BIG}}`)],
  ['plain and nested members in turn', fill('{', '"k":0,"a":[]', ',', `,"method":"SUBSCRIBE","params":[],"id":${BIG}}`)],
  ['thousands of "id" string values', fill('{', '"k":"id"', ',', `,"method":"SUBSCRIBE","params":[],"id":${BIG}}`)],
  ['thousands of duplicate ids', fill('{"method":"SUBSCRIBE","params":[],', `"id":${BIG}`, ',', ',"x":[]}')],
  ['one long string', fill('{"method":"SUBSCRIBE","params":["', 'a', '', `"],"id":${BIG}}`)],
  ['a long string after a short one', fill('{"method":"SUBSCRIBE","params":["a","', 'a', '', `"],"id":${BIG}}`)],
  ['a string of escaped quotes', fill('{"method":"SUBSCRIBE","params":["', '\\"', '', `"],"id":${BIG}}`)],
  ['escaped quotes among letters', fill('{"method":"SUBSCRIBE","params":["', 'aaaaaaaaaaaaaa\\"', '', `"],"id":${BIG}}`)],
  ['a string of \\u escapes', fill('{"method":"SUBSCRIBE","params":["', '\\u0041', '', `"],"id":${BIG}}`)],
  ['nesting ~32k deep in params', nested('{"method":"SUBSCRIBE","params":', `,"id":${BIG}}`)],
  ['long unknown method', fill('{"method":"', 'M', '', `","id":${BIG}}`)],
  ['3,400 stream names, a UUID id', fill('{"method":"SUBSCRIBE","params":[', '"btcusdt@kline_1m"', ',', '],"id":"f9dab9aa-db42-476a-98f8-f587080ba4d1"}')],
  ['invalid JSON at the very end', fill('{"method":"SUBSCRIBE","params":[', '1', ',', '],"id":1,}')],
  ['invalid JSON after long strings', fill('{"method":"SUBSCRIBE","params":[', '"abcdefgh"', ',', '],"id":1 x}')],
  ['invalid JSON after many keys', fill('{', '"k":"v"', ',', ',"id":1 x}')],
  ['invalid JSON after nested objects', fill('{"method":"SUBSCRIBE","params":[', '{"k":[1,{}]}', ',', '],"id":1 x}')],
  ['invalid JSON after deep nesting', nested('{"method":"SUBSCRIBE","params":', ',"id":1 x}')],
];

let sink = 0;
function runFloor(text: string): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) {
    try {
      sink += JSON.parse(text) === null ? 1 : 0;
    } catch {
      // The floor of an invalid frame is the throw.
      sink++;
    }
  }
  return Number(process.hrtime.bigint() - start);
}
function runParse(text: string): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) sink += parseControl(text).ok ? 1 : 0;
  return Number(process.hrtime.bigint() - start);
}

console.log(`${ITERATIONS} iterations x ${ROUNDS} rounds per frame (fastest round), node ${process.version}`);
console.log(`${'frame'.padEnd(34)} ${'bytes'.padStart(6)} ${'JSON.parse'.padStart(11)} ${'parseControl'.padStart(13)}  ratio  reply`);
let worst = 0;
let costliestFloor = 0;
let costliestParse = 0;
for (const [label, text] of frames) {
  if (Buffer.byteLength(text) > LIMIT) throw new Error(`${label}: ${Buffer.byteLength(text)} bytes, over the frame limit`);
  runFloor(text);
  runParse(text);
  const floor: number[] = [];
  const subject: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    floor.push(runFloor(text));
    subject.push(runParse(text));
  }
  const f = Math.min(...floor) / ITERATIONS / 1000;
  const s = Math.min(...subject) / ITERATIONS / 1000;
  worst = Math.max(worst, s / f);
  costliestFloor = Math.max(costliestFloor, f);
  costliestParse = Math.max(costliestParse, s);
  const r = parseControl(text);
  const reply = r.ok ? `ok id ${r.request.id}` : `code ${r.error.error.code} id ${r.error.id.length > 20 ? `${r.error.id.slice(0, 20)}…` : r.error.id}`;
  console.log(
    `${label.padEnd(34)} ${String(Buffer.byteLength(text)).padStart(6)} ${f.toFixed(1).padStart(8)} µs ${s.toFixed(1).padStart(10)} µs  ${(s / f).toFixed(2).padStart(5)}  ${reply}`,
  );
}
console.log(`worst ratio ${worst.toFixed(2)}`);
// What an attacker buys: the costliest frame it can send, against the costliest plain JSON.parse.
console.log(
  `costliest frame: parseControl ${costliestParse.toFixed(1)} µs, JSON.parse ${costliestFloor.toFixed(1)} µs, ratio ${(costliestParse / costliestFloor).toFixed(2)} (sink ${sink & 1})`,
);
