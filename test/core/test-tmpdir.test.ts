// A test file SIGKILLed mid-run (Stryker's timeout) leaves no temporary directory behind: the preload
// every test file runs with (test/helpers/test-tmpdir.ts) gives it a TMPDIR of its own, removed once
// the process is gone. Every wait bounded.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { until } from "../helpers/bounded";

const PRELOAD = join(__dirname, "..", "helpers", "test-tmpdir.ts");
// A stand-in test file: makes a temp dir as the tests do, says where, then waits to be killed.
const STAND_IN =
  'const { mkdtempSync, writeFileSync } = require("node:fs"); const { tmpdir } = require("node:os");' +
  'const { join } = require("node:path"); const d = mkdtempSync(join(tmpdir(), "sd-stand-in-"));' +
  'writeFileSync(join(d, "data"), "x"); console.log(d); setInterval(() => {}, 1000);';

/** Runs the stand-in (with the preload when `preload`), returns it and the directory it made. */
async function standIn(preload: boolean, tmp: string) {
  const args = ["--import", "tsx", ...(preload ? ["--import", PRELOAD] : []), "-e", STAND_IN];
  const p = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, TMPDIR: tmp },
  });
  const made = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no directory from the stand-in in 30 s")), 30_000);
    createInterface({ input: p.stdout }).once("line", (l) => {
      clearTimeout(timer);
      resolve(l.trim());
    });
    p.once("exit", (code) => reject(new Error(`the stand-in exited with ${code}`)));
  });
  return { p, made };
}

test("a SIGKILLed test file's temporary directories go; without the preload they stay", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "sd-tmpdir-check-"));
  try {
    const { p, made } = await standIn(true, tmp);
    assert.equal(dirname(dirname(made)), tmp, "made in a directory of the stand-in's own, under TMPDIR");
    assert.ok(existsSync(join(made, "data")));
    p.kill("SIGKILL");
    await until("the reaper to remove the stand-in's directory", async () => !existsSync(dirname(made)));

    const bare = await standIn(false, tmp);
    bare.p.kill("SIGKILL");
    await new Promise((r) => bare.p.once("exit", r));
    assert.ok(existsSync(join(bare.made, "data")), "without the preload, the directory stays");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
