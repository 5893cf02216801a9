/**
 * The only reader of process.env (contract §2): .env (dotenv, quiet) → preset config/<env>.json →
 * CONNECTOR_* variables → one zod parse → a deep-frozen Config. Errors come back as one line per
 * variable (name, value, what is allowed); main.ts prints them and exits 78.
 * With CONNECTOR_ENV=production the loader is strict: an unknown CONNECTOR_* name is an error, not a warning.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { ENV_NAMES, EnvSchema, inertVenueVariables, type Config } from './schema.ts';
import { ConfigError } from '../core/errors.ts';

// src/config/ and the shipped bundle's dist/daemon/ (bin/build.ts) are both two levels below the package root.
export const CONFIG_DIR = fileURLToPath(new URL('../../config/', import.meta.url));

const KNOWN = new Set(ENV_NAMES);
const SECRET = new Set(['CONNECTOR_RELAY_TOKEN']);

export interface LoadOptions {
  /** The environment to read (default process.env). Tests pass their own object. */
  readonly env?: NodeJS.ProcessEnv;
  /** Where presets live (default <repo>/config). */
  readonly configDir?: string;
  /** A .env file to read first; values already in `env` win (dotenv semantics). Default `<cwd>/.env`; null to skip. */
  readonly dotenvPath?: string | null;
}

export interface LoadedConfig {
  readonly config: Config;
  /** Non-fatal findings (unknown CONNECTOR_* names with a did-you-mean hint). */
  readonly warnings: readonly string[];
}

export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env: Record<string, string | undefined> = { ...readDotenv(options.dotenvPath), ...(options.env ?? process.env) };
  const envName = env.CONNECTOR_ENV ?? 'development';
  const issues: string[] = [];
  const warnings: string[] = [];
  const strict = envName === 'production';

  let preset: Record<string, unknown> = {};
  if (envName === 'development' || envName === 'staging' || envName === 'production') {
    preset = readPreset(path.join(options.configDir ?? CONFIG_DIR, `${envName}.json`), issues);
  }

  const input: Record<string, unknown> = { ...preset };
  const origin = new Map<string, string>();
  for (const k of Object.keys(preset)) origin.set(k, `config/${envName}.json`);
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith('CONNECTOR_') || v === undefined) continue;
    if (!KNOWN.has(k)) {
      const hint = closest(k);
      const didYouMean = hint === undefined ? '' : ` (did you mean ${hint}?)`;
      // In production a typo is an error, not a warning (contract §2): CONNECTOR_RELAY_TOKN would
      // otherwise leave the relay open. The value is never shown: it may be the misspelt secret.
      if (strict) issues.push(`${k} (environment): unknown variable${didYouMean}; with CONNECTOR_ENV=production this is an error`);
      else warnings.push(`unknown variable ${k} is ignored${didYouMean}`);
      continue;
    }
    input[k] = v;
    origin.set(k, 'environment');
  }

  // The pod's name for CONNECTOR_SHARD_COUNT's ordinal: Kubernetes sets HOSTNAME to it.
  if (input.CONNECTOR_POD_NAME === undefined && env.HOSTNAME !== undefined && env.HOSTNAME !== '') {
    input.CONNECTOR_POD_NAME = env.HOSTNAME;
    origin.set('CONNECTOR_POD_NAME', 'HOSTNAME');
  }
  const result = EnvSchema.safeParse(input);
  if (!result.success) {
    const byVar = new Map<string, string[]>();
    for (const issue of result.error.issues) {
      const name = typeof issue.path[0] === 'string' ? issue.path[0] : '(config)';
      byVar.set(name, [...(byVar.get(name) ?? []), issue.message]);
    }
    for (const [name, messages] of byVar) {
      const raw = input[name];
      const shown = raw === undefined ? 'unset' : SECRET.has(name) ? '"<redacted>"' : JSON.stringify(raw);
      issues.push(`${name}=${shown} (${origin.get(name) ?? 'default'}): ${[...new Set(messages)].join('; ')}`);
    }
  }
  if (result.success) {
    // A venue's variables while the venue is not listed (or one it does not read) would do nothing: said, and refused in production.
    for (const { name, reason } of inertVenueVariables(result.data, origin.keys())) {
      const where = origin.get(name) ?? 'environment';
      if (strict) issues.push(`${name} (${where}): ${reason}, so this does nothing; with CONNECTOR_ENV=production this is an error`);
      else warnings.push(`${name} is ignored: ${reason}`);
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  if (!result.success) throw new ConfigError(['(config): invalid']);
  if (result.data.relay.token === undefined && input.CONNECTOR_RELAY_AUTH === undefined) {
    // Outside production an open relay is allowed by default, but said out loud (production refuses it).
    warnings.push('the relay accepts every client: CONNECTOR_RELAY_TOKEN is unset (set it, or CONNECTOR_RELAY_AUTH=none to say the relay is open on purpose)');
  }
  return { config: deepFreeze(result.data), warnings };
}

function readDotenv(p: string | null | undefined): Record<string, string> {
  if (p === null) return {};
  try {
    return parseDotenv(readFileSync(p ?? path.join(process.cwd(), '.env')));
  } catch (err) {
    // No .env is the normal case in containers; any other read error is worth surfacing.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
}

function readPreset(file: string, issues: string[]): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      issues.push(`CONNECTOR_ENV: preset ${file} must hold a JSON object`);
      return {};
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(parsed)) {
      if (k.startsWith('$') || k.startsWith('//')) continue; // $schema / comments
      if (!KNOWN.has(k)) {
        const hint = closest(k);
        issues.push(`${k} (${file}): unknown setting${hint === undefined ? '' : ` (did you mean ${hint}?)`}`);
        continue;
      }
      out[k] = v;
    }
    return out;
  } catch (err) {
    issues.push(`CONNECTOR_ENV: preset ${file} is not valid JSON: ${(err as Error).message}`);
    return {};
  }
}

/** The known name nearest by edit distance, when it is near enough to be a plausible typo. */
export function closest(name: string): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of KNOWN) {
    const d = levenshtein(name, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD <= Math.max(3, Math.floor(name.length / 4)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export type { Config } from './schema.ts';
