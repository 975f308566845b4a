// Issue 22: what `backup create` asks of the kernel, seen by strace(1) around the real CLI on a real
// PostgreSQL: each file is written under a temp name, fsynced, then given its name (link for the dump,
// rename for the manifest), and the directory is fsynced after each name. Nothing is ever written under
// a final name, so a power cut can leave a temp file but never a named file with missing blocks.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

const BIN = join(__dirname, "..", "..", "bin", "safe-deploy");
let pg: TestPostgres;
let root: string;

before(async () => {
  pg = await startPostgres();
  await pg.createDatabase("app");
  await pg.query(
    "CREATE TABLE t (id int, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
    [],
    "app",
  );
  root = mkdtempSync(join(tmpdir(), "sd-bk-strace-"));
});
after(async () => {
  await pg?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** One system call: name, its text (args and result, fds decoded to paths by `-y`), where it started and ended. */
interface Call {
  name: string;
  text: string;
  start: number;
  end: number;
}

/** Parses `strace -f -y` output, joining calls that other threads interrupted (`<unfinished ...>`). */
function parseStrace(out: string): Call[] {
  const calls: Call[] = [];
  const open = new Map<string, Call>();
  out.split("\n").forEach((line, i) => {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) return;
    const [, pid, rest] = m;
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(rest);
    if (resumed) {
      const c = open.get(pid);
      if (!c) return;
      open.delete(pid);
      c.text += resumed[2];
      c.end = i;
      return;
    }
    const call = /^(\w+)\((.*)$/.exec(rest);
    if (!call) return;
    const c: Call = { name: call[1], text: call[2], start: i, end: i };
    calls.push(c);
    if (rest.endsWith("<unfinished ...>")) {
      c.text = c.text.replace(/\s*<unfinished \.\.\.>$/, "");
      open.set(pid, c);
    }
  });
  return calls;
}

test("parseStrace joins interrupted calls", () => {
  const calls = parseStrace(
    [
      "7 fsync(19</d/.x.tmp-1> <unfinished ...>",
      '8 link("/d/.x.tmp-1", "/d/x") = 0',
      "7 <... fsync resumed>) = 0",
    ].join("\n"),
  );
  assert.deepEqual(calls, [
    { name: "fsync", text: "19</d/.x.tmp-1>) = 0", start: 0, end: 2 },
    { name: "link", text: '"/d/.x.tmp-1", "/d/x") = 0', start: 1, end: 1 },
  ]);
});

test(
  "backup create: temp file, fsync, then the name, for the dump and for the manifest; the directory fsynced after each",
  { timeout: 300_000 },
  () => {
    const dir = join(root, "b");
    const trace = join(root, "strace.out");
    const r = spawnSync(
      "strace",
      [
        "-f",
        "-qq",
        "-y",
        "-o",
        trace,
        "-e",
        "trace=openat,open,creat,write,pwrite64,writev,pwritev,fsync,fdatasync,link,linkat,rename,renameat,renameat2,unlink,unlinkat",
        BIN,
        "backup",
        "create",
        "--dir",
        dir,
      ],
      { encoding: "utf8", env: { ...process.env, DATABASE_URL: pg.url("app") }, timeout: 240_000 },
    );
    if (r.error) throw new Error(`strace could not run (${r.error.message}): apt-get install strace`);
    assert.equal(r.status, 0, r.stderr);
    const file = r.stdout.trim().split("\n").pop()!;
    const manifest = `${file}.json`;
    const calls = parseStrace(readFileSync(trace, "utf8")).filter((c) => c.text.includes(dir));
    const q = (p: string) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const find = (name: RegExp, text: RegExp, what: string) => {
      const c = calls.find((x) => name.test(x.name) && text.test(x.text));
      assert.ok(c, `no ${what} in:\n${calls.map((x) => `${x.name}(${x.text}`).join("\n")}`);
      return c;
    };
    const tmpOf = (p: string) => {
      const [, d, b] = /^(.*)\/([^/]+)$/.exec(p)!;
      return `${q(d)}/\\.${q(b)}\\.tmp-[0-9a-f]+`;
    };

    // The dump: written only under its temp name, fsynced, then linked to its name.
    const dumpTmp = tmpOf(file);
    const named = find(/^link/, new RegExp(`"(${dumpTmp})", .*"${q(file)}"`), "link of the dump to its name");
    const tmpPath = new RegExp(`"(${dumpTmp})"`).exec(named.text)![1];
    const dumpSync = find(/^f(data)?sync$/, new RegExp(`<${q(tmpPath)}>`), "fsync of the dump's temp file");
    assert.ok(dumpSync.end < named.start, "the dump is fsynced before it gets its name");
    const dirSync = calls.find(
      (c) => c.name === "fsync" && c.text.includes(`<${dir}>`) && c.start > named.end,
    );
    assert.ok(dirSync, "the directory is fsynced after the link");

    // The manifest: written under a temp name, fsynced, renamed over its name after the dir fsync.
    const renamed = find(
      /^rename/,
      new RegExp(`"(${tmpOf(manifest)})", .*"${q(manifest)}"`),
      "rename of the manifest",
    );
    assert.ok(renamed.start > dirSync.end, "the manifest comes after the dump's name is on disk");
    const mTmp = new RegExp(`"(${tmpOf(manifest)})"`).exec(renamed.text)![1];
    const mSync = find(/^f(data)?sync$/, new RegExp(`<${q(mTmp)}>`), "fsync of the manifest's temp file");
    assert.ok(mSync.end < renamed.start, "the manifest is fsynced before the rename");
    assert.ok(
      calls.some((c) => c.name === "fsync" && c.text.includes(`<${dir}>`) && c.start > renamed.end),
      "the directory is fsynced after the rename",
    );

    // Never opened nor written under a final name.
    for (const final of [file, manifest]) {
      const bad = calls.filter(
        (c) =>
          (/^(open|openat|creat)$/.test(c.name) && c.text.includes(`"${final}"`)) ||
          (/write/.test(c.name) && c.text.includes(`<${final}>`)),
      );
      assert.deepEqual(
        bad.map((c) => `${c.name}(${c.text.slice(0, 200)}`),
        [],
        `${final} is only ever a new name`,
      );
    }
  },
);
