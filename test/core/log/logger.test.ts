import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, formatJsonLine, formatLine, formatTimestamp } from "../../../src/core/log/logger";
import { redact, urlSecrets } from "../../../src/core/log/redact";

// Local time, as the users' `date '+%Y-%m-%d %H:%M:%S'` printed it.
const t = new Date(2025, 0, 9, 12, 0, 5);

test("formatTimestamp and formatLine follow the users' format", () => {
  const cases: Array<[Date, string, string, string]> = [
    [
      t,
      "STEP",
      "Iniciando proceso de actualización",
      "[2025-01-09 12:00:05] STEP: Iniciando proceso de actualización\n",
    ],
    [new Date(2025, 11, 31, 23, 59, 59), "ERROR", "x", "[2025-12-31 23:59:59] ERROR: x\n"],
    [
      t,
      "ROLLBACK_FAILED",
      "a\nb\n",
      "[2025-01-09 12:00:05] ROLLBACK_FAILED: a\n[2025-01-09 12:00:05] ROLLBACK_FAILED: b\n",
    ],
    [t, "INFO", "a\r\nb", "[2025-01-09 12:00:05] INFO: a\n[2025-01-09 12:00:05] INFO: b\n"],
    [t, "INFO", "", "[2025-01-09 12:00:05] INFO: \n"],
  ];
  for (const [time, level, message, want] of cases) assert.equal(formatLine(time, level, message), want);
  assert.equal(formatTimestamp(new Date(2026, 1, 3, 4, 5, 6)), "2026-02-03 04:05:06");
});

test("formatJsonLine is one object per line with ISO time, dropping undefined fields", () => {
  const line = formatJsonLine(t, "SUCCESS", "done", { stack: "prod", n: 3, gone: undefined });
  assert.ok(line.endsWith("\n"));
  assert.equal(line.trim().split("\n").length, 1);
  assert.deepEqual(JSON.parse(line), {
    stack: "prod",
    n: 3,
    time: t.toISOString(),
    level: "SUCCESS",
    message: "done",
  });
  // A field can't overwrite the entry's own keys.
  assert.equal(JSON.parse(formatJsonLine(t, "INFO", "real", { message: "fake" })).message, "real");
});

