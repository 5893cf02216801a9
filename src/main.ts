/**
 * Entry point: config → object graph → signals → exit codes. Nothing else.
 *   exit 0  graceful stop;  exit 78 invalid configuration (EX_CONFIG);  exit 1 uncaught error or second signal.
 */
import closeWithGrace from 'close-with-grace';
import { loadConfig } from './config/load.ts';
import { ConfigError, errorMessage } from './core/errors.ts';
import { createLogger } from './ops/logger.ts';
import type { Connector } from './app.ts';

const EX_CONFIG = 78;

function readConfig(): ReturnType<typeof loadConfig> {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.issues) process.stderr.write(`config error: ${line}\n`);
      process.exit(EX_CONFIG);
    }
    throw err;
  }
}

const { config, warnings } = readConfig();
const log = createLogger(config.logLevel);
for (const w of warnings) log.warn({ event: 'config.warning' }, w);

// Installed before anything starts, so an error during start-up is also one structured line + exit 1.
const running: { connector?: Connector } = {};
closeWithGrace(
  {
    // The drain budget plus time to close relay clients and the HTTP server.
    delay: config.shutdownGraceMs + 5000,
    logger: {
      error: (msg: unknown) => {
        log.error({ event: 'shutdown' }, errorMessage(msg));
      },
    },
    onSecondSignal: (signal: string) => {
      log.error({ event: 'shutdown', signal }, 'second signal: exiting now');
    },
  },
  async ({ signal, err }: { signal?: string; err?: unknown }) => {
    if (err !== undefined) {
      const e = err instanceof Error ? { type: err.name, message: err.message, stack: err.stack } : { message: errorMessage(err) };
      log.fatal({ event: 'uncaught', err: e }, 'uncaught error: exiting');
    } else {
      log.info({ event: 'shutdown', signal }, `received ${signal ?? 'exit'}: draining`);
    }
    if (running.connector !== undefined) {
      const { drained } = await running.connector.shutdown(signal ?? 'error');
      log.info({ event: 'shutdown', drained }, drained ? 'drained; bye' : 'grace period exceeded; exiting');
    }
  },
);

// The object graph is imported only after the configuration is known to be valid: a bad variable
// exits 78 in milliseconds without loading (or failing to load) anything else.
const { startConnector } = await import('./app.ts');
running.connector = await startConnector(config, { log });
