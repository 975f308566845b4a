import { test } from "node:test";
import assert from "node:assert/strict";
import { containerVerdict, findCriticalLine, DEFAULT_LOG_PATTERNS } from "../../../src/core/health/container";

test("container verdicts from docker inspect state", () => {
  const cases: [string, Parameters<typeof containerVerdict>, boolean, RegExp][] = [
    ["running, no healthcheck", [{ Running: true, RestartCount: 0 }, 0, true], true, /running/],
    [
      "healthy",
      [{ Running: true, Health: { Status: "healthy" }, RestartCount: 2 }, 2, true],
      true,
      /healthy/,
    ],
    ["starting", [{ Running: true, Health: { Status: "starting" } }, 0, true], false, /health is starting/],
    [
      "unhealthy but not required",
      [{ Running: true, Health: { Status: "unhealthy" } }, 0, false],
      true,
      /unhealthy/,
    ],
    [
      "exited",
      [{ Running: false, Status: "exited", ExitCode: 137 }, 0, true],
      false,
      /exited \(exit code 137\)/,
    ],
    [
      "never started: Docker's reason is shown",
      [
        {
          Running: false,
          Status: "created",
          ExitCode: 127,
          Error: 'exec: "sh -c x": executable file not found',
        },
        0,
        true,
      ],
      false,
      /created \(exit code 127\): exec: "sh -c x": executable file not found/,
    ],
    ["restarting", [{ Running: true, Restarting: true, RestartCount: 0 }, 0, true], false, /restarting/],
    ["restart count rose", [{ Running: true, RestartCount: 3 }, 1, true], false, /restarted 2 time/],
  ];
  for (const [name, args, ok, detail] of cases) {
    const v = containerVerdict(...args);
    assert.equal(v.ok, ok, name);
    assert.match(v.detail ?? "", detail, name);
  }
});

test("critical log lines", () => {
  assert.equal(findCriticalLine("ready\nlistening on 8080\n", DEFAULT_LOG_PATTERNS), null);
  assert.equal(
    findCriticalLine("ok\n  FATAL: password authentication failed\n", DEFAULT_LOG_PATTERNS),
    "FATAL: password authentication failed",
  );
  assert.equal(findCriticalLine("[warn] slow\n[error] boom\n", ["\\[error\\]"]), "[error] boom");
  assert.equal(findCriticalLine("fatalistic poem\n", DEFAULT_LOG_PATTERNS), null);
  assert.equal(findCriticalLine("anything", []), null);
});
