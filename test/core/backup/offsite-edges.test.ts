import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { s3Target, startS3, uploadRandom, type TestS3 } from "../../helpers/s3";
import {
  decryptStream,
  encryptStream,
  objectKey,
  parseKey,
  s3ErrorText,
  downloadBackup,
  type S3Target,
} from "../../../src/core/backup/offsite";
import { fetchBackup, inspectOffsite, listOffsite, refusal } from "../../../src/core/backup/fetch";
import { signManifest } from "../../../src/core/backup/manifest-auth";

// Issue 22: offsite.ts and fetch.ts against a real S3 store (s3rver, in this process) with backups
// that are plain bytes and their manifests: no PostgreSQL, so each case costs milliseconds.
let server: TestS3;
let dir: string;
let n = 0;
const key = randomBytes(32);
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sd-offsite-edges-"));
  server = await startS3(dir, ["b"]);
});
after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A target with its own prefix, so each test sees only its own objects. */
const target = (prefix = `p${++n}/`): S3Target => s3Target(server.endpoint, prefix);

/** A "backup": random bytes and a manifest that matches them, uploaded (encrypted with `k` when given). */
const put = (t: S3Target, name: string, o: { k?: Buffer; createdAt?: string; bytes?: Buffer } = {}) =>
  uploadRandom(dir, t, name, { key: o.k, createdAt: o.createdAt, bytes: o.bytes, size: 5000 });

const fails = (code: number, pattern: RegExp) => (e: Error & { exitCode?: number }) => {
  assert.equal(e.exitCode, code, e.message);
  assert.match(e.message, pattern);
  return true;
};
const newDir = () => mkdtempSync(join(dir, "fetch-"));

test("parseKey: 64 hex chars or base64 of 32 bytes; anything else names where the key came from", () => {
  const k = randomBytes(32);
  assert.ok(parseKey(k.toString("hex")).equals(k));
  assert.ok(parseKey(` ${k.toString("hex").toUpperCase()}\n`).equals(k));
  assert.ok(parseKey(k.toString("base64")).equals(k));
  for (const bad of [k.toString("hex").slice(2), randomBytes(16).toString("base64"), ""]) {
    assert.throws(
      () => parseKey(bad),
      fails(2, /^`SAFE_DEPLOY_BACKUP_KEY` must be 32 bytes as 64 hex chars or base64 \(AES-256\)$/),
    );
  }
  assert.throws(() => parseKey("short", "backupEncryptionKey"), /`backupEncryptionKey` must be/);
  // 64 characters that are not all hex are read as base64 (48 bytes): refused, not half-read as hex.
  assert.throws(() => parseKey("g".repeat(64)), /must be 32 bytes/);
});

test("objectKey: the prefix without its slashes, the file's base name, .enc when encrypted", () => {
  const t = { prefix: "/a/b//" } as S3Target;
  assert.equal(objectKey(t, "/x/y/backup.pgdump", false), "a/b/backup.pgdump");
  assert.equal(objectKey(t, "backup.pgdump", true), "a/b/backup.pgdump.enc");
  assert.equal(objectKey({ prefix: "" } as S3Target, "d/f", false), "f");
  assert.equal(objectKey({ prefix: "///" } as S3Target, "f", true), "f.enc");
  assert.equal(objectKey({ prefix: "a" } as S3Target, "", false), "a/");
});

test("s3ErrorText: credentials errors name the variables to set; others keep the SDK's message", () => {
  assert.equal(
    s3ErrorText(
      Object.assign(new Error("Could not load credentials from any providers"), {
        name: "CredentialsProviderError",
      }),
    ),
    "Could not load credentials from any providers: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment",
  );
  for (const name of ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"]) {
    assert.equal(
      s3ErrorText(Object.assign(new Error("nope"), { name })),
      `nope (${name}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and that they may use the bucket`,
    );
  }
  assert.equal(s3ErrorText(Object.assign(new Error("slow down"), { name: "SlowDown" })), "slow down");
  assert.equal(s3ErrorText("plain text"), "plain text");
  assert.equal(s3ErrorText({}), "[object Object]");
});

