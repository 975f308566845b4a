import { createInterface } from "node:readline";
import { PgoutputPlugin, type Pgoutput } from "pg-logical-replication";
import type { Conn, RunTarget } from "../backup/runner";
import { CannotRunError } from "../errors";
import { pgFailure, spawnPg, watch } from "../backup/runner";
import { runSql } from "../backup/session";
import { PUBLICATION } from "./slot";
import { literal } from "../database/quote";
import { lsnText, lsnValue, outLine } from "./sql";

/** A column of a relation as the stream describes it. */
export interface StreamColumn {
  name: string;
  /** Part of the replica identity (the key updates and deletes are matched by). */
  key: boolean;
  typeOid: number;
}

/** A relation as the stream describes it (its definition on the live database when the change was written). */
export interface StreamRelation {
  schema: string;
  name: string;
  columns: StreamColumn[];
  /** 'd' default (primary key), 'f' full, 'i' index, 'n' nothing. */
  replicaIdentity: string;
}

/** A row image: column name → the value's text form (null for NULL); unchanged TOAST values are absent. */
export type Row = Record<string, string | null>;

/** One row change of a committed transaction. */
export type Change =
  | { kind: "insert"; relation: StreamRelation; row: Row }
  | { kind: "update"; relation: StreamRelation; key: Row; row: Row }
  | { kind: "delete"; relation: StreamRelation; key: Row }
  | { kind: "truncate"; relations: StreamRelation[]; cascade: boolean; restartIdentity: boolean };

/** One committed transaction of the stream, in commit order. */
export interface StreamTransaction {
  xid: number;
  /** LSN of its commit record. */
  commitLsn: string;
  /** LSN just past it: peek up to here again and it is included. */
  endLsn: string;
  commitTime: Date;
  changes: Change[];
}

/** Options of `readChanges`. */
export interface ReadOptions {
  target: RunTarget;
  /** The database holding the slot. */
  conn: Conn;
  slot: string;
  /** Stop at this LSN (default: the WAL position when reading starts). */
  uptoLsn?: string;
}

/** The server's current WAL position (what a replay reads up to). */
export async function currentLsn(target: RunTarget, conn: Conn): Promise<string> {
  const out = await runSql(
    target,
    conn,
    "SELECT 'LSN:' || pg_current_wal_lsn();",
    "reading the WAL position",
  );
  return outLine(out, "LSN:");
}

const ident: Record<string, string> = { default: "d", full: "f", index: "i", nothing: "n" };

/**
 * Turns pgoutput messages into committed transactions. Values stay in PostgreSQL's text form (the
 * library would run pg's type parsers on them; the replay writes them back as literals), and a row
 * image lists only the columns whose value the message carries (an unchanged TOAST value is absent).
 */
export class TransactionDecoder {
  // The plugin's public `parse` (its parser class is not exported); it starts no replication itself.
  private readonly parser = new PgoutputPlugin({ protoVersion: 1, publicationNames: [PUBLICATION] });
  private readonly relations = new Map<Pgoutput.MessageRelation, StreamRelation>();
  private current?: StreamTransaction;

  /** Feeds one pgoutput message; returns the transaction its commit completes. */
  push(data: Buffer): StreamTransaction | undefined {
    const msg = this.parser.parse(data);
    switch (msg.tag) {
      case "begin":
        this.current = {
          xid: msg.xid,
          commitLsn: norm(msg.commitLsn),
          endLsn: "",
          commitTime: new Date(0),
          changes: [],
        };
        return undefined;
      case "relation":
        for (const c of msg.columns) c.parser = (s: string) => s;
        return undefined;
      case "insert":
        this.txn().changes.push({ kind: "insert", relation: this.rel(msg.relation), row: row(msg.new) });
        return undefined;
      case "update": {
        const relation = this.rel(msg.relation);
        const next = row(msg.new);
        const key = msg.key ? row(msg.key) : msg.old ? row(msg.old) : keyOf(relation, next);
        this.txn().changes.push({ kind: "update", relation, key, row: next });
        return undefined;
      }
      case "delete":
        this.txn().changes.push({
          kind: "delete",
          relation: this.rel(msg.relation),
          key: row((msg.key ?? msg.old) as Record<string, unknown>),
        });
        return undefined;
      case "truncate":
        this.txn().changes.push({
          kind: "truncate",
          relations: msg.relations.map((r: Pgoutput.MessageRelation) => this.rel(r)),
          cascade: msg.cascade,
          restartIdentity: msg.restartIdentity,
        });
        return undefined;
      case "commit": {
        const t = this.txn();
        t.endLsn = norm(msg.commitEndLsn);
        t.commitTime = new Date(Number(BigInt(msg.commitTime.toString()) / 1000n));
        this.current = undefined;
        return t;
      }
      default:
        return undefined;
    }
  }

