import { test } from "node:test";
import assert from "node:assert/strict";
import { directDatabaseUrl, isPooledUrl } from "../../../src/core/render/database";

const direct = "postgres://postgres:pw@db.abcd.supabase.co:5432/postgres";
const pooled = "postgres://postgres.abcd:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres";

test("pooled URLs: port 6543 anywhere, or the Supabase pooler host in transaction mode", () => {
  const table: Array<[string, boolean]> = [
    [direct, false],
    [pooled, true],
    ["postgres://u:p@db.abcd.supabase.co:6543/postgres", true],
    ["postgres://u:p@aws-0-eu-west-1.pooler.supabase.com:5432/postgres", false],
    ["postgres://u:p@aws-0-eu-west-1.pooler.supabase.com/postgres", false],
    ["postgres://u:p@127.0.0.1:5432/app", false],
    ["not a url", false],
  ];
  for (const [url, want] of table) assert.equal(isPooledUrl(url), want, url);
});

test("migrations use migrationDatabaseUrl when set, else a direct databaseUrl; a pooled one is refused naming the key", () => {
  assert.equal(directDatabaseUrl(pooled, direct), direct);
  assert.equal(directDatabaseUrl(direct), direct);
  assert.throws(
    () => directDatabaseUrl(pooled),
    (e: Error) => {
      assert.match(e.message, /pulumi config set --secret migrationDatabaseUrl/);
      assert.ok(!e.message.includes(":pw@"));
      return true;
    },
  );
  assert.throws(
    () => directDatabaseUrl(direct, pooled),
    /`migrationDatabaseUrl` goes through a transaction pooler/,
  );
});
