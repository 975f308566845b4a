import { spawn } from "node:child_process";
import { createHash, type Hash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { Duplex, PassThrough, Transform, Writable } from "node:stream";
import { createGunzip, createGzip } from "node:zlib";
import type { Compression } from "./names";

/** A compressing or decompressing stage and a promise of its success. */
export interface Stage {
  stream: Duplex;
  done: Promise<void>;
}

function zstdStage(args: string[]): Stage {
  // The dump passes through node on its way to zstd since its tables are checksummed there (issue 18).
  const child = spawn("zstd", ["-q", ...args]);
  let err = "";
  let abandoned = false;
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const stream = Duplex.from({ writable: child.stdin!, readable: child.stdout! });
  const done = new Promise<void>((resolve, reject) => {
    const fail = (e: Error) => {
      reject(e);
      // The process is gone, and node destroys its stdin at exit with neither "finish" nor an error: a
      // pipeline that ends its input afterwards (pg_dump killed by the same Ctrl-C as zstd, its output
      // ending a moment later) waited forever for this stage's writable side, and a restore's safety
      // backup never settled (issue 18, seen 1 run in 6). The stage fails instead.
      if (!stream.destroyed && !stream.writableFinished) stream.destroy(e);
    };
    child.on("error", (e) => fail(new Error(`zstd could not run (${e.message}); install zstd`)));
    child.on("close", (code, signal) => {
      if (code === 0) return resolve();
      // Killed by a broken pipe: the reader (pg_restore) stopped first, and its error is the real one.
      if (abandoned || signal === "SIGPIPE" || /broken pipe/i.test(err)) {
        return fail(Object.assign(new Error("zstd stopped: its reader exited"), { code: "EPIPE" }));
      }
      fail(new Error(`zstd failed: ${err.trim() || signal || code}`));
    });
  });
  done.catch(() => {});
  // A pipeline that fails downstream (pg_restore exited early) destroys this stream but neither the
  // process, which would then block forever on a full pipe nobody reads, nor its stdout. zstd may
  // already have exited with its output sitting unread in that paused pipe: the child's "close" waits
  // for stdout to end, which it never would, and `done` never settled (issue 15: restores onto a
  // server without the database hung). So the pipes are destroyed whether or not zstd still runs.
  stream.on("close", () => {
    if (stream.readableEnded) return;
    abandoned = true;
    child.stdin!.destroy();
    child.stdout!.destroy();
    if (child.exitCode === null && child.signalCode === null) child.kill();
  });
  return { stream, done };
}

/**
 * The compressor for a new backup. zstd runs as its own process (multi-threaded, outside node's heap).
 * No `--long`: measured on pgbench scale 50 it made the file larger (6.4 vs 4.8 MB) and three times
 * slower to compress; decompression keeps `--long=27` so backups written with it still restore.
 */
export function compressor(c: Compression): Stage {
  if (c === "zstd") return zstdStage(["-3", "-T0", "-c"]);
  if (c === "gzip") return { stream: createGzip(), done: Promise.resolve() };
  return { stream: new PassThrough(), done: Promise.resolve() };
}

/** zstd's decompression flags, streamed or into a file: `--long=27` reads backups written with it. */
const ZSTD_DECOMPRESS = ["-d", "--long=27", "-c"];

/** The matching decompressor (zstd's own integrity check fails a damaged frame). */
export function decompressor(c: Compression): Stage {
  if (c === "zstd") return zstdStage(ZSTD_DECOMPRESS);
  if (c === "gzip") return { stream: createGunzip(), done: Promise.resolve() };
  return { stream: new PassThrough(), done: Promise.resolve() };
}

/**
 * Decompresses the backup `file` into the open file `fd` (a parallel restore's temp copy of the archive):
 * the decompressor writes there itself, so the bytes never pass through node. Rejects with the
 * decompressor's error; `code` is "ENOSPC" when the disk filled up.
 */
export function decompressToFile(c: Compression, file: string, fd: number): Promise<void> {
  if (c === "none") return Promise.reject(new Error("an uncompressed backup needs no decompressing"));
  const cmd = c === "zstd" ? "zstd" : "gzip";
  const args = c === "zstd" ? ["-q", ...ZSTD_DECOMPRESS, file] : ["-dc", file];
  const child = spawn(cmd, args, { stdio: ["ignore", fd, "pipe"] });
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  return new Promise<void>((resolve, reject) => {
    child.on("error", (e) => reject(new Error(`${cmd} could not run (${e.message}); install ${cmd}`)));
    child.on("close", (code, signal) => {
      if (code === 0) return resolve();
      const e = new Error(`${cmd} failed: ${err.trim() || signal || code}`);
      reject(Object.assign(e, /no space left/i.test(err) ? { code: "ENOSPC" } : {}));
    });
  });
}

/** A pass-through that hashes and counts what flows through it. */
export function hasher(): { stream: Transform; hash: Hash; bytes: () => number } {
  const hash = createHash("sha256");
  let n = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      n += chunk.length;
      cb(null, chunk);
    },
  });
  return { stream, hash, bytes: () => n };
}

