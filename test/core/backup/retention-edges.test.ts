// Retention's edges (issue 22): each mutant here is a prune that deletes a backup it must keep, keeps
// one it should delete, or lists a backup with the wrong facts.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ConfigError } from "../../../src/core/errors";
import { backupFileName } from "../../../src/core/backup/names";
import {
  choosePrune,
  listBackups,
  listTempFiles,
  pruneBackups,
  staleTempFiles,
} from "../../../src/core/backup/retention";

const root = mkdtempSync(join(tmpdir(), "sd-retention-edges-"));
after(() => rmSync(root, { recursive: true, force: true }));
const fresh = (name: string) => {
  const d = join(root, name);
  mkdirSync(d);
  return d;
};
const DAY = 86_400_000;
const now = new Date("2026-11-23T12:00:00Z");
const at = (ms: number) => new Date(now.getTime() - ms).toISOString();

test("listBackups: a missing directory names `--dir`", async () => {
  await assert.rejects(
    listBackups(join(root, "nope")),
    (e) =>
      e instanceof ConfigError &&
      e.message === `backup directory ${join(root, "nope")} does not exist (check \`--dir\`)`,
  );
});

test("listBackups: the manifest's facts win over the name's; a broken manifest means none; newest first, ties by name", async () => {
  const dir = fresh("list");
  const a = backupFileName(new Date("2026-11-20T10:00:00Z"), "zstd", "pre-deploy");
  const b = backupFileName(new Date("2026-11-21T10:00:00Z"), "gzip");
  const c = backupFileName(new Date("2026-11-21T10:00:00Z"), "none", "zz");
  for (const f of [a, b, c]) writeFileSync(join(dir, f), "x");
  writeFileSync(
    join(dir, `${a}.json`),
    JSON.stringify({
      createdAt: "2026-11-22T00:00:00.000Z",
      label: "manual",
      sizeBytes: 7,
      sha256: "ab",
      database: "app",
    }),
  );
  writeFileSync(join(dir, `${b}.json`), "{broken");
  writeFileSync(join(dir, "notes.txt"), "x");
  assert.deepEqual(await listBackups(dir), [
    {
      file: join(dir, a),
      name: a,
      createdAt: "2026-11-22T00:00:00.000Z",
      label: "manual",
      compression: "zstd",
      sizeBytes: 7,
      sha256: "ab",
      database: "app",
      hasManifest: true,
    },
    ...[c, b].map((n) => ({
      file: join(dir, n),
      name: n,
      createdAt: "2026-11-21T10:00:00.000Z",
      label: n === c ? "zz" : undefined,
      compression: n === c ? "none" : "gzip",
      sizeBytes: undefined,
      sha256: undefined,
      database: undefined,
      hasManifest: false,
    })),
  ]);
});

test("listTempFiles: only temp files of our backups and manifests, by name; a directory is not one", async () => {
  const dir = fresh("temps");
  const name = backupFileName(new Date("2026-11-20T10:00:00Z"), "zstd");
  const files = [
    `.${name}.tmp-0a`,
    `.${name}.json.tmp-ff`,
    `.${name}.tmp-zz`,
    `${name}.tmp-0a`,
    `.notes.tmp-0a`,
    `.${name}.tmp-`,
  ];
  for (const f of files) writeFileSync(join(dir, f), "x");
  mkdirSync(join(dir, `.${name}.tmp-1b`));
  utimesSync(join(dir, files[0]), new Date(now.getTime() - DAY), new Date(now.getTime() - DAY));
  const temps = await listTempFiles(dir);
  assert.deepEqual(
    temps.map((t) => [t.name, t.createdAt]),
    [
      [`.${name}.json.tmp-ff`, "2026-11-20T10:00:00.000Z"],
      [`.${name}.tmp-0a`, "2026-11-20T10:00:00.000Z"],
    ],
  );
  assert.equal(temps[1].modifiedAt, at(DAY));
});

test("choosePrune: a backup exactly keep-days old stays; one a second older goes", () => {
  const entries = [
    { n: "new", createdAt: at(0) },
    { n: "edge", createdAt: at(7 * DAY) },
    { n: "over", createdAt: at(7 * DAY + 1000) },
  ];
  const r = choosePrune(entries, { keepDays: 7, keepMin: 1 }, now);
  assert.deepEqual(
    r.keep.map((e) => e.n),
    ["new", "edge"],
  );
  assert.deepEqual(
    r.remove.map((e) => e.n),
    ["over"],
  );
});

