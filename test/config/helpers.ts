/** What every configuration test needs: the repo root, a load without .env, and the issues of a bad one. */
import { fileURLToPath } from 'node:url';
import { loadConfig, type LoadedConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/core/errors.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Load from `env` alone (no .env file; presets from `configDir` when given). */
export function load(env: Record<string, string>, configDir?: string): LoadedConfig {
  return loadConfig({ env, dotenvPath: null, ...(configDir === undefined ? {} : { configDir }) });
}

/** The one-line-per-variable issues of a configuration that must be refused. */
export function issuesOf(env: Record<string, string>, configDir?: string): readonly string[] {
  try {
    load(env, configDir);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
