import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { gzipSync } from "node:zlib";
import {
  compressor,
  decompressor,
  decompressToFile,
  fileSink,
  hasher,
} from "../../../src/core/backup/streams";

// Issue 22: the compress/decompress stages, the hashing pass-through and the fsyncing file sink of
// streams.ts, in the test process (a child's coverage is invisible to Stryker) with real zstd and gzip.
const dir = mkdtempSync(join(tmpdir(), "sd-stages-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const DATA = Buffer.concat([randomBytes(200_000), Buffer.alloc(300_000, "row\t1\n")]);
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function collect(src: Readable | Buffer[], ...stages: NodeJS.ReadWriteStream[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Array.isArray(src) ? Readable.from(src) : src,
    ...(stages as [NodeJS.ReadWriteStream]),
    new Writable({
      write: (c: Buffer, _e, cb) => {
        out.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

/** Resolves with `p`'s outcome, or "still pending" after 10 s: no test waits on the product unbounded. */
async function settled(p: Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<string>((r) => (timer = setTimeout(() => r("still pending"), 10_000)));
  const outcome = await Promise.race([
    p.then(
      () => "resolved",
      (e: Error & { code?: string }) => `rejected${e.code ? ` (${e.code})` : ""}: ${e.message}`,
    ),
    bound,
  ]);
  clearTimeout(timer);
  return outcome;
}

/** zstd processes that are children of this test process. */
const zstds = () =>
  execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" })
    .split("\n")
    .filter((l) => /\bzstd\b/.test(l));

test("each compression's stages: zstd and gzip write their own format, and decompress back byte for byte", async () => {
  const magic = { zstd: "28b52ffd", gzip: "1f8b", none: DATA.subarray(0, 4).toString("hex") };
  for (const c of ["zstd", "gzip", "none"] as const) {
    const comp = compressor(c);
    const packed = await collect([DATA.subarray(0, 100_000), DATA.subarray(100_000)], comp.stream);
    assert.equal(await settled(comp.done), "resolved", c);
    assert.equal(packed.subarray(0, magic[c].length / 2).toString("hex"), magic[c], c);
    if (c === "none") assert.ok(packed.equals(DATA));
    else assert.ok(packed.length < DATA.length, `${c} compresses`);
    const dec = decompressor(c);
    const back = await collect([packed], dec.stream);
    assert.equal(await settled(dec.done), "resolved", c);
    assert.equal(sha(back), sha(DATA), c);
  }
  // The external tool's own output decompresses too (a backup written by another zstd or gzip).
  const z = execFileSync("zstd", ["-q", "-c", "--long=27"], { input: DATA });
  assert.equal(sha(await collect([z], decompressor("zstd").stream)), sha(DATA));
});

test("a damaged zstd frame: the stage fails with zstd's own message, not a success", async () => {
  const z = execFileSync("zstd", ["-q", "-c"], { input: DATA });
  z[z.length >> 1] ^= 0xff;
  const dec = decompressor("zstd");
  const flowing = collect([z], dec.stream);
  flowing.catch(() => {});
  const outcome = await settled(dec.done);
  // zstd's own stderr, trimmed (it ends its line with a space and a newline).
  assert.match(outcome, /^rejected: zstd failed: (zstd: )?\/\*stdin\*\\ ?: .*\S$/);
  assert.doesNotMatch(outcome, /EPIPE|reader exited/);
  assert.notEqual(await settled(flowing), "still pending");
});

test("zstd compresses at its own level (-3, all cores), whatever ZSTD_CLEVEL the user's environment sets", async () => {
  const env = { ...process.env };
  delete env.ZSTD_CLEVEL;
  const level3 = execFileSync("zstd", ["-q", "-3", "-T0", "-c"], { input: DATA, env });
  const level19 = execFileSync("zstd", ["-q", "-c"], { input: DATA, env: { ...env, ZSTD_CLEVEL: "19" } });
  assert.ok(!level3.equals(level19), "the two levels differ on this input (the test can tell)");
  const saved = process.env.ZSTD_CLEVEL;
  process.env.ZSTD_CLEVEL = "19";
  let comp;
  try {
    comp = compressor("zstd");
  } finally {
    if (saved === undefined) delete process.env.ZSTD_CLEVEL;
    else process.env.ZSTD_CLEVEL = saved;
  }
  const packed = await collect([DATA], comp.stream);
  assert.equal(await settled(comp.done), "resolved");
  assert.ok(packed.equals(level3), "the bytes of zstd -3");
});

test("no zstd on the PATH: the stage says zstd could not run and to install it", async () => {
  const path = process.env.PATH;
  process.env.PATH = join(dir, "nothing-here");
  let stage;
  try {
    stage = compressor("zstd");
  } finally {
    process.env.PATH = path;
  }
  const flowing = collect([Buffer.from("x")], stage.stream);
  flowing.catch(() => {});
  assert.match(await settled(stage.done), /^rejected: zstd could not run \(.*ENOENT.*\); install zstd$/);
  // The pipeline's own error is the one createBackup and restore report ("writing the backup to DIR
  // failed: ..."): it says the same, not node's bare "Premature close" of a stream nobody destroyed.
  assert.match(await settled(flowing), /^rejected: zstd could not run \(.*ENOENT.*\); install zstd$/);
});

test("no zstd on the PATH for a restore: the pipeline through the decompressor fails saying so", async () => {
  const path = process.env.PATH;
  process.env.PATH = join(dir, "nothing-here");
  let stage;
  try {
    stage = decompressor("zstd");
  } finally {
    process.env.PATH = path;
  }
  const flowing = collect([Buffer.alloc(100_000, 1)], stage.stream);
  flowing.catch(() => {});
  assert.match(await settled(flowing), /^rejected: zstd could not run \(.*ENOENT.*\); install zstd$/);
  assert.match(await settled(stage.done), /install zstd$/);
});

test("the reader of a zstd stage stops first: zstd is stopped, and the stage says its reader exited (EPIPE)", async () => {
  const z = execFileSync("zstd", ["-q", "-c"], { input: Buffer.concat([DATA, DATA, DATA, DATA]) });
  const dec = decompressor("zstd");
  let writes = 0;
  const reader = new Writable({
    write: (_c, _e, cb) => (++writes === 1 ? cb(new Error("pg_restore exited")) : cb()),
  });
  const flowing = pipeline(Readable.from([z]), dec.stream, reader);
  assert.match(await settled(flowing), /^rejected: pg_restore exited/);
  assert.equal(await settled(dec.done), "rejected (EPIPE): zstd stopped: its reader exited");
  for (let i = 0; i < 100 && zstds().length; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(zstds(), [], "no zstd left running");
});

test("zstd that exits 0 before its input ends does not make the stage fail; a stage read to its end succeeds", async () => {
  const comp = compressor("zstd");
  const input = new PassThrough();
  const flowing = collect(input, comp.stream);
  input.end(Buffer.from("one row\n"));
  assert.equal(await settled(flowing), "resolved");
  assert.equal(await settled(comp.done), "resolved");
});

test("decompressToFile: zstd and gzip write the archive into the file themselves; damage, a full disk and a missing tool are told apart", async () => {
  const zf = join(dir, "a.pgdump.zst");
  const gf = join(dir, "a.pgdump.gz");
  writeFileSync(zf, execFileSync("zstd", ["-q", "-c"], { input: DATA }));
  writeFileSync(gf, gzipSync(DATA));
  for (const [c, f] of [
    ["zstd", zf],
    ["gzip", gf],
  ] as const) {
    const out = join(dir, `out-${c}`);
    const fd = openSync(out, "w");
    try {
      assert.equal(await settled(decompressToFile(c, f, fd)), "resolved", c);
    } finally {
      closeSync(fd);
    }
    assert.equal(sha(readFileSync(out)), sha(DATA), c);

    const bad = join(dir, `bad-${c}`);
    const damaged = readFileSync(f);
    damaged[damaged.length >> 1] ^= 0xff;
    writeFileSync(bad, damaged);
    const fd2 = openSync(join(dir, `out2-${c}`), "w");
    const full = openSync("/dev/full", "w");
    try {
      const outcome = await settled(decompressToFile(c, bad, fd2));
      assert.match(outcome, new RegExp(`^rejected: ${c} failed: \\S`), c);
      assert.match(
        await settled(decompressToFile(c, f, full)),
        new RegExp(`^rejected \\(ENOSPC\\): ${c} failed: .*no space left`, "i"),
        c,
      );
    } finally {
      closeSync(fd2);
      closeSync(full);
    }
  }
  assert.equal(
    await settled(decompressToFile("none", zf, 1)),
    "rejected: an uncompressed backup needs no decompressing",
  );
  const path = process.env.PATH;
  process.env.PATH = join(dir, "nothing-here");
  try {
    const fd = openSync(join(dir, "out3"), "w");
    try {
      assert.match(
        await settled(decompressToFile("gzip", gf, fd)),
        /^rejected: gzip could not run \(.*ENOENT.*\); install gzip$/,
      );
    } finally {
      closeSync(fd);
    }
  } finally {
    process.env.PATH = path;
  }
});

test("hasher: the sha256 and byte count of exactly what passed, whatever the pieces", async () => {
  const h = hasher();
  const pieces = [DATA.subarray(0, 1), DATA.subarray(1, 70_001), DATA.subarray(70_001)];
  const out = await collect(pieces, h.stream);
  assert.ok(out.equals(DATA));
  assert.equal(h.hash.digest("hex"), sha(DATA));
  assert.equal(h.bytes(), DATA.length);
  const empty = hasher();
  await collect([], empty.stream);
  assert.equal(empty.bytes(), 0);
  assert.equal(empty.hash.digest("hex"), sha(Buffer.alloc(0)));
});

test("fileSink writes every byte and fsyncs after the last one; a failed write or fsync fails the pipeline", async () => {
  const f = join(dir, "sink");
  const fh = await open(f, "w");
  const syncs: number[] = [];
  const realSync = fh.sync.bind(fh);
  fh.sync = async () => {
    syncs.push(statSync(f).size);
    return realSync();
  };
  await pipeline(Readable.from([DATA.subarray(0, 1000), DATA.subarray(1000)]), fileSink(fh));
  await fh.close();
  assert.equal(sha(readFileSync(f)), sha(DATA));
  assert.deepEqual(syncs, [DATA.length], "one fsync, after every byte was written");

  // A disk that fails the fsync (the data may not be on disk): the backup must not be taken as done.
  const g = await open(join(dir, "sink-eio"), "w");
  g.sync = async () => {
    throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
  };
  assert.equal(
    await settled(pipeline(Readable.from([DATA]), fileSink(g))),
    "rejected (EIO): EIO: i/o error, fsync",
  );
  await g.close();

  // A write that fails (the disk is full).
  const full = await open("/dev/full", "w");
  assert.match(await settled(pipeline(Readable.from([DATA]), fileSink(full))), /^rejected \(ENOSPC\)/);
  await full.close();
});

test("zstd killed by a signal: the stage names the signal, and a broken pipe (SIGPIPE) counts as its reader's doing", async () => {
  for (const [signal, expected] of [
    ["SIGKILL", "rejected: zstd failed: SIGKILL"],
    ["SIGPIPE", "rejected (EPIPE): zstd stopped: its reader exited"],
  ] as const) {
    const before = new Set(zstds());
    const stage = compressor("zstd");
    const input = new PassThrough();
    const flowing = collect(input, stage.stream);
    flowing.catch(() => {});
    input.write(Buffer.alloc(1024, 1));
    // Polled (bounded): right after the spawn the child may not have become zstd yet.
    let line: string | undefined;
    for (let i = 0; i < 100 && !line; i++) {
      line = zstds().find((l) => !before.has(l));
      if (!line) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(line, "zstd runs");
    process.kill(Number(line.trim().split(/\s+/)[0]), signal);
    assert.equal(await settled(stage.done), expected, signal);
    input.destroy();
  }
});

test("a failed stage nobody awaits does not crash the process (its rejection is handled)", async () => {
  const z = Buffer.from("not a zstd frame at all");
  const dec = decompressor("zstd");
  const flowing = collect([z], dec.stream);
  flowing.catch(() => {});
  assert.notEqual(await settled(flowing), "still pending");
  // `dec.done` is deliberately never awaited: an unhandled rejection would fail this file.
  await new Promise((r) => setTimeout(r, 200));
});