test("choosePrune: the newest is judged by date whatever the input order; keep-min counts from the newest", () => {
  const entries = [
    { n: "d20", createdAt: at(20 * DAY) },
    { n: "d10", createdAt: at(10 * DAY) },
    { n: "d30", createdAt: at(30 * DAY) },
  ];
  assert.deepEqual(
    choosePrune(entries, { keepDays: 1, keepMin: 2 }, now).remove.map((e) => e.n),
    ["d30"],
  );
  assert.deepEqual(
    choosePrune(entries, { keepDays: 1, keepMin: 1 }, now).remove.map((e) => e.n),
    ["d20", "d30"],
  );
});

test("choosePrune: a manifest-less backup goes only when older than keep-days AND a day, never a safety one", () => {
  const nm = (n: string, ms: number, label?: string) => ({ n, createdAt: at(ms), label, hasManifest: false });
  const entries = [
    { n: "good", createdAt: at(0) },
    nm("hour", 3_600_000),
    nm("day-edge", DAY),
    nm("day-over", DAY + 1000),
    nm("safety", 40 * DAY, "safety"),
  ];
  assert.deepEqual(
    choosePrune(entries, { keepDays: 0, keepMin: 1 }, now).remove.map((e) => e.n),
    ["day-over"],
  );
  assert.deepEqual(
    choosePrune(entries, { keepDays: 30, keepMin: 1 }, now).remove.map((e) => e.n),
    [],
  );
  const r = choosePrune(entries, { keepDays: 0, keepMin: 1 }, now);
  assert.deepEqual(
    r.unusable.map((e) => e.n),
    ["hour", "day-edge", "day-over", "safety"],
  );
  assert.deepEqual(
    r.keep.map((e) => e.n),
    ["good"],
  );
});

test("staleTempFiles: untouched for more than a day, by the later of name stamp and mtime", () => {
  const t = (n: string, created: number, modified: number) => ({
    n,
    createdAt: at(created),
    modifiedAt: at(modified),
  });
  assert.deepEqual(
    staleTempFiles(
      [
        t("edge", DAY, DAY),
        t("over", DAY + 1000, DAY + 1000),
        t("touched", 9 * DAY, 0),
        t("named-now", 0, 9 * DAY),
      ],
      now,
    ).map((x) => x.n),
    ["over"],
  );
});

test("pruneBackups: bad settings name their flag", async () => {
  const dir = fresh("flags");
  for (const keepDays of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    await assert.rejects(
      pruneBackups(dir, { keepDays, keepMin: 1 }),
      (e) => e instanceof ConfigError && e.message === "`--keep-days` must be a number >= 0",
      String(keepDays),
    );
  }
  for (const keepMin of [0, 1.5, -1, Number.NaN]) {
    await assert.rejects(
      pruneBackups(dir, { keepDays: 1, keepMin }),
      (e) => e instanceof ConfigError && e.message === "`--keep-min` must be an integer >= 1",
      String(keepMin),
    );
  }
  assert.deepEqual((await pruneBackups(dir, { keepDays: 0, keepMin: 1 })).remove, []);
});

test("pruneBackups: a manifest-less backup's age is its mtime; a removed backup takes its manifest; stale temps go", async () => {
  const dir = fresh("prune");
  const name = (d: number) => backupFileName(new Date(now.getTime() - d * DAY), "zstd");
  const keep = name(1);
  const gone = name(20);
  const copying = name(30);
  const old = name(31);
  for (const f of [keep, gone]) {
    writeFileSync(join(dir, f), "x");
    writeFileSync(join(dir, `${f}.json`), JSON.stringify({ createdAt: at((f === keep ? 1 : 20) * DAY) }));
  }
  // A manifest-less file named 30 days ago but written just now (a copy in progress) stays.
  writeFileSync(join(dir, copying), "x");
  utimesSync(join(dir, copying), now, now);
  writeFileSync(join(dir, old), "x");
  utimesSync(join(dir, old), new Date(now.getTime() - 31 * DAY), new Date(now.getTime() - 31 * DAY));
  const staleTemp = `.${name(3)}.tmp-aa`;
  writeFileSync(join(dir, staleTemp), "x");
  utimesSync(join(dir, staleTemp), new Date(now.getTime() - 3 * DAY), new Date(now.getTime() - 3 * DAY));
  const r = await pruneBackups(dir, { keepDays: 7, keepMin: 1 }, { now });
  assert.deepEqual(
    r.remove.map((e) => e.name),
    [gone, old],
  );
  assert.deepEqual(
    r.staleTemp.map((t) => t.name),
    [staleTemp],
  );
  assert.deepEqual(readdirSync(dir).sort(), [copying, keep, `${keep}.json`].sort());
});