/** Writes into an open file and fsyncs it before finishing, so "done" means on disk. */
export function fileSink(fh: FileHandle): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      fh.write(chunk).then(
        () => cb(),
        (e: Error) => cb(e),
      );
    },
    final(cb) {
      fh.sync().then(
        () => cb(),
        (e: Error) => cb(e),
      );
    },
  });
}

/** What {@link archiveTableSums} read from a pg_dump custom-format archive. */
export interface ArchiveSums {
  /** sha256 (hex) of each table's COPY data, by `schema.table`: every table with a data block. */
  sums: Record<string, string>;
  /** The archive's encoding (its ENCODING entry), e.g. "UTF8". */
  encoding?: string;
  /** Why the archive could not be read (the bytes still passed through unchanged); then `sums` is partial. */
  unreadable?: string;
  /** Size of the whole archive in bytes (what a parallel restore decompresses to a temp file). */
  bytes: number;
  /** Bytes of each table's data block in the archive, by `schema.table` (how much a restore loads into it). */
  tableBytes: Record<string, number>;
  /**
   * Rows of each table's data block, by `schema.table`: pg_dump writes each COPY row as one chunk (it
   * writes what each PQgetCopyData returns, one row, in every archive version this reader knows). A
   * table with a chunk that does not end a row (a framing this reader does not expect) has no count here.
   */
  rowCounts: Record<string, number>;
}

/** The stream is not the archive the reader expects (the dump itself may still be fine). */
class ArchiveFormatError extends Error {}

/**
 * Environment of every pg_dump whose data is checksummed: a timestamptz is written in UTC whatever the
 * database's or role's TimeZone, so a copy restored elsewhere (a scratch database without the
 * original's settings) dumps to the same bytes. libpq sends it at connection start (also through
 * PgBouncer, which tracks TimeZone); pg_dump itself fixes DateStyle, IntervalStyle and float digits.
 */
export const DUMP_TEXT_ENV: Record<string, string> = { PGTZ: "UTC" };

const BLK_DATA = 1;
const BLK_BLOBS = 3;

/**
 * A pass-through that reads a pg_dump custom-format archive written with `-Z0` as it streams and
 * hashes each table's COPY data (issue 18: the per-table checksums came from a second scan of every
 * row on the server, beside pg_dump, competing with it for the cores; the dump already carries every
 * row). Only the rows' bytes are hashed, not pg_dump's framing (one length-prefixed chunk per row in
 * PostgreSQL 15), so a later pg_dump that frames them otherwise gives the same sums. Layout: see
 * ReadHead, ReadToc and pg_backup_custom.c in PostgreSQL's src/bin/pg_dump.
 */
