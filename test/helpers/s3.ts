import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Manifest } from "../../src/core/backup/manifest";
import { uploadBackup, type S3Target } from "../../src/core/backup/offsite";

/** A real S3-compatible server (s3rver, in node) on loopback, storing under `dir`; credentials S3RVER/S3RVER. */
export interface TestS3 {
  endpoint: string;
  close(): Promise<void>;
}

/** A target in bucket `b` of the store at `endpoint`, under `prefix`, with s3rver's credentials. */
export const s3Target = (endpoint: string, prefix: string, more: Partial<S3Target> = {}): S3Target => ({
  bucket: "b",
  region: "us-east-1",
  endpoint,
  prefix,
  forcePathStyle: true,
  credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  ...more,
});

/** Starts s3rver on a random loopback port with `buckets` created. */
export async function startS3(dir: string, buckets: string[]): Promise<TestS3> {
  const S3rver = require("s3rver");
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory: join(dir, "s3"),
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  return { endpoint: `http://127.0.0.1:${port}`, close: () => server.close() };
}

/** What a proxy does with one request: answer it itself, or `forward` it to the store. */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => "forward" | "answered";
/** How to change the text of a forwarded request's answer, if at all. */
export type Rewrite = (req: http.IncomingMessage) => ((body: string) => string) | undefined;

/** A loopback proxy in front of the store at `storeEndpoint`, as a store or a proxy in front of one may behave. */
export async function startS3Proxy(
  storeEndpoint: string,
  handle: Handler,
  rewriteOf: Rewrite = () => undefined,
) {
  const port = Number(new URL(storeEndpoint).port);
  const proxy = http.createServer((req, res) => {
    if (handle(req, res) === "answered") return;
    const rewrite = rewriteOf(req);
    const up = http.request(
      { host: "127.0.0.1", port, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        if (!rewrite) {
          res.writeHead(r.statusCode!, r.headers);
          r.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        r.on("data", (c: Buffer) => chunks.push(c));
        r.on("end", () => {
          const body = Buffer.from(rewrite(Buffer.concat(chunks).toString("utf8")));
          const { "content-length": _l, ...headers } = r.headers;
          res.writeHead(r.statusCode!, { ...headers, "content-length": body.length }).end(body);
        });
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  // Idle keep-alive connections stay open until the client closes them, so a test can tell if it did.
  proxy.keepAliveTimeout = 0;
  const open = new Set<import("node:net").Socket>();
  proxy.on("connection", (s) => {
    open.add(s);
    s.on("close", () => open.delete(s));
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  return {
    endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    /** Client connections open now. */
    openConnections: () => open.size,
    close() {
      proxy.closeAllConnections();
      proxy.close();
    },
  };
}

/** A loopback server that accepts connections and never answers, as a hung store or proxy does. */
export async function startSilentStore() {
  const net = require("node:net") as typeof import("node:net");
  const sockets: import("node:net").Socket[] = [];
  const silent = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  return {
    endpoint: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
    /** Connections accepted so far. */
    connections: () => sockets.length,
    close() {
      for (const s of sockets) s.destroy();
      silent.close();
    },
  };
}

/**
 * Uploads `bytes` (or `size` random bytes) as backup `name` to `t` with a manifest that matches them (encrypted, and
 * the manifest signed, with `key` when given), from a file under `dir`.
 */
export async function uploadRandom(
  dir: string,
  t: S3Target,
  name: string,
  o: { key?: Buffer; createdAt?: string; size?: number; bytes?: Buffer } = {},
) {
  const bytes = o.bytes ?? randomBytes(o.size ?? 2000);
  const file = join(mkdtempSync(join(dir, "src-")), name);
  writeFileSync(file, bytes);
  const m = {
    version: 2,
    file: name,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    sizeBytes: bytes.length,
    createdAt: o.createdAt ?? "2026-01-01T00:00:00.000Z",
    compression: "none",
    rowCounts: {},
  } as unknown as Manifest;
  const r = await uploadBackup(file, m, t, { encryptionKey: o.key });
  return { bytes, m, r };
}
