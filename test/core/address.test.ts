import { test } from "node:test";
import assert from "node:assert/strict";
import { portProblem, urlHost, urlProblem } from "../../src/core/address";

const cases: Array<[string, string]> = [
  ["127.0.0.1", "127.0.0.1"],
  ["0.0.0.0", "127.0.0.1"],
  ["10.0.0.5", "10.0.0.5"],
  ["::", "[::1]"],
  ["::1", "[::1]"],
  ["[::1]", "[::1]"],
  ["fd00::5", "[fd00::5]"],
  ["localhost", "localhost"],
];

for (const [bind, host] of cases) {
  test(`urlHost(${bind}) is ${host}, and makes a URL`, () => {
    assert.equal(urlHost(bind), host);
    assert.equal(new URL(`http://${urlHost(bind)}:8080/health`).port, "8080");
  });
}

const problems: Array<[string, string | undefined, string | undefined]> = [
  // [text, portProblem, urlProblem]
  ["postgres://u:p@db:5432/app", undefined, undefined],
  ["postgres://u:p@db/app", undefined, undefined],
  ["postgres://u:p@[::1]:5432/app", undefined, undefined],
  ["postgres://u:p@[::1]/app", undefined, undefined],
  ["postgres://[::1]", undefined, undefined],
  ["postgres://u:p@[::1]:5x/app", "has a port that is not a number", "it has a port that is not a number"],
  [
    "postgres://u:p@db:65536/app",
    "has port 65536, out of range (1-65535)",
    "it has port 65536, out of range (1-65535)",
  ],
  ["postgres://u:p@db:0/app", "has port 0, out of range (1-65535)", undefined],
  [
    "postgres://u:p@ss:w0rd/x@db:99999/app",
    "has port 99999, out of range (1-65535)",
    "it has port 99999, out of range (1-65535)",
  ],
  ["postgres://u:p@db:5a/app", "has a port that is not a number", "it has a port that is not a number"],
  ["host=db password=x", undefined, "it is a libpq key=value string, not a URL"],
  ["db/app", undefined, "it does not start with a scheme such as postgres://"],
];
for (const [text, port, url] of problems) {
  test(`portProblem / urlProblem (${text})`, () => {
    assert.equal(portProblem(text), port);
    assert.equal(urlProblem(text), url);
  });
}
