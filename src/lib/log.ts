import { pino, type Logger, type DestinationStream } from "pino";
import pretty from "pino-pretty";

export type { Logger };

/** Secret material never reaches a log line: redacted at the root. */
const redact = { paths: ["*.secret", "*.token", "*.key", "*.data", "*.env", "env"], censor: "[redacted]" };

/**
 * Root logger. JSON to stderr by default; `pretty` (the `baton up` foreground on a terminal)
 * prints one readable line per record.
 */
export function createLogger(opts: { level?: string; stream?: DestinationStream; pretty?: boolean } = {}): Logger {
  const level = opts.level ?? process.env.BATON_LOG_LEVEL ?? "info";
  const stream = opts.stream ?? (opts.pretty ? pretty({ destination: 2, sync: true, ignore: "pid,hostname", translateTime: "HH:MM:ss.l" }) : pino.destination({ dest: 2, sync: false }));
  return pino({ level, base: undefined, redact }, stream);
}

export const silentLogger = (): Logger => pino({ level: "silent" });
