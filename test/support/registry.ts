/**
 * Starts Debian's docker-registry (distribution 2.8) for a test: a free loopback port, a
 * generated config (filesystem storage in a temp dir, delete enabled), optional notifications
 * endpoint, optional auth (htpasswd basic auth, or token auth backed by
 * ./registry_token_server.ts). The registry is killed on stop(), after the test (when a test
 * context is given) and on process exit.
 *
 *   const skip = registrySkipReason();
 *   test("...", { skip }, async (t) => { const reg = await startRegistry(t); ... });
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { htpasswdLine, htpasswdUnavailableReason } from "./registry_htpasswd.js";
import { startTokenServer, tokenServerUnavailableReason, type TokenServer } from "./registry_token_server.js";

export const REGISTRY_BINARY = process.env.EBB_REGISTRY_BINARY ?? "/usr/bin/docker-registry";

export type RegistryAuthOption =
  | { kind: "htpasswd"; username: string; password: string }
  | { kind: "token"; username: string; password: string };

export interface RegistryOptions {
  auth?: RegistryAuthOption;
  notifications?: { url: string; authorization?: string };
}

export interface TestRegistry {
  /** e.g. http://127.0.0.1:40123 (no trailing slash) */
  url: string;
  /** host:port */
  host: string;
  /** storage root dir */
  storageDir: string;
  /** Token server when auth.kind === "token". */
  tokenServer?: TokenServer;
  /**
   * Authorization header value with full access for test setup (push, pull, delete, catalog)
   * on the given repositories; undefined for an open registry.
   */
  adminAuthorization(repositories?: string[]): string | undefined;
  /** The registry's own log (stdout+stderr), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/** Why registry tests must skip on this machine, or undefined when they can run. */
export function registrySkipReason(auth?: RegistryAuthOption["kind"]): string | undefined {
  if (!existsSync(REGISTRY_BINARY)) {
    return `${REGISTRY_BINARY} not found (apt-get install docker-registry)`;
  }
  if (auth === "htpasswd") return htpasswdUnavailableReason();
  if (auth === "token") return tokenServerUnavailableReason();
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of running) child.kill("SIGKILL");
  });
}

function yamlString(s: string): string {
  return JSON.stringify(s); // JSON strings are valid YAML double-quoted scalars
}

function buildConfig(opts: {
  port: number;
  storageDir: string;
  htpasswdPath?: string;
  token?: { realm: string; service: string; issuer: string; bundlePath: string };
  notifications?: { url: string; authorization?: string };
}): string {
  const lines = [
    "version: 0.1",
    "log:",
    "  level: info",
    "  formatter: text",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${yamlString(opts.storageDir)}`,
    "  delete:",
    "    enabled: true",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "http:",
    `  addr: 127.0.0.1:${opts.port}`,
    `  secret: ${randomBytes(16).toString("hex")}`,
  ];
  if (opts.htpasswdPath) {
    lines.push("auth:", "  htpasswd:", "    realm: ebb-test", `    path: ${yamlString(opts.htpasswdPath)}`);
  } else if (opts.token) {
    lines.push(
      "auth:",
      "  token:",
      `    realm: ${yamlString(opts.token.realm)}`,
      `    service: ${yamlString(opts.token.service)}`,
      `    issuer: ${yamlString(opts.token.issuer)}`,
      `    rootcertbundle: ${yamlString(opts.token.bundlePath)}`,
    );
  }
  if (opts.notifications) {
    lines.push(
      "notifications:",
      "  events:",
      "    includereferences: true",
      "  endpoints:",
      "    - name: ebb",
      `      url: ${yamlString(opts.notifications.url)}`,
      "      timeout: 2s",
      "      threshold: 3",
      "      backoff: 200ms",
    );
    if (opts.notifications.authorization !== undefined) {
      lines.push("      headers:", `        Authorization: [${yamlString(opts.notifications.authorization)}]`);
    }
  }
  return lines.join("\n") + "\n";
}

async function waitForV2(url: string, child: ChildProcess, logPath: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  let lastError = "";
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`docker-registry exited early (${child.exitCode ?? child.signalCode}):\n${readLog(logPath)}`);
    }
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return;
      lastError = `status ${res.status}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer /v2/ within 15s (${lastError}):\n${readLog(logPath)}`);
}

function readLog(path: string): string {
  try {
    return readFileSync(path, "utf8").slice(-4000);
  } catch {
    return "";
  }
}

interface AfterContext {
  after(fn: () => Promise<void> | void): void;
}

export async function startRegistry(t?: AfterContext, opts: RegistryOptions = {}): Promise<TestRegistry> {
  const reason = registrySkipReason(opts.auth?.kind);
  if (reason) throw new Error(`cannot start registry: ${reason}`);
  installExitHook();

  const dir = mkdtempSync(join(tmpdir(), "ebb-registry-"));
  const storageDir = join(dir, "storage");
  const logPath = join(dir, "registry.log");
  let tokenServer: TokenServer | undefined;
  let htpasswdPath: string | undefined;
  let token: { realm: string; service: string; issuer: string; bundlePath: string } | undefined;
  if (opts.auth?.kind === "htpasswd") {
    htpasswdPath = join(dir, "htpasswd");
    writeFileSync(htpasswdPath, htpasswdLine(opts.auth.username, opts.auth.password), { mode: 0o600 });
  } else if (opts.auth?.kind === "token") {
    tokenServer = await startTokenServer({ username: opts.auth.username, password: opts.auth.password });
    const bundlePath = join(dir, "token-root.pem");
    writeFileSync(bundlePath, tokenServer.certificatePem);
    token = { realm: tokenServer.realm, service: tokenServer.service, issuer: tokenServer.issuer, bundlePath };
  }

  let child: ChildProcess | undefined;
  let url = "";
  let host = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    host = `127.0.0.1:${port}`;
    url = `http://${host}`;
    const configPath = join(dir, "config.yml");
    writeFileSync(configPath, buildConfig({ port, storageDir, htpasswdPath, token, notifications: opts.notifications }));
    const logFd = openSync(logPath, "a");
    child = spawn(REGISTRY_BINARY, ["serve", configPath], { stdio: ["ignore", logFd, logFd] });
    closeSync(logFd);
    running.add(child);
    const c = child;
    child.once("exit", () => running.delete(c));
    try {
      await waitForV2(url, child, logPath);
      break;
    } catch (err) {
      child.kill("SIGKILL");
      child = undefined;
      if (attempt === 2) throw err; // port race: another process took it; try a new port
    }
  }
  const proc = child!;

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
    await tokenServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  t?.after(stop);

  const auth = opts.auth;
  return {
    url,
    host,
    storageDir,
    tokenServer,
    log: () => readLog(logPath),
    adminAuthorization(repositories: string[] = []) {
      if (!auth) return undefined;
      if (auth.kind === "htpasswd") {
        return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
      }
      return `Bearer ${tokenServer!.mint([
        { type: "registry", name: "catalog", actions: ["*"] },
        ...repositories.map((name) => ({ type: "repository", name, actions: ["pull", "push", "delete"] })),
      ])}`;
    },
    stop,
  };
}