test("listBackups and listTempFiles: a stable order whatever the directory's (newest first; temps by name)", async () => {
  const dir = fresh("order");
  const days = [3, 9, 1, 5, 7, 2, 8, 4, 6];
  const made = days.map((d) => backupFileName(new Date(now.getTime() - d * DAY), "zstd"));
  // Two backups of the same second: the later name first.
  const tie = [
    backupFileName(new Date(now.getTime() - 5 * DAY), "zstd", "a"),
    backupFileName(new Date(now.getTime() - 5 * DAY), "zstd", "b"),
  ];
  for (const f of [...made, ...tie]) writeFileSync(join(dir, f), "x");
  const expected = [...days]
    .sort((a, b) => a - b)
    .flatMap((d) => {
      const f = backupFileName(new Date(now.getTime() - d * DAY), "zstd");
      return d === 5 ? [tie[1], tie[0], f] : [f];
    });
  assert.deepEqual(
    (await listBackups(dir)).map((e) => e.name),
    expected,
  );
  const temps = made.map((f, i) => `.${f}.tmp-${i.toString(16)}`);
  for (const t of temps) writeFileSync(join(dir, t), "x");
  // Not ours: no leading dot, or a suffix that is not hex.
  writeFileSync(join(dir, `x.${made[0]}.tmp-0a`), "x");
  writeFileSync(join(dir, `.${made[0]}.tmp-0ag`), "x");
  assert.deepEqual(
    (await listTempFiles(dir)).map((t) => t.name),
    [...temps].sort(),
  );
});

test("choosePrune: never the newest, even when keep-min is 0", () => {
  const entries = [
    { n: "d30", createdAt: at(30 * DAY) },
    { n: "d31", createdAt: at(31 * DAY) },
  ];
  assert.deepEqual(
    choosePrune(entries, { keepDays: 7, keepMin: 0 }, now).remove.map((e) => e.n),
    ["d31"],
  );
});

test("choosePrune: of two backups stamped in the same second, the first listed counts as the newer", () => {
  // listBackups gives same-second backups by name (descending); the prune must keep that order, whatever
  // the input's length (V8 sorts short arrays by insertion, long ones by merges).
  for (const older of [0, 1, 20]) {
    const entries = [
      { n: "b", createdAt: at(10 * DAY) },
      { n: "a", createdAt: at(10 * DAY) },
      ...Array.from({ length: older }, (_, i) => ({ n: `o${i}`, createdAt: at((11 + i) * DAY) })),
    ];
    const r = choosePrune(entries, { keepDays: 7, keepMin: 0 }, now);
    assert.deepEqual(
      r.keep.map((e) => e.n),
      ["b"],
      `with ${older} older`,
    );
    assert.deepEqual(
      r.remove.map((e) => e.n),
      ["a", ...entries.slice(2).map((e) => e.n)],
      `with ${older} older`,
    );
  }
});

test("pruneBackups and listTempFiles: a name whose file is gone by the time it is read is left alone, not an error", async () => {
  // A dangling symlink stands for a file removed between the directory read and its stat (another prune,
  // an upload moving it): stat fails as it would then.
  const dir = fresh("vanished");
  const name = (d: number) => backupFileName(new Date(now.getTime() - d * DAY), "zstd");
  const backup = name(30);
  const temp = `.${name(3)}.tmp-ab`;
  symlinkSync(join(dir, "gone-1"), join(dir, backup));
  symlinkSync(join(dir, "gone-2"), join(dir, temp));
  assert.deepEqual(await listTempFiles(dir), []);
  const r = await pruneBackups(dir, { keepDays: 7, keepMin: 1 }, { now });
  assert.deepEqual(
    r.remove.map((e) => e.name),
    [],
  );
  assert.deepEqual(readdirSync(dir).sort(), [temp, backup].sort());
});
