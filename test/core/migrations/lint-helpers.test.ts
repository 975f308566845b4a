// Issue 22: the helpers at the top of lint.ts, through what a user sees: the PostgreSQL version read from
// a database image, the part of a node-pg-migrate file that is linted, the allow comments. In process.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pgVersionFromImage } from "../../../src/core/migrations/lint";

const DIGEST = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

describe("pgVersionFromImage", () => {
  it("reads the tag's leading major version, whatever the registry, path or digest around it", () => {
    const cases: Array<[string, number | undefined]> = [
      ["postgres:16", 16],
      ["postgres:9", 9],
      ["postgres:99-alpine", 99],
      [`postgres:17@${DIGEST}`, 17],
      ["localhost:5000/postgres:15", 15],
      [`localhost:5000/team/postgres:14.2@${DIGEST}`, 14],
      // A digest is no tag: its hex says nothing about the version (it read as 9 here, then 12).
      [`postgres@${DIGEST}`, undefined],
      [`postgres@sha256:12${DIGEST.slice(9)}`, undefined],
      [`localhost:5000/postgres@${DIGEST}`, undefined],
      // Out of range or not a leading number.
      ["postgres:8.4", undefined],
      ["postgres:100", undefined],
      ["postgres:release-16", undefined],
      ["postgres", undefined],
      ["postgres:", undefined],
    ];
    for (const [image, want] of cases) assert.equal(pgVersionFromImage(image), want, image);
  });
});
