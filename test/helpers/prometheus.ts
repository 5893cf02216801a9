/** The value of one sample line of a Prometheus text body, e.g. value(text, 'connector_ready') or value(text, 'x{a="b"}'). */
export function value(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    if (line.slice(0, sp) === series) return Number(line.slice(sp + 1));
  }
  return undefined;
}
