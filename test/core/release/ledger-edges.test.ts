// The release ledger's edges that ledger.test.ts does not reach (issue 22 part D, mutation survivors of
// src/core/release/ledger.ts): every reason a record is refused, word for word; ids that are not ids;
// short secrets; files beside the records; read errors; the errno-to-fix table.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CannotRunError, CheckFailedError, ConfigError } from "../../../src/core/errors";
import {
  Ledger,
  describeUnreadable,
  ioError,
  recordProblem,
  sortReleases,
  type ReleaseRecord,
} from "../../../src/core/release/ledger";

const base = mkdtempSync(join(tmpdir(), "sd-ledger-edges-"));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(base, `s${++n}`);

const ID = "r-20261123-030000-abc1234-00ff";
const good = {
  id: ID,
  stack: "prod",
  time: "2026-11-23T03:00:00.000Z",
  commit: "abc1234",
  config: {},
  result: "good",
};
const withField = (over: Record<string, unknown>) => JSON.stringify({ ...good, ...over });

test("recordProblem: each reason a record is refused, word for word", () => {
  const cases: Array<[string, string | undefined]> = [
    [JSON.stringify(good), undefined],
    ...["pending", "bad", "rolled-back"].map((r): [string, undefined] => [
      withField({ result: r }),
      undefined,
    ]),
    [withField({ failedStage: "soak", durationMs: 5, error: "x", imageDigest: "sha256:1" }), undefined],
    ["42", "not a JSON object"],
    ["[]", "not a JSON object"],
    ["null", "not a JSON object"],
    [withField({ id: "r-1" }), `its id is "r-1", not the file's name ${ID}`],
    [withField({ stack: 5 }), "`stack` is missing or not a string"],
    [withField({ commit: "" }), "`commit` is missing or not a string"],
    [withField({ time: "yesterday" }), '`time` "yesterday" is not a date'],
    [withField({ result: "ok" }), '`result` is "ok", not one of pending, good, bad, rolled-back'],
    [withField({ imageDigest: 5 }), "`imageDigest` is not a string"],
    [withField({ configFile: null }), "`configFile` is not a string"],
    [
      withField({ failedStage: "nap" }),
      '`failedStage` "nap" is not a stage (preflight, image, backup, migration, hooks, containers, health, soak)',
    ],
    [withField({ durationMs: "5" }), "`durationMs` is not a number"],
  ];
  for (const [text, want] of cases) assert.equal(recordProblem(text, ID), want, text);
});

test("describeUnreadable names every file with its reason and the three ways out", () => {
  assert.equal(
    describeUnreadable("prod", [
      { file: "/s/a.json", reason: "not a JSON object" },
      { file: "/s/b.json", reason: "`time` is missing or not a string" },
    ]),
    '2 release record(s) of stack "prod" cannot be read:\n' +
      "  /s/a.json: not a JSON object\n" +
      "  /s/b.json: `time` is missing or not a string\n" +
      "A rollback could pick the wrong release without them. Restore the file from a copy, fix its JSON, " +
      "or move it out of the releases directory (e.g. `mv FILE FILE.broken`) if that release is not needed.",
  );
});

test("ioError: the fix follows the errno (disk full, no permission, anything else)", () => {
  const err = (code: string) => Object.assign(new Error(`${code}: boom`), { code });
  const file = "/state/releases/prod/r.json";
  const cases: Array<[string, string]> = [
    ["ENOSPC", "free disk space there"],
    ["EDQUOT", "free disk space there"],
    ["EACCES", "give this user read and write access to /state/releases/prod, or pass --state-dir"],
    ["EPERM", "give this user read and write access to /state/releases/prod, or pass --state-dir"],
    ["EROFS", "give this user read and write access to /state/releases/prod, or pass --state-dir"],
    ["ENOTDIR", "check that /state/releases/prod is a directory this user may write, or pass --state-dir"],
  ];
  for (const [code, fix] of cases) {
    const e = ioError(err(code), "write the release record", file);
    assert.ok(e instanceof CannotRunError);
    assert.equal(e.message, `cannot write the release record ${file}: ${code}: boom; ${fix}`, code);
  }
});

test("sortReleases: same second, the later id first", () => {
  const r = (id: string) => ({ ...good, id }) as ReleaseRecord;
  const ids = ["r-20261123-030000-a-0001", "r-20261123-030000-a-0003", "r-20261123-030000-a-0002"];
  assert.deepEqual(
    sortReleases(ids.map(r)).map((x) => x.id),
    ["r-20261123-030000-a-0003", "r-20261123-030000-a-0002", "r-20261123-030000-a-0001"],
  );
});

test("an id that is not a release id is refused by name, even when it ends or starts like one", async () => {
  const ledger = new Ledger(freshDir(), "prod");
  for (const id of [`../${ID}`, `${ID}/../../x`, "../../etc/passwd"]) {
    await assert.rejects(ledger.get(id), (e: unknown) => {
      assert.ok(e instanceof ConfigError, id);
      assert.equal(e.message, `\`${id}\` is not a release id (like r-20261123-030000-abc1234-1a2b)`);
      return true;
    });
  }
});

test("records are written as readable JSON; only secrets of 4 characters or more are refused, by a sentence", async () => {
  const stateDir = freshDir();
  const ledger = new Ledger(stateDir, "prod", ["", "abc", "p4ss"]);
  // A 3-character "secret" appears everywhere (it would refuse every record): it is not checked.
  const r = await ledger.create({ stack: "prod", commit: "abc1234", config: { note: "abc" } });
  const file = join(stateDir, "releases", "prod", `${r.id}.json`);
  assert.equal(readFileSync(file, "utf8"), JSON.stringify(r, null, 2) + "\n");
  await assert.rejects(
    ledger.update(r.id, { error: "password p4ss rejected" }),
    (e: unknown) =>
      e instanceof CheckFailedError &&
      e.message ===
        `refusing to write release ${r.id}: it contains a secret value in plaintext (keep secrets as ` +
          "`pulumi config set --secret` ciphertext in the recorded config)",
  );
  assert.equal((await ledger.get(r.id)).error, undefined, "nothing was written");
});

test("a record that cannot be read (a directory in its place) is an error naming it, never 'not found' or skipped", async () => {
  const stateDir = freshDir();
  const ledger = new Ledger(stateDir, "prod");
  const dir = join(stateDir, "releases", "prod");
  mkdirSync(join(dir, `${ID}.json`), { recursive: true });
  await assert.rejects(ledger.get(ID), (e: unknown) => {
    assert.ok(e instanceof CannotRunError, String(e));
    assert.match(e.message, new RegExp(`^cannot read the release record ${dir}/${ID}\\.json: EISDIR`));
    return true;
  });
  const all = await ledger.readAll();
  assert.equal(all.unreadable.length, 1);
  assert.match(all.unreadable[0].reason, /^EISDIR/);
});

test("files beside the records that are not `<id>.json` (a copy moved aside as .orig) are not read", async () => {
  const stateDir = freshDir();
  const ledger = new Ledger(stateDir, "prod");
  const r = await ledger.create({ stack: "prod", commit: "abc1234", config: {} });
  const dir = join(stateDir, "releases", "prod");
  writeFileSync(join(dir, `${r.id}.orig`), "{half");
  writeFileSync(join(dir, `x${r.id}.json`), "{half");
  assert.deepEqual(
    (await ledger.list()).map((x) => x.id),
    [r.id],
  );
});
