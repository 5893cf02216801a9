/** A few error classes with stable codes (style habit 6). `cause` is chained where there is one. */
export class ConnectorError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectorError';
    this.code = code;
  }
}

/** Invalid configuration: reported one line per variable, exit code 78 (EX_CONFIG). */
export class ConfigError extends ConnectorError {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super('CONNECTOR_ERR_CONFIG', `invalid configuration:\n${issues.join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
