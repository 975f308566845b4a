// listSessions (the confirmation prompt's list of clients) where the PostgreSQL client tools are missing:
// the error names the step, the tool and the fix, as for every local run (issue 22: a mutant of its
// default target, which only a missing tool tells). No server: psql is not found before any connection.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withEnv } from "../../helpers/env";
import { listSessions } from "../../../src/core/backup/restore";
import { CannotRunError } from "../../../src/core/errors";

test("listSessions without psql: the step, the tool not found and the fix named", async () => {
  const empty = mkdtempSync(join(tmpdir(), "sd-restore-tools-"));
  try {
    await assert.rejects(
      withEnv({ PG_BIN: empty }, () => listSessions("postgres://app:pw@127.0.0.1:1/shop")),
      (e: Error) => {
        assert.ok(e instanceof CannotRunError, `${e.constructor.name}: ${e.message}`);
        assert.equal(
          e.message,
          `listing the database's sessions: PostgreSQL client tools not found (Error: spawn ${empty}/psql ENOENT); install them or set PG_BIN`,
        );
        return true;
      },
    );
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
