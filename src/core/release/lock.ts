import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import writeFileAtomic from "write-file-atomic";
import { CheckFailedError } from "../errors";

/** What a lock file holds: who deploys, where, since and until when. */
export interface LockInfo {
  /** Random token: only the handle that created the lock renews or releases it without `force`. */
  id: string;
  stack: string;
  owner: string;
  host: string;
  pid: number;
  command: string;
  startedAt: string;
  expiresAt: string;
}

/** Where the lock of `stack` lives, and who is asking. */
export interface LockOptions {
  /** The tool's state directory (default `.safe-deploy`). */
  stateDir: string;
  stack: string;
  command?: string;
  /** Lifetime in ms; past it the lock is stale. The deploy renews it while it runs. */
  ttlMs?: number;
  owner?: string;
  host?: string;
  pid?: number;
  now?: () => Date;
  /** Told when a stale lock is taken over. */
  warn?: (message: string) => void;
}

/** A held lock. */
export interface LockHandle {
  readonly info: LockInfo;
  readonly file: string;
  /** Pushes the expiry `ttlMs` from now; throws if the lock is no longer ours. */
  renew(ttlMs?: number): Promise<void>;
  /** Removes the lock if it is still ours; a no-op otherwise (it was forced away or taken over). */
  release(): Promise<void>;
}

/** What `lockStatus` finds. */
export type LockState =
  | { state: "free"; file: string }
  | { state: "held"; file: string; info: LockInfo }
  | { state: "stale"; file: string; info: LockInfo; reason: string };

/** Default lifetime: long enough for a backup, migration, cutover, soak and rollback. */
export const DEFAULT_LOCK_TTL_MS = 2 * 60 * 60 * 1000;

/** `locks/<stack>.json`; org/project/stack names are flattened so the file stays in one directory. */
export function lockPath(stateDir: string, stack: string): string {
  return path.join(stateDir, "locks", `${encodeURIComponent(stack)}.json`);
}

function currentUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? "unknown";
  }
}

/** Is `pid` alive on this machine? (EPERM means it exists but belongs to someone else.) */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Why a lock may be taken over, or undefined while it is live. Pure apart from the injected pid probe. */
export function staleReason(
  info: LockInfo,
  now: Date,
  host: string,
  alive: (pid: number) => boolean = pidAlive,
): string | undefined {
  const expires = Date.parse(info.expiresAt);
  if (!Number.isFinite(expires)) return "its expiry is unreadable";
  if (expires <= now.getTime()) return `it expired at ${utc(info.expiresAt)}`;
  if (info.host === host && !alive(info.pid)) return `process ${info.pid} on ${host} is no longer running`;
  return undefined;
}

/** `2026-11-23 03:00:00 UTC`: unambiguous for people on other machines. */
function utc(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, " UTC");
}

/** The sentence naming a lock's holder: who, where, what, since when, until when. */
export function describeHolder(info: LockInfo): string {
  return (
    `${info.owner} on ${info.host} (pid ${info.pid}, \`${info.command}\`) ` +
    `since ${utc(info.startedAt)}, until ${utc(info.expiresAt)}`
  );
}

async function readLock(file: string): Promise<LockInfo | undefined> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  // Unreadable content (not JSON, or JSON that is no lock: `null`, a list) is treated as an expired lock,
  // so it can be taken over with a warning; read as "no lock", it blocked every taker instead.
  const garbage = {
    id: "",
    stack: "",
    owner: "?",
    host: "?",
    pid: 0,
    command: "?",
    startedAt: "?",
    expiresAt: "?",
  };
  try {
    const info = JSON.parse(text) as LockInfo | null;
    return info && typeof info === "object" && !Array.isArray(info) ? info : garbage;
  } catch {
    return garbage;
  }
}

/**
 * Creates `file` holding `content` only if it does not exist, and never visible half-written: write a
 * private temp file, then hard-link it into place (link fails with EEXIST when someone else holds it).
 */
