import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openStack, redactedLines } from "../../src/cli/stack";
import { standIn } from "./pulumi-stand-in";

const root = resolve(__dirname, "..", "..");

async function project(): Promise<{ dir: string; state: string }> {
  const dir = await mkdtemp(join(tmpdir(), "sd-project-"));
  await copyFile(join(root, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
  return { dir, state: join(dir, ".pulumi-state") };
}

/**
 * Starts the driver (openStack + up under catchingSignals, as `deploy` runs it) in a process group of its
 * own, as a shell starts a foreground job, waits until the stand-in engine runs, then sends `signal` to
 * the whole group (`group`) or to the driver's pid only. Returns what the engine received.
 */
async function signalDuringUp(
  signal: NodeJS.Signals,
  group: boolean,
): Promise<{ got: string[]; out: string }> {
  const pulumi = await standIn();
  const { dir, state } = await project();
  const marker = join(pulumi.dir, "handled");
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(__dirname, "pulumi-driver.ts"), dir, state, marker],
    {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        PATH: pulumi.path,
        STAND_IN_MODE: "wait-for-cancel",
        STAND_IN_NODE: process.execPath,
      },
    },
  );
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const closed = new Promise<void>((r) => child.on("close", () => r()));
  try {
    while (!existsSync(join(pulumi.dir, "ready")) && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(existsSync(join(pulumi.dir, "ready")), `the stand-in engine never started: ${out}`);
    process.kill(group ? -child.pid! : child.pid!, signal);
    await closed;
    return { got: readFileSync(pulumi.signals, "utf8").trim().split("\n"), out };
  } finally {
    await rm(pulumi.dir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
}

for (const [what, signal, group] of [
  ["Ctrl-C on the terminal (SIGINT to the whole process group)", "SIGINT", true],
  ["kill -INT to the CLI's pid only", "SIGINT", false],
  ["SIGTERM to the CLI's pid (a CI runner)", "SIGTERM", false],
  ["SIGTERM to the whole process group (a CI runner stopping the job)", "SIGTERM", true],
] as const) {
  test(`${what}: the engine gets exactly one SIGINT, a graceful cancel`, async () => {
    const { got, out } = await signalDuringUp(signal, group);
    assert.deepEqual(got, ["INT"], `signals the engine received: ${got.join(", ")}; driver said: ${out}`);
    assert.match(out, /up failed: .*/);
  });
}

test("engine output reaches onOutput as whole lines, redacted, even when a secret spans two chunks", async () => {
  const pulumi = await standIn();
  const { dir, state } = await project();
  const saved = process.env.PATH;
  process.env.PATH = pulumi.path;
  try {
    const stack = await openStack({
      stack: "staging",
      projectDir: dir,
      env: { PULUMI_BACKEND_URL: `file://${state}` },
    });
    const lines: string[] = [];
    await stack.up({ onOutput: (l) => lines.push(l) });
    assert.ok(!lines.join("").includes("hunter22"), `a secret leaked: ${JSON.stringify(lines)}`);
    assert.deepEqual(lines, ["Updating (staging) postgres://app:***@db:5432/app\n", "no newline at the end"]);
    const refreshed: string[] = [];
    await stack.refresh({ onOutput: (l) => refreshed.push(l) });
    assert.deepEqual(refreshed, lines);
  } finally {
    process.env.PATH = saved;
    await rm(pulumi.dir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
});

test("lines are split wherever the chunks end; the tail comes with flush", () => {
  const got: string[] = [];
  const out = redactedLines((l) => got.push(l))!;
  for (const c of ["a\nb", "c\n\npostgres://u:se", "cret@h/db", "\nend"]) out.push(c);
  assert.deepEqual(got, ["a\n", "bc\n", "\n", "postgres://u:***@h/db\n"]);
  out.flush();
  assert.deepEqual(got.at(-1), "end");
  out.flush();
  assert.equal(got.length, 5);
});

test("a second Ctrl-C stops the CLI at once and the engine gets its second SIGINT, not left running alone", async () => {
  const pulumi = await standIn();
  const { dir, state } = await project();
  const file = (n: string) => join(pulumi.dir, n);
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(__dirname, "pulumi-driver.ts"), dir, state, file("handled")],
    {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        PATH: pulumi.path,
        STAND_IN_MODE: "wait-for-cancel",
        STAND_IN_NODE: process.execPath,
        STAND_IN_RELEASE: "1",
      },
    },
  );
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const closed = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  const until = async (what: () => boolean) => {
    while (!what()) await new Promise((r) => setTimeout(r, 20));
  };
  try {
    await until(() => existsSync(file("ready")) || child.exitCode !== null);
    assert.ok(existsSync(file("ready")), `the stand-in engine never started: ${out}`);
    process.kill(-child.pid!, "SIGINT");
    await until(() => existsSync(file("handled")));
    process.kill(-child.pid!, "SIGINT");
    assert.equal(await closed, 130, out);
    // The CLI is gone; the engine runs on until it has seen what it was sent, then is let go.
    const enginePid = Number(readFileSync(file("pid"), "utf8"));
    // Released once it has recorded a second signal (or after 10 s without one, which fails below): a
    // fixed wait after the release lost the second one on a loaded CI machine (only "INT" recorded).
    const recorded = () =>
      existsSync(pulumi.signals) ? readFileSync(pulumi.signals, "utf8").trim().split("\n").length : 0;
    const deadline = Date.now() + 10_000;
    await until(() => recorded() >= 2 || Date.now() > deadline);
    await writeFile(file("release"), "");
    await until(() => {
      try {
        process.kill(enginePid, 0);
        return false;
      } catch {
        return true;
      }
    });
    assert.deepEqual(readFileSync(pulumi.signals, "utf8").trim().split("\n"), ["INT", "INT"]);
  } finally {
    await rm(pulumi.dir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
});
