/**
 * `npm run build`: the daemon as shipped, one bundle (ARCHITECTURE.md, Performance / Memory).
 *
 * esbuild bundles src/main.ts with the packages it imports into dist/daemon/main.js (ESM, Node 24),
 * minified, with a source map beside it. Why a bundle and not tsc's file-per-module output: V8 keeps
 * the source text of every script it loads (for lazy compilation), and the loader keeps a record per
 * module. The daemon loads ~400 files of its own and its packages' code; as one minified script the
 * same code holds ~13 MB less heap and ~12 MB less RSS with 2000 streams after a minute (the bench's
 * memory scenario: RSS 109 → 97 MB, heap 36 → 22 MB). Type checking is `npm run typecheck`'s job (part of `npm test`).
 *
 * Layout: dist/daemon/ is two directory levels below the package root, as src/<dir>/ is, so the paths
 * the code resolves from its own module URL (config/ presets, package.json) hold in both forms.
 * What is not bundled, and why:
 *   - undici's Pool and `request`: reached through createRequire by path (src/upstream/rest.ts), so
 *     loaded from node_modules at run time (esbuild does not follow a created require);
 *   - the NATS client: dynamically imported by src/app.ts only when a JetStream sink is configured,
 *     so esbuild splits it into its own chunk that a daemon without one never loads;
 *   - ws's optional native add-ons (bufferutil, utf-8-validate): not installed; ws falls back to JS.
 * Minified, identifiers too (keeping names costs ~8 MB of heap and RSS, measured the same way): a stack
 * trace in a log line still names methods (esbuild does not rename properties) and points into the
 * bundle; the source map beside it maps it back, offline or with NODE_OPTIONS=--enable-source-maps.
 *
 *   node bin/build.ts [--outdir dist/daemon]
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const ROOT = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const at = args.indexOf('--outdir');
const outdir = path.resolve(ROOT, at >= 0 ? (args[at + 1] ?? 'dist/daemon') : 'dist/daemon');

rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: ['src/main.ts'],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  external: ['bufferutil', 'utf-8-validate'],
  // Bundled CommonJS packages call require(); in an ES module it has to be made.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stdout.write(`built ${path.relative(ROOT, outdir)}/main.js (${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1048576).toFixed(1)} MB with maps)\n`);
