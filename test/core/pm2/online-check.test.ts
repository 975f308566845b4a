import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { onlineCheck } from "../../../src/core/pm2/release";

/** Runs the check as the release command does: two `pm2 jlist` readings on stdin. */
function check(first: unknown[], second: unknown[]) {
  const split = "@@safe-deploy-next-reading@@";
  const input = `noise [PM2] line\n${JSON.stringify(first)}\n${split}\n${JSON.stringify(second)}\n`;
  return spawnSync(process.execPath, ["-e", onlineCheck("notes")], { input, encoding: "utf8" });
}

const worker = (id: number, status: string, restarts: number) => ({
  name: "notes",
  pm_id: id,
  pm2_env: { status, restart_time: restarts, SECRET: "s3cret" },
});

test("online in both readings, no restart in between: the check passes", () => {
  const r = check(
    [worker(0, "online", 1), worker(1, "online", 1)],
    [worker(0, "online", 1), worker(1, "online", 1)],
  );
  assert.equal(r.status, 0, r.stderr);
});

test("a crash loop caught online twice still fails: pm2 restarted it between the readings", () => {
  const r = check(
    [worker(0, "online", 21), worker(1, "online", 8)],
    [worker(0, "online", 22), worker(1, "online", 8)],
  );
  assert.equal(r.status, 1);
  assert.match(r.stderr, /notes not online after the reload \(0: restarting\)/);
  assert.ok(!r.stderr.includes("s3cret"), "the environment is never printed");
});

test("not online in either reading fails, naming the state", () => {
  const r = check([worker(0, "launching", 3)], [worker(0, "online", 3)]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /\(0: launching\)/);
  assert.equal(check([worker(0, "online", 0)], []).status, 1, "no instance left");
});