async function encrypt(k: Buffer, pieces: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), encryptStream(k), async function (src) {
    for await (const c of src) out.push(c as Buffer);
  });
  return Buffer.concat(out);
}
async function decrypt(k: Buffer, ct: Buffer, size: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < ct.length; at += size) pieces.push(ct.subarray(at, at + size));
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), decryptStream(k), async function (src) {
    for await (const c of src) out.push(c as Buffer);
  });
  return Buffer.concat(out);
}

test("encrypt/decrypt: magic, IV, tag framing; any cut of the ciphertext decrypts; empty input too", async () => {
  const plain = randomBytes(70_000);
  const ct = await encrypt(key, [plain.subarray(0, 10), plain.subarray(10)]);
  assert.equal(ct.subarray(0, 8).toString("latin1"), "SDENC1\0\0");
  assert.equal(ct.length, 8 + 12 + plain.length + 16);
  for (const size of [1, 7, 19, 20, 21, 36, 37, 4096, ct.length]) {
    assert.ok((await decrypt(key, ct, size)).equals(plain), `pieces of ${size}`);
  }
  const empty = await encrypt(key, []);
  assert.equal(empty.length, 8 + 12 + 16);
  assert.equal(empty.subarray(0, 8).toString("latin1"), "SDENC1\0\0");
  assert.equal((await decrypt(key, empty, 5)).length, 0);
  // Two encryptions of the same bytes differ (a fresh IV each time).
  assert.notDeepEqual(await encrypt(key, [plain]), ct);
});

test("decrypt refuses what is not ours, a cut copy and an altered tag, each with its own message", async () => {
  const plain = randomBytes(1000);
  const ct = await encrypt(key, [plain]);
  const notOurs = Buffer.from(ct);
  notOurs[3] ^= 1;
  await assert.rejects(decrypt(key, notOurs, 64), fails(1, /^not an encrypted safe-deploy backup$/));
  for (const cut of [0, 10, 19, 20, 35]) {
    await assert.rejects(
      decrypt(key, ct.subarray(0, cut), 7),
      fails(1, /^encrypted backup is truncated$/),
      `cut at ${cut}`,
    );
  }
  const lastByte = Buffer.from(ct);
  lastByte[lastByte.length - 1] ^= 1;
  await assert.rejects(
    decrypt(key, lastByte, 100),
    fails(1, /^encrypted backup failed authentication: wrong key or altered data$/),
  );
  await assert.rejects(decrypt(key, ct.subarray(0, ct.length - 1), 100), /failed authentication/);
  await assert.rejects(decrypt(randomBytes(32), ct, 100), /wrong key or altered data/);
});

const signedRemote = (over: object = {}) =>
  signManifest(
    {
      version: 2,
      file: "backup_20260101_000000.pgdump",
      sha256: "aa",
      sizeBytes: 1,
      offsite: {
        key: "p/backup_20260101_000000.pgdump.enc",
        sha256: "bb",
        sizeBytes: 2,
        encryption: "aes-256-gcm",
      },
      ...over,
    } as never,
    key,
  ) as never;

