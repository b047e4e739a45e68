// The churn soak's access logs: a plain forwarding proxy (no faults) that records every request
// with its times and the upstream's status. ebb's registry row points at one in front of the
// registry (the fleet talks to the registry directly, so every DELETE there is ebb's); the
// registry's notifications go through another in front of ebb's /events, which keeps the
// envelopes, so the soak knows when ebb acknowledged (had written) each push.
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface LoggedRequest {
  method: string;
  path: string;
  startedAt: number;
  endedAt: number;
  /** the upstream's status; 0 when the forward failed */
  status: number;
  /** the request body, when the proxy was asked to keep it */
  body?: Buffer;
}

export interface RecordingProxy {
  url: string;
  requests: LoggedRequest[];
  stop(): Promise<void>;
}

/** `keepBody` says which requests' bodies to keep (e.g. the registry's notification envelopes). */
export async function startRecordingProxy(upstream: string, keepBody: (method: string, path: string) => boolean = () => false): Promise<RecordingProxy> {
  const target = new URL(upstream);
  const requests: LoggedRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const entry: LoggedRequest = { method: req.method ?? "GET", path: req.url ?? "/", startedAt: Date.now(), endedAt: 0, status: 0 };
    requests.push(entry);
    if (keepBody(entry.method, entry.path)) {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => (entry.body = Buffer.concat(chunks)));
    }
    const up = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        entry.status = upRes.statusCode ?? 0;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
        upRes.on("end", () => (entry.endedAt = Date.now()));
      },
    );
    up.on("error", () => {
      entry.endedAt = Date.now();
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
