import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** A loopback HTTP server whose handler sees the 1-based request number; close() when done. */
export interface Target {
  url: string;
  hits(): number;
  close(): Promise<void>;
}

/** Behaviour per request number: [status, body] to answer, "hang" never to answer, "reset" to drop the socket. */
export type Reply = [number, string?] | "hang" | "reset";

/** Starts a target on 127.0.0.1 with a random port; `reply(n)` decides request n's answer. */
export async function startTarget(reply: (n: number) => Reply): Promise<Target> {
  let n = 0;
  const server = http.createServer((req, res) => {
    const r = reply(++n);
    if (r === "hang") return;
    if (r === "reset") {
      req.socket.resetAndDestroy();
      return;
    }
    res.writeHead(r[0], { "content-type": "application/json" });
    res.end(r[1] ?? JSON.stringify({ status: r[0] === 200 ? "ok" : "down" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/health`,
    hits: () => n,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nobody listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
