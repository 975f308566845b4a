// Issue 15 D: every form a password can take is masked, wherever the text goes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { redact, urlSecrets } from "../../../src/core/log/redact";
import { parseDatabaseUrl } from "../../../src/core/backup/runner";
import { secretValueProblems } from "../../../src/config/secrets";
import { notifyAll, type Notifier, type NotificationEvent } from "../../../src/core/notify";

// [text, what must never appear, what the redacted text is]
const cases: Array<[string, string, string]> = [
  [
    "pg_dump: postgres://postgres:p@ss:w0rd/Zx#9@db.example.com:5432/app failed",
    "w0rd",
    "pg_dump: postgres://postgres:***@db.example.com:5432/app failed",
  ],
  ["postgres://u:a/b@c@h/db", "a/b", "postgres://u:***@h/db"],
  ["postgres://u:pa:ss#x@h:5432/db?sslmode=require", "pa:ss", "postgres://u:***@h:5432/db?sslmode=require"],
  ["postgres://me@corp.com:s3cret@h/db", "s3cret", "postgres://me@corp.com:***@h/db"],
  ["(postgres://u:s3cret@h)", "s3cret", "(postgres://u:***@h)"],
  [
    "a postgres://u:one1@h/a and postgres://v:two2@h/b",
    "one1",
    "a postgres://u:***@h/a and postgres://v:***@h/b",
  ],
  ["host=db port=5432 password='s3 cr3t' dbname=app", "cr3t", "host=db port=5432 password=*** dbname=app"],
  ["host=db password=s3cr'3t dbname=app", "3t", "host=db password=*** dbname=app"],
  ["host=db password = 'it\\'s s3' user=x", "s3", "host=db password = *** user=x"],
  ['{"password": "hunter 22", "user": "x"}', "hunter", '{"password": ***, "user": "x"}'],
  ["PGPASSWORD=hunter22 pg_dump", "hunter22", "PGPASSWORD=*** pg_dump"],
  ["env PGPASSWORD='a b c' psql", "a b c", "env PGPASSWORD=*** psql"],
  ["http://127.0.0.1:8080/health?token=abcdef", "abcdef", "http://127.0.0.1:8080/health?token=***"],
  ["http://127.0.0.1:8080/health", "", "http://127.0.0.1:8080/health"],
];

for (const [text, secret, want] of cases) {
  test(`redact: ${text}`, () => {
    const got = redact(text);
    assert.equal(got, want);
    if (secret) assert.ok(!got.includes(secret), got);
  });
}

test("urlSecrets takes the whole password of a URL with a raw @ and /", () => {
  assert.deepEqual(urlSecrets("postgres://postgres:p@ss:w0rd/Zx#9@db:5432/app").slice(1), ["p@ss:w0rd/Zx#9"]);
});

const notUrls: Array<[string, RegExp, string]> = [
  [
    "host=db port=5432 user=app password='s3 cr3t' dbname=app",
    /is a libpq key=value string, not a URL/,
    "cr3t",
  ],
  [
    "postgres://app:s3cr3t@db:99999/app",
    /DATABASE_URL has port 99999, out of range \(1-65535\): use/,
    "s3cr3t",
  ],
  ["postgres://app:s3cr3t@db:54x2/app", /has a port that is not a number/, "s3cr3t"],
  ["postgres://app:s3#cr3t@db/app", /is not a URL: a space, or a raw/, "cr3t"],
];
for (const [url, why, secret] of notUrls) {
  test(`parseDatabaseUrl(${url.slice(0, 30)}...) says why, without the password`, () => {
    assert.throws(
      () => parseDatabaseUrl(url),
      (e: Error) => {
        assert.match(e.message, why);
        assert.ok(!e.message.includes(secret), e.message);
        return true;
      },
    );
  });
}

