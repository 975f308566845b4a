import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { choosePrune, pruneBackups } from "../../../src/core/backup/retention";
import { backupFileName, parseBackupFileName } from "../../../src/core/backup/names";
import { runBackupPrune } from "../../../src/cli/commands/backup";

const now = new Date("2026-11-23T12:00:00Z");
const ago = (days: number, label?: string) => ({
  name: `${days}${label ?? ""}`,
  createdAt: new Date(now.getTime() - days * 86_400_000).toISOString(),
  label,
});
const names = (xs: { name: string }[]) => xs.map((x) => x.name).sort();

test("names: UTC stamp, label, extension per compression; parse inverts", () => {
  const d = new Date("2026-01-02T03:04:05Z");
  assert.equal(backupFileName(d, "zstd", "pre-deploy"), "backup_20260102_030405_pre-deploy.pgdump.zst");
  assert.equal(backupFileName(d, "gzip"), "backup_20260102_030405.pgdump.gz");
  assert.equal(backupFileName(d, "none", "manual"), "backup_20260102_030405_manual.pgdump");
  assert.deepEqual(parseBackupFileName("backup_20260102_030405_safety.pgdump.zst"), {
    createdAt: d,
    label: "safety",
    compression: "zstd",
  });
  assert.equal(parseBackupFileName(".backup_20260102_030405.pgdump.zst.tmp-ab"), undefined);
  assert.throws(() => backupFileName(d, "zstd", "../x"), /`--label`/);
});

const cases: Array<[string, ReturnType<typeof ago>[], { keepDays: number; keepMin: number }, string[]]> = [
  [
    "old ones go, young ones stay",
    [ago(1), ago(2), ago(3), ago(8), ago(9)],
    { keepDays: 7, keepMin: 3 },
    ["8", "9"],
  ],
  ["never fewer than keep-min", [ago(10), ago(11), ago(12), ago(13)], { keepDays: 7, keepMin: 3 }, ["13"]],
  ["never the newest, even when old", [ago(30)], { keepDays: 7, keepMin: 1 }, []],
  [
    "never a safety backup",
    [ago(1), ago(2), ago(3), ago(40, "safety"), ago(41)],
    { keepDays: 7, keepMin: 3 },
    ["41"],
  ],
  [
    "safety backups don't count toward keep-min",
    [ago(20, "safety"), ago(21), ago(22), ago(23)],
    { keepDays: 7, keepMin: 2 },
    ["23"],
  ],
  ["keep-days 0 keeps only keep-min", [ago(1), ago(2), ago(3)], { keepDays: 0, keepMin: 1 }, ["2", "3"]],
];
for (const [what, entries, policy, removed] of cases) {
  test(`retention: ${what}`, () => {
    assert.deepEqual(names(choosePrune(entries, policy, now).remove), removed);
  });
}

