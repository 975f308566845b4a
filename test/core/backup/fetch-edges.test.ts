// Issue 22: fetch.ts's listing, manifest reading and download against a real S3 store (s3rver, in this
// process) behind a loopback proxy that pages listings and answers some requests itself, as a store
// or a proxy in front of one may: no PostgreSQL, so each case costs milliseconds.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import type * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import {
  s3Target,
  startS3,
  startS3Proxy,
  uploadRandom,
  type Handler,
  type Rewrite,
  type TestS3,
} from "../../helpers/s3";
import { s3Client, type S3Target } from "../../../src/core/backup/offsite";
import { fetchBackup, inspectOffsite, listOffsite } from "../../../src/core/backup/fetch";

let server: TestS3;
let dir: string;
let n = 0;
const key = randomBytes(32);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sd-fetch-edges-"));
  server = await startS3(dir, ["b"]);
});
after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A target with its own prefix, so each test sees only its own objects. */
const target = (endpoint = server.endpoint): S3Target => s3Target(endpoint, `f${++n}/`);
const newDir = () => mkdtempSync(join(dir, "into-"));
/** What the listing with a key says of backup `name` when its manifest shows no encrypted copy. */
const notEncrypted = (t: S3Target, name: string) =>
  `s3://b/${t.prefix}${name} is not encrypted, and SAFE_DEPLOY_BACKUP_KEY is set: a plaintext copy is refused (anyone who can write to the bucket could have put it there); if it really is yours, fetch it without SAFE_DEPLOY_BACKUP_KEY`;
/** The backups the listing with the key shows, each with "ok" or why it is refused. */
const inspected = async (t: S3Target) =>
  (await inspectOffsite(t, key)).map((e) => [e.name, e.refused ?? "ok"]);
const fails = (code: number, pattern: RegExp) => (e: Error & { exitCode?: number }) => {
  assert.equal(e.exitCode, code, e.message);
  assert.match(e.message, pattern);
  return true;
};

/** Uploads random bytes as backup `name` with a manifest that matches them (encrypted with `k` when given). */
const upload = (t: S3Target, name: string, k?: Buffer, createdAt?: string) =>
  uploadRandom(dir, t, name, { key: k, createdAt, size: 3000 });

/** Stores `body` under the target's prefix as is, as someone with write access to the bucket could. */
async function plant(t: S3Target, name: string, body: string | Buffer) {
  const s3 = s3Client({ ...t, endpoint: server.endpoint });
  try {
    await s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: `${t.prefix}${name}`, Body: body }));
  } finally {
    s3.destroy();
  }
}

/** A loopback proxy in front of the store (`test/helpers/s3.ts`). */
const startProxy = (handle: Handler, rewriteOf?: Rewrite) => startS3Proxy(server.endpoint, handle, rewriteOf);

/** Answers as a store does to credentials that may not read: 403 AccessDenied (not retried by the SDK). */
function accessDenied(res: http.ServerResponse): "answered" {
  res
    .writeHead(403, { "content-type": "application/xml" })
    .end(
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>',
    );
  return "answered";
}

/**
 * A store that pages its listings `size` keys a page (s3rver cannot: its continuation token needs DES,
 * which Node 20's OpenSSL lacks). The first page is the store's own listing cut short; the proxy keeps
 * the rest and answers the later pages itself, each only to the token it handed out.
 */
