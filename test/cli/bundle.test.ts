import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

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

test("the real bundle behaves like the TypeScript it is built from", () => {
  // Built by package.json's own build script, only the output path changed.
  const out = join(work, "real", "dist", "safe-deploy.cjs");
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: { build: string } };
  const script = pkg.scripts.build.replace("--outfile=dist/safe-deploy.cjs", `--outfile=${out}`);
  assert.notEqual(script, pkg.scripts.build, "the build script writes dist/safe-deploy.cjs");
  const b = spawnSync("bash", ["-c", script], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, PATH: `${join(root, "node_modules", ".bin")}:${process.env.PATH}` },
  });
  assert.equal(b.status, 0, b.stderr);
  // A project with nothing but Pulumi.yaml: `up` and `rollback` load the Automation API lazily and stop
  // where the same TypeScript stops (here: no Pulumi CLI, exit 3), never on a module the bundle cannot load.
  const project = mkdtempSync(join(work, "project-"));
  writeFileSync(join(project, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
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
        env: {
          ...process.env,
          NODE_PATH: join(root, "node_modules"),
          DATABASE_URL: "",
          PULUMI_BACKEND_URL: `file://${project}`,
        },
        timeout: 60_000,
      },
    );
  const cases = [
    ["--help"],
    ["backup", "--help"],
    ["backup", "create"],
    ["backup", "verify", join(work, "missing.pgdump.zst")],
    ["lint", join(root, "examples", "app", "migrations")],
    ["rollback", "--to"],
    ["up", "--stack", "staging", "--project-dir", project],
    ["rollback", "--stack", "staging", "--project-dir", project, "--quick", "--yes"],
    ["nonsense"],
  ];
  for (const args of cases) {
    const a = run(args, true);
    const t = run(args, false);
    assert.equal(a.stdout, t.stdout, `stdout of ${args.join(" ")}`);
    assert.equal(a.stderr, t.stderr, `stderr of ${args.join(" ")}`);
    assert.equal(a.status, t.status, `exit code of ${args.join(" ")}`);
    assert.doesNotMatch(a.stderr, /Cannot find module|Directory import|ERR_[A-Z_]+/, args.join(" "));
  }
});