test("refusal: only an encrypted object under a manifest signed with the key, or an unsigned one the user named", () => {
  const at = "s3://b/p/backup_20260101_000000.pgdump.enc";
  assert.equal(refusal(signedRemote(), at, key), undefined);
  const plainCopy =
    /^s3:\/\/b\/p\/backup_20260101_000000\.pgdump\.enc is not encrypted, and SAFE_DEPLOY_BACKUP_KEY is set: a plaintext copy is refused/;
  for (const offsite of [
    undefined,
    { key: "p/backup_20260101_000000.pgdump.enc", encryption: "none" },
    { key: "p/backup_20260101_000000.pgdump", encryption: "aes-256-gcm" },
    { key: 5, encryption: "aes-256-gcm" },
    { encryption: "aes-256-gcm" },
  ])
    assert.match(refusal(signedRemote({ offsite }), at, key) ?? "", plainCopy, JSON.stringify(offsite));
  assert.equal(
    refusal(
      signedRemote({ offsite: { key: "p/backup_20260101_000001.pgdump.enc", encryption: "aes-256-gcm" } }),
      at,
      key,
    ),
    `the manifest of ${at} points at another object`,
  );
  const altered = { ...(signedRemote() as object), sha256: "cc" } as never;
  assert.match(
    refusal(altered, at, key) ?? "",
    /^the manifest of .* does not match its signature: it was changed after upload, or signed with another key than SAFE_DEPLOY_BACKUP_KEY$/,
  );
  assert.match(refusal(signedRemote(), at, randomBytes(32)) ?? "", /does not match its signature/);
  const { auth: _a, ...unsigned } = signedRemote() as { auth: unknown };
  const why = refusal(unsigned as never, at, key) ?? "";
  assert.match(
    why,
    /^the manifest of .* is not signed \(.*\); if you know it is yours, accept this one with `--trust-unsigned backup_20260101_000000\.pgdump`$/,
  );
  assert.equal(refusal(unsigned as never, at, key, "backup_20260101_000001.pgdump"), why);
  assert.equal(refusal(unsigned as never, at, key, "backup_20260101_000000.pgdump"), undefined);
  // A signed manifest needs no --trust-unsigned, and naming it changes nothing.
  assert.equal(refusal(signedRemote(), at, key, "backup_20260101_000000.pgdump"), undefined);
});

test("listOffsite: backups only, newest first by the time in their names, ties by name; a bad store says which", async () => {
  const t = target();
  for (const name of [
    "backup_20260101_000000_a.pgdump",
    "backup_20260102_000000.pgdump.zst",
    "backup_20260101_000000_b.pgdump.gz",
    "backup_20251231_235959.pgdump",
    "not-a-backup.txt",
  ])
    await put(t, name);
  await put(t, "backup_20260103_000000.pgdump", { k: key });
  assert.deepEqual(
    (await listOffsite(t)).map((k) => k.slice(t.prefix.length)),
    [
      "backup_20260103_000000.pgdump.enc",
      "backup_20260102_000000.pgdump.zst",
      "backup_20260101_000000_b.pgdump.gz",
      "backup_20260101_000000_a.pgdump",
      "backup_20251231_235959.pgdump",
    ],
  );
  await assert.rejects(
    listOffsite({ ...t, bucket: "missing" }),
    fails(3, new RegExp(`^listing s3://missing/${t.prefix} failed: `)),
  );
});

