import { join } from "node:path";

/** A real S3-compatible server (s3rver, in node) on loopback, storing under `dir`; credentials S3RVER/S3RVER. */
export interface TestS3 {
  endpoint: string;
  close(): Promise<void>;
}

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
