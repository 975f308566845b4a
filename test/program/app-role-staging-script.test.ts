// scripts/deploy-staging.sh creates the app role's password like the owner's (issue 15), once.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(__dirname, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "sd-staging-script-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a copy of the script with a recording `pulumi` that knows the keys in `set`; returns its calls. */
function runScript(set: string[]): string[] {
  const work = mkdtempSync(join(dir, "w-"));
  for (const d of ["scripts", "bin", "fake", "examples/app/node_modules"])
    mkdirSync(join(work, d), { recursive: true });
  copyFileSync(join(root, "scripts", "deploy-staging.sh"), join(work, "scripts", "deploy-staging.sh"));
  symlinkSync(join(root, "node_modules"), join(work, "node_modules"));
  const calls = join(work, "calls");
  const exe = (p: string, text: string) => {
    writeFileSync(p, text);
    chmodSync(p, 0o755);
  };
  writeFileSync(join(work, "scripts", "pulumi-env.ts"), `process.stdout.write("pulumi\\n\\n");\n`);
  exe(
    join(work, "fake", "pulumi"),
    `#!/bin/sh\necho "$*" >> "${calls}"\ncase "$*" in\n${set.map((k) => `  "config get ${k} --stack staging") exit 0 ;;\n`).join("")}  "config get "*) exit 1 ;;\nesac\n`,
  );
  exe(join(work, "bin", "safe-deploy"), `#!/bin/sh\necho "safe-deploy $*" >> "${calls}"\n`);
  execFileSync("bash", [join(work, "scripts", "deploy-staging.sh")], {
    env: { ...process.env, PATH: `${join(work, "fake")}:${process.env.PATH}`, PULUMI_BACKEND_URL: "" },
    stdio: "pipe",
  });
  return readFileSync(calls, "utf8").trim().split("\n");
}

test("a new staging stack gets dbPassword and dbAppPassword as two different generated secrets", () => {
  const calls = runScript([]);
  const setOf = (k: string) => calls.find((c) => c.startsWith(`config set --secret --stack staging ${k} `));
  const owner = setOf("dbPassword")?.split(" ").pop();
  const app = setOf("dbAppPassword")?.split(" ").pop();
  assert.match(owner ?? "", /^[A-Za-z0-9_-]{24}$/, calls.join("\n"));
  assert.match(app ?? "", /^[A-Za-z0-9_-]{24}$/, calls.join("\n"));
  assert.notEqual(owner, app);
  assert.equal(calls.at(-1), "safe-deploy up --stack staging");
});

test("an existing stack keeps its passwords; one without dbAppPassword gets only that", () => {
  assert.ok(!runScript(["dbPassword", "dbAppPassword"]).some((c) => c.startsWith("config set")));
  const calls = runScript(["dbPassword"]).filter((c) => c.startsWith("config set"));
  assert.equal(calls.length, 1);
  assert.match(calls[0], /^config set --secret --stack staging dbAppPassword /);
});