test("fetchBackup without a key: newest by name, checked, linked with its manifest (0600), no temp file left", async () => {
  const t = target();
  await put(t, "backup_20260101_000000.pgdump");
  const newest = await put(t, "backup_20260102_000000.pgdump");
  const d = newDir();
  const warned: string[] = [];
  const r = await fetchBackup({ target: t, dir: d, warn: (l) => warned.push(l) });
  assert.equal(r.file, join(d, "backup_20260102_000000.pgdump"));
  assert.equal(r.key, `${t.prefix}backup_20260102_000000.pgdump`);
  assert.ok(readFileSync(r.file).equals(newest.bytes));
  assert.deepEqual(r.manifest, newest.m);
  const text = readFileSync(`${r.file}.json`, "utf8");
  assert.ok(text.endsWith("}\n"));
  assert.deepEqual(JSON.parse(text), newest.m);
  assert.equal(statSync(`${r.file}.json`).mode & 0o777, 0o600);
  assert.equal(statSync(r.file).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(d).sort(), [
    "backup_20260102_000000.pgdump",
    "backup_20260102_000000.pgdump.json",
  ]);
  assert.deepEqual(warned, [
    `SAFE_DEPLOY_BACKUP_KEY is not set: the content of s3://b/${t.prefix} is trusted as is (anyone who can write there decides what is restored); set the stack's \`backupEncryptionKey\` to have copies encrypted and their manifests signed`,
  ]);
  // Again into the same directory: refused, the first copy untouched.
  await assert.rejects(
    fetchBackup({ target: t, dir: d }),
    fails(2, /backup_20260102_000000\.pgdump already exists; fetch into another `--dir`$/),
  );
  // By name, with or without .enc; a name that is not a backup's is refused before anything is read.
  const byName = await fetchBackup({ target: t, dir: newDir(), name: "backup_20260101_000000.pgdump" });
  assert.equal(byName.manifest.file, "backup_20260101_000000.pgdump");
  await assert.rejects(
    fetchBackup({ target: t, dir: newDir(), name: "backup.pgdump" }),
    fails(
      2,
      /^"backup\.pgdump" is not a backup name \(backup_YYYYMMDD_HHMMSS\[_label\]\.pgdump\[\.zst\|\.gz\]\)$/,
    ),
  );
  await assert.rejects(
    fetchBackup({ target: t, dir: newDir(), trustUnsigned: "backup_20260101_000000.pgdump" }),
    fails(2, /^`--trust-unsigned` only means something with SAFE_DEPLOY_BACKUP_KEY set$/),
  );
  await assert.rejects(
    fetchBackup({ target: target(), dir: newDir() }),
    fails(2, /^no backups under s3:\/\/b\/p\d+\/; check the bucket and prefix$/),
  );
  await assert.rejects(
    fetchBackup({ target: target(), dir: newDir(), encryptionKey: key }),
    fails(2, /^no backups under s3:\/\/b\/p\d+\/; check the bucket and prefix$/),
  );
});

test("fetchBackup with a key: the newest signed copy by signed time, the refused ones named in a warning; progress counted", async () => {
  const t = target();
  // Names say otherwise than the signed times: the signed time decides.
  const a = await put(t, "backup_20260105_000000.pgdump", { k: key, createdAt: "2026-01-01T00:00:00.000Z" });
  await put(t, "backup_20260101_000000.pgdump", { k: key, createdAt: "2025-12-01T00:00:00.000Z" });
  await put(t, "backup_20260109_000000.pgdump"); // plaintext: refused with a key
  const d = newDir();
  const warned: string[] = [];
  const progress: number[] = [];
  const r = await fetchBackup({
    target: t,
    dir: d,
    encryptionKey: key,
    warn: (l) => warned.push(l),
    onProgress: (b) => progress.push(b),
  });
  assert.equal(r.manifest.file, "backup_20260105_000000.pgdump");
  assert.equal(r.key, `${t.prefix}backup_20260105_000000.pgdump.enc`);
  assert.ok(readFileSync(r.file).equals(a.bytes));
  assert.deepEqual(
    JSON.parse(readFileSync(`${r.file}.json`, "utf8")),
    a.m,
    "the manifest kept without offsite and auth",
  );
  assert.deepEqual(warned, [
    "ignored 1 off-site backup(s) not encrypted and signed with SAFE_DEPLOY_BACKUP_KEY (`backup fetch --list` says why): backup_20260109_000000.pgdump",
  ]);
  assert.equal(progress.at(-1), a.r.sizeBytes);
  assert.ok(progress.every((b, i) => i === 0 || b > progress[i - 1]));

  const listed = await inspectOffsite(t, key);
  assert.deepEqual(
    listed.map((e) => [e.name, e.createdAt?.toISOString(), e.refused ? "refused" : "ok"]),
    [
      ["backup_20260105_000000.pgdump", "2026-01-01T00:00:00.000Z", "ok"],
      ["backup_20260101_000000.pgdump", "2025-12-01T00:00:00.000Z", "ok"],
      ["backup_20260109_000000.pgdump", undefined, "refused"],
    ],
  );
  assert.equal(listed[2].key, `${t.prefix}backup_20260109_000000.pgdump`);

  // Only refused ones: each named with why.
  const only = target();
  await put(only, "backup_20260101_000000.pgdump");
  await put(only, "backup_20260102_000000.pgdump");
  await assert.rejects(
    fetchBackup({ target: only, dir: newDir(), encryptionKey: key }),
    fails(
      1,
      new RegExp(
        `^no backup under s3://b/${only.prefix} is encrypted and signed with SAFE_DEPLOY_BACKUP_KEY:\n  backup_20260102_000000\\.pgdump: s3://b/${only.prefix}backup_20260102_000000\\.pgdump is not encrypted.*\n  backup_20260101_000000\\.pgdump: .*is not encrypted`,
      ),
    ),
  );
});

