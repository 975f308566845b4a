import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "./postgres";

let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => pg?.close());

test("throwaway server answers on 127.0.0.1 with password auth and survives a restart", async () => {
  const [row] = await pg.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  assert.match(row.v, /^15\d{4}$/);
  const url = await pg.createDatabase("restart_check");
  assert.match(url, /^postgres:\/\/tester:.+@127\.0\.0\.1:\d+\/restart_check$/);
  await pg.stop();
  await assert.rejects(pg.query("SELECT 1"));
  await pg.start();
  assert.deepEqual(await pg.query("SELECT 1 AS one", [], "restart_check"), [{ one: 1 }]);
});

test(
  "a test process that dies (SIGKILL, SIGTERM, uncaught error) takes its server with it (issue 22)",
  { timeout: 180_000 },
  async () => {
    const { spawn } = await import("node:child_process");
    const { join } = await import("node:path");
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (const [mode, signal] of [
      ["hang", "SIGKILL"],
      ["hang", "SIGTERM"],
      ["throw", undefined],
    ] as const) {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", join(__dirname, "pg-orphan-child.ts"), mode],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      const exited = new Promise((r) => child.once("exit", r));
      const pid = await new Promise<number>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("\n")) resolve(Number(out.trim()));
        });
        child.once("exit", (code) => reject(new Error(`child exited (${code}) before starting postgres`)));
      });
      assert.ok(alive(pid), `postmaster ${pid} runs`);
      if (signal) child.kill(signal);
      await exited;
      // The server goes within the test's own bound; this waits for that event, not for a time.
      while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
      assert.equal(alive(pid), false, `${mode} ${signal ?? ""}: postmaster ${pid} gone`);
    }
  },
);
