import { configSchema, isLoopbackHost, SETTINGS, type Config, type ConfigInput } from "./schema.js";

/** A configuration value was refused; the message names the env var / flag. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Build the configuration from the environment, then flags on top (flags win).
 * Empty env vars count as unset. Throws ConfigError naming every bad setting.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  flags: Partial<Record<keyof ConfigInput, unknown>> = {},
): Config {
  const raw: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS)) {
    const fromEnv = env[s.env];
    if (fromEnv !== undefined && fromEnv !== "") raw[key] = fromEnv;
    const fromFlag = flags[key as keyof ConfigInput];
    if (fromFlag !== undefined) raw[key] = fromFlag;
  }
  const parsed = configSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? "");
    const s = SETTINGS[key as keyof ConfigInput];
    const name = s ? `${s.env} (${s.flag.split(" ")[0]})` : key || "configuration";
    const value = key in raw ? ` (got ${JSON.stringify(s?.secret ? "<redacted>" : raw[key])})` : "";
    return `${name}: ${issue.message}${value}`;
  });
  throw new ConfigError(`invalid configuration:\n  ${lines.join("\n  ")}`);
}

/**
 * `ebb start` refuses to serve the JSON API without a token on an address other machines
 * reach (0.0.0.0, a LAN address, a host name): exit 2 naming the settings that fix it.
 */
export function assertHttpExposure(config: Config): void {
  if (!config.roles.includes("http") || !config.api || config.apiToken !== undefined || isLoopbackHost(config.httpHost)) return;
  const s = (key: keyof ConfigInput) => `${SETTINGS[key].env} (${SETTINGS[key].flag.split(" ")[0]})`;
  throw new ConfigError(
    `${s("httpHost")} is ${config.httpHost}, which is not loopback, and the JSON API has no token: set ${s("apiToken")} or ${s("apiTokenFile")}, turn the API off with ${s("api")}, or bind to 127.0.0.1`,
  );
}