test("a notification quoting such an error carries no password", async () => {
  const sent: NotificationEvent[] = [];
  const n: Notifier = { name: "rec", secrets: [], send: async (e) => void sent.push(e) };
  await notifyAll([n], {
    type: "ERROR",
    stack: "production",
    time: new Date(0),
    message: "backup failed: postgres://postgres:p@ss:w0rd/Zx#9@db/app refused",
    details: { conn: "host=db password='a b' dbname=app", env: "PGPASSWORD=zz9zz9" },
  });
  const text = JSON.stringify(sent);
  for (const s of ["w0rd", "a b", "zz9zz9"]) assert.ok(!text.includes(s), text);
});

test("a stack secret databaseUrl with a port out of range says so, without the password", () => {
  const [p] = secretValueProblems({ databaseUrl: "postgres://app:s3cr3t@db:70000/app" });
  assert.match(p, /^databaseUrl: has port 70000, out of range \(1-65535\); set it again/);
  assert.ok(!p.includes("s3cr3t"));
});

// Issue 22: the edges the mutation run found untested.
test("maskLiterals: secrets of 4+ characters, longest first so an overlap leaves no tail", async () => {
  const { maskLiterals } = await import("../../../src/core/log/redact");
  assert.equal(maskLiterals("pin abc, code abcd", ["abc", "abcd"]), "pin abc, code ***");
  assert.equal(maskLiterals("token abcdef and abcd", ["abcd", "abcdef"]), "token *** and ***");
  assert.equal(maskLiterals("a-b-a-b", ["a-b-"]), "***a-b");
  assert.equal(maskLiterals("nothing", []), "nothing");
});

test("urlSecrets: raw and decoded password; a URL without one, or badly encoded, as it is", () => {
  assert.deepEqual(urlSecrets("postgres://u:p%40ss%2Fw@h/db"), [
    "postgres://u:p%40ss%2Fw@h/db",
    "p%40ss%2Fw",
    "p@ss/w",
  ]);
  assert.deepEqual(urlSecrets("postgres://u:plain@h/db"), ["postgres://u:plain@h/db", "plain"]);
  assert.deepEqual(urlSecrets("POSTGRESQL://u:Up@h/db"), ["POSTGRESQL://u:Up@h/db", "Up"]);
  assert.deepEqual(urlSecrets("postgres://u:100%@h/db"), ["postgres://u:100%@h/db", "100%"]);
  assert.deepEqual(urlSecrets("postgres://u@h/db"), ["postgres://u@h/db"]);
  assert.deepEqual(urlSecrets("x postgres://u:p@h/db"), ["x postgres://u:p@h/db"], "only a URL at the start");
});

const more: Array<[string, string]> = [
  ["POSTGRESQL+psycopg2://u:Pw9x@h/db", "POSTGRESQL+psycopg2://u:***@h/db"],
  ["redis://:onlypw@cache:6379", "redis://:***@cache:6379"],
  ["see https://h/x?api_key=K1&b=2;sig=S2#f", "see https://h/x?api_key=***&b=2;sig=***#f"],
  [
    "/h?Secret=v1&passwd=v2&pwd=v3&auth=v4&credentials=v5&keys=v6",
    "/h?Secret=***&passwd=***&pwd=***&auth=***&credentials=***&keys=***",
  ],
  ['"/h?session=x&x_token=abc" <b>', '"/h?session=x&x_token=***" <b>'],
  ["/h?token=abc<br>", "/h?token=***<br>"],
  // A quoted value (seen by the mutation run, issue 22): the quote stays, the value goes.
  ['/h?x_token="q"&b=1', '/h?x_token="***"&b=1'],
  ["/h?sig='S1'", "/h?sig='***'"],
  ["/h?monkey=banana", "/h?monkey=***"],
  ["/hi?keyboard=qwerty", "/hi?keyboard=***"],
  ['conn PASSWORD="a b" x', "conn PASSWORD=*** x"],
  ['password  =  "q\\"x" next', "password  =  *** next"],
  ["mypassword=abc", "mypassword=abc"],
  ['{"PGPASSWORD" : "s3", "x": 1}', '{"PGPASSWORD" : ***, "x": 1}'],
  ['{"password":"a\\"b"}', '{"password":***}'],
];
for (const [text, want] of more) test(`redact: ${text}`, () => assert.equal(redact(text), want));
