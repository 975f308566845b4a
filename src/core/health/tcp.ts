import * as net from "node:net";
import type { ProbeResult } from "./types";

/** One TCP connect to host:port within the timeout; never throws. */
export function tcpProbe(target: { host: string; port: number }, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(
      () => done({ ok: false, detail: `tcp ${target.host}:${target.port} timed out after ${timeoutMs} ms` }),
      timeoutMs,
    );
    function done(r: ProbeResult) {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    }
    socket.once("connect", () => done({ ok: true }));
    socket.once("error", (e: NodeJS.ErrnoException) =>
      done({ ok: false, detail: `tcp ${target.host}:${target.port} ${e.code ?? e.message}` }),
    );
  });
}
