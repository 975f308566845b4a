import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { feedArchive as feed } from "../../helpers/archive-feed";
import { PG_BIN } from "../../helpers/postgres";
import { archiveTableSums } from "../../../src/core/backup/streams";

// Issue 22: the reader that takes each table's checksum, row count and size from the dump stream
// (streams.ts), fed archives built here byte by byte in pg_dump's custom format (pg_backup_custom.c,
// WriteHead/WriteToc) so every field, version and framing can be chosen; pg_restore itself reads the
// builder's archives (first test), so they are archives, not this reader's idea of one.

interface Layout {
  magic?: string;
  major?: number;
  minor?: number;
  intSize?: number;
  offSize?: number;
  format?: number;
  compression?: number;
  /** Leave out the leading block of a table not in the TOC that pushes the rest past the first parse. */
  noPad?: boolean;
}
interface Entry {
  id: number;
  desc: string;
  tag: string;
  ns?: string;
  defn?: string;
  copy?: string;
}
type Block =
  | { data: number; chunks: (string | Buffer)[]; noEnd?: boolean }
  | { blobs: number; items: { oid: number; chunks: (string | Buffer)[] }[] }
  | { raw: Buffer };

function build(entries: Entry[], blocks: Block[], layout: Layout = {}): Buffer {
  const l = {
    magic: "PGDMP",
    major: 1,
    minor: 14,
    intSize: 4,
    offSize: 8,
    format: 1,
    compression: 0,
    ...layout,
  };
  const int = (v: number) => {
    const b = Buffer.alloc(1 + l.intSize);
    b[0] = v < 0 ? 1 : 0;
    let a = Math.abs(v);
    for (let i = 0; i < l.intSize; i++) {
      b[1 + i] = a % 256;
      a = Math.floor(a / 256);
    }
    return b;
  };
  const str = (s: string | undefined) =>
    s === undefined ? int(-1) : Buffer.concat([int(Buffer.byteLength(s)), Buffer.from(s)]);
  const p: Buffer[] = [
    Buffer.from(l.magic, "latin1"),
    Buffer.from([l.major, l.minor, 0, l.intSize, l.offSize, l.format]),
  ];
  p.push(l.minor >= 15 ? Buffer.from([l.compression]) : int(l.compression));
  for (const v of [7, 30, 12, 6, 11, 126, 0]) p.push(int(v));
  p.push(str("app"), str("15.10"), str("15.10"), int(entries.length));
  for (const e of entries) {
    const isTable = e.desc === "TABLE";
    p.push(
      int(e.id),
      int(["TABLE DATA", "BLOBS"].includes(e.desc) ? 1 : 0),
      str("1259"),
      str(String(16000 + e.id)),
      str(e.tag),
      str(e.desc),
    );
    p.push(int(e.desc === "TABLE DATA" ? 3 : 2), str(e.defn ?? ""), str(""), str(e.copy ?? ""));
    p.push(str(e.ns), str(isTable ? "" : undefined));
    if (l.minor >= 14) p.push(str(isTable ? "heap" : undefined));
    if (l.minor >= 16) p.push(int(isTable ? 114 : 0));
    p.push(str("postgres"), str("false"));
    if (e.id > 1) p.push(str(String(e.id - 1)));
    p.push(str(undefined));
    p.push(Buffer.from([1]), Buffer.alloc(l.offSize));
  }
  // The header is parsed once 4 kB have arrived (or at the end): a first block of 11 kB for a dump id
  // the TOC does not have (skipped, like pg_dump's blocks of other entries) makes the blocks under
  // test arrive in the pieces `feed` cuts, not in one buffer at the end.
  const pad: Block[] = l.noPad ? [] : [{ data: 999, chunks: Array<string>(1000).fill("pad\t1\n") }];
  for (const b of [...pad, ...blocks]) {
    if ("raw" in b) p.push(b.raw);
    else if ("data" in b) {
      p.push(Buffer.from([1]), int(b.data));
      for (const c of b.chunks) p.push(int(Buffer.byteLength(c)), Buffer.from(c));
      if (!b.noEnd) p.push(int(0));
    } else {
      p.push(Buffer.from([3]), int(b.blobs));
      for (const item of b.items) {
        p.push(int(item.oid));
        for (const c of item.chunks) p.push(int(Buffer.byteLength(c)), Buffer.from(c));
        p.push(int(0));
      }
      p.push(int(0));
    }
  }
  return Buffer.concat(p);
}

