import { test } from "node:test";
import assert from "node:assert/strict";
import { urlHost } from "../../src/core/address";

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
