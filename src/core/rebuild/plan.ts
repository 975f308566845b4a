/** One column as the catalog describes it. */
export interface Column {
  name: string;
  /** `format_type()` text, e.g. `integer`, `character varying(20)`, `numeric(12,2)`. */
  type: string;
  notNull: boolean;
  hasDefault: boolean;
  /** A generated (computed) column: never written, PostgreSQL fills it. */
  generated: boolean;
  identity: boolean;
}

/** One ordinary or partitioned table (partitions are reached through their parent). */
export interface Table {
  /** `schema.name`. */
  name: string;
  columns: Column[];
  /** The role that owns it (the app's grants and access follow it). */
  owner?: string;
}

/** How one table's rows are carried: the columns copied, in the target's order. */
export interface TableCopy {
  table: string;
  columns: string[];
}

/** What a rebuild would do, decided from the two catalogs before anything is changed. */
export interface RebuildPlan {
  copy: TableCopy[];
  /** Data left behind (only in the old database, kept after the swap): dropped tables and columns. */
  notCarried: string[];
  /** Target tables and columns the source has not, and how they are filled. */
  added: string[];
  /** Target tables the schema source already filled (a migration tool's own table, seed rows): left as they are. */
  keptAsBuilt: string[];
  /** Why the rebuild cannot run; non-empty means it is refused before anything happens. */
  blockers: string[];
  /** Source columns that may hold NULLs going into NOT NULL target columns: counted before the copy. */
  nullChecks: Array<{ table: string; column: string }>;
}

const INT_RANK: Record<string, number> = { smallint: 1, integer: 2, bigint: 3, numeric: 4 };
const varcharLen = (t: string) => /^character varying\((\d+)\)$/.exec(t)?.[1];

/**
 * Whether values of type `from` always load into a column of type `to` (COPY moves them as text):
 * the same type, anything into unbounded text, wider integers, a longer varchar, json into jsonb.
 * Anything else (a narrowing, a change of meaning like timestamp into timestamptz) needs a migration
 * that converts it on purpose.
 */
export function typeCarries(from: string, to: string): boolean {
  if (from === to) return true;
  if (to === "text" || to === "character varying") return true;
  const base = (t: string) => (t.startsWith("numeric") ? "numeric" : t);
  const num = (t: string) => /^numeric\((\d+),(\d+)\)$/.exec(t);
  const [nf, nt] = [num(from), num(to)];
  if (nf && nt)
    return Number(nt[2]) >= Number(nf[2]) && Number(nt[1]) - Number(nt[2]) >= Number(nf[1]) - Number(nf[2]);
  if (INT_RANK[base(from)] && INT_RANK[to]) {
    return from.startsWith("numeric") ? to === "numeric" : INT_RANK[base(from)] <= INT_RANK[to];
  }
  if (from === "real" && to === "double precision") return true;
  const a = varcharLen(from);
  const b = varcharLen(to);
  if (a && b) return Number(a) <= Number(b);
  if (from === "json" && to === "jsonb") return true;
  return false;
}

/**
 * Matches `source` (the live database) with `target` (the new schema) table by table and column by
 * column. `targetRows` holds the row count of every target table that is not empty after the schema
 * step: those are left as built, never copied into.
 */
export function planRebuild(
  source: Table[],
  target: Table[],
  targetRows: Record<string, number> = {},
): RebuildPlan {
  const plan: RebuildPlan = {
    copy: [],
    notCarried: [],
    added: [],
    keptAsBuilt: [],
    blockers: [],
    nullChecks: [],
  };
  const targets = new Map(target.map((t) => [t.name, t]));
  const sources = new Map(source.map((t) => [t.name, t]));
  for (const s of source) {
    const t = targets.get(s.name);
    if (!t) {
      plan.notCarried.push(`table ${s.name}: not in the new schema`);
      continue;
    }
    if (targetRows[t.name]) {
      plan.keptAsBuilt.push(
        `table ${t.name}: the schema source filled it (${targetRows[t.name]} rows); the live rows are not copied`,
      );
      continue;
    }
    if (s.owner && t.owner && s.owner !== t.owner)
      plan.blockers.push(
        `table ${t.name} is owned by "${s.owner}" live but would be owned by "${t.owner}" (the role that built the new schema), so the app may lose access to it: run the rebuild as "${s.owner}" (its URL in \`--database-url\`)`,
      );
    const cols = new Map(s.columns.map((c) => [c.name, c]));
    const copied: string[] = [];
    for (const tc of t.columns) {
      const sc = cols.get(tc.name);
      if (tc.generated) {
        if (sc) plan.added.push(`column ${t.name}.${tc.name}: generated in the new schema, computed again`);
        else plan.added.push(`column ${t.name}.${tc.name}: new, generated`);
        continue;
      }
      if (!sc) {
        if (tc.hasDefault || tc.identity)
          plan.added.push(`column ${t.name}.${tc.name}: new, filled with its default`);
        else if (!tc.notNull) plan.added.push(`column ${t.name}.${tc.name}: new, left NULL`);
        else
          plan.blockers.push(
            `column ${t.name}.${tc.name} (${tc.type}) is NOT NULL without a default and the live table has no such column: give it a DEFAULT in the new schema, or make it nullable`,
          );
        continue;
      }
      if (!typeCarries(sc.type, tc.type)) {
        plan.blockers.push(
          `column ${t.name}.${tc.name}: ${sc.type} does not load into ${tc.type}: convert it with a migration (USING ...) or keep the type`,
        );
        continue;
      }
      if (tc.notNull && !sc.notNull) plan.nullChecks.push({ table: t.name, column: tc.name });
      copied.push(tc.name);
    }
    for (const sc of s.columns) {
      if (!t.columns.some((c) => c.name === sc.name))
        plan.notCarried.push(`column ${s.name}.${sc.name} (${sc.type}): not in the new schema`);
    }
    if (copied.length) plan.copy.push({ table: t.name, columns: copied });
    else plan.notCarried.push(`table ${s.name}: no column in common with the new schema`);
  }
  for (const t of target) {
    if (sources.has(t.name)) continue;
    if (targetRows[t.name])
      plan.keptAsBuilt.push(`table ${t.name}: new, filled by the schema source (${targetRows[t.name]} rows)`);
    else plan.added.push(`table ${t.name}: new, left empty`);
  }
  return plan;
}

/** The plan as lines for a person: what is copied, what is not carried, what is new, what stops it. */
export function formatPlan(p: RebuildPlan): string[] {
  const section = (title: string, lines: string[]) =>
    lines.length ? [`${title}:`, ...lines.map((l) => `  ${l}`)] : [];
  return [
    ...section(
      "copied",
      p.copy.map((c) => `table ${c.table} (${c.columns.join(", ")})`),
    ),
    ...section("NOT CARRIED OVER (kept only in the old database)", p.notCarried),
    ...section("new in the target", p.added),
    ...section("left as the schema source built them", p.keptAsBuilt),
    ...section("CANNOT RUN", p.blockers),
  ];
}
