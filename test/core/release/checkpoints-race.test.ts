// Two prunes of one stack's checkpoints at once (issue 22, checkpoints.ts survivor: `rm`'s `{ force:
// true }`): the other prune deletes a checkpoint between this one's `list` and its `rm`. checkpoints.ts
// calls `fs.promises` through its module object, so the test deletes the file right before the `rm`.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { mkdtempSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { CheckpointStore } from "../../../src/core/release/checkpoints";

const root = mkdtempSync(join(tmpdir(), "sd-ckpt-race-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("a checkpoint another prune deleted after this one listed it: the prune goes on and counts it removed", async () => {
  const store = new CheckpointStore(root, "race");
  for (const id of ["r-1", "r-2", "r-3"]) await store.write(id, { version: 3, checkpoint: {} });
  const releases = ["r-1", "r-2", "r-3"].map((id) => ({ id, result: "good" }));
  const real = fs.promises.rm;
  const taken: string[] = [];
  fs.promises.rm = (async (file: string, opts?: fs.RmOptions) => {
    // The concurrent prune wins the race for r-1.
    if (file === store.file("r-1")) {
      unlinkSync(file);
      taken.push(file);
    }
    return real(file, opts);
  }) as typeof fs.promises.rm;
  let removed: string[];
  try {
    removed = await store.prune(releases, 1);
  } finally {
    fs.promises.rm = real;
  }
  assert.deepEqual(taken, [store.file("r-1")], "the race was staged");
  assert.deepEqual(removed, [store.file("r-1"), store.file("r-2")]);
  assert.deepEqual(readdirSync(store.dir), ["r-3.json"]);
});
