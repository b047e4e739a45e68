// The churn soak's access log of ebb's registry traffic: ebb's registry row points at this
// plain forwarding proxy (no faults), which records every request with its times and the
// registry's status. The fleet talks to the registry directly, so every DELETE here is ebb's.
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface LoggedRequest {
  method: string;
  path: string;
  startedAt: number;
  endedAt: number;
  /** the registry's status; 0 when the forward failed */
  status: number;
}

export interface RecordingProxy {
  url: string;
  requests: LoggedRequest[];
  stop(): Promise<void>;
}

export async function startRecordingProxy(upstream: string): Promise<RecordingProxy> {
  const target = new URL(upstream);
  const requests: LoggedRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const entry: LoggedRequest = { method: req.method ?? "GET", path: req.url ?? "/", startedAt: Date.now(), endedAt: 0, status: 0 };
    requests.push(entry);
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
