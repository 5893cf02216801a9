/**
 * `node bench/profile-top.ts file.cpuprofile [n]`: self time by function (and by file) of a V8 CPU
 * profile (`node --cpu-prof`), largest first. `npm run bench -- --profile` writes the profiles.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export function topOfProfile(file: string, n = 25): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const fn = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const short = url.replace(/^.*\/(node_modules\/|src\/|bench\/)/, '$1').replace(/^node:/, '');
    fn.set(`${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`, (fn.get(`${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`) ?? 0) + us);
    const f = short === '' ? functionName : short.replace(/:\d+$/, '');
    files.set(f, (files.get(f) ?? 0) + us);
    total += us;
  }
  const pct = (us: number): string => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
  const lines = [`total ${(total / 1000).toFixed(0)} ms sampled`, 'by function (self):'];
  for (const [k, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, n)) lines.push(`  ${pct(us)}  ${k}`);
  lines.push('by file (self):');
  for (const [k, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`  ${pct(us)}  ${k}`);
  return lines.join('\n');
}

if (import.meta.filename === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) throw new Error('usage: node bench/profile-top.ts file.cpuprofile [n]');
  console.log(topOfProfile(file, Number(process.argv[3] ?? 25)));
}
