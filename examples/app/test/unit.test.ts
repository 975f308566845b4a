import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../src/config.js";
import { createLogger, redact, secretsOf } from "../src/log.js";
import { deriveTitle, validateNewNote } from "../src/notes.js";

const URL_OK = "postgres://app:pw@db:5432/app";

test("loadConfig: defaults, overrides and errors that name the variable without echoing the URL", () => {
  const version = require("../package.json").version;
  assert.deepEqual(loadConfig({ DATABASE_URL: URL_OK }), {
    databaseUrl: URL_OK,
    port: 3000,
    host: "0.0.0.0",
    version,
    healthTimeoutMs: 2000,
  });
  assert.deepEqual(
    loadConfig({
      DATABASE_URL: URL_OK,
      PORT: "8080",
      HOST: "127.0.0.1",
      APP_VERSION: "r42",
      HEALTH_TIMEOUT_MS: "500",
    }),
    { databaseUrl: URL_OK, port: 8080, host: "127.0.0.1", version: "r42", healthTimeoutMs: 500 },
  );
  const bad: [Record<string, string>, RegExp][] = [
    [{}, /^DATABASE_URL is not set/],
    [{ DATABASE_URL: "" }, /^DATABASE_URL is not set/],
    [{ DATABASE_URL: "mysql://u:hunter2@h/db" }, /^DATABASE_URL must start with postgres:\/\//],
    [{ DATABASE_URL: URL_OK, PORT: "http" }, /^PORT must be a whole number from 0 to 65535, got "http"/],
    [{ DATABASE_URL: URL_OK, PORT: "70000" }, /^PORT must be/],
    [{ DATABASE_URL: URL_OK, HEALTH_TIMEOUT_MS: "5" }, /^HEALTH_TIMEOUT_MS must be a whole number from 100/],
  ];
  for (const [env, message] of bad) {
    assert.throws(
      () => loadConfig(env),
      (e: unknown) => e instanceof ConfigError && message.test(e.message) && !e.message.includes("hunter2"),
      JSON.stringify(env),
    );
  }
});

test("deriveTitle: first line, trimmed of spaces/tabs/CR, at most 80 characters, else Untitled", () => {
  const cases: [string, string][] = [
    ["Title\nbody", "Title"],
    ["\t Title \r\nbody", "Title"],
    ["   \nsecond", "Untitled"],
    ["\n", "Untitled"],
    ["a".repeat(81), "a".repeat(80)],
    ["😀".repeat(81), "😀".repeat(80)],
  ];
  for (const [body, title] of cases) assert.equal(deriveTitle(body), title, JSON.stringify(body));
});

test("validateNewNote: accepts body with optional title, lists every problem at once", () => {
  assert.deepEqual(validateNewNote({ body: "Hi\nthere" }), {
    ok: true,
    value: { body: "Hi\nthere", title: "Hi" },
  });
  assert.deepEqual(validateNewNote({ body: "x", title: " T " }), {
    ok: true,
    value: { body: "x", title: "T" },
  });
  assert.deepEqual(validateNewNote({ body: 1, title: 2, extra: true }), {
    ok: false,
    errors: [
      "`body` is required and must be a string",
      "`title` must be a string",
      "`extra` is not a known field (use `body`, `title`)",
    ],
  });
  // 10000 characters is the limit, counted in characters like PostgreSQL's char_length, not UTF-16 units.
  assert.equal(validateNewNote({ body: "😀".repeat(10000) }).ok, true);
  assert.equal(validateNewNote({ body: "😀".repeat(10001) }).ok, false);
});

test("redact masks URL passwords and known secrets, raw, percent-encoded and JSON-escaped", () => {
  assert.equal(
    redact("connect postgres://app:s3cret@db:5432/app failed", []),
    "connect postgres://app:***@db:5432/app failed",
  );
  assert.equal(redact("http://127.0.0.1:3000/notes and a@b", []), "http://127.0.0.1:3000/notes and a@b");
  assert.deepEqual(secretsOf("postgres://u:p%40ss%22w@h/db"), ["p%40ss%22w", 'p@ss"w']);
  assert.deepEqual(secretsOf("not a url"), []);

  const url = "postgres://u:p%40ss%22w@h/db";
  const lines: string[] = [];
  const log = createLogger({ secrets: secretsOf(url), write: (l) => lines.push(l) });
  log({ msg: "x", url, error: 'auth failed with p@ss"w', raw: "p%40ss%22w" });
  const out = lines.join("\n");
  assert.equal(lines.length, 1);
  assert.ok(!out.includes("p@ss") && !out.includes("p%40ss") && !out.includes('p@ss\\"w'), out);
  const parsed = JSON.parse(lines[0]);
  assert.equal(parsed.url, "postgres://u:***@h/db");
  assert.equal(parsed.error, "auth failed with ***");
  assert.equal(parsed.raw, "***");
});

test("a password with a raw '@' (pg accepts it) is masked whole in a logged URL", () => {
  const url = "postgres://app:hunter2@tail-of-it@db:5432/app";
  const lines: string[] = [];
  createLogger({ secrets: secretsOf(url), write: (l) => lines.push(l) })({ msg: "listening", database: url });
  assert.equal(JSON.parse(lines[0]).database, "postgres://app:***@db:5432/app");
  assert.ok(!lines[0].includes("tail-of-it") && !lines[0].includes("hunter2"), lines[0]);
});
