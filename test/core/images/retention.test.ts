import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { imagesToRemove, listImages, pruneImages, type LocalImage } from "../../../src/core/images/retention";

const img = (ref: string, minutesAgo: number): LocalImage => ({
  ref,
  id: `id-${ref}`,
  created: new Date(Date.UTC(2026, 10, 23, 12, 0) - minutesAgo * 60_000),
});

test("keeps the newest N whatever the input order", () => {
  const images = [
    img("w:c", 10),
    img("w:a", 30),
    img("w:e", 0),
    img("w:b", 20),
    img("w:d", 5),
    img("w:f", 40),
  ];
  assert.deepEqual(
    imagesToRemove(images, 3).map((i) => i.ref),
    ["w:b", "w:a", "w:f"],
  );
  assert.deepEqual(imagesToRemove(images, 6), []);
  assert.deepEqual(imagesToRemove(images, 10), []);
});

test("never removes a protected image (the running or last good release), by ref or id", () => {
  const images = [img("w:1", 50), img("w:2", 40), img("w:3", 30), img("w:4", 20)];
  assert.deepEqual(
    imagesToRemove(images, 1, ["w:1", "id-w:2"]).map((i) => i.ref),
    ["w:3"],
  );
});

test("rejects a keep count below 1", () => {
  assert.throws(() => imagesToRemove([], 0), /`keep` must be a whole number of at least 1/);
});

// Real Docker: tags of a tiny imported image stand in for release images.
const REPO = `safe-deploy-test/retention-${process.pid}`;
const docker = (...args: string[]) => execFileSync("docker", args, { encoding: "utf8" });
let dockerUp = true;
before(async () => {
  try {
    const { ensureDocker } = await import("../../helpers/docker");
    await ensureDocker();
  } catch (e) {
    // CI always has an engine: there a missing one is a failure, not a skip.
    if (process.env.CI) throw e;
    dockerUp = false;
  }
});
after(() => {
  if (!dockerUp) return;
  const refs = docker("image", "ls", REPO, "--format", "{{.Repository}}:{{.Tag}}")
    .split("\n")
    .filter(Boolean);
  if (refs.length) docker("image", "rm", "-f", ...refs);
});

test("pruneImages removes old release images from a real Docker host and keeps the rest", async (t) => {
  if (!dockerUp) return t.skip("no Docker engine");
  for (const tag of ["r1", "r2", "r3", "r4"]) {
    execFileSync("sh", ["-c", `tar -c -T /dev/null | docker import - ${REPO}:${tag}`]);
    await new Promise((r) => setTimeout(r, 1100)); // distinct creation seconds
  }
  assert.equal((await listImages(REPO)).length, 4);
  const removed = await pruneImages(REPO, 2, [`${REPO}:r1`]);
  assert.deepEqual(removed, [`${REPO}:r2`]);
  assert.deepEqual((await listImages(REPO)).map((i) => i.ref).sort(), [
    `${REPO}:r1`,
    `${REPO}:r3`,
    `${REPO}:r4`,
  ]);
});
