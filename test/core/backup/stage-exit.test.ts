import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { PassThrough, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { compressor } from "../../../src/core/backup/streams";

// Issue 18 (found when a restore's safety backup began running beside its load): a Ctrl-C kills
// zstd and pg_dump at once; when zstd's exit came before the end of pg_dump's output, the backup's
// pipeline waited forever for zstd's input side (node destroys a dead child's stdin with neither
// "finish" nor an error) and, nothing else being left to run, the process drained with "a step never
// completed" instead of the restore's own cleanup (connection limit put back). Seen 5 runs in 30.

/** The zstd processes this test process started. */
const zstds = () =>
  execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" })
    .split("\n")
    .filter((l) => /\bzstd\b/.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[0]));

test("zstd killed while its input is still open: the pipeline through it settles, it does not hang", async () => {
  const { stream, done } = compressor("zstd");
  const input = new PassThrough();
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const flowing = pipeline(input, stream, sink);
  flowing.catch(() => {});
  input.write(Buffer.alloc(64 * 1024, 7));
  const [pid] = zstds();
  assert.ok(pid > 0, "zstd runs");
  // The order the hang needs: zstd's output ends, then pg_dump's does (the stage's input is ended),
  // and only then does node see zstd's exit, which destroys its stdin.
  // (Or the stage already failed, when node saw the exit first: then it is destroyed without an "end".)
  const outputEnded = new Promise((resolve) => {
    stream.once("end", resolve);
    stream.once("close", resolve);
  });
  process.kill(pid, "SIGINT");
  await outputEnded;
  input.end();
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve("never settled"), 10_000);
  });
  const outcome = await Promise.race([
    flowing.then(
      () => "succeeded",
      (e: Error) => `failed: ${e.message}`,
    ),
    bound,
  ]);
  clearTimeout(timer);
  // Either way the stage's own promise says zstd failed, which createBackup checks after the pipeline.
  assert.notEqual(outcome, "never settled");
  await assert.rejects(done, /zstd (failed|stopped)/);
});
