import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  dockerInfo,
  requireClassicStore,
  usesContainerdStore,
  type DockerInfo,
} from "../../../src/core/images/resolve";

// Issue 14, item 12: the Docker provider's build does not work with the containerd image store.
// The fixture is `docker info --format '{{json .}}'` of Docker 27 with "containerd-snapshotter": true.
const containerd = JSON.parse(
  readFileSync(join(__dirname, "fixtures/docker-info-containerd.json"), "utf8"),
) as DockerInfo;

test("the containerd image store is detected, the classic stores are not", () => {
  const cases: Array<[DockerInfo, boolean]> = [
    [containerd, true],
    [{ Driver: "overlay2", DriverStatus: [["Backing Filesystem", "extfs"]] }, false],
    [{ Driver: "btrfs", DriverStatus: [["Btrfs", ""]] }, false],
    [{ Driver: "overlayfs", DriverStatus: null }, true],
    [{ Driver: "vfs", DriverStatus: [] }, false],
  ];
  for (const [info, want] of cases) assert.equal(usesContainerdStore(info), want, JSON.stringify(info));
});

test("app.build on a containerd-store engine fails with the store named and both fixes", () => {
  assert.throws(
    () => requireClassicStore(containerd, "ssh://deploy@staging-1"),
    (e: Error) =>
      e.name === "ConfigError" &&
      /`app.build`.*ssh:\/\/deploy@staging-1.*containerd image store/.test(e.message) &&
      /containerd-snapshotter": false/.test(e.message) &&
      /`app.image`/.test(e.message),
  );
});

test("the real engine here (classic store) passes the check", () => {
  const info = dockerInfo();
  assert.ok(info.Driver, "docker info answered");
  assert.equal(usesContainerdStore(info), false);
  requireClassicStore(info);
});
