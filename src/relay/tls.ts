/**
 * TLS for the relay port (CONNECTOR_RELAY_TLS_CERT_FILE / _KEY_FILE), so tokens need not cross the
 * network in clear: the key pair is read at start, and reloaded into the running server when the
 * files change, so a renewed certificate (cert-manager, a rotated Kubernetes Secret) takes effect
 * for new connections without a restart and without dropping connected clients.
 *
 * The directories are watched, not the files: a Kubernetes Secret volume swaps a `..data` symlink,
 * and an editor or `mv` replaces the file, both of which end a watch on the file itself. Events are
 * debounced (a cert and its key are usually written one after the other), the pair is re-read, and
 * nothing happens if it did not change. A pair the server refuses (a key that does not match the
 * certificate, half-written PEM) is reported and the previous one stays in force; the next event
 * (the second file landing) tries again.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage } from '../core/errors.ts';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TlsPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

function readNamed(file: string, variable: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${variable}=${file}: ${errorMessage(err)}`, { cause: err });
  }
}

/** Read both files; the error names the variable and the file that could not be read. */
export function readTlsPair(files: TlsFiles): TlsPair {
  return {
    cert: readNamed(files.certFile, 'CONNECTOR_RELAY_TLS_CERT_FILE'),
    key: readNamed(files.keyFile, 'CONNECTOR_RELAY_TLS_KEY_FILE'),
  };
}

export type TlsReloadOutcome = { readonly ok: true } | { readonly ok: false; readonly error: string };

export interface TlsWatcherOptions {
  readonly files: TlsFiles;
  /** The pair in force (read at start). */
  readonly initial: TlsPair;
  /** Install a new pair in the server; throws when the server refuses it (tls.Server#setSecureContext does). */
  readonly apply: (pair: TlsPair) => void;
  readonly onReload: (outcome: TlsReloadOutcome) => void;
  /** Quiet time after the last file event before re-reading. Default 200 ms. */
  readonly debounceMs?: number;
}

export class TlsWatcher {
  readonly #options: TlsWatcherOptions;
  readonly #watchers: FSWatcher[] = [];
  #current: TlsPair;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: TlsWatcherOptions) {
    this.#options = options;
    this.#current = options.initial;
  }

  start(): void {
    const { certFile, keyFile } = this.#options.files;
    for (const dir of new Set([dirname(certFile), dirname(keyFile)])) {
      const w = watch(dir, () => {
        this.#schedule();
      });
      // A watched directory that disappears: report it; the pair in force stays.
      w.on('error', (err: Error) => {
        this.#options.onReload({ ok: false, error: `watching ${dir}: ${errorMessage(err)}` });
      });
      w.unref();
      this.#watchers.push(w);
    }
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#watchers.splice(0)) w.close();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#reload();
    }, this.#options.debounceMs ?? 200);
    this.#timer.unref();
  }

  #reload(): void {
    let pair: TlsPair;
    try {
      pair = readTlsPair(this.#options.files);
    } catch (err) {
      this.#options.onReload({ ok: false, error: errorMessage(err) });
      return;
    }
    if (pair.cert.equals(this.#current.cert) && pair.key.equals(this.#current.key)) return;
    try {
      this.#options.apply(pair);
    } catch (err) {
      this.#options.onReload({ ok: false, error: errorMessage(err) });
      return;
    }
    this.#current = pair;
    this.#options.onReload({ ok: true });
  }
}