export function archiveTableSums(): {
  stream: Transform;
  result: () => ArchiveSums;
  /** The tables with a data block, once the table of contents is read (undefined: it could not be read). */
  toc: Promise<string[] | undefined>;
} {
  const out: ArchiveSums = { sums: {}, bytes: 0, tableBytes: {}, rowCounts: {} };
  let tocRead: (tables: string[] | undefined) => void = () => {};
  const toc = new Promise<string[] | undefined>((resolve) => (tocRead = resolve));
  const tables = new Map<number, string>();
  let intSize = 4;
  // Header and table of contents: gathered whole, parsed once more each time the gathered bytes
  // double (a TOC of a few MB costs a few parses, not one per chunk).
  let head: Buffer[] | undefined = [];
  let headBytes = 0;
  let nextTry = 4096;
  // Data section: a small state machine over the bytes.
  type State = "block" | "chunk" | "payload" | "oid";
  let state: State = "block";
  let field = Buffer.alloc(0);
  let blockType = 0;
  let table: Hash | undefined;
  // Set at every data block's header, read only at its end: no initial value is ever read.
  let tableKey: string;
  let left = 0;
  // Chunks of the current data block, whether every one so far ended a row ("\n"), and the bytes of
  // the last one when it is as long as the end-of-data line pg_dump writes after the rows ("\\.\n\n\n",
  // a chunk of its own, not a row: COPY escapes a backslash, so no row's text starts with one).
  let rows = 0;
  let rowsExact: boolean;
  let lastChunk = Buffer.alloc(0);
  const isEndOfData = (b: Buffer, at: number, n: number) =>
    n === 5 && b[at] === 92 && b[at + 1] === 46 && b[at + 2] === 10 && b[at + 3] === 10 && b[at + 4] === 10;
  let endOfData: boolean;
  // Offset in the archive of the buffer being read, and of the current data block's header.
  let base = 0;
  let blockAt = 0;

  const readInt = (b: Buffer, at: number): number => {
    let v: number;
    if (intSize === 4) v = b[at + 1] + b[at + 2] * 0x100 + b[at + 3] * 0x10000 + b[at + 4] * 0x1000000;
    else {
      v = 0;
      for (let i = 0; i < intSize; i++) v += b[at + 1 + i] * 2 ** (8 * i);
    }
    return b[at] ? -v : v;
  };

  /** Parses header and TOC from `b`; the offset where the data blocks start, or -1 when `b` is too short. */
  const parseHead = (b: Buffer): number => {
    let p = 0;
    const need = (n: number) => {
      if (p + n > b.length) throw new RangeError();
    };
    const byte = () => (need(1), b[p++]);
    const int = () => {
      need(1 + intSize);
      const v = readInt(b, p);
      p += 1 + intSize;
      return v;
    };
    const str = () => {
      const n = int();
      if (n < 0) return undefined;
      need(n);
      p += n;
      return b.toString("utf8", p - n, p);
    };
    try {
      need(5);
      if (b.toString("latin1", 0, 5) !== "PGDMP") throw new ArchiveFormatError("no PGDMP magic string");
      p = 5;
      const v = [byte(), byte(), byte()];
      const ver = v[0] * 10000 + v[1] * 100;
      if (v[0] !== 1 || v[1] < 12 || v[1] > 16) {
        throw new ArchiveFormatError(
          `archive version ${v[0]}.${v[1]} is not one this reader knows (1.12-1.16)`,
        );
      }
      intSize = byte();
      const offSize = byte();
      if (byte() !== 1) throw new ArchiveFormatError("not the custom format");
      const compressed = ver >= 11500 ? byte() : int();
      if (compressed !== 0)
        throw new ArchiveFormatError("the archive's data is compressed (pg_dump without -Z0)");
      for (let i = 0; i < 7; i++) int(); // creation time
      str(); // database name
      str(); // server version
      str(); // pg_dump version
      const count = int();
      for (let i = 0; i < count; i++) {
        const dumpId = int();
        int(); // hadDumper
        str(); // tableoid
        str(); // oid
        const tag = str() ?? "";
        const desc = str();
        int(); // section
        const defn = str() ?? "";
        str(); // dropStmt
        str(); // copyStmt
        const namespace = str() ?? "";
        str(); // tablespace
        if (ver >= 11400) str(); // tableam
        if (ver >= 11600) int(); // relkind
        str(); // owner
        str(); // "false": with OIDs
        while (str() !== undefined); // dependencies
        need(1 + offSize);
        p += 1 + offSize; // data offset (unset when written to a pipe)
        if (desc === "TABLE DATA") tables.set(dumpId, `${namespace}.${tag}`);
        if (desc === "ENCODING") out.encoding = /'([^']*)'/.exec(defn)?.[1];
      }
      return p;
    } catch (e) {
      if (e instanceof RangeError) return -1;
      throw e;
    }
  };

  // Rows are gathered in one buffer and hashed 256 kB at a time: one hash call per row (a row is a
  // chunk of its own) cost three times the reading.
  const stage = Buffer.allocUnsafe(1 << 18);
  let staged = 0;
  const flushStage = () => {
    if (table) table.update(staged === stage.length ? stage : stage.subarray(0, staged));
    staged = 0;
  };
  const hashBytes = (c: Buffer, from: number, to: number) => {
    if (!table) return;
    if (to - from >= stage.length >> 2) {
      flushStage();
      table.update(c.subarray(from, to));
      return;
    }
    if (staged + (to - from) > stage.length) flushStage();
    c.copy(stage, staged, from, to);
    staged += to - from;
  };

  /** Consumes `c` from `i` in the data section. */
  const data = (c: Buffer, i: number) => {
    const end = c.length;
    while (i < end) {
      if (state === "payload") {
        const n = Math.min(left, end - i);
        hashBytes(c, i, i + n);
        i += n;
        left -= n;
        if (lastChunk.length < 5) {
          lastChunk = Buffer.concat([lastChunk, c.subarray(i - n, i)]).subarray(0, 6);
        }
        if (left === 0) {
          if (c[i - 1] !== 10) rowsExact = false;
          endOfData = isEndOfData(lastChunk, 0, lastChunk.length);
          state = "chunk";
        }
        continue;
      }
      // The common case, a whole row chunk in this buffer: its length, then its bytes.
      if (state === "chunk" && field.length === 0 && intSize === 4) {
        // The buffer is copied to the stage once and each row moved down over the length before it
        // (copyWithin allocates nothing; a copy per row made a view per row).
        const base =
          table && end - i <= stage.length
            ? staged + end - i > stage.length
              ? (flushStage(), 0)
              : staged
            : -1;
        if (base >= 0) stage.set(i === 0 ? c : c.subarray(i), base);
        const from = i;
        while (i + 5 <= end && c[i] === 0) {
          const n = c[i + 1] + c[i + 2] * 0x100 + c[i + 3] * 0x10000 + c[i + 4] * 0x1000000;
          if (n === 0 || i + 5 + n > end) break;
          rows++;
          if (c[i + 4 + n] !== 10) rowsExact = false;
          endOfData = isEndOfData(c, i + 5, n);
          if (base >= 0) {
            stage.copyWithin(staged, base + i + 5 - from, base + i + 5 - from + n);
            staged += n;
          } else hashBytes(c, i + 5, i + 5 + n);
          i += 5 + n;
        }
        if (i >= end) return;
      }
      // A fixed-size field (block header, chunk length, large object oid), possibly split across buffers.
      const want = state === "block" ? 2 + intSize : 1 + intSize;
      let f: Buffer;
      let at = 0;
      if (field.length === 0 && end - i >= want) {
        f = c;
        at = i;
        i += want;
      } else {
        const n = Math.min(want - field.length, end - i);
        field = Buffer.concat([field, c.subarray(i, i + n)]);
        i += n;
        if (field.length < want) return;
        f = field;
        field = Buffer.alloc(0);
      }
      if (state === "block") {
        blockAt = base + i - want;
        blockType = f[at];
        const id = readInt(f, at + 1);
        if (blockType === BLK_DATA) {
          tableKey = tables.get(id) ?? "";
          table = tableKey ? createHash("sha256") : undefined;
          staged = 0;
          rows = 0;
          rowsExact = true;
          endOfData = false;
          state = "chunk";
        } else if (blockType === BLK_BLOBS) {
          table = undefined;
          state = "oid";
        } else {
          throw new ArchiveFormatError(`unknown data block type ${blockType}`);
        }
      } else if (state === "oid") {
        state = readInt(f, at) === 0 ? "block" : "chunk";
      } else {
        left = readInt(f, at);
        if (left < 0) throw new ArchiveFormatError(`negative chunk length ${left}`);
        if (left > 0) {
          state = "payload";
          rows++;
          // Gathered only when it may be the end-of-data line (5 bytes): rows pass through uncopied.
          lastChunk = left === 5 ? Buffer.alloc(0) : Buffer.alloc(6);
        } else if (blockType === BLK_BLOBS) state = "oid";
        else {
          flushStage();
          if (table) out.sums[tableKey] = table.digest("hex");
          if (tableKey) out.tableBytes[tableKey] = base + i - blockAt;
          if (tableKey && rowsExact) out.rowCounts[tableKey] = rows - (endOfData ? 1 : 0);
          table = undefined;
          state = "block";
        }
      }
    }
  };

  // Never fails the stream: a reader that cannot follow the archive says so in `unreadable` and the
  // caller checksums another way; the backup's bytes are never at stake.
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      out.bytes += chunk.length;
      if (out.unreadable) return cb(null, chunk);
      try {
        if (head) {
          head.push(chunk);
          headBytes += chunk.length;
          if (headBytes >= nextTry) {
            const all = Buffer.concat(head);
            const start = parseHead(all);
            if (start < 0) {
              head = [all];
              nextTry = headBytes * 2;
            } else {
              head = undefined;
              base = 0;
              tocRead([...tables.values()]);
              data(all, start);
            }
          }
        } else {
          base = out.bytes - chunk.length;
          data(chunk, 0);
        }
      } catch (e) {
        out.unreadable = (e as Error).message;
        tocRead(undefined);
      }
      cb(null, chunk);
    },
    flush(cb) {
      try {
        if (out.unreadable) return cb();
        if (head) {
          const all = Buffer.concat(head);
          const start = parseHead(all);
          if (start < 0) throw new ArchiveFormatError("the archive ends inside its table of contents");
          head = undefined;
          base = 0;
          tocRead([...tables.values()]);
          data(all, start);
        }
        if (state !== "block" || field.length)
          throw new ArchiveFormatError("the archive ends inside a data block");
      } catch (e) {
        out.unreadable = (e as Error).message;
      }
      // Settled on every path (a stream destroyed early never flushes: then the caller's own end decides).
      tocRead(undefined);
      cb();
    },
  });
  stream.on("close", () => tocRead(undefined));
  return { stream, result: () => out, toc };
}
