/**
 * `npm run simulator` / `node src/venues/binance/simulator/main.ts --port 9443 [--host 127.0.0.1]`: run the Binance
 * simulator on its own, print its URLs, stop on SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { BinanceSimulator } from './server.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9443' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`invalid --port ${values.port}: expected an integer 0-65535`);
  process.exit(64);
}

const sim = await BinanceSimulator.start({ host: values.host, port });
console.log(`binance simulator: ws ${sim.wsUrl}  rest ${sim.restUrl}`);
console.log(`  e.g. ${sim.wsUrl}/stream?streams=btcusdt@kline_1s/ethusdt@kline_1m`);
console.log(`       ${sim.restUrl}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=5`);

let stopping = false;
function stop(): void {
  if (stopping) process.exit(1); // second signal: leave at once
  stopping = true;
  void sim.close().then(() => process.exit(0));
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
