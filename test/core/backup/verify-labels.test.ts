// Issue 22, session 14: what verify.ts tells of a failure Stryker's session-13 survivors showed untold,
// in this process without a server: a pg_restore that fails without a word, a re-dump whose pg_dump
// fails (named as that step, not as an unreadable archive), and the roles read from pg_restore's
// schema listing (a quoted role holding ", ", a second quoted grantee, lines that only look like
// headers or GRANTs, names holding U+2028). The tools are stand-in scripts under PG_BIN.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { within } from "../../helpers/bounded";
import { withEnv } from "../../helpers/env";
import { standinPgBin } from "../../helpers/pg-bin";
import { neededRoles, restoreArchiveFile, tableChecksumsLike } from "../../../src/core/backup/verify";
import { parseDatabaseUrl, type RunTarget } from "../../../src/core/backup/runner";
import type { Manifest } from "../../../src/core/backup/manifest";
import { CannotRunError } from "../../../src/core/errors";

const local: RunTarget = { runIn: "local" };
const conn = parseDatabaseUrl("postgres://verify@127.0.0.1/verify");
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "sd-verify-labels-"));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("a pg_restore that fails without a word: its exit code is told, under the step's name", async () => {
  const bin = standinPgBin(join(dir, "silent"), { pg_restore: "cat > /dev/null\nexit 3" });
  await withEnv({ PG_BIN: bin }, () =>
    assert.rejects(
      within(
        "the failing pg_restore",
        restoreArchiveFile("/t/archive.tmp", "/b/backup_1.pgdump", local, conn, ["-d", "x"], "restore"),
      ),
      (e: Error) => e instanceof CannotRunError && e.message === "restore failed: pg_restore exited with 3",
    ),
  );
});

test("a re-dump whose pg_dump fails: named as the step that failed, with pg_dump's words", async () => {
  const bin = standinPgBin(join(dir, "redump"), {
    pg_dump: 'echo "pg_dump: error: stand-in out of memory" >&2\nexit 1',
  });
  const m = { version: 2, encoding: "UTF8", rowCounts: { "public.t": 1 } } as unknown as Manifest;
  await withEnv({ PG_BIN: bin }, () =>
    assert.rejects(
      within("the failing re-dump", tableChecksumsLike(m, local, conn)),
      (e: Error) =>
        e instanceof CannotRunError &&
        e.message ===
          "dumping the restored tables to checksum them failed: pg_dump: error: stand-in out of memory",
    ),
  );
});

test("neededRoles: a quoted role holding a comma, a second quoted grantee, a quote doubled in a grantee", () => {
  const script = [
    'GRANT SELECT ON TABLE public.items TO "sales, north";',
    'GRANT SELECT ON TABLE public.items TO reporting, "Data Team", PUBLIC WITH GRANT OPTION;',
    'REVOKE ALL ON TABLE public.items FROM "say ""hi""";',
  ].join("\n");
  assert.deepEqual(neededRoles(script), ["Data Team", "reporting", "sales, north", 'say "hi"']);
});

test("neededRoles: lines that only look like a header or a GRANT (in a function's body or a comment) name no role", () => {
  const script = [
    "-- Name: items; Type: TABLE; Schema: public; Owner: app",
    "    -- Name: items; Type: TABLE; Schema: public; Owner: indented_owner",
    "GRANT SELECT ON TABLE public.items TO commented; -- done by hand",
    "-- Name: notes; Type: VIEW; Schema: public; Owner: - ",
  ].join("\n");
  assert.deepEqual(neededRoles(script), ["app"]);
});

test("neededRoles: names holding U+2028 (pg_dump writes them raw) are read whole", () => {
  const script = [
    "-- Name: items\u2028old; Type: TABLE; Schema: public; Owner: app\u2028admin",
    'GRANT SELECT ON TABLE public."items\u2028old" TO reader;',
    'GRANT SELECT ON TABLE public.items TO "night\u2029shift";',
  ].join("\n");
  assert.deepEqual(neededRoles(script), ["app\u2028admin", "night\u2029shift", "reader"]);
});
