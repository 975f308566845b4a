import assert from "node:assert/strict";
import { join } from "node:path";
import { it } from "node:test";
import { runLint } from "../../src/cli/commands/lint";
import { main } from "../../src/cli/index";

const FIX = join(__dirname, "../fixtures/lint");

it("lint exits 1 on errors and 0 on a clean file, through the CLI contract", async () => {
  const lines: string[] = [];
  await assert.rejects(runLint({ paths: [join(FIX, "data.sql")], out: (t) => lines.push(t) }), /3 error/);
  assert.match(lines.join("\n"), /data\.sql:3: error \[update-without-where\]/);
  await runLint({ paths: [join(FIX, "safe.sql")], out: () => {} });
  assert.equal(await main(["lint", join(FIX, "destructive.sql")]), 1);
  assert.equal(await main(["lint", join(FIX, "missing.sql")]), 2);
});
