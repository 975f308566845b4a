import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  formatPlan,
  planRebuild,
  typeCarries,
  type Column,
  type Table,
} from "../../../src/core/rebuild/plan";

const col = (name: string, type: string, extra: Partial<Column> = {}): Column => ({
  name,
  type,
  notNull: false,
  hasDefault: false,
  generated: false,
  identity: false,
  ...extra,
});
const table = (name: string, ...columns: Column[]): Table => ({ name, columns });

describe("typeCarries", () => {
  const cases: Array<[string, string, boolean]> = [
    ["integer", "integer", true],
    ["integer", "bigint", true],
    ["bigint", "integer", false],
    ["smallint", "numeric", true],
    ["numeric(12,2)", "numeric", true],
    ["numeric(12,2)", "integer", false],
    ["numeric(12,2)", "numeric(14,2)", true],
    ["numeric(12,2)", "numeric(12,3)", false],
    ["numeric(12,2)", "numeric(13,3)", true],
    ["character varying(20)", "character varying(40)", true],
    ["character varying(40)", "character varying(20)", false],
    ["uuid", "text", true],
    ["json", "jsonb", true],
    ["jsonb", "json", false],
    ["timestamp without time zone", "timestamp with time zone", false],
    ["text", "integer", false],
    ["real", "double precision", true],
  ];
  for (const [from, to, ok] of cases)
    it(`${from} -> ${to}: ${ok}`, () => assert.equal(typeCarries(from, to), ok));
});

describe("planRebuild", () => {
  const users = table(
    "public.users",
    col("id", "integer", { notNull: true, hasDefault: true }),
    col("email", "text", { notNull: true }),
    col("legacy", "text"),
  );
  const cases: Array<{
    name: string;
    source: Table[];
    target: Table[];
    rows?: Record<string, number>;
    want: Partial<ReturnType<typeof planRebuild>>;
  }> = [
    {
      name: "same schema: every column copied, nothing else",
      source: [users],
      target: [users],
      want: {
        copy: [{ table: "public.users", columns: ["id", "email", "legacy"] }],
        notCarried: [],
        added: [],
        blockers: [],
      },
    },
    {
      name: "a dropped column is named, a new column with a default is filled",
      source: [users],
      target: [
        table(
          "public.users",
          col("id", "integer", { notNull: true, hasDefault: true }),
          col("email", "text", { notNull: true }),
          col("status", "text", { notNull: true, hasDefault: true }),
        ),
      ],
      want: {
        copy: [{ table: "public.users", columns: ["id", "email"] }],
        notCarried: ["column public.users.legacy (text): not in the new schema"],
        added: ["column public.users.status: new, filled with its default"],
        blockers: [],
      },
    },
    {
      name: "a NOT NULL column without a default and no source column blocks",
      source: [users],
      target: [table("public.users", ...users.columns, col("tenant", "integer", { notNull: true }))],
      want: {
        blockers: [
          "column public.users.tenant (integer) is NOT NULL without a default and the live table has no such column: give it a DEFAULT in the new schema, or make it nullable",
        ],
      },
    },
    {
      name: "a narrowing type blocks and the column is not copied",
      source: [table("public.t", col("n", "bigint"), col("m", "text"))],
      target: [table("public.t", col("n", "integer"), col("m", "text"))],
      want: {
        copy: [{ table: "public.t", columns: ["m"] }],
        blockers: [
          "column public.t.n: bigint does not load into integer: convert it with a migration (USING ...) or keep the type",
        ],
      },
    },
    {
      name: "nullable into NOT NULL is checked against the data",
      source: [table("public.t", col("a", "text"))],
      target: [table("public.t", col("a", "text", { notNull: true }))],
      want: { nullChecks: [{ table: "public.t", column: "a" }], blockers: [] },
    },
    {
      name: "tables only in one side; a target table the schema source filled is kept",
      source: [table("public.old", col("a", "text")), table("public.pgmigrations", col("name", "text"))],
      target: [table("public.fresh", col("a", "text")), table("public.pgmigrations", col("name", "text"))],
      rows: { "public.pgmigrations": 3 },
      want: {
        copy: [],
        notCarried: ["table public.old: not in the new schema"],
        added: ["table public.fresh: new, left empty"],
        keptAsBuilt: [
          "table public.pgmigrations: the schema source filled it (3 rows); the live rows are not copied",
        ],
      },
    },
    {
      name: "generated target columns are never written",
      source: [table("public.t", col("a", "integer"), col("b", "integer"))],
      target: [table("public.t", col("a", "integer"), col("b", "integer", { generated: true }))],
      want: {
        copy: [{ table: "public.t", columns: ["a"] }],
        added: ["column public.t.b: generated in the new schema, computed again"],
      },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const plan = planRebuild(c.source, c.target, c.rows);
      for (const [k, v] of Object.entries(c.want)) assert.deepEqual(plan[k as keyof typeof plan], v, k);
    });

  it("a table whose owner would change blocks (the app could lose access)", () => {
    const plan = planRebuild([{ ...users, owner: "app" }], [{ ...users, owner: "postgres" }]);
    assert.deepEqual(plan.blockers, [
      'table public.users is owned by "app" live but would be owned by "postgres" (the role that built the new schema), so the app may lose access to it: run the rebuild as "app" (its URL in `--database-url`)',
    ]);
    assert.deepEqual(planRebuild([{ ...users, owner: "app" }], [{ ...users, owner: "app" }]).blockers, []);
  });

  it("formatPlan shows what is not carried and what stops it", () => {
    const lines = formatPlan(
      planRebuild(
        [users],
        [table("public.users", col("id", "integer"), col("x", "text", { notNull: true }))],
      ),
    );
    assert.ok(lines.includes("NOT CARRIED OVER (kept only in the old database):"));
    assert.ok(lines.includes("  column public.users.email (text): not in the new schema"));
    assert.ok(lines.includes("CANNOT RUN:"));
  });
});
