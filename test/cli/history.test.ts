import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { runHistory } from "../../src/cli/commands/history";
import { formatDuration } from "../../src/cli/shared";
import { Ledger } from "../../src/core/release/ledger";

const run = promisify(execFile);
const bin = resolve(__dirname, "..", "..", "bin", "safe-deploy");
let state: string;

before(async () => {
  state = await mkdtemp(join(tmpdir(), "sd-history-"));
  const ledger = new Ledger(state, "staging");
  const good = await ledger.create({
    stack: "staging",
    commit: "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    config: {},
    time: new Date("2026-11-20T10:00:00Z"),
    imageDigest: "sha256:abcdef0123456789abcdef",
    schemaVersion: "20261110090000000_notes-title-backfill",
    backupFile: "/srv/backups/backup_20261120_100000_pre-deploy.dump.zst",
  });
  await ledger.markResult(good.id, "good", { durationMs: 65_000 });
  const bad = await ledger.create({
    stack: "staging",
    commit: "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    config: {},
    time: new Date("2026-11-21T09:30:00Z"),
  });
  await ledger.markResult(bad.id, "rolled-back", {
    failedStage: "health",
    rolledBackTo: good.id,
    durationMs: 9_000,
  });
});
after(async () => rm(state, { recursive: true, force: true }));

test("history lists releases newest first with every column the users look for", async () => {
  const lines: string[] = [];
  await runHistory({ stack: "staging", stateDir: state }, (l) => lines.push(l));
  assert.equal(lines.length, 3);
  assert.match(lines[0], /^RELEASE\s+TIME \(UTC\)\s+COMMIT\s+IMAGE\s+SCHEMA\s+BACKUP\s+RESULT\s+DURATION$/);
  assert.match(
    lines[1],
    /^r-20261121-093000-2222222-\w+\s+2026-11-21 09:30:00\s+2222222bbbbb\s+-\s+-\s+-\s+rolled-back \(health\) -> r-20261120-100000-1111111-\w+\s+9s$/,
  );
  assert.match(
    lines[2],
    /abcdef012345\s+20261110090000000_notes-title-backfill\s+backup_20261120_100000_pre-deploy\.dump\.zst\s+good\s+1m 05s$/,
  );
});

test("history --json is machine-readable and leaves out the config file", async () => {
  const lines: string[] = [];
  await runHistory({ stack: "staging", stateDir: state, json: true }, (l) => lines.push(l));
  const list = JSON.parse(lines.join("\n"));
  assert.deepEqual(
    list.map((r: any) => r.result),
    ["rolled-back", "good"],
  );
  assert.ok(list.every((r: any) => !("configFile" in r)));
});

test("an empty stack says how to make its first release; a missing --stack is a usage error (exit 2)", async () => {
  const lines: string[] = [];
  await runHistory({ stack: "production", stateDir: state }, (l) => lines.push(l));
  assert.deepEqual(lines, [
    `no releases of stack "production" yet: deploy with 'safe-deploy up --stack production'`,
  ]);
  const err = await run(bin, ["history"]).catch((e) => e);
  assert.equal(err.code, 2);
  assert.match(err.stderr, /required option '--stack <name>'/);
});

test("durations read like a person writes them", () => {
  assert.deepEqual([0, 9_400, 60_000, 65_000, 3_725_000, undefined].map(formatDuration), [
    "0s",
    "9s",
    "1m 00s",
    "1m 05s",
    "62m 05s",
    "-",
  ]);
});

test("history finds the state dir under --project-dir, as up/status/rollback do", async () => {
  const project = await mkdtemp(join(tmpdir(), "sd-history-project-"));
  try {
    const ledger = new Ledger(join(project, ".safe-deploy"), "production");
    const r = await ledger.create({ stack: "production", commit: "3".repeat(40), config: {} });
    await ledger.markResult(r.id, "good", { durationMs: 1_000 });
    const { stdout } = await run(
      bin,
      ["history", "--stack", "production", "--project-dir", project, "--json"],
      {
        cwd: tmpdir(),
      },
    );
    assert.deepEqual(
      JSON.parse(stdout).map((x: any) => x.id),
      [r.id],
    );
    const lines: string[] = [];
    await runHistory({ stack: "staging", projectDir: dirname(state), stateDir: basename(state) }, (l) =>
      lines.push(l),
    );
    assert.equal(lines.length, 3);
  } finally {
    await rm(project, { recursive: true, force: true });
  }
});

test("a mistyped --project-dir is exit 2 naming the flag, not 'no releases'", async () => {
  const nowhere = await mkdtemp(join(tmpdir(), "sd-not-a-project-"));
  try {
    for (const args of [
      ["history", "--stack", "production", "--project-dir", nowhere],
      ["lock", "status", "--stack", "production", "--project-dir", nowhere],
    ]) {
      const r = await run(bin, args, { cwd: tmpdir() }).then(
        () => assert.fail("expected exit 2"),
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /is not a safe-deploy project \(no Pulumi\.yaml, no \.safe-deploy\/\): .*`--project-dir`/,
      );
    }
  } finally {
    await rm(nowhere, { recursive: true, force: true });
  }
});

test("an unreadable record is shown as such: the rest is listed, exit 1 names the file and the fix", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sd-history-bad-"));
  try {
    const ledger = new Ledger(dir, "staging");
    const r = await ledger.create({ stack: "staging", commit: "3333333", config: {} });
    const kept = await ledger.create({ stack: "staging", commit: "4444444", config: {} });
    const file = join(dir, "releases", "staging", `${r.id}.json`);
    await writeFile(file, '{"id": "' + r.id + '", "stack": "stag');
    const lines: string[] = [];
    await assert.rejects(
      runHistory({ stack: "staging", stateDir: dir }, (l) => lines.push(l)),
      (e: any) => {
        assert.equal(e.exitCode, 1);
        assert.ok(e.message.includes(file), e.message);
        assert.match(e.message, /not valid JSON/);
        return true;
      },
    );
    assert.equal(lines.length, 2);
    assert.ok(lines[1].startsWith(kept.id));
    // Through the binary: no stack trace, the file named.
    await assert.rejects(
      run(bin, ["history", "--stack", "staging", "--state-dir", dir], { cwd: dir }),
      (e: any) => {
        assert.equal(e.code, 1);
        assert.match(e.stderr, /^safe-deploy: 1 release record\(s\) of stack "staging" cannot be read/);
        assert.ok(!/\n\s+at /.test(e.stderr), e.stderr);
        return true;
      },
    );
    // A record missing a field used to crash the table ("Cannot read properties of undefined").
    const { time: _t, ...noTime } = await ledger.get(kept.id);
    await writeFile(join(dir, "releases", "staging", `${kept.id}.json`), JSON.stringify(noTime));
    await assert.rejects(
      runHistory({ stack: "staging", stateDir: dir }, () => {}),
      /`time` is missing/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
