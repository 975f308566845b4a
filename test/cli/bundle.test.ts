import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";

const root = resolve(__dirname, "..", "..");
const work = mkdtempSync(join(tmpdir(), "sd-bundle-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** A checkout with the real bin/safe-deploy and node_modules, whose "CLI" only says which one ran. */
function checkout(): string {
  const dir = mkdtempSync(join(work, "co-"));
  mkdirSync(join(dir, "bin"));
  copyFileSync(join(root, "bin", "safe-deploy"), join(dir, "bin", "safe-deploy"));
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  mkdirSync(join(dir, "src", "cli"), { recursive: true });
  writeFileSync(join(dir, "src", "cli", "index.ts"), 'const from: string = "tsx";\nconsole.log(from);\n');
  writeFileSync(join(dir, "package.json"), "{}\n");
  writeFileSync(join(dir, "package-lock.json"), "{}\n");
  mkdirSync(join(dir, "dist"));
  writeFileSync(join(dir, "dist", "safe-deploy.cjs"), 'console.log("bundle");\n');
  const old = new Date(Date.now() - 3600_000);
  for (const f of ["src/cli/index.ts", "src/cli", "src", "package.json", "package-lock.json"]) {
    utimesSync(join(dir, f), old, old);
  }
  return dir;
}

function which(dir: string, env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(join(dir, "bin", "safe-deploy"), [], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test("bin/safe-deploy runs the bundle while nothing in src/ or the package files is newer", () => {
  const dir = checkout();
  assert.equal(which(dir), "bundle");
  assert.equal(which(dir, { SAFE_DEPLOY_NO_BUNDLE: "1" }), "tsx");
});

test("an edited source file, a new or deleted one, or a changed lock file sends it back to tsx", () => {
  const edited = checkout();
  writeFileSync(join(edited, "src", "cli", "index.ts"), 'console.log("tsx");\n');
  assert.equal(which(edited), "tsx");

  const added = checkout();
  writeFileSync(join(added, "src", "new.ts"), "export {};\n");
  assert.equal(which(added), "tsx");

  const lock = checkout();
  writeFileSync(join(lock, "package-lock.json"), '{"changed":true}\n');
  assert.equal(which(lock), "tsx");

  const none = checkout();
  rmSync(join(none, "dist"), { recursive: true });
  assert.equal(which(none), "tsx");
});

test("the real bundle behaves like the TypeScript it is built from", async () => {
  const out = join(work, "real", "dist", "safe-deploy.cjs");
  await build({
    entryPoints: [join(root, "src", "cli", "index.ts")],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    packages: "external",
    logLevel: "warning",
    outfile: out,
    nodePaths: [join(root, "node_modules")],
  });
  const run = (args: string[], viaBundle: boolean) =>
    spawnSync(
      "node",
      viaBundle
        ? [out, ...args]
        : [
            "--import",
            join(root, "node_modules/tsx/dist/loader.mjs"),
            join(root, "src/cli/index.ts"),
            ...args,
          ],
      {
        encoding: "utf8",
        cwd: work,
        env: { ...process.env, NODE_PATH: join(root, "node_modules"), DATABASE_URL: "" },
        timeout: 60_000,
      },
    );
  for (const args of [
    ["--help"],
    ["backup", "--help"],
    ["backup", "create"],
    ["rollback", "--to"],
    ["nonsense"],
  ]) {
    const a = run(args, true);
    const b = run(args, false);
    assert.equal(a.status, b.status, `exit code of ${args.join(" ")}`);
    assert.equal(a.stdout, b.stdout, `stdout of ${args.join(" ")}`);
    assert.equal(a.stderr, b.stderr, `stderr of ${args.join(" ")}`);
  }
  // A command that loads the backup engine lazily (an `await import()` inside the bundle) and fails clearly.
  const c = run(["backup", "verify", join(work, "missing.pgdump.zst")], true);
  assert.equal(c.status, 2, c.stderr);
  assert.match(c.stderr, /does not exist/);
});