/** Bytes a data block takes with 4-byte ints: type, id, each chunk's length and bytes, the end. */
const blockBytes = (chunks: (string | Buffer)[], intSize = 4) =>
  1 + (1 + intSize) + chunks.reduce((n, c) => n + 1 + intSize + Buffer.byteLength(c), 0) + 1 + intSize;
const sha = (chunks: (string | Buffer)[]) => {
  const h = createHash("sha256");
  for (const c of chunks) h.update(c);
  return h.digest("hex");
};
const END = "\\.\n\n\n";

const ENTRIES: Entry[] = [
  { id: 1, desc: "ENCODING", tag: "ENCODING", defn: "SET client_encoding = 'UTF8';\n" },
  { id: 2, desc: "SCHEMA", tag: "shop", defn: "CREATE SCHEMA shop;\n" },
  {
    id: 3,
    desc: "TABLE",
    tag: "orders",
    ns: "public",
    defn: "CREATE TABLE public.orders (id int, note text);\n",
  },
  {
    id: 4,
    desc: "TABLE DATA",
    tag: "orders",
    ns: "public",
    copy: "COPY public.orders (id, note) FROM stdin;\n",
  },
  { id: 5, desc: "TABLE", tag: "empty", ns: "shop", defn: "CREATE TABLE shop.empty (x int);\n" },
  { id: 6, desc: "TABLE DATA", tag: "empty", ns: "shop", copy: "COPY shop.empty (x) FROM stdin;\n" },
];
const ORDERS = ["1\tone\n", "2\ttwo\n", "3\t\\N\n", END];
const BLOCKS: Block[] = [
  { data: 4, chunks: ORDERS },
  { data: 6, chunks: [END] },
];
const EXPECTED = {
  sums: { "public.orders": sha(ORDERS), "shop.empty": sha([END]) },
  rowCounts: { "public.orders": 3, "shop.empty": 0 },
  tableBytes: { "public.orders": blockBytes(ORDERS), "shop.empty": blockBytes([END]) },
};

