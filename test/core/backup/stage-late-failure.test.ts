import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { compressor } from "../../../src/core/backup/streams";
import { within } from "../../helpers/bounded";

// Issue 22 (streams.ts `fail`): a zstd that fails after its input has ended. The stage destroys its
// stream only while the input side is still open (else a pipeline ending its input waited forever);
// once the input has finished, what zstd wrote before failing stays readable and the failure comes
// through `done`. A stand-in zstd on PATH holds its exit on a fifo until the input has finished, so
// the order is staged, not raced.
const dir = mkdtempSync(join(tmpdir(), "sd-late-zstd-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const fifo = join(dir, "go");
execFileSync("mkfifo", [fifo]);
writeFileSync(
  join(dir, "zstd"),
  `#!/bin/sh\ncat >/dev/null\nread go < '${fifo}'\nprintf 'written before the failure'\necho 'zstd: error 70 : Write error : cannot write block : No space left on device' >&2\nexit 1\n`,
);
chmodSync(join(dir, "zstd"), 0o755);

test("zstd fails after its input ended: its output so far is still read whole, and done names the failure", async () => {
  const path = process.env.PATH;
  process.env.PATH = `${dir}:${path}`;
  let stage;
  try {
    stage = compressor("zstd");
  } finally {
    process.env.PATH = path;
  }
  const { stream, done } = stage;
  done.catch(() => {});
  stream.end("the dump");
  await within("the stage's input to finish", once(stream, "finish"));
  // The readable side pulls zstd's output into its buffer, but nothing reads it yet.
  stream.read(0);
  await writeFile(fifo, "go\n");
  await assert.rejects(
    within("zstd's failure", done),
    /^Error: zstd failed: zstd: error 70 : Write error : cannot write block : No space left on device$/,
  );
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c as Buffer);
  assert.equal(Buffer.concat(out).toString(), "written before the failure");
});
