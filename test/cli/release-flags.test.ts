import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { runRollback } from "../../src/cli/commands/rollback";
import { runSeed } from "../../src/cli/commands/seed";
import { runStatus } from "../../src/cli/commands/status";
import type { CommandDeps } from "../../src/cli/shared";
import { CannotRunError } from "../../src/core/errors";

// Flag mistakes must be reported before the stack is opened: opening it needs the Pulumi CLI (exit 3
// without it) and time. The stack here cannot be opened at all, so any error that names the stack
// instead of the flag means the flags were checked too late.
let project: string;
let opened = 0;
const deps: CommandDeps = {
  openStack: async () => {
    opened++;
    throw new CannotRunError("the Pulumi CLI is not installed");
  },
  out: () => {},
  terminal: { input: new PassThrough(), output: new PassThrough(), isTTY: false },
};
const usage = (pattern: RegExp) => (e: Error & { exitCode?: number }) => {
  assert.equal(e.exitCode, 2, e.message);
  assert.match(e.message, pattern);
  return true;
};

before(() => {
  project = mkdtempSync(join(tmpdir(), "sd-flags-"));
  writeFileSync(join(project, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
});
after(() => rmSync(project, { recursive: true, force: true }));

test("rollback: a bad --full, a missing backup file or no mode without a terminal are usage errors first", async () => {
  const o = { stack: "staging", projectDir: project };
  await assert.rejects(runRollback({ ...o, full: ["abc"] }, deps), usage(/--full takes two values/));
  await assert.rejects(
    runRollback({ ...o, full: ["abc", join(project, "nope.dump")] }, deps),
    usage(/^--full SHA .*nope\.dump: no such file/),
  );
  await assert.rejects(
    runRollback({ ...o, backup: join(project, "nope.dump") }, deps),
    usage(/^--backup .*nope\.dump: no such file/),
  );
  await assert.rejects(runRollback(o, deps), usage(/rollback needs a mode when not on a terminal/));
  assert.equal(opened, 0, "the stack was never opened");
  await assert.rejects(runRollback({ ...o, quick: true }, deps), /Pulumi CLI is not installed/);
  assert.equal(opened, 1);
});

test("seed: a missing --backup file or --from-dir is a usage error before the stack is opened", async () => {
  const o = { stack: "staging", projectDir: project, yes: true };
  opened = 0;
  await assert.rejects(
    runSeed({ ...o, backup: join(project, "nope.dump") }, deps),
    usage(/^--backup .*nope\.dump: no such file/),
  );
  await assert.rejects(
    runSeed({ ...o, fromDir: join(project, "nowhere") }, deps),
    usage(/^--from-dir .*nowhere: no such directory/),
  );
  assert.equal(opened, 0, "the stack was never opened");
});

test("status with an unreadable release record says so (file and fix) instead of naming an older release as the last", async () => {
  const { Ledger } = await import("../../src/core/release/ledger");
  const ledger = new Ledger(join(project, ".safe-deploy"), "staging");
  const old = await ledger.create({
    stack: "staging",
    commit: "1111111",
    config: {},
    time: new Date("2026-01-01"),
  });
  await ledger.markResult(old.id, "good");
  const last = await ledger.create({
    stack: "staging",
    commit: "2222222",
    config: {},
    time: new Date("2026-01-02"),
  });
  writeFileSync(join(ledger.dir, `${last.id}.json`), "{");
  const lines: string[] = [];
  const code = await runStatus(
    { stack: "staging", projectDir: project },
    { ...deps, out: (l) => lines.push(l) },
  );
  assert.equal(code, 3, "the stack itself cannot be read here");
  const out = lines.join("\n");
  assert.match(out, /releases: +1 release record\(s\) of stack "staging" cannot be read/);
  assert.ok(out.includes(`${last.id}.json: not valid JSON`), out);
  assert.match(out, /mv FILE FILE\.broken/);
});