test("the builder's archives are pg_dump archives: pg_restore lists and prints them (4- and 8-byte ints)", () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-archive-"));
  try {
    for (const intSize of [4, 8]) {
      const f = join(dir, `a${intSize}.pgdump`);
      writeFileSync(f, build(ENTRIES, BLOCKS, { intSize }));
      const sql = execFileSync(join(PG_BIN, "pg_restore"), ["-f", "-", f], { encoding: "utf8" });
      assert.match(sql, /COPY public\.orders \(id, note\) FROM stdin;\n1\tone\n2\ttwo\n3\t\\N\n\\\.\n/);
      assert.match(sql, /CREATE TABLE shop\.empty/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("sums, row counts, block sizes and encoding of an archive, however the stream is cut", async () => {
  const a = build(ENTRIES, BLOCKS);
  for (const sizes of [[a.length], [1], [2, 3], [5], [7, 1, 13], [64]]) {
    const r = await feed(a, sizes);
    assert.ok(r.out.equals(a), `bytes pass unchanged (${sizes})`);
    assert.equal(r.read.unreadable, undefined, `${sizes}`);
    assert.deepEqual(r.read.sums, EXPECTED.sums, `${sizes}`);
    assert.deepEqual(r.read.rowCounts, EXPECTED.rowCounts, `${sizes}`);
    assert.deepEqual(r.read.tableBytes, EXPECTED.tableBytes, `${sizes}`);
    assert.equal(r.read.encoding, "UTF8");
    assert.equal(r.read.bytes, a.length);
    assert.deepEqual(r.toc, ["public.orders", "shop.empty"]);
  }
});

test("8-byte ints, and each archive version from 1.12 to 1.16 with its own fields, read the same", async () => {
  for (const layout of [
    { intSize: 8 },
    { intSize: 8, offSize: 4 },
    { minor: 12 },
    { minor: 13 },
    { minor: 15 },
    { minor: 16 },
    { minor: 16, intSize: 8 },
  ]) {
    const a = build(ENTRIES, BLOCKS, layout);
    for (const sizes of [[a.length], [3]]) {
      const r = await feed(a, sizes);
      const what = `${JSON.stringify(layout)} ${sizes}`;
      assert.equal(r.read.unreadable, undefined, what);
      assert.deepEqual(r.read.sums, EXPECTED.sums, what);
      assert.deepEqual(r.read.rowCounts, EXPECTED.rowCounts, what);
      const intSize = layout.intSize ?? 4;
      assert.deepEqual(
        r.read.tableBytes,
        { "public.orders": blockBytes(ORDERS, intSize), "shop.empty": blockBytes([END], intSize) },
        what,
      );
      assert.equal(r.read.encoding, "UTF8", what);
    }
  }
});

test("a table of contents larger than the first try (4 kB) is read once it has all arrived", async () => {
  const big: Entry = {
    id: 7,
    desc: "COMMENT",
    tag: "big",
    defn: `COMMENT ON SCHEMA shop IS '${"x".repeat(20_000)}';\n`,
  };
  const a = build([...ENTRIES, big], BLOCKS);
  for (const sizes of [[1000], [4096], [4095, 1], [a.length]]) {
    const r = await feed(a, sizes);
    assert.equal(r.read.unreadable, undefined, `${sizes}`);
    assert.deepEqual(r.read.sums, EXPECTED.sums, `${sizes}`);
    assert.deepEqual(r.read.rowCounts, EXPECTED.rowCounts, `${sizes}`);
    assert.deepEqual(r.read.tableBytes, EXPECTED.tableBytes, `${sizes}`);
  }
  // A table of contents with no ENCODING entry leaves the encoding unset, and one without a quoted name too.
  const noEnc = await feed(build(ENTRIES.slice(1), BLOCKS));
  assert.equal(noEnc.read.encoding, undefined);
  const odd = await feed(
    build([{ ...ENTRIES[0], defn: "SET client_encoding = UTF8;\n" }, ...ENTRIES.slice(1)], BLOCKS),
  );
  assert.equal(odd.read.encoding, undefined);
  assert.deepEqual(odd.read.sums, EXPECTED.sums);
});

test("rows of 5 bytes are rows; only pg_dump's end line is not; a row cut without its newline drops the count", async () => {
  // Every 5-byte row differs from "\\.\n\n\n" in one byte and ends in a newline.
  const fives = ["a.\n\n\n", "\\a\n\n\n", "\\.a\n\n", "\\.\na\n", "abcd\n"];
  const entries: Entry[] = [];
  const blocks: Block[] = [];
  fives.forEach((row, i) => {
    entries.push({ id: 10 + i, desc: "TABLE DATA", tag: `f${i}`, ns: "public" });
    blocks.push({ data: 10 + i, chunks: ["1\n", row] });
  });
  entries.push({ id: 20, desc: "TABLE DATA", tag: "cut", ns: "public" });
  blocks.push({ data: 20, chunks: ["1\n", "2 without its newline", END] });
  entries.push({ id: 21, desc: "TABLE DATA", tag: "cutlast", ns: "public" });
  blocks.push({ data: 21, chunks: ["1\n", "abcde"] });
  entries.push({ id: 22, desc: "TABLE DATA", tag: "short", ns: "public" });
  blocks.push({ data: 22, chunks: ["1\n", "\\.\n\n", "\\.\n\n\n\n"] });
  entries.push({ id: 23, desc: "TABLE DATA", tag: "ended", ns: "public" });
  blocks.push({ data: 23, chunks: ["1\n", "2\n", END] });
  const a = build(entries, blocks);
  const want: Record<string, number> = {};
  fives.forEach((_r, i) => (want[`public.f${i}`] = 2));
  want["public.short"] = 3;
  want["public.ended"] = 2;
  for (const sizes of [[a.length], [1], [6], [9, 4]]) {
    const r = await feed(a, sizes);
    assert.deepEqual(r.read.rowCounts, want, `${sizes}`);
    assert.equal(Object.keys(r.read.sums).length, 9, `${sizes}`);
    assert.equal(r.read.sums["public.cut"], sha(["1\n", "2 without its newline", END]));
  }
});

test("large rows and more rows than the 256 kB stage holds hash to the same sums, whole or cut", async () => {
  const big = "y".repeat(100_000) + "\n";
  const edge = "z".repeat(65_535) + "\n";
  const many = Array.from({ length: 3000 }, (_, i) => `${i}\t${"m".repeat(100 + (i % 50))}\n`);
  const entries: Entry[] = [
    { id: 1, desc: "TABLE DATA", tag: "big", ns: "public" },
    { id: 2, desc: "TABLE DATA", tag: "many", ns: "public" },
    { id: 3, desc: "TABLE DATA", tag: "after", ns: "public" },
  ];
  const chunks = { big: ["a\n", big, "b\n", edge, "c\n", END], many: [...many, END], after: ["x\n", END] };
  const a = build(entries, [
    { data: 1, chunks: chunks.big },
    { data: 2, chunks: chunks.many },
    { data: 3, chunks: chunks.after },
  ]);
  for (const sizes of [[a.length], [300_000], [65_536], [1000], [70_000, 13]]) {
    const r = await feed(a, sizes);
    assert.deepEqual(
      r.read.sums,
      { "public.big": sha(chunks.big), "public.many": sha(chunks.many), "public.after": sha(chunks.after) },
      `${sizes}`,
    );
    assert.deepEqual(
      r.read.rowCounts,
      { "public.big": 5, "public.many": 3000, "public.after": 1 },
      `${sizes}`,
    );
    assert.equal(r.read.tableBytes["public.many"], blockBytes(chunks.many), `${sizes}`);
  }
});

test("large objects and data blocks of entries that are not tables are skipped, the tables after them still read", async () => {
  const entries: Entry[] = [
    { id: 1, desc: "TABLE DATA", tag: "t", ns: "public" },
    { id: 2, desc: "BLOBS", tag: "BLOBS" },
    { id: 3, desc: "SEQUENCE SET", tag: "s", ns: "public" },
    { id: 4, desc: "TABLE DATA", tag: "u", ns: "public" },
  ];
  const t = ["1\n", END];
  const u = ["2\n", "3\n", END];
  const a = build(entries, [
    { data: 1, chunks: t },
    {
      blobs: 2,
      items: [
        { oid: 16500, chunks: ["large", " object\n"] },
        { oid: 16501, chunks: [] },
        { oid: 16502, chunks: ["x"] },
      ],
    },
    { data: 3, chunks: ["not a row of a table", "\n"] },
    { data: 4, chunks: u },
  ]);
  for (const sizes of [[a.length], [1], [4]]) {
    const r = await feed(a, sizes);
    assert.equal(r.read.unreadable, undefined, `${sizes}`);
    assert.deepEqual(r.read.sums, { "public.t": sha(t), "public.u": sha(u) }, `${sizes}`);
    assert.deepEqual(r.read.rowCounts, { "public.t": 1, "public.u": 2 }, `${sizes}`);
    assert.deepEqual(r.read.tableBytes, { "public.t": blockBytes(t), "public.u": blockBytes(u) }, `${sizes}`);
  }
});

test("an archive the reader does not know passes through unchanged and says exactly why", async () => {
  const cases: [Layout, string][] = [
    [{ magic: "PGDMQ" }, "no PGDMP magic string"],
    [{ minor: 11 }, "archive version 1.11 is not one this reader knows (1.12-1.16)"],
    [{ minor: 17 }, "archive version 1.17 is not one this reader knows (1.12-1.16)"],
    [{ major: 2 }, "archive version 2.14 is not one this reader knows (1.12-1.16)"],
    [{ major: 0 }, "archive version 0.14 is not one this reader knows (1.12-1.16)"],
    [{ format: 3 }, "not the custom format"],
    [{ compression: 1 }, "the archive's data is compressed (pg_dump without -Z0)"],
    [{ compression: -1 }, "the archive's data is compressed (pg_dump without -Z0)"],
    [{ minor: 15, compression: 2 }, "the archive's data is compressed (pg_dump without -Z0)"],
  ];
  for (const [layout, why] of cases) {
    const a = build(ENTRIES, BLOCKS, layout);
    for (const sizes of [[a.length], [4096]]) {
      const r = await feed(a, sizes);
      assert.equal(r.read.unreadable, why, JSON.stringify(layout));
      assert.ok(r.out.equals(a));
      assert.equal(r.read.bytes, a.length);
      assert.equal(r.toc, undefined);
      assert.deepEqual(r.read.sums, {});
    }
  }
});

test("damage in the data section: said, the sums read before it kept, the bytes unchanged", async () => {
  const entries = ENTRIES;
  const good = build(entries, BLOCKS);
  const cases: [Block[], string][] = [
    [[{ data: 4, chunks: ORDERS }, { raw: Buffer.from([2, 0, 6, 0, 0, 0]) }], "unknown data block type 2"],
    [
      [{ data: 4, chunks: ORDERS }, { raw: Buffer.from([1, 0, 6, 0, 0, 0, 1, 3, 0, 0, 0]) }],
      "negative chunk length -3",
    ],
    [
      [
        { data: 4, chunks: ORDERS },
        { data: 6, chunks: [END], noEnd: true },
      ],
      "the archive ends inside a data block",
    ],
    [[{ data: 4, chunks: ORDERS }, { raw: Buffer.from([1, 0, 6]) }], "the archive ends inside a data block"],
    [
      [{ data: 4, chunks: ORDERS }, { raw: Buffer.from([1, 0, 6, 0, 0, 0, 0, 9, 0, 0, 0, 65]) }],
      "the archive ends inside a data block",
    ],
  ];
  for (const [blocks, why] of cases) {
    const a = build(entries, blocks);
    for (const sizes of [[a.length], [1], [7]]) {
      const r = await feed(a, sizes);
      assert.equal(r.read.unreadable, why, `${why} ${sizes}`);
      assert.ok(r.out.equals(a));
      assert.deepEqual(r.read.sums, { "public.orders": EXPECTED.sums["public.orders"] });
      assert.deepEqual(r.read.rowCounts, { "public.orders": 3 });
    }
  }
  // Cut inside the table of contents: it never ends, and the table list is never given.
  const r = await feed(good.subarray(0, 200), [50]);
  assert.equal(r.read.unreadable, "the archive ends inside its table of contents");
  assert.equal(r.toc, undefined);
  // Bytes after an unreadable part still count.
  const junk = Buffer.concat([
    build(entries, [{ raw: Buffer.from([9, 0, 0, 0, 0, 0]) }]),
    Buffer.alloc(5000, 1),
  ]);
  const j = await feed(junk, [100]);
  assert.equal(j.read.unreadable, "unknown data block type 9");
  assert.equal(j.read.bytes, junk.length);
  assert.ok(j.out.equals(junk));
});

test("the table list is given as soon as the table of contents is read, and undefined when the stream dies first", async () => {
  const a = build(ENTRIES, BLOCKS);
  const sums = archiveTableSums();
  sums.stream.resume();
  sums.stream.write(a.subarray(0, a.length - 3));
  sums.stream.write(Buffer.alloc(5000, 0)); // past the first try: the head is parsed while the stream is open
  const bound = new Promise((resolve) => setTimeout(() => resolve("not given"), 10_000).unref());
  assert.deepEqual(await Promise.race([sums.toc, bound]), ["public.orders", "shop.empty"]);
  sums.stream.destroy();

  const early = archiveTableSums();
  early.stream.write(a.subarray(0, 100));
  early.stream.destroy();
  assert.equal(await Promise.race([early.toc, bound]), undefined);
});

test("ints past 16 MB and 256 (a 17 MB row; 8-byte ints) and rows larger than the hashing stage read exactly", async () => {
  const huge = "h".repeat(17 * 1024 * 1024) + "\n";
  const wide = "w".repeat(300_000) + "\n";
  const mid = "m".repeat(70_000) + "\n";
  const entries: Entry[] = [
    { id: 1, desc: "TABLE DATA", tag: "huge", ns: "public" },
    { id: 2, desc: "TABLE DATA", tag: "wide", ns: "public" },
  ];
  const chunks = { huge: ["a\n", huge, END], wide: ["b\n", wide, mid, "c\n", wide, END] };
  const want = { "public.huge": sha(chunks.huge), "public.wide": sha(chunks.wide) };
  for (const intSize of [4, 8]) {
    const a = build(
      entries,
      [
        { data: 1, chunks: chunks.huge },
        { data: 2, chunks: chunks.wide },
      ],
      { intSize },
    );
    for (const sizes of [[a.length], [1 << 20], [7919]]) {
      const r = await feed(a, sizes);
      const what = `${intSize} ${sizes}`;
      assert.equal(r.read.unreadable, undefined, what);
      assert.deepEqual(r.read.sums, want, what);
      assert.deepEqual(r.read.rowCounts, { "public.huge": 2, "public.wide": 5 }, what);
      assert.equal(r.read.tableBytes["public.huge"], blockBytes(chunks.huge, intSize), what);
    }
  }
});

test("an archive with no data (schema only) reads whole; one cut inside its last entry does not", async () => {
  const a = build(ENTRIES, [], { noPad: true });
  for (const sizes of [[a.length], [1]]) {
    const r = await feed(a, sizes);
    assert.equal(r.read.unreadable, undefined, `${sizes}`);
    assert.deepEqual(r.read.sums, {});
    assert.deepEqual(r.toc, ["public.orders", "shop.empty"]);
  }
  for (const cut of [1, 3, 9]) {
    const r = await feed(a.subarray(0, a.length - cut));
    assert.equal(r.read.unreadable, "the archive ends inside its table of contents", `cut ${cut}`);
  }
});

test("entries without a tag or namespace, large objects of 64 kB and more, and an empty data block", async () => {
  const entries: Entry[] = [
    { id: 1, desc: "TABLE DATA", tag: undefined as unknown as string, ns: "public" },
    { id: 2, desc: "TABLE DATA", tag: "nons" },
    { id: 3, desc: "BLOBS", tag: "BLOBS" },
    { id: 4, desc: "TABLE DATA", tag: "after", ns: "public" },
    { id: 5, desc: "TABLE DATA", tag: "none", ns: "public" },
  ];
  const rows = Array.from({ length: 2000 }, (_, i) => `${i}\tafter the blobs\n`);
  const a = build(entries, [
    { data: 1, chunks: ["1\n", END] },
    { data: 2, chunks: ["2\n", END] },
    { blobs: 3, items: [{ oid: 16500, chunks: ["b".repeat(70_000), "c".repeat(300)] }] },
    { data: 4, chunks: [...rows, END] },
    { data: 5, chunks: [] },
  ]);
  for (const sizes of [[a.length], [4096], [13]]) {
    const r = await feed(a, sizes);
    assert.equal(r.read.unreadable, undefined, `${sizes}`);
    assert.deepEqual(r.toc, ["public.", ".nons", "public.after", "public.none"]);
    assert.deepEqual(
      r.read.sums,
      {
        "public.": sha(["1\n", END]),
        ".nons": sha(["2\n", END]),
        "public.after": sha([...rows, END]),
        "public.none": sha([]),
      },
      `${sizes}`,
    );
    assert.deepEqual(
      r.read.rowCounts,
      { "public.": 1, ".nons": 1, "public.after": 2000, "public.none": 0 },
      `${sizes}`,
    );
  }
});

test("a negative chunk length is refused even when bytes follow it that would read as a row", async () => {
  const a = build(ENTRIES, [
    { data: 4, chunks: ORDERS },
    { raw: Buffer.from([1, 0, 6, 0, 0, 0, 1, 3, 0, 0, 0, 97, 98, 10, 0, 0, 0, 0, 0]) },
  ]);
  for (const sizes of [[a.length], [a.length - 10, 10]]) {
    const r = await feed(a, sizes);
    assert.equal(r.read.unreadable, "negative chunk length -3", `${sizes}`);
    assert.deepEqual(r.read.rowCounts, { "public.orders": 3 });
  }
});

test("a chunk length cut after its first byte, before binary large-object data starting with zeros, reads whole", async () => {
  // The fast path for whole rows reads a length at the start of a buffer: here the buffer starts inside
  // one, whose rest (00 02 00 00) and the object's first byte (00) would read as a chunk of 2 bytes.
  const entries: Entry[] = [
    { id: 1, desc: "BLOBS", tag: "BLOBS" },
    { id: 2, desc: "TABLE DATA", tag: "u", ns: "public" },
  ];
  const u = ["2\n", "3\n", END];
  const a = build(entries, [
    { blobs: 1, items: [{ oid: 16500, chunks: [Buffer.alloc(512)] }] },
    { data: 2, chunks: u },
  ]);
  // The object's oid (16500 = 0x4074), then its chunk's length (512): cut one byte into the length.
  const at = a.indexOf(Buffer.from([0, 0x74, 0x40, 0, 0, 0, 0, 2, 0, 0])) + 5;
  assert.ok(at > 4096, "the cut falls after the header's first parse");
  const r = await feed(a, [at + 1, a.length]);
  assert.ok(r.out.equals(a));
  assert.equal(r.read.unreadable, undefined);
  assert.deepEqual(r.read.sums, { "public.u": sha(u) });
  assert.deepEqual(r.read.rowCounts, { "public.u": 2 });
  assert.deepEqual(r.read.tableBytes, { "public.u": blockBytes(u) });
});
