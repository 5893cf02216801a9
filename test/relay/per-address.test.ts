/** Issue 12, point 4: one source address cannot hold every client slot. */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClient, cleanup, startRelay, upgradeStatus, waitFor } from './helpers.ts';

afterEach(cleanup);

describe('relay per-address limit', () => {
  it('answers 429 at upgrade past maxClientsPerIp from one address, and frees the slot when a client leaves', async () => {
    const h = await startRelay({ maxClients: 100, maxClientsPerIp: 2 });
    const first = await TestClient.open(`${h.url}/ws`);
    await TestClient.open(`${h.url}/ws`);
    expect(await upgradeStatus(`${h.url}/ws`)).toBe(429);
    expect(h.events).toContainEqual(expect.objectContaining({ type: 'relay.client.rejected', status: 429, reason: 'too many clients from this address' }));
    first.ws.close();
    await waitFor(() => h.relay.stats().clients === 1, 3000, 'the first client to leave');
    await TestClient.open(`${h.url}/ws`);
    expect(h.relay.stats()).toMatchObject({ clients: 2, rejected: 1 });
  });

  it('defaults to 50 per address, well below the 1000-client total', async () => {
    const { loadConfig } = await import('../../src/config/load.ts');
    const { config } = loadConfig({ env: {}, dotenvPath: null });
    expect(config.relay.maxClientsPerIp).toBe(50);
    expect(config.relay.maxClients).toBe(1000);
  });
});
