// The checkpoint archive (issue 14 part 3, issue 22): each mutant here is a plaintext secret archived
// and synced to the bucket, the last good release's checkpoint pruned, or a message that sends the
// person the wrong way.
import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  chmodSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  CHECKPOINTS_KEPT,
  CheckpointStore,
  SECRET_SIG,
  SECRET_SIG_VALUE,
  checkpointsToPrune,
  plaintextSecretPaths,
  summarizeCheckpoint,
} from "../../../src/core/release/checkpoints";
import { CannotRunError, CheckFailedError, ConfigError } from "../../../src/core/errors";

const root = mkdtempSync(join(tmpdir(), "sd-checkpoints-"));
after(() => rmSync(root, { recursive: true, force: true }));

const plain = (v: string) => ({ [SECRET_SIG]: SECRET_SIG_VALUE, plaintext: JSON.stringify(v) });
const cipher = () => ({ [SECRET_SIG]: SECRET_SIG_VALUE, ciphertext: "v1:abc" });
const state = (resources: unknown[], extra: object = {}) => ({
  version: 3,
  deployment: { secrets_providers: { type: "passphrase" }, resources, ...extra },
});

test("Pulumi's secret signature (apitype.SecretSig)", () => {
  assert.equal(SECRET_SIG, "4dabf18193072939515e22adb298388d");
  assert.equal(SECRET_SIG_VALUE, "1b47061264138c4ac30d75fd1eb44270");
  assert.equal(CHECKPOINTS_KEPT, 10);
});

test("plaintextSecretPaths: every plaintext secret by path, in objects and arrays; ciphertext is fine", () => {
  const s = state([
    { type: "a", outputs: { url: plain("postgres://u:p@h/db"), key: cipher() } },
    { type: "b", inputs: { list: [1, plain("x"), { deep: plain("y") }] } },
  ]);
  assert.deepEqual(plaintextSecretPaths(s), [
    "$.deployment.resources[0].outputs.url",
    "$.deployment.resources[1].inputs.list[1]",
    "$.deployment.resources[1].inputs.list[2].deep",
  ]);
  assert.deepEqual(plaintextSecretPaths({ [SECRET_SIG]: "other", plaintext: "x" }), []);
  assert.deepEqual(
    plaintextSecretPaths({ [SECRET_SIG]: SECRET_SIG_VALUE, ciphertext: "c", inner: plain("x") }),
    [],
  );
  for (const v of [null, undefined, "s", 3, true]) assert.deepEqual(plaintextSecretPaths(v), []);
});

test("summarizeCheckpoint: counts per type, pending operations, provider, secrets by kind", () => {
  const s = state(
    [
      { type: "docker:index/container:Container", outputs: { k: cipher(), l: [cipher()] } },
      { type: "docker:index/container:Container", outputs: { p: plain("x") } },
      { type: "command:local:Command" },
      {},
    ],
    { pending_operations: [{}, {}] },
  );
  assert.deepEqual(summarizeCheckpoint(s), {
    version: 3,
    resources: 4,
    types: { "docker:index/container:Container": 2, "command:local:Command": 1, "?": 1 },
    pendingOperations: 2,
    secretsProvider: "passphrase",
    encryptedSecrets: 2,
    plaintextSecrets: 1,
  });
  assert.deepEqual(summarizeCheckpoint(undefined), {
    version: undefined,
    resources: 0,
    types: {},
    pendingOperations: 0,
    secretsProvider: undefined,
    encryptedSecrets: 0,
    plaintextSecrets: 0,
  });
});

