/**
 * Errors of the registry client. Messages name the registry origin, the operation and the
 * status; they never carry credentials, tokens or Authorization headers (only what the caller
 * gave as names: repository, reference).
 */

export class RegistryError extends Error {
  /** Worth retrying later (network trouble, 429, 5xx). */
  readonly retryable: boolean;
  constructor(message: string, opts: { retryable?: boolean } = {}) {
    super(message);
    this.name = new.target.name;
    this.retryable = opts.retryable ?? false;
  }
}

/** Caller gave a bad repository name, tag, digest or client option; `field` names it. */
export class RegistryInputError extends RegistryError {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** The registry answered with an unexpected HTTP status. */
export class RegistryHttpError extends RegistryError {
  readonly status: number;
  /** First error code of the Distribution error body, e.g. MANIFEST_UNKNOWN. */
  readonly code: string | undefined;
  constructor(message: string, status: number, code: string | undefined, retryable: boolean) {
    super(message, { retryable });
    this.status = status;
    this.code = code;
  }
}

/** 401/403 after trying the configured credentials, or a failing token service. */
export class RegistryAuthError extends RegistryError {
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined) {
    super(message);
    this.status = status;
  }
}

/** Connection refused/reset, DNS, timeouts. */
export class RegistryNetworkError extends RegistryError {
  constructor(message: string) {
    super(message, { retryable: true });
  }
}

/**
 * The registry broke the protocol or sent something ebb must not trust: malformed manifest,
 * digest mismatch, pagination link to another origin, oversized body.
 */
export class RegistryProtocolError extends RegistryError {}