test("inspectOffsite: a signed manifest without a valid time, and unreadable manifests, are listed as refused, after the good ones", async () => {
  const t = target();
  await put(t, "backup_20260101_000000.pgdump", { k: key, createdAt: "not a date" });
  await put(t, "backup_20260102_000000.pgdump", { k: key });
  await put(t, "backup_20260103_000000.pgdump", { k: key });
  const s3 = await import("@aws-sdk/client-s3");
  const c = new s3.S3Client({ ...t, endpoint: t.endpoint, credentials: t.credentials });
  try {
    await c.send(
      new s3.PutObjectCommand({
        Bucket: "b",
        Key: `${t.prefix}backup_20260103_000000.pgdump.json`,
        Body: "{ not json",
      }),
    );
    await c.send(
      new s3.PutObjectCommand({
        Bucket: "b",
        Key: `${t.prefix}backup_20260104_000000.pgdump.enc`,
        Body: "x",
      }),
    );
  } finally {
    c.destroy();
  }
  const listed = await inspectOffsite(t, key);
  assert.deepEqual(
    listed.map((e) => [e.name, e.key.slice(t.prefix.length), e.refused ?? "ok"]),
    [
      ["backup_20260102_000000.pgdump", "backup_20260102_000000.pgdump.enc", "ok"],
      [
        "backup_20260104_000000.pgdump",
        "backup_20260104_000000.pgdump.enc",
        `backup_20260104_000000.pgdump has no manifest at s3://b/${t.prefix}backup_20260104_000000.pgdump.json: the backup is not there or its upload never finished, and without a manifest it cannot be checked (\`backup fetch --list\` shows what is there)`,
      ],
      [
        "backup_20260103_000000.pgdump",
        "backup_20260103_000000.pgdump.enc",
        `s3://b/${t.prefix}backup_20260103_000000.pgdump.json is not valid JSON`,
      ],
      [
        "backup_20260101_000000.pgdump",
        "backup_20260101_000000.pgdump.enc",
        `the manifest of s3://b/${t.prefix}backup_20260101_000000.pgdump.enc has no valid createdAt`,
      ],
    ],
  );
});

