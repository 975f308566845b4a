import { pipeline } from "node:stream/promises";
import { pgFailure, spawnPg, watch, type Conn, type RunTarget } from "../backup/runner";
import { CheckFailedError } from "../errors";
import { ident, literal } from "../database/quote";
import { qualified } from "./catalog";
import type { TableCopy } from "./plan";

const LOCAL: RunTarget = { runIn: "local" };

/**
 * Streams one table from `source` (read inside the exported `snapshot`, so every table is read as of
 * one moment) into `target` with two psql COPY sessions piped together: nothing is held in memory.
 * Returns the rows the target took. A row the new schema refuses (a unique index, a value that does
 * not parse) is a CheckFailedError naming the table.
 */
export async function copyTable(source: Conn, target: Conn, snapshot: string, t: TableCopy): Promise<number> {
  const cols = t.columns.map(ident).join(", ");
  const out = spawnPg(
    LOCAL,
    "psql",
    [
      "-X",
      "-q",
      "-v",
      "ON_ERROR_STOP=1",
      "-c",
      "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
      "-c",
      `SET TRANSACTION SNAPSHOT ${literal(snapshot)}`,
      "-c",
      `COPY (SELECT ${cols} FROM ${qualified(t.table)}) TO STDOUT`,
      "-c",
      "COMMIT",
    ],
    source,
  );
  const into = spawnPg(
    LOCAL,
    "psql",
    ["-X", "-v", "ON_ERROR_STOP=1", "-c", `COPY ${qualified(t.table)} (${cols}) FROM STDIN`],
    target,
  );
  out.stdin!.end();
  const wo = watch(out);
  const wi = watch(into);
  let tag = "";
  into.stdout!.setEncoding("utf8").on("data", (d: string) => (tag += d));
  // A failing receiver closes its stdin: the sender's EPIPE is not the cause, the receiver's error is.
  await pipeline(out.stdout!, into.stdin!).catch(() => {});
  const [codeOut, codeIn] = await Promise.all([wo.done, wi.done]);
  if (codeOut !== 0)
    throw pgFailure(`reading table ${t.table} from the live database`, wo.stderr(), source, LOCAL);
  if (codeIn !== 0) {
    const why = wi.stderr().trim().split("\n").slice(0, 3).join("; ");
    if (/violates|invalid input|out of range|too long|null value/i.test(why))
      throw new CheckFailedError(`the rows of table ${t.table} do not fit the new schema: ${why}`);
    throw pgFailure(`writing table ${t.table} into the new database`, wi.stderr(), target, LOCAL);
  }
  const n = /COPY (\d+)/.exec(tag);
  return n ? Number(n[1]) : 0;
}
