// Signed off-site manifests (issue 15 A, issue 22): a planted or altered manifest must read "bad", an
// unsigned one "unsigned", and a manifest signed by an earlier release must still read "ok" — so the
// MAC is pinned here against an independent computation of the documented scheme.
import assert from "node:assert/strict";
import { createHmac, hkdfSync } from "node:crypto";
import { test } from "node:test";
import stringify from "safe-stable-stringify";
import { MANIFEST_MAC, manifestAuthStatus, signManifest } from "../../../src/core/backup/manifest-auth";

const KEY = Buffer.alloc(32, 7);
const OTHER = Buffer.alloc(32, 8);
const manifest = {
  version: 2,
  file: "backup_20261109_080706.pgdump.zst",
  sha256: "ab".repeat(32),
  note: "café",
};

test("the MAC is HMAC-SHA256 of the sorted-key JSON under the HKDF-SHA256 subkey 'safe-deploy off-site manifest v1'", () => {
  const subkey = Buffer.from(hkdfSync("sha256", KEY, "", "safe-deploy off-site manifest v1", 32));
  const reordered = { sha256: manifest.sha256, note: manifest.note, file: manifest.file, version: 2 };
  const expected = createHmac("sha256", subkey).update(stringify(reordered)!, "utf8").digest("hex");
  assert.equal(MANIFEST_MAC, "hmac-sha256/hkdf-sha256");
  assert.deepEqual(signManifest(manifest, KEY), {
    ...manifest,
    auth: { algorithm: MANIFEST_MAC, mac: expected },
  });
});

test("ok for its key whatever the key order; re-signing replaces an old auth", () => {
  const signed = signManifest(manifest, KEY);
  assert.equal(manifestAuthStatus(signed, KEY), "ok");
  const reordered = JSON.parse(JSON.stringify({ auth: signed.auth, ...manifest }));
  assert.equal(manifestAuthStatus(reordered, KEY), "ok");
  const resigned = signManifest(signManifest(manifest, OTHER), KEY);
  assert.equal(manifestAuthStatus(resigned, KEY), "ok");
  assert.deepEqual(resigned, signed);
});

test("bad: another key, an altered or added field, a mangled auth", () => {
  const signed = signManifest(manifest, KEY);
  assert.equal(manifestAuthStatus(signed, OTHER), "bad");
  assert.equal(manifestAuthStatus({ ...signed, sha256: "cd".repeat(32) }, KEY), "bad");
  assert.equal(manifestAuthStatus({ ...signed, extra: 1 }, KEY), "bad");
  const { mac } = signed.auth;
  for (const auth of [
    { algorithm: "hmac-sha1", mac },
    { mac },
    { algorithm: MANIFEST_MAC },
    { algorithm: MANIFEST_MAC, mac: 42 },
    // A list holding the right MAC reads like it as text: still bad, never an exception out of the check.
    { algorithm: MANIFEST_MAC, mac: [mac] },
    { algorithm: MANIFEST_MAC, mac: mac.toUpperCase() },
    { algorithm: MANIFEST_MAC, mac: mac.slice(2) },
    { algorithm: MANIFEST_MAC, mac: `${mac}00` },
    { algorithm: MANIFEST_MAC, mac: `x${mac.slice(1)}` },
    { algorithm: MANIFEST_MAC, mac: `${mac.slice(0, -1)}x` },
    { algorithm: MANIFEST_MAC, mac: "0".repeat(64) },
    null,
  ]) {
    assert.equal(manifestAuthStatus({ ...manifest, auth }, KEY), "bad", JSON.stringify(auth));
  }
});

test("unsigned without auth; bad when not an object at all", () => {
  assert.equal(manifestAuthStatus(manifest, KEY), "unsigned");
  for (const m of [null, undefined, "manifest", 42, false])
    assert.equal(manifestAuthStatus(m, KEY), "bad", String(m));
});
