import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ConcurrentUpdateError, StackNotFoundError } from "@pulumi/pulumi/automation";
import { chooseBackend, mapPulumiError, openStack } from "../../src/cli/stack";
import { INSTALLER_URL, pinnedPulumiVersion } from "../../src/cli/pulumi-cli";
import { CannotRunError, ConfigError } from "../../src/core/errors";

const root = resolve(__dirname, "..", "..");
// Not in the package's type declarations, but it is what the Automation API builds its errors from.
const { CommandResult } = require("@pulumi/pulumi/automation/cmd");

test("the Automation API's errors become sentences naming the stack and the next step", () => {
  const busy = mapPulumiError(
    new ConcurrentUpdateError(new CommandResult("", "conflict", 255)),
    "production",
  );
  assert.ok(busy instanceof CannotRunError);
  assert.match(
    busy.message,
    /stack "production" is being updated by another process.*safe-deploy recover --stack production/s,
  );
  const missing = mapPulumiError(
    new StackNotFoundError(new CommandResult("", "no stack named 'qa'", 255)),
    "qa",
  );
  assert.ok(missing instanceof ConfigError);
  assert.equal(missing.exitCode, 2);
  assert.match(missing.message, /pulumi stack init qa/);
  const leaky = mapPulumiError(new Error("connect failed: postgres://app:hunter22@db:5432/app"), "staging");
  assert.ok(!leaky.message.includes("hunter22"));
  assert.match(leaky.message, /pulumi failed on stack "staging": connect failed: postgres:\/\/app:\*\*\*@db/);
});

/**
 * Runs `fn` with a temp HOME (no `pulumi login`, no installed CLI), no Pulumi variables, no proxy, and a
 * PATH of /usr/bin:/bin plus, when `standIn`, a stand-in `pulumi` that logs each call (args and the
 * backend it was given) and answers `version` with the pinned version; `stack select` fails unless the
 * stack was `init`ed.
 */
async function withTempHome(
  standIn: boolean,
  fn: (t: { home: string; log: () => Promise<string[]>; login(url: string): Promise<void> }) => Promise<void>,
) {
  const home = await mkdtemp(join(tmpdir(), "sd-home-"));
  const bin = join(home, "bin");
  const logFile = join(home, "pulumi.log");
  await mkdir(bin);
  if (standIn) {
    await writeFile(
      join(bin, "pulumi"),
      `#!/bin/sh
echo "$* | backend=\${PULUMI_BACKEND_URL:-}" >> "${logFile}"
case "$1 $2" in
  "version "*) echo "v${pinnedPulumiVersion()}" ;;
  "stack select") grep -q "^stack init" "${logFile}" || { echo "error: no stack named '$4' found" >&2; exit 255; } ;;
esac
`,
    );
    await chmod(join(bin, "pulumi"), 0o755);
  }
  const keys = [
    "PATH",
    "HOME",
    "PULUMI_HOME",
    "PULUMI_BACKEND_URL",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
  ];
  const saved = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
  for (const k of keys) delete process.env[k];
  process.env.PATH = `${standIn ? bin + ":" : ""}/usr/bin:/bin`;
  process.env.HOME = home;
  try {
    await fn({
      home,
      log: async () => (await readFile(logFile, "utf8").catch(() => "")).split("\n").filter(Boolean),
      login: async (url) => {
        await mkdir(join(home, ".pulumi"), { recursive: true });
        await writeFile(
          join(home, ".pulumi", "credentials.json"),
          JSON.stringify({ current: url, accounts: {} }),
        );
      },
    });
  } finally {
    for (const k of keys) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await rm(home, { recursive: true, force: true });
  }
}

test("a pulumi on PATH is used as is (nothing installed, nothing said)", async () => {
  await withTempHome(true, async ({ home, log }) => {
    const notes: string[] = [];
    const project = await mkdtemp(join(home, "project-"));
    await openStack({ stack: "staging", projectDir: project, create: true, note: (l) => notes.push(l) });
    const calls = await log();
    assert.ok(
      calls.some((c) => c.startsWith("stack select --stack staging")),
      calls.join("\n"),
    );
    assert.ok(!notes.some((n) => /using Pulumi CLI/.test(n)), notes.join("\n"));
  });
});