async function pagingStore(size: number) {
  const pages = new Map<string, string[]>();
  const tokensSeen: string[] = [];
  let lists = 0;
  const page = (rest: string[], head: string) => {
    const now = rest.slice(0, size);
    const more = rest.slice(size);
    const token = more.length ? `page-${pages.size + 1}` : undefined;
    if (token) pages.set(token, more);
    return (
      `${head}<KeyCount>${now.length}</KeyCount><IsTruncated>${!!token}</IsTruncated>` +
      (token ? `<NextContinuationToken>${token}</NextContinuationToken>` : "") +
      `${now.join("")}</ListBucketResult>`
    );
  };
  // The store's own listing, cut after `size` keys; its other elements (name, prefix) kept as they are.
  const firstPage = (body: string) => {
    const contents = body.match(/<Contents>.*?<\/Contents>/gs) ?? [];
    const head = body
      .replace(/<Contents>.*<\/Contents>/s, "")
      .replace(/<(KeyCount|IsTruncated|NextContinuationToken)>[^<]*<\/\1>/g, "")
      .replace("</ListBucketResult>", "");
    return page(contents, head);
  };
  const proxy = await startProxy(
    (req, res) => {
      const q = new URL(req.url!, "http://x").searchParams;
      if (req.method !== "GET" || q.get("list-type") !== "2") return "forward";
      // A client that never sends the token back would list the first page forever: refused instead.
      if (++lists > 10) return accessDenied(res);
      const token = q.get("continuation-token");
      if (token === null) return "forward";
      tokensSeen.push(token);
      const rest = pages.get(token);
      if (!rest) return accessDenied(res);
      const head = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>${q.get("prefix")}</Prefix><MaxKeys>1000</MaxKeys>`;
      res.writeHead(200, { "content-type": "application/xml" }).end(page(rest, head));
      return "answered";
    },
    (req) => (/[?&]list-type=2/.test(req.url!) ? firstPage : undefined),
  );
  return { ...proxy, tokensSeen, lists: () => lists };
}

test("a listing in pages: every page's backups are listed, newest first, each page asked for with its token", async () => {
  const store = await pagingStore(2);
  try {
    const t = target(store.endpoint);
    const names = [
      "backup_20260103_000000.pgdump",
      "backup_20260101_000000.pgdump",
      "backup_20260105_000000.pgdump",
      "backup_20260102_000000.pgdump",
      "backup_20260104_000000.pgdump",
    ];
    for (const name of names) await upload({ ...t, endpoint: server.endpoint }, name);
    // The store lists keys by name: the manifests are on the pages too, so the newest is on the last.
    assert.deepEqual(
      (await listOffsite(t)).map((k) => k.slice(t.prefix.length)),
      [...names].sort().reverse(),
    );
    assert.deepEqual(store.tokensSeen, ["page-1", "page-2", "page-3", "page-4"]);
    assert.equal(store.lists(), 5);
    // Without a name, the newest is fetched even when it is on the last page.
    const r = await fetchBackup({ target: t, dir: newDir() });
    assert.equal(r.manifest.file, "backup_20260105_000000.pgdump");
  } finally {
    store.close();
  }
});

test("a listing in pages with a key: the signed copies of every page are inspected, the newest fetched", async () => {
  const store = await pagingStore(1);
  try {
    const t = target(store.endpoint);
    const direct = { ...t, endpoint: server.endpoint };
    await upload(direct, "backup_20260101_000000.pgdump", key, "2026-01-01T00:00:00.000Z");
    const newest = await upload(direct, "backup_20260102_000000.pgdump", key, "2026-01-02T00:00:00.000Z");
    assert.deepEqual(await inspected(t), [
      ["backup_20260102_000000.pgdump", "ok"],
      ["backup_20260101_000000.pgdump", "ok"],
    ]);
    const r = await fetchBackup({ target: t, dir: newDir(), encryptionKey: key });
    assert.ok(readFileSync(r.file).equals(newest.bytes));
  } finally {
    store.close();
  }
});

test("a name with .enc inside it is not a backup name: refused before anything is read", async () => {
  await assert.rejects(
    fetchBackup({ target: target(), dir: newDir(), name: "backup_20260101_000000.enc.pgdump" }),
    fails(2, /^"backup_20260101_000000\.enc\.pgdump" is not a backup name/),
  );
});

test("with a key, an encrypted object altered in the store: refused as altered (exit 1), nothing left", async () => {
  const t = target();
  const name = "backup_20260101_000000.pgdump";
  await upload(t, name, key);
  // Same length, last byte (the tag) flipped, so only the authentication can tell.
  const s3 = s3Client(t);
  let ct: Buffer;
  try {
    const { GetObjectCommand } = await import("@aws-sdk/client-s3");
    const got = await s3.send(new GetObjectCommand({ Bucket: "b", Key: `${t.prefix}${name}.enc` }));
    ct = Buffer.from(await got.Body!.transformToByteArray());
  } finally {
    s3.destroy();
  }
  ct[ct.length - 1] ^= 1;
  await plant(t, `${name}.enc`, ct);
  const d = newDir();
  await assert.rejects(
    fetchBackup({ target: t, dir: d, name, encryptionKey: key }),
    fails(1, /^encrypted backup failed authentication: wrong key or altered data$/),
  );
  assert.deepEqual(readdirSync(d), []);
});

test("with a key, fetching a plaintext copy by name is refused; an unsigned one only with --trust-unsigned, which is said", async () => {
  const t = target();
  await upload(t, "backup_20260101_000000.pgdump");
  const d = newDir();
  await assert.rejects(
    fetchBackup({ target: t, dir: d, name: "backup_20260101_000000.pgdump", encryptionKey: key }),
    fails(1, /backup_20260101_000000\.pgdump is not encrypted, and SAFE_DEPLOY_BACKUP_KEY is set/),
  );
  assert.deepEqual(readdirSync(d), []);

  const name = "backup_20260102_000000.pgdump";
  const legacy = await upload(t, name, key);
  const s3 = s3Client(t);
  let signed: { auth?: unknown };
  try {
    const { GetObjectCommand } = await import("@aws-sdk/client-s3");
    const got = await s3.send(new GetObjectCommand({ Bucket: "b", Key: `${t.prefix}${name}.json` }));
    signed = JSON.parse(await got.Body!.transformToString());
  } finally {
    s3.destroy();
  }
  const { auth: _auth, ...unsigned } = signed;
  await plant(t, `${name}.json`, JSON.stringify(unsigned));
  await assert.rejects(
    fetchBackup({ target: t, dir: newDir(), name, encryptionKey: key }),
    fails(1, /is not signed .*`--trust-unsigned backup_20260102_000000\.pgdump`$/),
  );
  const warned: string[] = [];
  const r = await fetchBackup({
    target: t,
    dir: newDir(),
    name,
    encryptionKey: key,
    trustUnsigned: name,
    warn: (l) => warned.push(l),
  });
  assert.ok(readFileSync(r.file).equals(legacy.bytes));
  assert.deepEqual(warned, [
    "accepting the unsigned manifest of backup_20260102_000000.pgdump as told by `--trust-unsigned`",
  ]);
  // A signed one says nothing of the kind.
  const quiet: string[] = [];
  await upload(t, "backup_20260103_000000.pgdump", key);
  await fetchBackup({
    target: t,
    dir: newDir(),
    name: "backup_20260103_000000.pgdump",
    encryptionKey: key,
    warn: (l) => quiet.push(l),
  });
  assert.deepEqual(quiet, []);
});

test("a manifest that is JSON but not an object, or whose offsite key is not a string: refused as not the manifest or not encrypted", async () => {
  const t = target();
  await plant(t, "backup_20260101_000000.pgdump.json", "null");
  await assert.rejects(
    fetchBackup({ target: t, dir: newDir(), name: "backup_20260101_000000.pgdump" }),
    fails(1, new RegExp(`^s3://b/${t.prefix}backup_20260101_000000\\.pgdump\\.json is not the manifest of`)),
  );
  // Listed with a key: the refused entries name the object the manifest is about, not a planted value.
  const listedAt = target();
  await upload(listedAt, "backup_20260102_000000.pgdump", key);
  const name = "backup_20260103_000000.pgdump";
  const { m } = await upload(listedAt, name, key);
  await plant(
    listedAt,
    `${name}.json`,
    JSON.stringify({ ...m, offsite: { key: 5, encryption: "aes-256-gcm" } }),
  );
  assert.deepEqual(await inspected(listedAt), [
    ["backup_20260102_000000.pgdump", "ok"],
    [name, notEncrypted(listedAt, name)],
  ]);
});

