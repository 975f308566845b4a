import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { databaseTarget, openContext, secretLiterals } from "../../src/cli/context";
import { parseStackConfig } from "../../src/config";
import type { ConfigMap, StackAccess } from "../../src/core/release/stack-port";
import { unusedPort } from "../helpers/receivers";

const project = mkdtempSync(join(tmpdir(), "sd-context-"));
writeFileSync(join(project, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
after(() => rmSync(project, { recursive: true, force: true }));

const pem =
  "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----";
const plain = (v: unknown) => ({ value: JSON.stringify(v), secret: false });
const config: ConfigMap = {
  "safe-deploy:app": plain({ image: "web:any" }),
  "safe-deploy:database": plain({ mode: "external" }),
  "safe-deploy:databaseUrl": { value: "postgres://app:p%40ss%2Fw0rd@db:5432/app", secret: true },
  "safe-deploy:appSecrets": {
    value: JSON.stringify({ JWT_SECRET_KEY: "jwt-9f8e7d6c5b", TLS_KEY: pem }),
    secret: true,
  },
  "safe-deploy:hookSecrets": { value: JSON.stringify({ API_TOKEN: "tok-a1b2c3d4" }), secret: true },
  "safe-deploy:slackWebhookUrl": {
    value: "https://hooks.slack.com/services/T0001/B0002/slackSecretXyz",
    secret: true,
  },
};

test("secretLiterals: each value of the JSON maps, each URL's password raw and decoded, a webhook's path", () => {
  const got = secretLiterals({
    appSecrets: JSON.stringify({ A: "value-one", N: 5 }),
    databaseUrl: "postgres://u:p%40ss@h/d",
    webhookUrl: "https://example.com/hooks/abcdef123456",
    dbPassword: "plain-pw",
  });
  for (const want of ["value-one", "p%40ss", "p@ss", "/hooks/abcdef123456", "plain-pw"])
    assert.ok(got.includes(want), `${want} in ${JSON.stringify(got)}`);
});

test("nothing of a secret reaches update.log or notifications.log: a JSON map's value, a decoded or URL-encoded password, a key line by line, a webhook path", async () => {
  const out: string[] = [];
  const ctx = await openContext({
    stack: "staging",
    projectDir: project,
    console: { write: (s: string) => out.push(s) },
    openStack: async (o) => ({ name: o.stack, getAllConfig: async () => config }) as unknown as StackAccess,
  });
  const leaks = [
    "app printed JWT_SECRET_KEY=jwt-9f8e7d6c5b",
    "hook printed tok-a1b2c3d4",
    "psql: password p@ss/w0rd rejected",
    "curl https://api.example/?jwt=jwt-9f8e7d6c5b&k=" + encodeURIComponent("p@ss/w0rd"),
    ...pem.split("\n").map((l) => `  ${l}`),
    "POST /services/T0001/B0002/slackSecretXyz failed",
    `{"token":"${"jwt-9f8e7d6c5b"}"}`,
  ];
  for (const l of leaks) ctx.log.info(l);
  await ctx.ports().notify("ERROR", `Deploy failed: ${leaks.join("\n")}`, {
    release: "r1",
    commit: "abc",
    error: "migration printed tok-a1b2c3d4 and p@ss/w0rd",
  });
  const written =
    readFileSync(join(project, "logs", "update.log"), "utf8") +
    readFileSync(join(project, "logs", "notifications.log"), "utf8") +
    out.join("");
  for (const secret of [
    "jwt-9f8e7d6c5b",
    "tok-a1b2c3d4",
    "p@ss",
    "w0rd",
    "MIIEvQIBADAN",
    "BKcwggSj",
    "slackSecretXyz",
  ])
    assert.ok(!written.includes(secret), `${secret} leaked:\n${written}`);
  assert.match(written, /app printed JWT_SECRET_KEY=\*\*\*/);
});

/** A context on a fresh project whose stack config is `config` plus `extra`; console lines go to `out`. */
async function contextIn(dir: string, extra: ConfigMap, out: string[]) {
  writeFileSync(join(dir, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
  return openContext({
    stack: "staging",
    projectDir: dir,
    console: { write: (s: string) => out.push(s) },
    openStack: async (o) =>
      ({ name: o.stack, getAllConfig: async () => ({ ...config, ...extra }) }) as unknown as StackAccess,
  });
}

test("a notification channel that is down is reported once in update.log and on the console", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-context-down-"));
  try {
    const port = await unusedPort();
    const out: string[] = [];
    const ctx = await contextIn(
      dir,
      { "safe-deploy:webhookUrl": { value: `http://127.0.0.1:${port}/hooks/abc`, secret: true } },
      out,
    );
    await ctx.ports().notify("ERROR", "Deploy of staging failed", { release: "r1", commit: "abc" });
    const failed = (t: string) => t.split("\n").filter((l) => /webhook/.test(l) && /failed/.test(l));
    const log = readFileSync(join(dir, "logs", "update.log"), "utf8");
    assert.equal(failed(log).length, 1, log);
    assert.equal(failed(out.join("")).length, 1, out.join(""));
    assert.match(
      failed(log)[0],
      /WARNING: notification ERROR via webhook failed after 3 attempt\(s\): .*ECONNREFUSED/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "a channel that hangs until the deadline is skipped for the rest of the run, so later notifications do not wait again",
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "sd-context-hang-"));
    const { createServer } = await import("node:net");
    const sockets: import("node:net").Socket[] = [];
    // What each connection sent, and whether it came after the second notification started.
    const requests: Array<{ late: boolean; text: Promise<string> }> = [];
    let second = false;
    let connected!: () => void;
    const firstConnection = new Promise<void>((r) => (connected = r));
    const silent = createServer((s) => {
      sockets.push(s);
      let text = "";
      requests.push({
        late: second,
        // The request's body is written at once on connect: its end is the message.
        text: new Promise((r) =>
          s.on("data", (d: Buffer) => (text += d.toString()) && /staging/.test(text) && r(text)),
        ),
      });
      connected();
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as import("node:net").AddressInfo).port;
    try {
      const out: string[] = [];
      const ctx = await contextIn(
        dir,
        {
          "safe-deploy:slackWebhookUrl": { value: `http://127.0.0.1:${port}/services/T0/B0/x`, secret: true },
        },
        out,
      );
      const ports = ctx.ports({ notifyDeadlineMs: 800 });
      await ports.notify("INFO", "Deploy of staging started", { release: "r1", commit: "abc" });
      await firstConnection; // the first notification reached the silent server
      second = true;
      await ports.notify("ERROR", "Deploy of staging failed", { release: "r1", commit: "abc" });
      // Attempts of the first notification still connecting when the deadline hit may land now: each
      // connection is told apart by what it sends, and none may carry the second message.
      for (const r of requests.filter((x) => x.late))
        assert.match(await r.text, /staging started/, "no new connection for the second notification");
      assert.match(
        out.join(""),
        /notifications via slack are skipped for the rest of this run: it did not answer in time/,
      );
      // The log file channel still got both.
      const log = readFileSync(join(dir, "logs", "notifications.log"), "utf8");
      assert.match(log, /Deploy of staging started[\s\S]*Deploy of staging failed/);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("the CLI reaches a database published on an IPv6 address through a URL with brackets", () => {
  const config = parseStackConfig({
    app: { image: "web:1" },
    database: { mode: "container", bindAddress: "::" },
    secretsSet: ["dbPassword"],
  });
  const t = databaseTarget(config, { dbPassword: "pw" }, undefined);
  assert.equal(t?.url, "postgres://app:pw@[::1]:5432/app");
});

test(
  "a lock renewal that fails (the lock was forced away) is said once in update.log and on the console",
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "sd-context-renew-"));
    try {
      const out: string[] = [];
      const ctx = await contextIn(dir, {}, out);
      const unlock = await ctx.ports({ lockRenewMs: 30 }).lock("staging", "up");
      const file = join(dir, ".safe-deploy", "locks", "staging.json");
      const held = JSON.parse(readFileSync(file, "utf8"));
      // Someone runs `lock release --force` and another deploy takes the lock.
      writeFileSync(file, JSON.stringify({ ...held, id: "someone-else" }));
      const said = (t: string) => t.split("\n").filter((l) => /could not renew the deploy lock/.test(l));
      // Each renewal tick reads the lock file: count the reads, to wait for ticks rather than for time.
      const fsp = (await import("node:fs")).promises;
      const readFile = fsp.readFile;
      let reads = 0;
      let tick = () => {};
      fsp.readFile = ((...a: Parameters<typeof readFile>) => {
        if (a[0] === file) {
          reads++;
          tick();
        }
        return readFile(...a);
      }) as typeof readFile;
      const ticks = (n: number) =>
        new Promise<void>((r) => {
          const target = reads + n;
          tick = () => reads >= target && r();
        });
      // The renewal timer is unref'd: something must keep the event loop alive while the test waits.
      const alive = setInterval(() => {}, 60_000);
      try {
        // The first failure, then five more ticks (each would say it again if it were not said once).
        while (said(out.join("")).length === 0) await ticks(1);
        await ticks(5);
      } finally {
        clearInterval(alive);
        fsp.readFile = readFile;
      }
      await unlock();
      const log = readFileSync(join(dir, "logs", "update.log"), "utf8");
      assert.equal(said(log).length, 1, log);
      assert.equal(said(out.join("")).length, 1, out.join(""));
      assert.match(said(log)[0], /no longer held by this process.*Another deploy of staging could start/);
      assert.equal(
        JSON.parse(readFileSync(file, "utf8")).id,
        "someone-else",
        "the other deploy's lock stays",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("preflight refuses applied migrations edited or removed since the last good release; new ones pass", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-context-edits-"));
  const g = (...args: string[]) =>
    execFileSync("git", ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
      encoding: "utf8",
    }).trim();
  try {
    const out: string[] = [];
    const closed = await unusedPort();
    const mig = join(dir, "migrations");
    mkdirSync(mig);
    writeFileSync(join(dir, ".gitignore"), ".safe-deploy/\nlogs/\nbackups/\n");
    writeFileSync(join(mig, "1_init.sql"), "CREATE TABLE notes (id int);\n");
    writeFileSync(join(mig, "2_more.sql"), "ALTER TABLE notes ADD COLUMN body text;\n");
    writeFileSync(join(mig, "README.md"), "how we migrate\n");
    const ctx = await contextIn(
      dir,
      {
        "safe-deploy:migrations": plain({ dir: "migrations" }),
        "safe-deploy:databaseUrl": { value: `postgres://app:pw@127.0.0.1:${closed}/app`, secret: true },
      },
      out,
    );
    g("init", "-q");
    g("add", "-A");
    g("commit", "-qm", "release 1");
    const applied = g("rev-parse", "HEAD");
    const r = await ctx.ledger.create({ stack: "staging", commit: applied, config: {} });
    await ctx.ledger.markResult(r.id, "good", { durationMs: 1 });
    const edits = async () =>
      (await ctx.ports({ allowDirty: true }).preflight()).filter((p) => /applied migration/.test(p));

    // A new migration and a README edit: fine.
    writeFileSync(join(mig, "3_new.sql"), "ALTER TABLE notes ADD COLUMN title text;\n");
    writeFileSync(join(mig, "README.md"), "how we migrate, v2\n");
    g("add", "-A");
    g("commit", "-qm", "release 2");
    assert.deepEqual(await edits(), []);

    // An applied one edited, another removed (committed or not): refused, named, with the way out.
    writeFileSync(join(mig, "1_init.sql"), "CREATE TABLE notes (id int, title text);\n");
    rmSync(join(mig, "2_more.sql"));
    const [problem, ...more] = await edits();
    assert.deepEqual(more, []);
    assert.match(problem, new RegExp(`since release ${r.id} \\(commit ${applied.slice(0, 12)}\\)`));
    assert.match(problem, /1_init\.sql \(edited\), 2_more\.sql \(removed\)/);
    assert.match(problem, /put the change in a new migration.*--allow-migration-edits/);
    const allowed = await ctx.ports({ allowDirty: true, allowMigrationEdits: true }).preflight();
    assert.ok(!allowed.some((p) => /applied migration/.test(p)), allowed.join("\n"));

    // The release's commit is not in this clone (a shallow CI checkout): said, not refused.
    const gone = await ctx.ledger.create({ stack: "staging", commit: "f".repeat(40), config: {} });
    await ctx.ledger.markResult(gone.id, "good", { durationMs: 1 });
    assert.deepEqual(await edits(), []);
    assert.match(
      out.join(""),
      /applied migrations not checked for edits: commit ffffffffffff .* not in this clone/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