async function createExclusive(file: string, content: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  await fs.promises.writeFile(tmp, content, { flag: "wx" });
  try {
    await fs.promises.link(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    await fs.promises.rm(tmp, { force: true });
  }
}

/** Status of the lock of a stack: free, held, or stale (and why). */
export async function lockStatus(opts: LockOptions): Promise<LockState> {
  const file = lockPath(opts.stateDir, opts.stack);
  const info = await readLock(file);
  if (!info) return { state: "free", file };
  const reason = staleReason(info, (opts.now ?? (() => new Date()))(), opts.host ?? os.hostname());
  return reason ? { state: "stale", file, info, reason } : { state: "held", file, info };
}

/**
 * Takes the per-stack deploy lock. A live lock held by anyone (even this user) refuses with a
 * CheckFailedError naming the holder; a stale one is taken over with a warning.
 */
export async function acquireLock(opts: LockOptions): Promise<LockHandle> {
  if (!opts.stack) throw new CheckFailedError("`--stack` is required to take the deploy lock");
  const now = opts.now ?? (() => new Date());
  const ttl = opts.ttlMs ?? DEFAULT_LOCK_TTL_MS;
  const host = opts.host ?? os.hostname();
  const file = lockPath(opts.stateDir, opts.stack);
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const start = now();
  const info: LockInfo = {
    id: randomBytes(8).toString("hex"),
    stack: opts.stack,
    owner: opts.owner ?? currentUser(),
    host,
    pid: opts.pid ?? process.pid,
    command: opts.command ?? "safe-deploy",
    startedAt: start.toISOString(),
    expiresAt: new Date(start.getTime() + ttl).toISOString(),
  };
  const content = JSON.stringify(info, null, 2) + "\n";
  for (let round = 0; round < 5; round++) {
    if (await createExclusive(file, content)) return handle(file, info, now);
    const held = await readLock(file);
    if (!held) continue; // released between our attempt and the read: try again
    const reason = staleReason(held, now(), host);
    if (!reason) {
      throw new CheckFailedError(
        `stack "${opts.stack}" is locked by another deploy: ${describeHolder(held)}. ` +
          `Wait for it to finish (\`safe-deploy lock status --stack ${opts.stack}\`), or if it is dead, ` +
          `run \`safe-deploy lock release --stack ${opts.stack} --force\`.`,
      );
    }
    // Two takers may both see the stale lock: a rename-away of the exact file we read decides it.
    if (await removeIfSame(file, held)) {
      opts.warn?.(
        `taking over the stale deploy lock of stack "${opts.stack}" (${reason}): ${describeHolder(held)}`,
      );
    }
  }
  throw new CheckFailedError(
    `could not take the deploy lock of stack "${opts.stack}" after several tries: another process keeps ` +
      `replacing ${file}. Check \`safe-deploy lock status --stack ${opts.stack}\`.`,
  );
}

/** Moves the lock file aside and deletes it only if it still is the lock we judged; puts it back otherwise. */
async function removeIfSame(file: string, seen: LockInfo): Promise<boolean> {
  const aside = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.old`;
  try {
    await fs.promises.rename(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
  const moved = await readLock(aside);
  if (moved && moved.id === seen.id && moved.startedAt === seen.startedAt) {
    await fs.promises.rm(aside, { force: true });
    return true;
  }
  // We moved a fresh lock someone else just created: restore it unless yet another appeared.
  try {
    await fs.promises.link(aside, file);
  } catch {
    // a newer lock is in place; the one we moved lost anyway
  }
  await fs.promises.rm(aside, { force: true });
  return false;
}

function handle(file: string, initial: LockInfo, now: () => Date): LockHandle {
  let info = initial;
  return {
    get info() {
      return info;
    },
    file,
    async renew(ttlMs = DEFAULT_LOCK_TTL_MS) {
      const current = await readLock(file);
      if (!current || current.id !== info.id) {
        throw new CheckFailedError(
          `the deploy lock of stack "${info.stack}" is no longer held by this process (released by force or ` +
            `taken over); stop and check \`safe-deploy lock status --stack ${info.stack}\`.`,
        );
      }
      info = { ...info, expiresAt: new Date(now().getTime() + ttlMs).toISOString() };
      await writeFileAtomic(file, JSON.stringify(info, null, 2) + "\n");
    },
    async release() {
      const current = await readLock(file);
      if (current && current.id === info.id) await removeIfSame(file, current);
    },
  };
}

/** Options of `releaseLock` (the `lock release` command). */
export interface ReleaseOptions extends LockOptions {
  /** Release a lock held by another user or host (after making sure that deploy is dead). */
  force?: boolean;
}

/**
 * Releases a stack's lock from the command line: allowed to the same user on the same host, to anyone
 * when the lock is stale, or with `force`. Returns what was released (undefined when already free).
 */
export async function releaseLock(opts: ReleaseOptions): Promise<LockInfo | undefined> {
  const st = await lockStatus(opts);
  if (st.state === "free") return undefined;
  const owner = opts.owner ?? currentUser();
  const host = opts.host ?? os.hostname();
  const mine = st.info.owner === owner && st.info.host === host;
  if (st.state === "held" && !mine && !opts.force) {
    throw new CheckFailedError(
      `the deploy lock of stack "${opts.stack}" belongs to ${describeHolder(st.info)}, not to ${owner} on ` +
        `${host}. If that deploy is really dead, run \`safe-deploy lock release --stack ${opts.stack} --force\`.`,
    );
  }
  await removeIfSame(st.file, st.info);
  return st.info;
}
