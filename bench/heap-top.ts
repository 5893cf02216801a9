/**
 * `node bench/heap-top.ts file.heapsnapshot [n]`: the snapshot's self size grouped by constructor
 * (object nodes) or by type (strings, code, arrays…), largest first. For finding what a memory figure
 * is made of; take the snapshot with `node --heapsnapshot-signal=SIGUSR2 …` and `kill -USR2 <pid>`.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] }; node_count: number };
  nodes: number[];
  strings: string[];
}

const file = process.argv[2];
if (file === undefined) throw new Error('usage: node bench/heap-top.ts file.heapsnapshot [n]');
const top = Number(process.argv[3] ?? 30);
const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const f = snap.snapshot.meta.node_fields;
const stride = f.length;
const iType = f.indexOf('type');
const iName = f.indexOf('name');
const iSize = f.indexOf('self_size');
const types = snap.snapshot.meta.node_types[0];
const groups = new Map<string, { bytes: number; count: number }>();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += stride) {
  const type = types[snap.nodes[i + iType]!]!;
  const size = snap.nodes[i + iSize]!;
  const key = type === 'object' || type === 'native' ? `${type}:${snap.strings[snap.nodes[i + iName]!]}` : type;
  const g = groups.get(key) ?? { bytes: 0, count: 0 };
  g.bytes += size;
  g.count++;
  groups.set(key, g);
  total += size;
}
console.log(`total self size ${(total / 1048576).toFixed(1)} MB`);
for (const [k, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) console.log(`${(g.bytes / 1048576).toFixed(2).padStart(8)} MB ${String(g.count).padStart(8)}  ${k.slice(0, 100)}`);
if (process.argv.includes('--strings')) {
  const big: { size: number; name: string }[] = [];
  let small = 0;
  let smallN = 0;
  for (let i = 0; i < snap.nodes.length; i += stride) {
    if (types[snap.nodes[i + iType]!] !== 'string') continue;
    const size = snap.nodes[i + iSize]!;
    if (size >= 16_384) big.push({ size, name: snap.strings[snap.nodes[i + iName]!]!.slice(0, 90).replace(/\s+/g, ' ') });
    else {
      small += size;
      smallN++;
    }
  }
  big.sort((a, b) => b.size - a.size);
  console.log(`strings >= 16 KB: ${big.length}, ${(big.reduce((n, b) => n + b.size, 0) / 1048576).toFixed(2)} MB; smaller: ${smallN}, ${(small / 1048576).toFixed(2)} MB`);
  for (const b of big.slice(0, top)) console.log(`${(b.size / 1024).toFixed(0).padStart(6)} KB  ${b.name}`);
}