test("without a pulumi and without network, opening a stack exits 3 naming what it tried and the manual install", async (t) => {
  // The Automation API downloads the installer with fetch from a fixed URL; only run where it cannot.
  const reachable = await fetch(INSTALLER_URL, { method: "HEAD", signal: AbortSignal.timeout(5000) }).then(
    () => true,
    () => false,
  );
  if (reachable) return t.skip(`this machine reaches ${INSTALLER_URL}: the test would install the CLI`);
  await withTempHome(false, async ({ home }) => {
    const version = pinnedPulumiVersion();
    await assert.rejects(openStack({ stack: "staging", projectDir: home }), (e: unknown) => {
      assert.ok(e instanceof CannotRunError, String(e));
      assert.equal(e.exitCode, 3);
      assert.match(e.message, /Tried: 'pulumi' on PATH \(not found\)/);
      assert.ok(
        e.message.includes(
          `installing version ${version} into ${join(home, ".pulumi", "versions", version)}`,
        ),
        e.message,
      );
      assert.ok(e.message.includes(INSTALLER_URL), e.message);
      assert.ok(
        e.message.includes(`curl -fsSL https://get.pulumi.com | sh -s -- --version ${version}`),
        e.message,
      );
      return true;
    });
  });
});

test("the pinned CLI version is the @pulumi/pulumi version of package.json and the lockfile", async () => {
  const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8"));
  const lock = JSON.parse(await readFile(join(root, "package-lock.json"), "utf8"));
  const version = pinnedPulumiVersion();
  assert.equal(lock.packages["node_modules/@pulumi/pulumi"].version, version);
  // `~3.248.0`: patch updates only, so the pin cannot drift to another minor behind the lockfile's back.
  const [maj, min] = version.split(".");
  assert.equal(pkg.dependencies["@pulumi/pulumi"], `~${maj}.${min}.0`);
});

test("backend: PULUMI_BACKEND_URL, else the pulumi login, else the local file backend for staging only", async () => {
  await withTempHome(false, async ({ home, login }) => {
    assert.deepEqual(chooseBackend("production", "/srv/app", { PULUMI_BACKEND_URL: "s3://state" }).env, {});
    assert.deepEqual(chooseBackend("staging", "/srv/app", { HOME: home }).env, {
      PULUMI_BACKEND_URL: "file:///srv/app/.pulumi-state",
    });
    assert.throws(
      () => chooseBackend("production", "/srv/app", { HOME: home }),
      (e: unknown) =>
        e instanceof ConfigError &&
        /stack "production" has no backend/.test(e.message) &&
        /pulumi login/.test(e.message) &&
        /PULUMI_BACKEND_URL/.test(e.message) &&
        /pulumi stack init production/.test(e.message),
    );
    await login("https://api.pulumi.com");
    for (const stack of ["staging", "production"]) {
      const b = chooseBackend(stack, "/srv/app", { HOME: home });
      assert.deepEqual(b.env, {}, stack);
      assert.match(b.source, /pulumi login \(https:\/\/api\.pulumi\.com\)/);
    }
  });
});

test("a logged-in user's staging stack is opened in that backend, not the project's .pulumi-state", async () => {
  await withTempHome(true, async ({ home, log, login }) => {
    await login("s3://team-state");
    await openStack({ stack: "staging", projectDir: home, create: true, note: () => undefined });
    const calls = await log();
    const select = calls.filter((c) => c.startsWith("stack "));
    assert.ok(select.length > 0, calls.join("\n"));
    for (const c of select) assert.match(c, /\| backend=$/, c);
  });
});

test("without a login staging gets the project's file backend, and says so", async () => {
  await withTempHome(true, async ({ home, log }) => {
    const notes: string[] = [];
    await openStack({ stack: "staging", projectDir: home, create: true, note: (l) => notes.push(l) });
    const calls = await log();
    assert.ok(
      calls.some((c) => c.endsWith(`| backend=file://${home}/.pulumi-state`)),
      calls.join("\n"),
    );
    assert.ok(
      notes.some((n) => n.includes(`file://${home}/.pulumi-state`)),
      notes.join("\n"),
    );
  });
});

test("production is never created implicitly: --create fails before any stack command, even when logged in", async () => {
  await withTempHome(true, async ({ home, log, login }) => {
    await assert.rejects(openStack({ stack: "production", projectDir: home, create: true }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, /pulumi login.*PULUMI_BACKEND_URL.*pulumi stack init production/s);
      return true;
    });
    await login("https://api.pulumi.com");
    await assert.rejects(openStack({ stack: "production", projectDir: home, create: true }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, /never created implicitly.*pulumi stack init production/s);
      return true;
    });
    const calls = await log();
    assert.ok(!calls.some((c) => c.startsWith("stack")), calls.join("\n"));
  });
});