test("checkpointsToPrune: the newest `keep` releases and the last good one stay; unknown releases go", () => {
  const releases = [
    { id: "r-1", result: "good" },
    { id: "r-4", result: "bad" },
    { id: "r-2", result: "good" },
    { id: "r-3", result: "rolled-back" },
  ];
  const cps = ["r-0", "r-1", "r-2", "r-3", "r-4"];
  assert.deepEqual(checkpointsToPrune(cps, releases, 2), ["r-0", "r-1"]);
  assert.deepEqual(checkpointsToPrune(cps, releases, 1), ["r-0", "r-1", "r-3"]);
  assert.deepEqual(checkpointsToPrune(cps, releases), ["r-0"]);
  assert.deepEqual(
    checkpointsToPrune(
      cps,
      [
        { id: "r-4", result: "bad" },
        { id: "r-3", result: "bad" },
      ],
      1,
    ),
    ["r-0", "r-1", "r-2", "r-3"],
  );
  // Equal ids (a ledger line written twice) keep their order.
  assert.deepEqual(
    checkpointsToPrune(
      ["r-1"],
      [
        { id: "r-1", result: "bad" },
        { id: "r-1", result: "good" },
      ],
      1,
    ),
    [],
  );
});

test("store: a stack and release ids are required and checked, naming the flag and the shape", () => {
  assert.throws(
    () => new CheckpointStore(root, ""),
    (e) => e instanceof ConfigError && e.message === "`--stack` is required to read or write checkpoints",
  );
  const store = new CheckpointStore(root, "prod/eu");
  assert.equal(store.dir, join(root, "checkpoints", "prod%2Feu"));
  assert.equal(
    store.file("r-20261123-030000-abc1234-1a2b"),
    join(store.dir, "r-20261123-030000-abc1234-1a2b.json"),
  );
  for (const bad of ["../x", "r-", "x-1", "r-1/../../x", "r-1.json", " r-1"]) {
    assert.throws(
      () => store.file(bad),
      (e) =>
        e instanceof ConfigError &&
        e.message === `\`${bad}\` is not a release id (like r-20261123-030000-abc1234-1a2b)`,
      bad,
    );
  }
});

test("store: write is 0600 in a 0700 directory (even one made 0755 before), list oldest first, read back", async () => {
  const store = new CheckpointStore(root, "staging");
  mkdirSync(store.dir, { recursive: true, mode: 0o755 });
  chmodSync(store.dir, 0o755);
  const s = state([{ type: "a", outputs: { k: cipher() } }]);
  const file = await store.write("r-2", s);
  assert.equal(file, join(store.dir, "r-2.json"));
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(store.dir).mode & 0o777, 0o700);
  assert.equal(readFileSync(file, "utf8"), JSON.stringify(s, null, 2) + "\n");
  await store.write("r-1", s);
  writeFileSync(join(store.dir, "notes.json"), "{}");
  writeFileSync(join(store.dir, "r-3.json.tmp"), "{}");
  const listed = await store.list();
  assert.deepEqual(
    listed.map((f) => [f.release, f.file, f.bytes]),
    ["r-1", "r-2"].map((r) => [r, join(store.dir, `${r}.json`), statSync(file).size]),
  );
  assert.deepEqual(await store.read("r-2"), s);
  assert.deepEqual(await new CheckpointStore(root, "never-written").list(), []);
});

test("store: a plaintext secret is refused before anything is written, naming up to three paths", async () => {
  const store = new CheckpointStore(root, "leaky");
  const s = state([{ outputs: { a: plain("1"), b: plain("2"), c: plain("3"), d: plain("4") } }]);
  await assert.rejects(
    store.write("r-1", s),
    (e) =>
      e instanceof CheckFailedError &&
      e.message ===
        "refusing to archive the checkpoint of release r-1: 4 secret(s) in plaintext (at " +
          "$.deployment.resources[0].outputs.a, $.deployment.resources[0].outputs.b, $.deployment.resources[0].outputs.c). " +
          "Export it without --show-secrets so the stack's secrets provider keeps them encrypted",
  );
  assert.deepEqual(await store.list(), []);
});

