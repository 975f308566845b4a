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

/** Starts a target on 127.0.0.1 (random port unless given); `reply(n)` decides request n's answer. */
export async function startTarget(reply: (n: number) => Reply, port = 0): Promise<Target> {
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
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}/health`,
    hits: () => n,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