  private txn(): StreamTransaction {
    if (!this.current) throw new Error("pgoutput change outside a transaction");
    return this.current;
  }

  private rel(r: Pgoutput.MessageRelation): StreamRelation {
    let s = this.relations.get(r);
    if (!s) {
      s = {
        schema: r.schema,
        name: r.name,
        replicaIdentity: ident[r.replicaIdentity] ?? "d",
        columns: r.columns.map((c) => ({ name: c.name, key: (c.flags & 1) === 1, typeOid: c.typeOid })),
      };
      this.relations.set(r, s);
    }
    return s;
  }
}

const norm = (lsn: string | null): string => (lsn ? lsnText(lsnValue(lsn)) : "0/0");

/** The columns a tuple carries, as text (undefined: unchanged TOAST or not part of a key image). */
function row(t: Record<string, unknown>): Row {
  const r: Row = {};
  for (const [k, v] of Object.entries(t)) {
    if (v === undefined) continue;
    r[k] = v === null ? null : Buffer.isBuffer(v) ? v.toString() : String(v);
  }
  return r;
}

function keyOf(rel: StreamRelation, r: Row): Row {
  const key: Row = {};
  for (const c of rel.columns) if (c.key && c.name in r) key[c.name] = r[c.name];
  return key;
}

/**
 * Peeks (never consumes) the slot's committed transactions as pgoutput through SQL, so it works
 * wherever psql runs (locally or `docker exec`), decoded by pg-logical-replication's parser. COPY
 * streams the rows, so memory holds one transaction at a time, not the whole stream.
 */
export async function* readChanges(o: ReadOptions): AsyncGenerator<StreamTransaction> {
  const upto = o.uptoLsn ?? (await currentLsn(o.target, o.conn));
  const what = `reading the changes of slot "${o.slot}" on database "${o.conn.database}"`;
  const psql = spawnPg(o.target, "psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"], o.conn);
  const w = watch(psql);
  psql.stdin!.on("error", () => {});
  psql.stdin!.end(
    `COPY (SELECT encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes(${literal(o.slot)}, ` +
      `${literal(upto)}::pg_lsn, NULL, 'proto_version', '1', 'publication_names', ${literal(PUBLICATION)})) TO STDOUT;\n`,
  );
  const decoder = new TransactionDecoder();
  let finished = false;
  try {
    for await (const hex of createInterface({ input: psql.stdout!, crlfDelay: Infinity })) {
      if (!hex) continue;
      const t = decoder.push(Buffer.from(hex, "hex"));
      if (t) yield t;
    }
    finished = true;
  } finally {
    if (!finished && psql.exitCode === null) psql.kill("SIGTERM");
  }
  const code = await w.done;
  if (code !== 0) {
    if (/replication slot ".*" does not exist/.test(w.stderr())) {
      throw new CannotRunError(
        `${what}: the slot is gone (dropped when its confirmation window ended, its WAL grew past the limit, or by ` +
          "hand), so the writes made since the deploy can no longer be replayed: roll back without replaying; " +
          "they stay in the kept live database",
      );
    }
    throw pgFailure(what, w.stderr(), o.conn, o.target);
  }
}
