/**
 * A tiny token server for docker-registry's `auth.token` mode (the Docker registry token
 * spec): GET /token?service=..&scope=repository:name:pull,push -> {"token": JWT}.
 * JWTs are ES256, signed with a key whose self-signed certificate is the registry's
 * rootcertbundle; the certificate travels in the JWT header `x5c`. The certificate is made by
 * the openssl CLI (node:crypto can sign but cannot create X.509 certificates).
 *
 * Basic credentials on the token request are checked: right credentials get every action
 * asked for, none get a token with no access (like Docker Hub), wrong ones get 401.
 */
import { spawnSync } from "node:child_process";
import { createPrivateKey, createSign, randomUUID, timingSafeEqual, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenServer {
  /** realm URL to configure in the registry. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM of the signing certificate (write it as rootcertbundle). */
  certificatePem: string;
  /** How many token requests were served (any outcome). */
  requests(): number;
  /** Mint a token directly (for test setup such as pushing). */
  mint(access: TokenAccess[]): string;
  stop(): Promise<void>;
}

/** Why the token server cannot run here, or undefined when it can. */
export function tokenServerUnavailableReason(): string | undefined {
  const probe = spawnSync("openssl", ["version"], { encoding: "utf8" });
  return probe.status === 0 ? undefined : "openssl CLI not found (needed to make the token-signing certificate)";
}

function makeCertificate(): { keyPem: string; certPem: string } {
  const dir = mkdtempSync(join(tmpdir(), "ebb-token-cert-"));
  try {
    const keyPath = join(dir, "key.pem");
    const certPath = join(dir, "cert.pem");
    const result = spawnSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=ebb-test-token-issuer", "-days", "2", "-keyout", keyPath, "-out", certPath],
      { encoding: "utf8" },
    );
    if (result.status !== 0) throw new Error(`openssl failed: ${result.stderr}`);
    return { keyPem: readFileSync(keyPath, "utf8"), certPem: readFileSync(certPath, "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

function parseScopes(values: string[]): TokenAccess[] {
  const out: TokenAccess[] = [];
  for (const value of values) {
    for (const scope of value.split(" ")) {
      // type:name:actions, the name may itself contain ':' only for a port (not used here)
      const first = scope.indexOf(":");
      const last = scope.lastIndexOf(":");
      if (first < 0 || last <= first) continue;
      out.push({
        type: scope.slice(0, first),
        name: scope.slice(first + 1, last),
        actions: scope.slice(last + 1).split(",").filter(Boolean),
      });
    }
  }
  return out;
}

export async function startTokenServer(opts: { username: string; password: string }): Promise<TokenServer> {
  const { keyPem, certPem } = makeCertificate();
  const key = createPrivateKey(keyPem);
  const der = new X509Certificate(certPem).raw;
  const service = "ebb-test-registry";
  const issuer = "ebb-test-issuer";
  let requests = 0;

  const mint = (access: TokenAccess[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "ES256", x5c: [der.toString("base64")] };
    const claims = {
      iss: issuer, sub: opts.username, aud: service,
      exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign("SHA256").update(signingInput).sign({ key, dsaEncoding: "ieee-p1363" });
    return `${signingInput}.${b64url(signature)}`;
  };

  const expected = Buffer.from(`${opts.username}:${opts.password}`);
  const server: Server = createServer((req, res) => {
    requests++;
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== "/token" || req.method !== "GET") {
      res.writeHead(404).end();
      return;
    }
    const auth = req.headers.authorization;
    let granted = false;
    if (auth !== undefined) {
      const m = /^Basic (.+)$/i.exec(auth);
      const given = m ? Buffer.from(m[1]!, "base64") : Buffer.alloc(0);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] }));
        return;
      }
      granted = true;
    }
    if (url.searchParams.get("service") !== service) {
      res.writeHead(400).end("unknown service");
      return;
    }
    const access = granted ? parseScopes(url.searchParams.getAll("scope")) : [];
    const token = mint(access);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certificatePem: certPem,
    requests: () => requests,
    mint,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