test("prune on a directory: --dry-run removes nothing; a real run removes file and manifest", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-bk-prune-"));
  try {
    const made = [1, 2, 3, 9, 10].map((d) => {
      const f = backupFileName(new Date(now.getTime() - d * 86_400_000), "zstd", "pre-deploy");
      writeFileSync(join(dir, f), "x");
      writeFileSync(join(dir, f + ".json"), "{}");
      return f;
    });
    writeFileSync(join(dir, "notes.txt"), "keep me");
    const dry = await pruneBackups(dir, { keepDays: 7, keepMin: 3 }, { dryRun: true, now });
    assert.deepEqual(dry.remove.map((e) => e.name).sort(), [made[3], made[4]].sort());
    assert.equal(readdirSync(dir).length, 11);
    await pruneBackups(dir, { keepDays: 7, keepMin: 3 }, { now });
    assert.deepEqual(
      readdirSync(dir).sort(),
      [...made.slice(0, 3).flatMap((f) => [f, f + ".json"]), "notes.txt"].sort(),
    );
    await assert.rejects(pruneBackups(dir, { keepDays: 7, keepMin: 0 }), /`--keep-min`/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * 3 old good backups, 2 newer ones without a manifest (one old, one an hour old), and the temp files
 * of killed dumps: one fresh, one stale (plus its manifest's temp). Names and mtimes relative to `at`.
 */
function unfinishedFixture(dir: string, at: Date) {
  const make = (hours: number, manifest: boolean) => {
    const t = new Date(at.getTime() - hours * 3_600_000);
    const f = backupFileName(t, "zstd", "pre-deploy");
    writeFileSync(join(dir, f), "x");
    if (manifest) writeFileSync(join(dir, f + ".json"), "{}");
    utimesSync(join(dir, f), t, t);
    return f;
  };
  const tmp = (hours: number, name: string) => {
    const t = new Date(at.getTime() - hours * 3_600_000);
    writeFileSync(join(dir, name), "partial");
    utimesSync(join(dir, name), t, t);
    return name;
  };
  const good = [10, 11, 12].map((d) => make(d * 24, true));
  const noManifestOld = make(8 * 24, false);
  const noManifestYoung = make(1, false);
  const freshTmp = tmp(1, `.${backupFileName(new Date(at.getTime() - 3_600_000), "zstd")}.tmp-0a1b2c3d`);
  const staleName = backupFileName(new Date(at.getTime() - 3 * 86_400_000), "zstd");
  const staleTmp = [tmp(72, `.${staleName}.tmp-deadbeef`), tmp(72, `.${staleName}.json.tmp-feedf00d`)];
  return { good, noManifestOld, noManifestYoung, freshTmp, staleTmp };
}

test("prune: manifest-less backups never count toward keep-min; old ones and stale temp files go", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-bk-prune-"));
  try {
    const f = unfinishedFixture(dir, now);
    const policy = { keepDays: 7, keepMin: 3 };
    const before = readdirSync(dir).sort();
    const dry = await pruneBackups(dir, policy, { dryRun: true, now });
    assert.deepEqual(dry.keep.map((e) => e.name).sort(), [...f.good].sort());
    assert.deepEqual(
      dry.remove.map((e) => e.name),
      [f.noManifestOld],
    );
    assert.deepEqual(dry.unusable.map((e) => e.name).sort(), [f.noManifestOld, f.noManifestYoung].sort());
    assert.deepEqual(dry.staleTemp.map((t) => t.name).sort(), [...f.staleTmp].sort());
    assert.deepEqual(readdirSync(dir).sort(), before);

    await pruneBackups(dir, policy, { now });
    assert.deepEqual(
      readdirSync(dir).sort(),
      [...f.good.flatMap((g) => [g, g + ".json"]), f.noManifestYoung, f.freshTmp].sort(),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("prune: an old-named manifest-less file touched recently (a copy in progress) stays", () => {
  const old = { ...ago(30), hasManifest: false };
  const r = choosePrune(
    [ago(1), { ...old, modifiedAt: now.toISOString() }, { ...ago(31), hasManifest: false }],
    { keepDays: 7, keepMin: 1 },
    now,
  );
  assert.deepEqual(names(r.remove), ["31"]);
  assert.deepEqual(names(r.keep), ["1"]);
});

test("prune --dry-run output names the manifest-less backups and the stale temp files", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-bk-prune-"));
  try {
    const f = unfinishedFixture(dir, new Date());
    const lines: string[] = [];
    await runBackupPrune({ dir, dryRun: true }, (l) => lines.push(l));
    // Each kept backup with its reason first (issue 16), then what goes.
    assert.deepEqual(
      lines.filter((l) => l.startsWith("keep ")).map((l) => l.replace(/^keep \S+ {2}/, "")),
      ["(newest)", "(one of the --keep-min 3 kept)", "(one of the --keep-min 3 kept)"],
    );
    assert.deepEqual(
      lines.filter((l) => !l.startsWith("keep ")),
      [
        `would remove ${join(dir, f.noManifestOld)}  (no manifest: not a usable backup)`,
        `left ${join(dir, f.noManifestYoung)}  (no manifest: not a usable backup; may still be being written)`,
        ...[...f.staleTmp]
          .sort()
          .map((t) => `would remove ${join(dir, t)}  (temp file of an unfinished backup)`),
        "would remove 3, kept 3; 2 without a manifest",
      ],
    );
    assert.equal(readdirSync(dir).length, 11);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
