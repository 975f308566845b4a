import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "./postgres";

let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => pg?.close());

test("throwaway server answers on 127.0.0.1 with password auth and survives a restart", async () => {
  const [row] = await pg.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  assert.match(row.v, /^15\d{4}$/);
  const url = await pg.createDatabase("restart_check");
  assert.match(url, /^postgres:\/\/tester:.+@127\.0\.0\.1:\d+\/restart_check$/);
  await pg.stop();
  await assert.rejects(pg.query("SELECT 1"));
  await pg.start();
  assert.deepEqual(await pg.query("SELECT 1 AS one", [], "restart_check"), [{ one: 1 }]);
});
