/**
 * The ops HTTP server on CONNECTOR_WSS_HEALTH_CHECK_PORT (contract §6): /health, /ready, /metrics.
 * main.ts owns listen() and close(); this module only builds the instance.
 *
 *   /health  liveness. Answers 200 whenever the event loop can answer at all. It checks nothing
 *            upstream: Binance being down must never restart pods (that would only add a reconnect
 *            storm to an exchange outage).
 *   /ready   readiness, from evaluateReadiness(). Also 503 while the event loop is badly lagging
 *            (@fastify/under-pressure, registered ONLY in the /ready context: its onRequest hook
 *            answers 503 on every route of the context it is registered in, and on /health that
 *            would turn load into restarts). A 503 on /ready only takes the pod out of the Service.
 *   /metrics Prometheus text from the registry.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { fastify, type FastifyInstance } from 'fastify';
import underPressure from '@fastify/under-pressure';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { Logger } from './logger.ts';
import { evaluateReadiness } from './readiness.ts';
import type { OpsSources } from './sources.ts';

export interface HttpServerOptions {
  readonly config: Pick<Config, 'health'> & Partial<Pick<Config, 'shard'>>;
  readonly sources: OpsSources;
  readonly registry: Registry;
  readonly log: Logger;
  /** Event-loop delay (ms) above which /ready answers 503. Default 1000; 0 disables the guard. */
  readonly maxEventLoopDelayMs?: number;
  /** Wall clock in ms; default Date.now. */
  readonly now?: () => number;
  /** Monotonic seconds since start, for /health; default process.uptime. */
  readonly uptimeSeconds?: () => number;
}

export type OpsHttpServer = FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>;

const PROBE = { logLevel: 'silent' } as const;

export function createHttpServer(options: HttpServerOptions): OpsHttpServer {
  const { config, sources, registry, log } = options;
  const now = options.now ?? Date.now;
  const uptime = options.uptimeSeconds ?? (() => process.uptime());
  const maxEventLoopDelay = options.maxEventLoopDelayMs ?? 1000;

  const app = fastify({
    loggerInstance: log,
    // Probes and scrapes come from kubelet and Prometheus on a private port; keep-alive sockets
    // must not hold close() up during shutdown.
    forceCloseConnections: true,
    return503OnClosing: true,
  });

  app.get('/health', PROBE, () => ({ status: 'ok', uptimeSeconds: Math.round(uptime() * 1000) / 1000 }));

  app.get('/metrics', PROBE, async (_req, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });

  void app.register(async (ready) => {
    if (maxEventLoopDelay > 0) {
      await ready.register(underPressure, {
        maxEventLoopDelay,
        retryAfter: 5,
        pressureHandler: (_req, reply, type, value) => {
          void reply
            .code(503)
            .header('retry-after', '5')
            .send({ status: 'overloaded', ready: false, reasons: [`${type} ${String(value)} over the limit`] });
        },
      });
    }
    ready.get('/ready', PROBE, (_req, reply) => {
      const { ready: ok, body } = evaluateReadiness(sources, config, now());
      return reply.code(ok ? 200 : 503).send(body);
    });
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not found', method: req.method, path: req.url.split('?')[0] ?? '' }));

  return app;
}
