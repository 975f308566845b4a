import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
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

it("a directory without any .sql file is a usage error, not a pass over nothing", async () => {
  const empty = await mkdtemp(join(tmpdir(), "sd-lint-"));
  try {
    await writeFile(join(empty, "1700000000000_init.js"), "exports.up = () => {};\n");
    await assert.rejects(runLint({ paths: [join(FIX, "safe.sql"), empty], out: () => {} }), (e: Error) => {
      assert.equal(e.name, "ConfigError");
      assert.match(e.message, /no \.sql file under .*sd-lint-.*, so nothing would be checked/);
      return true;
    });
    assert.equal(await main(["lint", empty]), 2);
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
});
