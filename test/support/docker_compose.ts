import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The project's root (where docker-compose.yml and deploy/ are), with a trailing slash. */
export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** node:test `skip` value: false when Debian's docker-compose is installed, else the reason. */
export function composeSkipReason(): false | string {
  try {
    execFileSync("docker-compose", ["version"], { stdio: "ignore" });
    return false;
  } catch {
    return "docker-compose (Debian package) not installed";
  }
}

/**
 * `docker-compose -f docker-compose.yml config`: parses, merges anchors and validates the
 * file without a Docker engine; returns the normalised YAML.
 */
export function composeConfig(env: Record<string, string> = COMPOSE_TEST_TOKENS): string {
  return execFileSync("docker-compose", ["-f", "docker-compose.yml", "config"], {
    cwd: PROJECT_ROOT, encoding: "utf8", env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"],
  });
}

/** The secrets docker-compose.yml takes from the environment (it has no defaults for them). */
export const COMPOSE_TEST_TOKENS: Record<string, string> = {
  EBB_API_TOKEN: "compose-test-api-token-0123456789",
  EBB_EVENTS_TOKEN: "compose-test-events-token-0123456789",
};
