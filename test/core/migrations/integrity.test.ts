// Issue 22: the row-loss verdict at its edges, where a planted bug survived the suite: a critical table
// the migrations drop, and a loss of exactly the limit.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  formatCountChanges,
  qualify,
  rowLosses,
  unknownTables,
  unknownTablesMessage,
  type RowCounts,
} from "../../../src/core/migrations/integrity";

describe("rowLosses", () => {
  it("a critical table that vanished is a 100% loss, refused under any limit below 100", () => {
    const before = { "public.orders": 50, "public.users": 10 };
    const after = { "public.users": 10 };
    assert.deepEqual(rowLosses(before, after, ["orders"]), [
      { table: "public.orders", before: 50, after: undefined, lossPercent: 100 },
    ]);
    assert.equal(rowLosses(before, after, ["orders"], 99.9).length, 1);
    assert.deepEqual(rowLosses(before, after, ["orders"], 100), [], "a limit of 100% allows anything");
  });

  it("the limit is inclusive: a loss of exactly the limit passes, just over it fails", () => {
    const before = { "public.orders": 100 };
    const cases: Array<[after: number, limit: number | undefined, refused: boolean]> = [
      [100, undefined, false],
      [99, undefined, true], // 1% against the default 0%
      [99, 0, true],
      [99, 1, false],
      [98, 1, true],
      [80, 20, false],
      [79, 20, true],
      [120, undefined, false], // growth is no loss
    ];
    for (const [a, limit, refused] of cases) {
      const losses = rowLosses(before, { "public.orders": a }, ["public.orders"], limit);
      assert.equal(losses.length, refused ? 1 : 0, `100 -> ${a} with limit ${limit ?? "default"}`);
      if (refused) assert.equal(losses[0].lossPercent, 100 - a);
    }
    // One row of 1000 is 0.1%: still refused by the default.
    assert.deepEqual(rowLosses({ "public.t": 1000 }, { "public.t": 999 }, ["t"]), [
      { table: "public.t", before: 1000, after: 999, lossPercent: 0.1 },
    ]);
  });

  it("tables empty or absent before have nothing to lose; other tables are not looked at", () => {
    assert.deepEqual(rowLosses({ "public.a": 0 }, {}, ["a", "b"]), []);
    assert.deepEqual(rowLosses({ "public.a": 5, "public.x": 9 }, { "public.a": 5 }, ["a"]), []);
    assert.deepEqual(
      rowLosses({ "s.a": 4, "public.a": 4 }, { "s.a": 2, "public.a": 4 }, ["s.a", "a"]).map((l) => l.table),
      ["s.a"],
    );
  });

  it("qualify, unknownTables and formatCountChanges", () => {
    assert.equal(qualify("users"), "public.users");
    assert.equal(qualify("app.users"), "app.users");
    assert.deepEqual(unknownTables({ "public.a": 1 }, { "public.b": 1 }, ["a", "b", "c"]), ["public.c"]);
    assert.deepEqual(
      formatCountChanges(
        { "public.a": 5, "public.b": 3, "public.d": 1 },
        { "public.a": 2, "public.c": 4, "public.d": 1 },
      ),
      ["public.a: 5 -> 2 (-3)", "public.b: dropped (had 3 rows)", "public.c: new table, 4 rows"],
    );
    assert.deepEqual(formatCountChanges({ "public.a": 1 }, { "public.a": 3 }), ["public.a: 1 -> 3 (+2)"]);
    // Sorted by name whatever order the counts came in.
    assert.deepEqual(formatCountChanges({ "public.z": 1, "public.b": 2 }, { "public.m": 1 }), [
      "public.b: dropped (had 2 rows)",
      "public.m: new table, 1 rows",
      "public.z: dropped (had 1 rows)",
    ]);
  });
});

describe("unknownTablesMessage", () => {
  const FIX =
    "fix the name in --critical-tables / integrity.criticalTables (schema.table, spelt as in the database)";

  it("one misspelt table: singular, the tables there are, and the key to fix", () => {
    assert.equal(
      unknownTablesMessage(["public.order"], { "public.orders": 3, "public.users": 1 }),
      `critical table public.order does not exist, before or after the migrations, so its rows were not checked (tables there are: public.orders, public.users); ${FIX}`,
    );
  });

  it("two misspelt tables: plural, both named", () => {
    assert.equal(
      unknownTablesMessage(["public.Users", "app.order"], { "public.users": 1 }),
      `critical tables public.Users, app.order do not exist, before or after the migrations, so its rows were not checked (tables there are: public.users); ${FIX}`,
    );
  });

  it("the migration tools' own tables are not offered as candidates, only in public and only by exact name", () => {
    const after = {
      "public.pgmigrations": 4,
      "public.alembic_version": 1,
      "public._prisma_migrations": 2,
      "app.pgmigrations": 1,
      "public.pgmigrations_old": 1,
      "xpublic.alembic_version": 1,
    };
    assert.equal(
      unknownTablesMessage(["public.t"], after),
      `critical table public.t does not exist, before or after the migrations, so its rows were not checked (tables there are: app.pgmigrations, public.pgmigrations_old, xpublic.alembic_version); ${FIX}`,
    );
  });

  it("an empty database, or one with only the migrations table, says it has no tables", () => {
    for (const after of [{}, { "public.pgmigrations": 1 }] as RowCounts[]) {
      assert.equal(
        unknownTablesMessage(["public.t"], after),
        `critical table public.t does not exist, before or after the migrations, so its rows were not checked (the database has no tables); ${FIX}`,
      );
    }
  });

  it("lists the first 10 tables, then an ellipsis; exactly 10 has none", () => {
    const counts = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`public.t${i}`, i]));
    const ten = Array.from({ length: 10 }, (_, i) => `public.t${i}`).join(", ");
    assert.ok(unknownTablesMessage(["public.x"], counts(11)).includes(`(tables there are: ${ten}, ...);`));
    assert.ok(unknownTablesMessage(["public.x"], counts(10)).includes(`(tables there are: ${ten});`));
  });
});