test("a store that refuses to read a manifest: the listing with a key fails naming it (exit 3), not a refused entry", async () => {
  const store = await startProxy((req, res) =>
    req.method === "GET" && /\.json(\?|$)/.test(req.url!) ? accessDenied(res) : "forward",
  );
  try {
    const t = target(store.endpoint);
    await upload({ ...t, endpoint: server.endpoint }, "backup_20260101_000000.pgdump", key);
    await assert.rejects(
      inspectOffsite(t, key),
      fails(
        3,
        new RegExp(
          `^reading s3://b/${t.prefix}backup_20260101_000000\\.pgdump\\.json failed: Access Denied \\(AccessDenied\\)`,
        ),
      ),
    );
  } finally {
    store.close();
  }
});

test("an object the store answers 404 without a body for, or cuts mid-download: said which (exit 2 or 3), nothing left", async () => {
  let mode: "404" | "cut" = "404";
  const store = await startProxy((req, res) => {
    if (req.method !== "GET" || !/\.pgdump(\?|$)/.test(req.url!)) return "forward";
    if (mode === "404") {
      res.writeHead(404).end();
      return "answered";
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": "3000" });
    res.write(Buffer.alloc(1000), () => res.destroy());
    return "answered";
  });
  try {
    const t = target(store.endpoint);
    const name = "backup_20260101_000000.pgdump";
    await upload({ ...t, endpoint: server.endpoint }, name);
    const d = newDir();
    await assert.rejects(
      fetchBackup({ target: t, dir: d, name }),
      fails(
        2,
        new RegExp(`^s3://b/${t.prefix}${name} does not exist; \`backup fetch --list\` shows what is there$`),
      ),
    );
    mode = "cut";
    await assert.rejects(
      fetchBackup({ target: t, dir: d, name }),
      fails(3, new RegExp(`^downloading s3://b/${t.prefix}${name} failed: `)),
    );
    assert.deepEqual(readdirSync(d), []);
  } finally {
    store.close();
  }
});

test("into a directory that does not exist yet: made 0700; the download goes to a hidden temp file named after the backup", async () => {
  const t = target();
  const name = "backup_20260101_000000.pgdump";
  const { bytes } = await upload(t, name);
  const d = join(newDir(), "a", "b");
  const during: string[][] = [];
  const r = await fetchBackup({ target: t, dir: d, onProgress: () => during.push(readdirSync(d)) });
  assert.equal(statSync(d).mode & 0o777, 0o700);
  assert.ok(readFileSync(r.file).equals(bytes));
  assert.ok(during.length > 0);
  for (const seen of during) {
    assert.equal(seen.length, 1, String(seen));
    assert.match(seen[0], /^\.backup_20260101_000000\.pgdump\.tmp-[0-9a-f]{8}$/);
  }
});

test("a file that appears under the name during the download is kept; the fetch says so (exit 2), no temp file left", async () => {
  const t = target();
  const name = "backup_20260101_000000.pgdump";
  await upload(t, name);
  const d = newDir();
  let once = false;
  await assert.rejects(
    fetchBackup({
      target: t,
      dir: d,
      onProgress: () => {
        if (!once) writeFileSync(join(d, name), "mine");
        once = true;
      },
    }),
    fails(2, new RegExp(`^${d}/${name} already exists; fetch into another \`--dir\`$`)),
  );
  assert.deepEqual(readdirSync(d), [name]);
  assert.equal(readFileSync(join(d, name), "utf8"), "mine");
});

test("without a key, a manifest that says its copy is encrypted is believed whatever the object's name: the key is asked for", async () => {
  const t = target();
  const name = "backup_20260101_000000.pgdump";
  const { m } = await upload(t, name);
  await plant(
    t,
    `${name}.json`,
    JSON.stringify({ ...m, offsite: { key: `${t.prefix}${name}`, encryption: "aes-256-gcm" } }),
  );
  const d = newDir();
  await assert.rejects(
    fetchBackup({ target: t, dir: d, name }),
    fails(2, new RegExp(`^s3://b/${t.prefix}${name} is encrypted: set SAFE_DEPLOY_BACKUP_KEY`)),
  );
  assert.deepEqual(readdirSync(d), []);
});

test("listed with a key, a manifest without its offsite part is refused as not encrypted, the listing goes on", async () => {
  const t = target();
  const name = "backup_20260101_000000.pgdump";
  const { m } = await upload(t, name);
  await plant(t, `${name}.json`, JSON.stringify(m));
  await upload(t, "backup_20260102_000000.pgdump", key);
  assert.deepEqual(await inspected(t), [
    ["backup_20260102_000000.pgdump", "ok"],
    [name, notEncrypted(t, name)],
  ]);
});

test("listed with a key, a refused backup is shown under the key it was listed at, whatever its manifest lacks", async () => {
  const t = target();
  // A manifest without its offsite part, and a plaintext object whose manifest never arrived.
  const lost = "backup_20260101_000000.pgdump";
  const { m } = await upload(t, lost);
  await plant(t, `${lost}.json`, JSON.stringify(m));
  const orphan = "backup_20260102_000000.pgdump";
  await plant(t, orphan, randomBytes(10));
  assert.deepEqual(
    (await inspectOffsite(t, key)).map((e) => [e.name, e.key]),
    [
      [orphan, `${t.prefix}${orphan}`],
      [lost, `${t.prefix}${lost}`],
    ],
  );
});

test("no file descriptor is left open on the fetched file or its temp file, fetched or refused", async () => {
  const t = target();
  const name = "backup_20260101_000000.pgdump";
  const { m } = await upload(t, name);
  const open = (d: string) =>
    readdirSync("/proc/self/fd").filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith(d);
      } catch {
        return false; // closed between the read and the readlink (the directory's own descriptor)
      }
    });
  const d = newDir();
  await fetchBackup({ target: t, dir: d });
  assert.deepEqual(open(d), []);
  await plant(t, `${name}.json`, JSON.stringify({ ...m, sha256: "0".repeat(64) }));
  const refused = newDir();
  await assert.rejects(fetchBackup({ target: t, dir: refused }), /does not match its manifest's sha256/);
  assert.deepEqual(open(refused), []);
});

