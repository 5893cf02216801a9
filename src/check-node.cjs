// Runs before `npm start` and `npm test` (and `npm ci` refuses early through .npmrc engine-strict):
// on a Node older than package.json's `engines` range, stop at once with one line instead of
// failing deep inside a dependency (Node 20 dies in vitest with "Map.groupBy is not a function").
// Plain CommonJS with no syntax newer than ES2015, so any Node that can start can run it.
'use strict';
const engines = require('../package.json').engines.node; // ">=MAJOR.MINOR.PATCH"
const m = /^>=\s*(\d+)\.(\d+)\.(\d+)$/.exec(engines);
if (m === null) throw new Error('src/check-node.cjs understands only ">=x.y.z" engines ranges, got ' + engines);
const need = [Number(m[1]), Number(m[2]), Number(m[3])];
const have = process.versions.node.split('.').map(Number);
let older = false;
for (let i = 0; i < 3; i++) {
  if (have[i] !== need[i]) {
    older = have[i] < need[i];
    break;
  }
}
if (older) {
  console.error('kline-connector needs Node ' + engines + ' (Node 24 LTS recommended); this is Node ' + process.versions.node + '.');
  process.exit(1);
}