test("store: read says what is wrong: no checkpoint (and the command to list), unreadable, not JSON", async () => {
  const store = new CheckpointStore(root, "reads");
  await assert.rejects(
    store.read("r-9"),
    (e) =>
      e instanceof ConfigError &&
      e.message ===
        `release r-9 has no checkpoint in ${store.dir}: see 'safe-deploy checkpoint list --stack reads'`,
  );
  mkdirSync(store.dir, { recursive: true });
  writeFileSync(store.file("r-1"), "{not json");
  await assert.rejects(
    store.read("r-1"),
    (e) =>
      e instanceof CheckFailedError &&
      e.message.startsWith(`the checkpoint ${store.file("r-1")} is not valid JSON (`),
  );
  mkdirSync(store.file("r-2"));
  await assert.rejects(
    store.read("r-2"),
    (e) =>
      e instanceof CannotRunError &&
      e.message.startsWith(`cannot read the checkpoint ${store.file("r-2")}: EISDIR`),
  );
});

test("store: list fails loudly when the directory cannot be read (not an empty archive)", async () => {
  const store = new CheckpointStore(root, "not-a-dir");
  mkdirSync(join(root, "checkpoints"), { recursive: true });
  writeFileSync(store.dir, "a file where the directory should be");
  await assert.rejects(store.list(), /ENOTDIR/);
});

test("store: prune removes old releases' checkpoints and any kept one holding a plaintext secret", async () => {
  const store = new CheckpointStore(root, "prune");
  const clean = state([{ outputs: { k: cipher() } }]);
  for (const id of ["r-1", "r-2", "r-3", "r-4"]) await store.write(id, clean);
  // An older version wrote r-3 with a plaintext secret; r-4 only mentions the word.
  writeFileSync(store.file("r-3"), JSON.stringify(state([{ outputs: { k: plain("pw") } }])));
  writeFileSync(store.file("r-4"), JSON.stringify(state([{ outputs: { note: "plaintext" } }])));
  writeFileSync(store.file("r-5"), '{"plaintext": broken');
  const releases = ["r-1", "r-2", "r-3", "r-4", "r-5"].map((id) => ({
    id,
    result: id === "r-1" ? "good" : "bad",
  }));
  const removed = await store.prune(releases, 3);
  assert.deepEqual(removed, [store.file("r-2"), store.file("r-3")]);
  assert.deepEqual(readdirSync(store.dir).sort(), ["r-1.json", "r-4.json", "r-5.json"]);
  assert.deepEqual(await new CheckpointStore(root, "prune-none").prune(releases), []);
});

test("summarizeCheckpoint: a state without a deployment, or with an empty one, counts zeros; typeless resources add up", () => {
  const zeros = {
    resources: 0,
    types: {},
    pendingOperations: 0,
    secretsProvider: undefined,
    encryptedSecrets: 0,
    plaintextSecrets: 0,
  };
  assert.deepEqual(summarizeCheckpoint({ version: 3 }), { version: 3, ...zeros });
  assert.deepEqual(summarizeCheckpoint({ version: 3, deployment: {} }), { version: 3, ...zeros });
  assert.deepEqual(summarizeCheckpoint(state([{}, {}, { type: "a" }])).types, { "?": 2, a: 1 });
});

test("store: list takes only `r-<id>.json` files, ids of any length, sorted", async () => {
  const store = new CheckpointStore(root, "listing");
  const s = state([]);
  for (const id of ["r-12", "r-3", "r-20261123-030000-abc1234-1a2b"]) await store.write(id, s);
  writeFileSync(join(store.dir, "old-r-1.json"), "{}");
  writeFileSync(join(store.dir, "r-4.json.bak"), "{}");
  assert.deepEqual(
    (await store.list()).map((f) => f.release),
    ["r-12", "r-20261123-030000-abc1234-1a2b", "r-3"],
  );
});

test("store: prune skips a kept checkpoint it cannot read (a directory in its place) rather than failing", async () => {
  const store = new CheckpointStore(root, "prune-unreadable");
  await store.write("r-1", state([]));
  mkdirSync(store.file("r-2"));
  const releases = [
    { id: "r-1", result: "good" },
    { id: "r-2", result: "bad" },
  ];
  assert.deepEqual(await store.prune(releases, 5), []);
  assert.deepEqual(readdirSync(store.dir).sort(), ["r-1.json", "r-2.json"]);
});