test("with a key: the refused copies are named in one warning, comma separated; none refused, no warning", async () => {
  const t = target();
  await upload(t, "backup_20260101_000000.pgdump");
  await upload(t, "backup_20260102_000000.pgdump");
  await upload(t, "backup_20260103_000000.pgdump", key);
  const warned: string[] = [];
  const r = await fetchBackup({ target: t, dir: newDir(), encryptionKey: key, warn: (l) => warned.push(l) });
  assert.equal(r.manifest.file, "backup_20260103_000000.pgdump");
  assert.deepEqual(warned, [
    "ignored 2 off-site backup(s) not encrypted and signed with SAFE_DEPLOY_BACKUP_KEY (`backup fetch --list` says why): backup_20260102_000000.pgdump, backup_20260101_000000.pgdump",
  ]);
  const clean = target();
  await upload(clean, "backup_20260101_000000.pgdump", key);
  const quiet: string[] = [];
  await fetchBackup({ target: clean, dir: newDir(), encryptionKey: key, warn: (l) => quiet.push(l) });
  assert.deepEqual(quiet, []);
});

test("a directory whose filesystem refuses hard links: named with the fix (exit 2), no temp file left", async () => {
  const t = target();
  const name = "backup_20260101_000000.pgdump";
  await upload(t, name);
  const d = newDir();
  // The file layer fetch.ts calls through: link refused as on FAT or exFAT.
  const fsp = require("node:fs/promises") as Record<string, unknown>;
  const link = fsp.link;
  fsp.link = async () => {
    throw Object.assign(new Error("EPERM: operation not permitted, link"), { code: "EPERM" });
  };
  try {
    await assert.rejects(
      fetchBackup({ target: t, dir: d }),
      fails(
        2,
        new RegExp(
          `^${d} is on a filesystem that refuses hard links \\(EPERM\\): .*choose a backup directory`,
        ),
      ),
    );
  } finally {
    fsp.link = link;
  }
  assert.deepEqual(readdirSync(d), []);
});

test("a backup already in the directory is refused before anything is downloaded", async () => {
  const t = target();
  const name = "backup_20260101_000000.pgdump";
  await upload(t, name);
  const d = newDir();
  writeFileSync(join(d, name), "mine");
  const progress: number[] = [];
  await assert.rejects(
    fetchBackup({ target: t, dir: d, onProgress: (b) => progress.push(b) }),
    fails(2, /already exists; fetch into another `--dir`$/),
  );
  assert.deepEqual(progress, [], "nothing downloaded");
  assert.deepEqual(readdirSync(d), [name]);
  assert.equal(readFileSync(join(d, name), "utf8"), "mine");
});