test("the logger redacts registered secrets and URL passwords in file, console and JSON fields", () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-log-"));
  try {
    const file = join(dir, "logs", "update.log");
    const out: string[] = [];
    const log = createLogger({
      file,
      console: { write: (s: string) => out.push(s) },
      json: true,
      now: () => t,
    });
    log.addSecret("hunter2-token");
    log.addSecret(undefined);
    log.addSecret("");
    const cases: Array<[string, string]> = [
      ["token is hunter2-token here", "token is *** here"],
      ["db postgres://app:s3cr%40t@db:5432/x", "db postgres://app:***@db:5432/x"],
      ["https://hooks.example/services/hunter2-token", "https://hooks.example/services/***"],
      ["nothing secret", "nothing secret"],
    ];
    for (const [message] of cases) log.info(message, { url: message });
    const fileLines = readFileSync(file, "utf8").trim().split("\n");
    assert.deepEqual(
      fileLines,
      cases.map(([, want]) => `[2025-01-09 12:00:05] INFO: ${want}`),
    );
    const json = out.map((l) => JSON.parse(l));
    assert.deepEqual(
      json.map((j) => [j.message, j.url]),
      cases.map(([, want]) => [want, want]),
    );
    assert.equal(log.redact("x hunter2-token y"), "x *** y");
    assert.doesNotMatch(readFileSync(file, "utf8") + out.join(""), /hunter2|s3cr/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("console output uses the users' format unless json, and the level helpers map to levels", () => {
  const out: string[] = [];
  const log = createLogger({ console: { write: (s: string) => out.push(s) }, now: () => t });
  log.step("a");
  log.success("b");
  log.warn("c");
  log.error("d");
  log.log("ROLLBACK", "e");
  assert.deepEqual(out, [
    "[2025-01-09 12:00:05] STEP: a\n",
    "[2025-01-09 12:00:05] SUCCESS: b\n",
    "[2025-01-09 12:00:05] WARNING: c\n",
    "[2025-01-09 12:00:05] ERROR: d\n",
    "[2025-01-09 12:00:05] ROLLBACK: e\n",
  ]);
});

test("libpq keyword and environment-style passwords are masked, quoted ones whole", () => {
  assert.equal(
    redact("host=db user=app password=hunter2 dbname=app"),
    "host=db user=app password=*** dbname=app",
  );
  assert.equal(redact("password = 'two words\\' here' sslmode=require"), "password = *** sslmode=require");
  assert.equal(redact("PGPASSWORD=s3cret psql"), "PGPASSWORD=*** psql");
  assert.equal(redact("no secrets in password policy"), "no secrets in password policy");
});

test("a URL password holding `@` (a tool printing the URL decoded) is masked whole", () => {
  assert.equal(
    redact("connecting to postgres://app:p@ss@db:5432/app failed"),
    "connecting to postgres://app:***@db:5432/app failed",
  );
  assert.equal(redact("DATABASE_URL=postgres://app:a@b@c@db"), "DATABASE_URL=postgres://app:***@db");
  assert.equal(
    redact("postgres://app:pw@db/app, mail ops@example.com"),
    "postgres://app:***@db/app, mail ops@example.com",
  );
});

test("urlSecrets: the URL and its password, raw and decoded", () => {
  const cases: [string, string[]][] = [
    ["postgres://app:p%40ss@db:5432/app", ["postgres://app:p%40ss@db:5432/app", "p%40ss", "p@ss"]],
    ["postgres://app:plain@db/app", ["postgres://app:plain@db/app", "plain"]],
    ["postgres://app:bad%zz@db/app", ["postgres://app:bad%zz@db/app", "bad%zz"]],
    ["postgres://app@db/app", ["postgres://app@db/app"]],
  ];
  for (const [url, want] of cases) assert.deepEqual(urlSecrets(url), want, url);
});

test("the log file is created 0600 in a 0700 directory; an older 0644 log is tightened", () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-log-"));
  try {
    const file = join(dir, "logs", "update.log");
    createLogger({ file, now: () => t }).info("first");
    assert.equal(statSync(join(dir, "logs")).mode & 0o777, 0o700);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const old = join(dir, "old.log");
    writeFileSync(old, "before\n", { mode: 0o644 });
    chmodSync(old, 0o644);
    createLogger({ file: old, now: () => t }).info("after");
    assert.equal(statSync(old).mode & 0o777, 0o600);
    assert.equal(readFileSync(old, "utf8"), "before\n[2025-01-09 12:00:05] INFO: after\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a log file that cannot be written is reported once on the console; logging goes on without it", () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-log-"));
  try {
    // `logs` is a file, so nothing can be created below it (a read-only logs/ fails the same way, even for root).
    writeFileSync(join(dir, "logs"), "");
    const out: string[] = [];
    const log = createLogger({
      file: join(dir, "logs", "update.log"),
      console: { write: (s: string) => out.push(s) },
      now: () => t,
      secrets: ["hunter2-token"],
    });
    log.step("backup");
    log.info("migrate hunter2-token");
    assert.equal(out.length, 3);
    assert.match(
      out[0],
      /^\[2025-01-09 12:00:05\] WARNING: cannot write the log file .*update\.log \(.*\); going on without it\n$/,
    );
    assert.deepEqual(out.slice(1), [
      "[2025-01-09 12:00:05] STEP: backup\n",
      "[2025-01-09 12:00:05] INFO: migrate ***\n",
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("credential query parameters of a URL are masked (a health URL like /health?token=...), others kept", () => {
  assert.equal(
    redact("health check of http://127.0.0.1:8080/health?token=Zx9-secret&verbose=1 failed"),
    "health check of http://127.0.0.1:8080/health?token=***&verbose=1 failed",
  );
  assert.equal(
    redact("GET https://app.example.com/h?api_key=k1&X-Amz-Signature=abc123&access_token=t0k#top"),
    "GET https://app.example.com/h?api_key=***&X-Amz-Signature=***&access_token=***#top",
  );
  assert.equal(redact("http://h/health?verbose=1&page=2"), "http://h/health?verbose=1&page=2");
});

test("a log that reached its size is rotated when a run opens it: FILE.1, FILE.2, ..., the oldest dropped", () => {
  const d = mkdtempSync(join(tmpdir(), "sd-rotate-"));
  try {
    const file = join(d, "update.log");
    writeFileSync(file, "run 3\n".repeat(200));
    writeFileSync(file + ".1", "run 2\n");
    writeFileSync(file + ".2", "run 1\n");
    const log = createLogger({ file, rotateBytes: 1000, rotateKeep: 2 });
    log.info("run 4");
    log.info("still run 4");
    assert.match(readFileSync(file, "utf8"), /^[^\n]*run 4\n[^\n]*still run 4\n$/);
    assert.match(readFileSync(file + ".1", "utf8"), /^run 3\n/);
    assert.equal(readFileSync(file + ".2", "utf8"), "run 2\n");
    assert.ok(!existsSync(file + ".3"), "only rotateKeep generations are kept");
    // Under the size: appended to, not rotated.
    createLogger({ file, rotateBytes: 1000, rotateKeep: 2 }).info("run 5");
    assert.match(readFileSync(file, "utf8"), /still run 4\n.*run 5\n$/);
    assert.match(readFileSync(file + ".1", "utf8"), /^run 3\n/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
