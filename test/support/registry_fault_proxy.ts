/**
 * A fault injector in front of a REAL registry: a tiny HTTP proxy that forwards every request
 * to the registry, except those matched by an injected fault (an error status, a dropped
 * connection, a hang, or a rewrite of the registry's real response). Not a mock: every answer
 * not faulted is the registry's own.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Socket } from "node:net";

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export type Fault =
  | { kind: "status"; status: number; headers?: Record<string, string>; body?: string }
  | { kind: "reset" }
  | { kind: "hang" }
  | { kind: "delay"; ms: number }
  /** forwarded once `until` settles (the request has arrived; its answer waits) */
  | { kind: "gate"; until: Promise<unknown> }
  | { kind: "rewrite"; transform: (res: UpstreamResponse) => UpstreamResponse };

export interface SeenRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  faulted: Fault["kind"] | undefined;
  /** Date.now() when the request arrived */
  at: number;
}

export interface FaultProxy {
  url: string;
  requests: SeenRequest[];
  /** Requests received and not yet answered. */
  inFlight(): number;
  /** Apply `fault` to the next `times` requests (default: all) for which `match` is true. */
  inject(match: (method: string, path: string) => boolean, fault: Fault, times?: number): void;
  clear(): void;
  stop(): Promise<void>;
}

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const rules: Array<{ match: (m: string, p: string) => boolean; fault: Fault; left: number }> = [];
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  let inFlight = 0;

  const forward = (req: IncomingMessage, body: Buffer): Promise<UpstreamResponse> =>
    new Promise((resolve, reject) => {
      const up = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      up.on("error", reject);
      up.end(body);
    });

  const server: Server = createServer(async (req, res) => {
    const at = Date.now();
    inFlight++;
    res.on("close", () => inFlight--);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const rule = rules.find((r) => r.left > 0 && r.match(method, path));
    if (rule) rule.left--;
    const fault = rule?.fault;
    requests.push({ method, path, authorization: req.headers.authorization, faulted: fault?.kind, at });
    if (fault?.kind === "reset") {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "hang") return; // never answers; closed on stop()
    if (fault?.kind === "status") {
      res.writeHead(fault.status, { "content-type": "application/json", ...fault.headers });
      res.end(fault.body ?? JSON.stringify({ errors: [{ code: "UNKNOWN", message: "injected fault" }] }));
      return;
    }
    if (fault?.kind === "delay") await new Promise((r) => setTimeout(r, fault.ms));
    if (fault?.kind === "gate") await fault.until.catch(() => {});
    let upstreamRes: UpstreamResponse;
    try {
      upstreamRes = await forward(req, Buffer.concat(chunks));
    } catch {
      res.writeHead(502).end();
      return;
    }
    if (fault?.kind === "rewrite") upstreamRes = fault.transform(upstreamRes);
    const headers = { ...upstreamRes.headers };
    delete headers["transfer-encoding"];
    if (method !== "HEAD") headers["content-length"] = String(upstreamRes.body.length);
    res.writeHead(upstreamRes.status, headers);
    res.end(method === "HEAD" ? undefined : upstreamRes.body);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    inFlight: () => inFlight,
    inject(match, fault, times = Number.POSITIVE_INFINITY) {
      rules.push({ match, fault, left: times });
    },
    clear() {
      rules.length = 0;
    },
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
