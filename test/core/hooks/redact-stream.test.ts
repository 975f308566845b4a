import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const script = join(__dirname, "../../../src/core/hooks/redact-stream.ts");

/** What scripts/run-hook.sh writes to logs/hooks/*.log for a hook printing `text`. */
function hookLog(text: string, env: Record<string, string>): string {
  return execFileSync(process.execPath, ["--import", "tsx", script], {
    input: text,
    env: { ...process.env, ...env, SAFE_DEPLOY_SECRET_ENV_NAMES: Object.keys(env).join(" ") },
    encoding: "utf8",
  });
}

test("a hook's log masks DATABASE_URL's password printed alone, a secret URL-encoded, and a key line by line", () => {
  const key = "-----BEGIN KEY-----\nQUJDREVGR0hJSktMTU5P\n-----END KEY-----";
  const got = hookLog(
    [
      "connecting as app with p@ss/w0rd",
      `GET /?t=${encodeURIComponent("tok en/1234")}`,
      ...key.split("\n"),
      "done",
      "",
    ].join("\n"),
    { DATABASE_URL: "postgres://app:p%40ss%2Fw0rd@db:5432/app", API_TOKEN: "tok en/1234", TLS_KEY: key },
  );
  assert.equal(got, "connecting as app with ***\nGET /?t=***\n***\ndone\n");
});
