// Issue 22 (s11): survivors of the splitter's first mutation run. A DO body is cut at `;` by
// splitStatements, so a wrong cut merges a DROP into a piece that does not parse and hides it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lintSql, plpgsqlStatements, splitStatements } from "../../../src/core/migrations/lint";

describe("splitStatements: characters that only look like a comment or a dollar quote", () => {
  it("a minus, a star, $1 and comments that close early or late cut where PostgreSQL does", () => {
    const cases: Array<[string, Array<{ text: string; at: number }>]> = [
      [
        "1-1; b",
        [
          { text: "1-1", at: 0 },
          { text: " b", at: 4 },
        ],
      ],
      [
        "2*3; b",
        [
          { text: "2*3", at: 0 },
          { text: " b", at: 4 },
        ],
      ],
      [
        "/*/ a; */; b",
        [
          { text: "/*/ a; */", at: 0 },
          { text: " b", at: 10 },
        ],
      ],
      [
        "/* a */* b; c */; d",
        [
          { text: "/* a */* b", at: 0 },
          { text: " c */", at: 11 },
          { text: " d", at: 17 },
        ],
      ],
      [
        "x $1; $$ a $$",
        [
          { text: "x $1", at: 0 },
          { text: " $$ a $$", at: 5 },
        ],
      ],
    ];
    for (const [text, want] of cases) assert.deepEqual(splitStatements(text), want, text);
  });
});

describe("plpgsqlStatements and DO blocks", () => {
  it("EXCEPTION and WHEN on separate lines still open the handler: its DROP is read", () => {
    assert.deepEqual(plpgsqlStatements("BEGIN\nEXCEPTION\n    WHEN others THEN DROP TABLE z; END"), [
      { sql: "DROP TABLE z", at: 37 },
      { sql: "END", at: 51 },
    ]);
  });

  it("EXECUTE: a $$ literal without USING is read; a dollar quote after other text is dynamic; EXECUTE FUNCTION in a trigger is SQL", () => {
    assert.deepEqual(plpgsqlStatements("EXECUTE $$DROP TABLE a$$"), [{ sql: "DROP TABLE a", at: 0 }]);
    assert.deepEqual(plpgsqlStatements("EXECUTE 'x' || $f$DROP TABLE a$f$"), [
      { sql: "EXECUTE 'x' || $f$DROP TABLE a$f$", at: 0, dynamic: true },
    ]);
    const trigger = "CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW EXECUTE FUNCTION f()";
    assert.deepEqual(plpgsqlStatements(trigger), [{ sql: trigger, at: 0 }]);
  });

  it("LANGUAGE after the body: the body is still the one read", async () => {
    assert.deepEqual(
      (
        await lintSql("DO $$ BEGIN DROP TABLE a; END $$ LANGUAGE plpgsql;", "x.sql", {
          timeoutsSetByRunner: true,
        })
      ).map((f) => `${f.line} ${f.rule}: ${f.message}`),
      ["1 drop-table: in DO block: DROP TABLE a"],
    );
  });

  it("-- Up Migration inside a string is not the marker: the file is not taken as wrapped", async () => {
    assert.deepEqual(
      await lintSql("SELECT 'x -- Up Migration';\nBEGIN;\nCOMMIT;", "x.sql", { timeoutsSetByRunner: true }),
      [],
    );
  });
});