test("fetchBackup: a manifest for another file, an encrypted copy without the key, and checksums that differ: refused, nothing left", async () => {
  const t = target();
  const s3 = await import("@aws-sdk/client-s3");
  const c = new s3.S3Client({ ...t, endpoint: t.endpoint, credentials: t.credentials });
  const putManifest = (name: string, m: object) =>
    c.send(new s3.PutObjectCommand({ Bucket: "b", Key: `${t.prefix}${name}.json`, Body: JSON.stringify(m) }));
  try {
    const enc = await put(t, "backup_20260101_000000.pgdump", { k: key });
    const d1 = newDir();
    await assert.rejects(
      fetchBackup({ target: t, dir: d1, name: "backup_20260101_000000.pgdump.enc" }),
      fails(
        2,
        new RegExp(
          `^s3://b/${t.prefix}backup_20260101_000000\\.pgdump\\.enc is encrypted: set SAFE_DEPLOY_BACKUP_KEY to the stack's \`backupEncryptionKey\`$`,
        ),
      ),
    );
    assert.deepEqual(readdirSync(d1), []);
    // The same, when the manifest lost its offsite part: the .enc name alone says it is encrypted.
    await putManifest("backup_20260101_000000.pgdump", enc.m);
    await assert.rejects(
      fetchBackup({ target: t, dir: newDir(), name: "backup_20260101_000000.pgdump.enc" }),
      fails(2, /is encrypted: set SAFE_DEPLOY_BACKUP_KEY/),
    );

    const plain = await put(t, "backup_20260102_000000.pgdump");
    const remote = {
      ...plain.m,
      offsite: { ...plain.r, key: `${t.prefix}backup_20260102_000000.pgdump`, encryption: "none" },
    };
    for (const [m, why] of [
      [
        { ...remote, file: "backup_20260103_000000.pgdump" },
        /is not the manifest of backup_20260102_000000\.pgdump$/,
      ],
      [{ ...remote, version: 3 }, /is not the manifest of/],
      [{ ...remote, sha256: undefined }, /is not the manifest of/],
      [
        { ...remote, offsite: { ...remote.offsite, sha256: "0".repeat(64) } },
        /backup_20260102_000000\.pgdump does not match the checksum recorded when it was uploaded$/,
      ],
      [
        { ...remote, offsite: { ...remote.offsite, sizeBytes: remote.offsite.sizeBytes + 1 } },
        /does not match the checksum recorded when it was uploaded$/,
      ],
      [
        { ...remote, sha256: "0".repeat(64) },
        new RegExp(
          `^backup_20260102_000000\\.pgdump fetched from s3://b/${t.prefix}backup_20260102_000000\\.pgdump does not match its manifest's sha256$`,
        ),
      ],
      [{ ...remote, sizeBytes: remote.sizeBytes + 1 }, /does not match its manifest's sha256$/],
    ] as [object, RegExp][]) {
      await putManifest("backup_20260102_000000.pgdump", m);
      const d = newDir();
      await assert.rejects(
        fetchBackup({ target: t, dir: d, name: "backup_20260102_000000.pgdump" }),
        fails(1, why),
        JSON.stringify(m),
      );
      assert.deepEqual(readdirSync(d), [], "nothing left behind");
    }
    // Without the offsite part, only the backup's own checksum is checked: it passes.
    const { offsite: _gone, ...noOffsite } = remote;
    await putManifest("backup_20260102_000000.pgdump", noOffsite);
    const ok = await fetchBackup({ target: t, dir: newDir(), name: "backup_20260102_000000.pgdump" });
    assert.ok(readFileSync(ok.file).equals(plain.bytes));
    // A manifest that is there but whose object is gone: names the command that lists what is there.
    await putManifest("backup_20260109_000000.pgdump", {
      ...remote,
      file: "backup_20260109_000000.pgdump",
      offsite: undefined,
    });
    await assert.rejects(
      fetchBackup({ target: t, dir: newDir(), name: "backup_20260109_000000.pgdump" }),
      fails(
        2,
        new RegExp(
          `^s3://b/${t.prefix}backup_20260109_000000\\.pgdump does not exist; \`backup fetch --list\` shows what is there$`,
        ),
      ),
    );
  } finally {
    c.destroy();
  }
});

test("a store that refuses the credentials: the fetch says which variables to check (exit 3)", async () => {
  const t = { ...target(), credentials: { accessKeyId: "WRONG", secretAccessKey: "WRONG" } };
  await assert.rejects(
    fetchBackup({ target: t, dir: newDir(), name: "backup_20260101_000000.pgdump" }),
    fails(
      3,
      /^reading s3:\/\/b\/p\d+\/backup_20260101_000000\.pgdump\.json failed: .*\((InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied)\): check AWS_ACCESS_KEY_ID/,
    ),
  );
});

test("an upload whose stored object reads back different: the copy is not taken as good (exit 1), the object named", async () => {
  const http = await import("node:http");
  const s3port = Number(new URL(server.endpoint).port);
  // A loopback proxy in front of the store that flips the first byte of every object read back.
  const proxy = http.createServer((req, res) => {
    const up = http.request(
      { host: "127.0.0.1", port: s3port, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        const alter = req.method === "GET" && /\.pgdump$/.test(req.url!.split("?")[0]);
        res.writeHead(r.statusCode!, r.headers);
        let first = alter;
        r.on("data", (c: Buffer) => {
          if (first) {
            c = Buffer.from(c);
            c[0] ^= 1;
            first = false;
          }
          res.write(c);
        });
        r.on("end", () => res.end());
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  try {
    const t = { ...target(), endpoint: `http://127.0.0.1:${(proxy.address() as { port: number }).port}` };
    await assert.rejects(
      put(t, "backup_20260101_000000.pgdump"),
      fails(
        1,
        new RegExp(
          `^off-site copy s3://b/${t.prefix}backup_20260101_000000\\.pgdump does not match what was uploaded \\(sha256 [0-9a-f]{64}\\)$`,
        ),
      ),
    );
  } finally {
    proxy.closeAllConnections();
    proxy.close();
  }
});

test("a key with one character too many is refused, not read as its first 64 hex chars; a prefix's slashes all go", () => {
  const hex = randomBytes(32).toString("hex");
  for (const bad of [`0${hex}`, `${hex}0`]) assert.throws(() => parseKey(bad), /must be 32 bytes/);
  assert.equal(objectKey({ prefix: "//a//" } as S3Target, "f", false), "a/f");
});

test("upload: content types and the plaintext's 'none' recorded; a missing bucket fails exit 3 naming it; download writes 0600 and never over a file", async () => {
  const t = target();
  const { r } = await put(t, "backup_20260101_000000.pgdump");
  const s3 = await import("@aws-sdk/client-s3");
  const c = new s3.S3Client({ ...t, endpoint: t.endpoint, credentials: t.credentials });
  try {
    const obj = await c.send(new s3.HeadObjectCommand({ Bucket: "b", Key: r.key }));
    assert.equal(obj.ContentType, "application/octet-stream");
    const man = await c.send(new s3.GetObjectCommand({ Bucket: "b", Key: `${r.key}.json` }));
    assert.equal(man.ContentType, "application/json");
    assert.equal(JSON.parse(await man.Body!.transformToString()).offsite.encryption, "none");
  } finally {
    c.destroy();
  }
  await assert.rejects(
    put({ ...t, bucket: "missing" }, "backup_20260101_000001.pgdump"),
    fails(
      3,
      new RegExp(
        `^uploading backup_20260101_000001\\.pgdump to s3://missing/${t.prefix}backup_20260101_000001\\.pgdump failed: `,
      ),
    ),
  );
  const dest = join(newDir(), "copy");
  await downloadBackup(t, r.key, dest);
  assert.equal(sha(readFileSync(dest)), r.sha256);
  assert.equal(statSync(dest).mode & 0o777, 0o600);
  writeFileSync(dest, "mine");
  await assert.rejects(downloadBackup(t, r.key, dest), /EEXIST/);
  assert.equal(readFileSync(dest, "utf8"), "mine");
});

test("the disk fills up while a copy is fetched: said with the fix, no temp file, nothing under the name", async () => {
  const t = target();
  const name = "backup_20260103_000000.pgdump";
  await put(t, name);
  const d = newDir();
  const fsp = require("node:fs/promises") as typeof import("node:fs/promises");
  const probe = await fsp.open(__filename, "r");
  const proto = Object.getPrototypeOf(probe) as { write: unknown };
  await probe.close();
  const write = proto.write;
  proto.write = () =>
    Promise.reject(Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }));
  try {
    await assert.rejects(fetchBackup({ target: t, dir: d }), (e: Error & { exitCode?: number }) => {
      assert.equal(e.exitCode, 3);
      assert.equal(
        e.message,
        `no space left in ${d} while fetching ${name}; free space or use another \`--dir\``,
      );
      return true;
    });
  } finally {
    proto.write = write;
  }
  assert.deepEqual(readdirSync(d), []);
});
