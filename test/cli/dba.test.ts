// Issue 16: a command line a DBA would trust (exit codes, errors that name the flag, quiet dependencies).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startS3, type TestS3 } from "../helpers/s3";

const root = resolve(__dirname, "..", "..");
const BIN = join(root, "bin", "safe-deploy");
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "sd-dba-"));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(BIN, args, {
    encoding: "utf8",
    env: { ...process.env, DATABASE_URL: "", SAFE_DEPLOY_NO_BUNDLE: "1", ...env },
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function cliAsync(args: string[], env: NodeJS.ProcessEnv = {}) {
  return new Promise<{ code: number | null; out: string; err: string }>((done) => {
    execFile(
      BIN,
      args,
      { encoding: "utf8", env: { ...process.env, SAFE_DEPLOY_NO_BUNDLE: "1", ...env }, timeout: 120_000 },
      (e, out, err) => done({ code: e ? (typeof e.code === "number" ? e.code : null) : 0, out, err }),
    );
  });
}

test("--version prints package.json's version, exit 0", () => {
  const r = cli(["--version"]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim(), JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version);
});

test("a mistyped option is reported as unknown, not as a missing required option", () => {
  const r = cli(["backup", "create", "--dri", dir]);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown option '--dri'/);
  assert.doesNotMatch(r.err, /required option/);
  // Still: a required option that is simply missing is named.
  assert.match(cli(["backup", "create"]).err, /required option '--dir <dir>' not specified/);
});

test("--keep-min 0: the error and the help say the same (1 or more)", () => {
  const r = cli(["backup", "prune", "--dir", dir, "--keep-min", "0"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--keep-min must be a whole number of 1 or more \(got "0"\)/);
  assert.match(
    cli(["backup", "prune", "--help"]).out,
    /--keep-min <n>\s+never keep fewer than this \(1 or more/,
  );
});

test("a stack that does not exist is exit 2 listing the stacks there are, for every command taking --stack", () => {
  for (const args of [
    ["history", "--stack", "stagin"],
    ["lock", "status", "--stack", "stagin"],
    ["status", "--stack", "stagin"],
    ["lint", dir, "--stack", "stagin"],
  ]) {
    const r = cli([...args, "--project-dir", root]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.out}${r.err}`);
    assert.match(
      r.err,
      /no stack "stagin" in .* \(no Pulumi\.stagin\.yaml\): the stacks there are production, staging/,
    );
  }
  assert.equal(cli(["history", "--stack", "staging", "--project-dir", root]).code, 0);
});

test("backup restore of a missing file says it does not exist; verify of a directory says it is one (exit 2)", () => {
  const missing = join(dir, "nope.pgdump.zst");
  const r = cli(["backup", "restore", missing, "--yes"], {
    DATABASE_URL: "postgres://u:secret@127.0.0.1:1/app",
  });
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /backup file .*nope\.pgdump\.zst does not exist/);
  const v = cli(["backup", "verify", dir]);
  assert.equal(v.code, 2, v.err);
  assert.match(
    v.err,
    /is a directory, not a backup file: pass one of its backups \(`safe-deploy backup list --dir /,
  );
});

test("backup prune --dry-run says why each backup goes or stays", () => {
  const d = join(dir, "prune");
  mkdirSync(d);
  const day = 86_400_000;
  const stamp = (ms: number) => new Date(Date.now() - ms).toISOString();
  const name = (ms: number, label: string) => {
    const t = new Date(Date.now() - ms).toISOString().replace(/[-:]/g, "").replace("T", "_").slice(0, 15);
    return `backup_${t}_${label}.pgdump.zst`;
  };
  const make = (ms: number, label: string) => {
    const f = join(d, name(ms, label));
    writeFileSync(f, "x");
    writeFileSync(f + ".json", JSON.stringify({ createdAt: stamp(ms), label, sizeBytes: 1 }));
    utimesSync(f, new Date(Date.now() - ms), new Date(Date.now() - ms));
    return f;
  };
  const newest = make(1 * day, "manual");
  const young = make(2 * day, "pre-deploy");
  const safety = make(40 * day, "safety");
  const min = make(20 * day, "manual");
  const old = make(30 * day, "manual");
  const r = cli(["backup", "prune", "--dir", d, "--dry-run", "--keep-days", "7", "--keep-min", "3"]);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split("\n");
  assert.ok(lines.includes(`keep ${newest}  (newest)`), r.out);
  assert.ok(lines.includes(`keep ${young}  (within --keep-days 7)`), r.out);
  assert.ok(lines.includes(`keep ${min}  (one of the --keep-min 3 kept)`), r.out);
  assert.ok(
    lines.some((l) => l.startsWith(`keep ${safety}  (safety backup: never pruned`)),
    r.out,
  );
  assert.ok(
    lines.includes(
      `would remove ${old}  (older than 7 day(s) (--keep-days) and beyond the 3 kept (--keep-min))`,
    ),
    r.out,
  );
});

test("backup fetch: no 8-line AWS SDK Node version warning on the supported Node", async () => {
  let s3: TestS3 | undefined;
  try {
    s3 = await startS3(dir, ["offsite"]);
    // Asynchronous: s3rver runs in this process and must answer while the CLI waits.
    const r = await cliAsync(
      ["backup", "fetch", "--list", "--bucket", "offsite", "--endpoint", s3.endpoint, "--path-style"],
      {
        AWS_ACCESS_KEY_ID: "S3RVER",
        AWS_SECRET_ACCESS_KEY: "S3RVER",
        AWS_REGION: "us-east-1",
        SAFE_DEPLOY_BACKUP_KEY: "",
      },
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /no backups under s3:\/\/offsite\/safe-deploy\//);
    assert.doesNotMatch(r.err, /NodeVersionSupportWarning|AWS SDK for JavaScript/);
  } finally {
    await s3?.close();
  }
});
