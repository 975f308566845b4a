import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { runStatus } from "../../src/cli/commands/status";
import type { CommandDeps } from "../../src/cli/shared";
import { Ledger } from "../../src/core/release/ledger";
import type { ConfigMap, StackAccess } from "../../src/core/release/stack-port";
import { startTarget, type Target } from "../helpers/http-targets";

// `status` against a real HTTP app on loopback; only the Pulumi engine (config and outputs) is faked.
const TOKEN = "tok-5ecret-health-123";
let project: string;
let app: Target;
let healthUrl = "";

before(async () => {
  project = mkdtempSync(join(tmpdir(), "sd-status-"));
  writeFileSync(join(project, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
  app = await startTarget(() => [200]);
  healthUrl = `${app.url}?token=${TOKEN}`;
});
after(async () => {
  await app.close();
  rmSync(project, { recursive: true, force: true });
});

function deps(lines: string[]): CommandDeps {
  const plain = (v: unknown) => ({ value: JSON.stringify(v), secret: false });
  const config: ConfigMap = {
    "safe-deploy:app": plain({ image: "web:v1" }),
    "safe-deploy:database": plain({ mode: "external" }),
    "safe-deploy:databaseUrl": { value: "postgres://app:pw-not-used@127.0.0.1:1/app", secret: true },
    "safe-deploy:health": plain({ url: healthUrl }),
  };
  const stack: Partial<StackAccess> = {
    name: "staging",
    getAllConfig: async () => config,
    // The graph's `url` output is `health.url` when it is set, token and all.
    outputs: async () => ({
      url: { value: healthUrl, secret: false },
      containers: { value: "{}", secret: false },
    }),
  };
  return {
    openStack: async () => stack as StackAccess,
    out: (l) => lines.push(l),
    console: new PassThrough(),
    terminal: { input: new PassThrough(), output: new PassThrough(), isTTY: false },
  };
}

test("status never prints a credential query parameter of the health URL (text and --json)", async () => {
  for (const json of [false, true]) {
    const lines: string[] = [];
    const code = await runStatus({ stack: "staging", projectDir: project, json }, deps(lines));
    const out = lines.join("\n");
    assert.equal(code, 0, out);
    assert.ok(app.hits() > 0, "the health URL was probed");
    assert.ok(!out.includes(TOKEN), `the token reached the output:\n${out}`);
    assert.match(out, /token=\*\*\*/);
  }
});

test("status is NOT OK (exit 1) while the newest deploy failed without a rollback; a preflight refusal does not count", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-status-bad-"));
  try {
    writeFileSync(join(dir, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
    const ledger = new Ledger(join(dir, ".safe-deploy"), "staging");
    const at = (s: number) => new Date(Date.UTC(2026, 10, 23, 10, 0, s));
    const release = async (s: number, result: "good" | "bad", failedStage?: "containers" | "preflight") => {
      const r = await ledger.create({ stack: "staging", commit: "a".repeat(40), config: {}, time: at(s) });
      return ledger.markResult(r.id, result, { durationMs: 1, ...(failedStage ? { failedStage } : {}) });
    };
    const status = async (json = false) => {
      const lines: string[] = [];
      const code = await runStatus({ stack: "staging", projectDir: dir, json }, deps(lines));
      return { code, out: lines.join("\n") };
    };
    await release(1, "good");
    assert.equal((await status()).code, 0);
    const failed = await release(2, "bad", "containers");
    await release(3, "bad", "preflight");
    const text = await status();
    assert.equal(text.code, 1, text.out);
    assert.match(
      text.out,
      new RegExp(`NOT OK: +release ${failed.id} failed at containers and was not rolled back`),
    );
    assert.match(text.out, /rollback --stack staging --quick/);
    const json = await status(true);
    assert.equal(json.code, 1);
    assert.match(JSON.parse(json.out).attention, /was not rolled back/);
    await release(4, "good"); // a manual rollback (or a new deploy) that succeeded
    assert.equal((await status()).code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("status lists the old databases restores and rebuilds kept on the stack's server (issue 16)", async () => {
  const { startPostgres } = await import("../helpers/postgres");
  const pg = await startPostgres();
  try {
    await pg.createDatabase("app");
    await pg.createDatabase("app_before_restore_20261206063000");
    const d = deps([]);
    const url = pg.url("app");
    const stack = (await d.openStack!({} as never)) as StackAccess;
    const config = await stack.getAllConfig();
    const withDb: StackAccess = {
      ...stack,
      getAllConfig: async () => ({ ...config, "safe-deploy:databaseUrl": { value: url, secret: true } }),
    };
    for (const json of [false, true]) {
      const lines: string[] = [];
      await runStatus(
        { stack: "staging", projectDir: project, json },
        { ...d, openStack: async () => withDb, out: (l) => lines.push(l) },
      );
      const out = lines.join("\n");
      assert.match(out, /app_before_restore_20261206063000/);
      assert.ok(!out.includes(pg.password), "the database password reached the output");
    }
  } finally {
    await pg.close();
  }
});
