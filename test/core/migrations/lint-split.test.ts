// Issue 22: the statement splitter and the PL/pgSQL reader at their edges (unterminated quotes and
// comments, dollar tags, offsets, every block keyword): a wrong cut hides a statement from every rule.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lintSql, plpgsqlStatements, splitStatements } from "../../../src/core/migrations/lint";

describe("splitStatements", () => {
  it("cuts at each ; with the piece's offset; an unterminated quote, comment or dollar quote runs to the end", () => {
    const cases: Array<[string, Array<{ text: string; at: number }>]> = [
      [
        "A; B",
        [
          { text: "A", at: 0 },
          { text: " B", at: 2 },
        ],
      ],
      [
        "A;  ;",
        [
          { text: "A", at: 0 },
          { text: "  ", at: 2 },
        ],
      ],
      ["A;  ", [{ text: "A", at: 0 }]],
      ["'unterminated; x", [{ text: "'unterminated; x", at: 0 }]],
      [
        '"odd;name"; y',
        [
          { text: '"odd;name"', at: 0 },
          { text: " y", at: 11 },
        ],
      ],
      ["/* open; ", [{ text: "/* open; ", at: 0 }]],
      [
        "/**/;b",
        [
          { text: "/**/", at: 0 },
          { text: "b", at: 5 },
        ],
      ],
      ["-- c;", [{ text: "-- c;", at: 0 }]],
      [
        "a -- c;\n;b",
        [
          { text: "a -- c;\n", at: 0 },
          { text: "b", at: 9 },
        ],
      ],
      [
        "x $$ a; $$; y",
        [
          { text: "x $$ a; $$", at: 0 },
          { text: " y", at: 11 },
        ],
      ],
      [
        "x $1; y",
        [
          { text: "x $1", at: 0 },
          { text: " y", at: 5 },
        ],
      ],
      [
        "x $a_B$ ; $a_B$; y",
        [
          { text: "x $a_B$ ; $a_B$", at: 0 },
          { text: " y", at: 16 },
        ],
      ],
      ["x $q$ ; $r$; y", [{ text: "x $q$ ; $r$; y", at: 0 }]],
      ["x $q$ unterminated; y", [{ text: "x $q$ unterminated; y", at: 0 }]],
      [
        "- 1; /x/; $",
        [
          { text: "- 1", at: 0 },
          { text: " /x/", at: 4 },
          { text: " $", at: 9 },
        ],
      ],
    ];
    for (const [text, want] of cases) assert.deepEqual(splitStatements(text), want, text);
  });
});

describe("plpgsqlStatements", () => {
  it("strips labels, DECLARE, BEGIN, loops and CASE ahead of a statement, keeping true offsets", () => {
    const body = "<<outer>> DECLARE BEGIN LOOP FOR r IN SELECT 1 LOOP DELETE FROM t; END LOOP; END LOOP; END";
    const got = plpgsqlStatements(body);
    assert.deepEqual(got, [
      { sql: "DELETE FROM t", at: 52 },
      { sql: "END LOOP", at: 67 },
      { sql: "END LOOP", at: 77 },
      { sql: "END", at: 87 },
    ]);
    for (const s of got) assert.equal(body.slice(s.at, s.at + s.sql.length), s.sql);
  });

  it("every branch keyword, comments between them, and EXECUTE with a dollar-quoted literal and USING", () => {
    const a =
      "BEGIN CASE x WHEN 1 THEN UPDATE t SET a = 1; ELSE NULL; END CASE; EXECUTE $e$DROP TABLE c$e$ USING 1; EXECUTE format('x'); END";
    assert.deepEqual(plpgsqlStatements(a), [
      { sql: "UPDATE t SET a = 1", at: 25 },
      { sql: "NULL", at: 50 },
      { sql: "END CASE", at: 56 },
      { sql: "DROP TABLE c", at: 66 },
      { sql: "EXECUTE format('x')", at: 102, dynamic: true },
      { sql: "END", at: 123 },
    ]);
    const b =
      "BEGIN EXCEPTION WHEN others THEN DROP TABLE z; ELSIF a THEN x; ELSEIF b THEN y; WHILE c LOOP z; FOREACH q IN ARRAY w LOOP e; /* c */ -- d\n f; END";
    assert.deepEqual(plpgsqlStatements(b), [
      { sql: "DROP TABLE z", at: 33 },
      { sql: "x", at: 60 },
      { sql: "y", at: 77 },
      { sql: "z", at: 93 },
      { sql: "e", at: 122 },
      { sql: "f", at: 139 },
      { sql: "END", at: 142 },
    ]);
  });

  it("EXECUTE: quotes unescaped, USING allowed, anything after the literal makes it dynamic; blank pieces skipped", () => {
    assert.deepEqual(plpgsqlStatements("execute 'ALTER TABLE ''a'' ADD b int' USING x;  ; BEGIN ;"), [
      { sql: "ALTER TABLE 'a' ADD b int", at: 0 },
    ]);
    assert.deepEqual(plpgsqlStatements("EXECUTE 'DROP TABLE a' || 'b'"), [
      { sql: "EXECUTE 'DROP TABLE a' || 'b'", at: 0, dynamic: true },
    ]);
    assert.deepEqual(plpgsqlStatements("EXECUTE $$DROP TABLE a$$ || x"), [
      { sql: "EXECUTE $$DROP TABLE a$$ || x", at: 0, dynamic: true },
    ]);
    assert.deepEqual(plpgsqlStatements("EXECUTE $a$DROP TABLE a$b$"), [
      { sql: "EXECUTE $a$DROP TABLE a$b$", at: 0, dynamic: true },
    ]);
    assert.deepEqual(plpgsqlStatements("EXECUTED_AT := now()"), [{ sql: "EXECUTED_AT := now()", at: 0 }]);
  });

  it("EXECUTE '...' using x: USING in any case, so the literal is read and checked (it was left as dynamic SQL)", async () => {
    assert.deepEqual(plpgsqlStatements("execute 'DROP TABLE users' using 1"), [
      { sql: "DROP TABLE users", at: 0 },
    ]);
    assert.deepEqual(plpgsqlStatements("EXECUTE $x$DROP TABLE users$x$ Using 1"), [
      { sql: "DROP TABLE users", at: 0 },
    ]);
    const sql =
      "SET lock_timeout = '5s'; SET statement_timeout = '1min';\nDO $$ BEGIN execute 'DROP TABLE users' using 1; END $$;";
    assert.deepEqual(
      (await lintSql(sql, "x.sql")).map((f) => `${f.rule}@${f.line}`),
      ["drop-table@2"],
    );
  });
});
