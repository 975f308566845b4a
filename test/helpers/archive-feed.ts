import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { archiveTableSums } from "../../src/core/backup/streams";

/**
 * Feeds `bytes` through the backup's archive reader cut in pieces of the given sizes (cycled): what came
 * out (it must be the bytes unchanged), what the reader read, and the table of contents it parsed.
 */
export async function feedArchive(bytes: Buffer, sizes: number[] = [bytes.length]) {
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length];
    pieces.push(bytes.subarray(at, at + n));
    at += n;
  }
  const sums = archiveTableSums();
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(pieces),
    sums.stream,
    new Writable({
      write: (c: Buffer, _e, cb) => {
        out.push(c);
        cb();
      },
    }),
  );
  return { out: Buffer.concat(out), read: sums.result(), toc: await sums.toc };
}
