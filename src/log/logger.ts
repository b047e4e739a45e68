import { destination, pino, type Logger } from "pino";

export type { Logger };

/** JSON logs; pretty output when stderr is a terminal. Credentials are redacted by path. */
export function createLogger(level: string, name = "ebb"): Logger {
  const pretty = process.stderr.isTTY && process.env.EBB_LOG_FORMAT !== "json";
  return pino({
    name,
    level,
    redact: { paths: ["password", "*.password", "credentials", "*.credentials", "authorization", "*.authorization", "databaseUrl"], censor: "[redacted]" },
    transport: pretty ? { target: "pino-pretty", options: { destination: 2 } } : undefined,
  }, pretty ? undefined : destination(2));
}
