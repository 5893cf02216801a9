/**
 * An abortable, unref'd sleep: resolves after `ms`, rejects with the signal's reason as soon as it
 * aborts (shutdown aborts every wait of the REST client and its gate). Unref'd so a wait never holds
 * the process open on its own.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    t.unref();
    function onAbort(): void {
      clearTimeout(t);
      reject(signal.reason as Error);
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
