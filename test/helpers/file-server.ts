// One throwaway PostgreSQL server and one temp directory for a whole test file, reused by its cases and
// removed after it: the set-up most migration test files repeat.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { startPostgres, type TestPostgres } from "./postgres";

/** The file's server and directory; set once its `before` ran. */
export interface FileServer {
  pg: TestPostgres;
  tmp: string;
}

/** Registers the file's `before` (start, mkdtemp with `prefix`) and `after` (stop, remove). */
export function fileServer(prefix: string): FileServer {
  const s = {} as FileServer;
  before(async () => {
    s.pg = await startPostgres();
    s.tmp = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    await s.pg?.close();
    if (s.tmp) await rm(s.tmp, { recursive: true, force: true });
  });
  return s;
}
