/** Every error a caller can branch on. docs/errors.md lists each with how to solve it. */
export const errorCodes = {
  VALIDATION_FAILED: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  VERSION_CONFLICT: 409,
  NAME_IN_USE: 409,
  IN_USE: 409,
  COMPACTED: 410,
  PAYLOAD_TOO_LARGE: 413,
  SLOW_CONSUMER: 429,
  UPDATE_FAILED: 409,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  NOT_LEADER: 503,
} as const;

export type ErrorCode = keyof typeof errorCodes;

/** One problem with one field of the input; path like ["restartPolicy", "delay"]. */
export interface FieldProblem {
  path: (string | number)[];
  problem: string;
}

export class BatonError extends Error {
  readonly retryable: boolean;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly fields: FieldProblem[] = [],
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "BatonError";
    this.retryable = options.retryable ?? false;
  }

  get status(): number {
    return errorCodes[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; fields: FieldProblem[] } {
    return { code: this.code, message: this.message, fields: this.fields };
  }
}

/** "restartPolicy.delay", "env[3]" */
export function formatPath(path: (string | number)[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${p}` : p;
  return out || "(body)";
}

/** `subject`: what the input describes, for the message ("invalid network: name: …"). */
export function validationError(fields: FieldProblem[], subject = "service spec"): BatonError {
  const first = fields[0];
  const msg = first ? `invalid ${subject}: ${formatPath(first.path)}: ${first.problem}` : "invalid input";
  return new BatonError("VALIDATION_FAILED", fields.length > 1 ? `${msg} (and ${fields.length - 1} more)` : msg, fields);
}

export const isBatonError = (e: unknown): e is BatonError => e instanceof BatonError;
