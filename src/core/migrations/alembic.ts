import { execFile } from "node:child_process";
import { relative, resolve, sep } from "node:path";
import { promisify } from "node:util";
import { redact, urlSecrets } from "../log/redact";

/**
 * The URL as SQLAlchemy wants it: SQLAlchemy 1.4 dropped the `postgres` dialect name (`Can't load plugin:
 * sqlalchemy.dialects:postgres`), yet `postgres://` is the usual form (Heroku, libpq, safe-deploy's own
 * examples). Issue 21.
 */
export function sqlalchemyUrl(url: string): string {
  return url.replace(/^postgres:\/\//, "postgresql://");
}

/** One revision of `alembic history --verbose`, oldest first in {@link alembicRevisions}. */
export interface AlembicRevision {
  revision: string;
  /** Parent revisions: none for the first, two or more for a merge point. */
  down: string[];
  /** The revision file, as Alembic prints it (absolute). */
  file: string;
  head: boolean;
}

/** Parses `alembic history --verbose`: blocks of `Rev:`, `Parent:` or `Merges:`, `Path:`; newest first. */
export function parseAlembicHistory(text: string): AlembicRevision[] {
  const out: AlembicRevision[] = [];
  for (const block of text.split(/\n(?=Rev: )/)) {
    const rev = /^Rev: (\S+)(.*)$/m.exec(block);
    const file = /^Path: (.+)$/m.exec(block)?.[1]?.trim();
    if (!rev || !file) continue;
    const parents = /^(?:Parent|Merges): (.+)$/m.exec(block)?.[1] ?? "<base>";
    out.push({
      revision: rev[1],
      down: parents
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s && s !== "<base>"),
      file,
      head: /\(head\)/.test(rev[2]),
    });
  }
  return out;
}

/** What runs `alembic`: the environment Alembic gets and where it runs. */
export interface AlembicRun {
  /** Directory holding alembic.ini. */
  workDir: string;
  /** Added to the environment (e.g. DATABASE_URL); a postgres:// DATABASE_URL is given as postgresql://. */
  env?: Record<string, string>;
}

function alembicEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (/^postgres:\/\//.test(v)) out[k] = sqlalchemyUrl(v);
  return out;
}

/** Runs `alembic ARGS`; never throws for a non-zero exit: `code` says it, output is redacted. */
export async function runAlembic(
  args: string[],
  o: AlembicRun,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const secrets = Object.values(o.env ?? {}).flatMap((v) =>
    /^postgres(ql)?:\/\//.test(v) ? urlSecrets(v) : [],
  );
  try {
    const r = await promisify(execFile)("alembic", args, {
      cwd: o.workDir,
      env: alembicEnv(o.env),
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout: redact(r.stdout, secrets), stderr: redact(r.stderr, secrets) };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof err.code === "number" ? err.code : 127,
      stdout: redact(err.stdout ?? "", secrets),
      stderr: redact(err.stderr || err.message, secrets),
    };
  }
}

/** Every revision of the script directory, oldest first (parents before children). */
export async function alembicRevisions(o: AlembicRun): Promise<AlembicRevision[]> {
  const r = await runAlembic(["history", "--verbose"], o);
  if (r.code !== 0)
    throw new Error(
      `\`alembic history\` failed in ${o.workDir} (exit ${r.code}): ${lastLine(r.stderr)}; check alembic.ini and env.py there`,
    );
  const newestFirst = parseAlembicHistory(r.stdout);
  // Alembic lists newest first; a stable topological order keeps branches readable.
  const byRev = new Map(newestFirst.map((x) => [x.revision, x]));
  const done = new Set<string>();
  const out: AlembicRevision[] = [];
  const visit = (x: AlembicRevision) => {
    if (done.has(x.revision)) return;
    done.add(x.revision);
    for (const d of x.down) {
      const p = byRev.get(d);
      if (p) visit(p);
    }
    out.push(x);
  };
  for (const x of [...newestFirst].reverse()) visit(x);
  return out;
}

/** The last meaningful line of a Python traceback (`AttributeError: ...`), or the whole text trimmed. */
function lastLine(text: string): string {
  const lines = text
    .trim()
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("(Background on this error"));
  const error = lines.filter((l) => /^[\w.]+(Error|Exception|Exit)\b.*:/.test(l)).pop();
  return error ?? lines[lines.length - 1] ?? "(no output)";
}

/** One revision rendered offline: its SQL, or why it cannot be (a revision that needs a connection). */
export interface RenderedRevision {
  /** The revision file relative to `workDir`, `/`-separated (`versions/a1_create.py`): lint baselines key on it. */
  file: string;
  /** The id alembic_version holds. */
  revision: string;
  sql?: string;
  error?: string;
}

/**
 * Each revision's offline SQL (`alembic upgrade PARENT:REV --sql`), one revision at a time, so a revision
 * that cannot be rendered offline (`op.get_bind()` reading rows: the connection is None) is named with
 * its error and the others still render (issue 21; rendering all at once failed on the first such one).
 * Offline mode never connects: a placeholder DATABASE_URL only picks the dialect when none is set.
 */
export async function renderAlembicRevisions(
  workDir: string,
  opts: { env?: Record<string, string>; concurrency?: number } = {},
): Promise<RenderedRevision[]> {
  const o: AlembicRun = {
    workDir,
    env: { DATABASE_URL: "postgresql://offline@127.0.0.1/offline", ...opts.env },
  };
  const revs = await alembicRevisions(o);
  const out: RenderedRevision[] = new Array(revs.length);
  let next = 0;
  const worker = async () => {
    while (next < revs.length) {
      const i = next++;
      const r = revs[i];
      const range = r.down.length ? `${r.down.join(",")}:${r.revision}` : r.revision;
      const res = await runAlembic(["upgrade", range, "--sql"], o);
      const where = [...res.stderr.matchAll(/File "([^"]+)", line (\d+), in (upgrade|\w+)/g)]
        .filter((m) => m[1] === r.file)
        .pop();
      const file = relative(resolve(workDir), r.file).split(sep).join("/");
      out[i] =
        res.code === 0
          ? { file, revision: r.revision, sql: res.stdout }
          : {
              file,
              revision: r.revision,
              error: `not checkable offline: ${lastLine(res.stderr)}${where ? ` (line ${where[2]})` : ""}; it needs a database connection (op.get_bind()), so lint cannot read its SQL: rehearse it instead (\`safe-deploy rehearse\`)`,
            };
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 2) }, worker));
  return out;
}

/** The script heads (`alembic heads`): what a database at the latest revision(s) holds. */
export async function alembicHeads(o: AlembicRun): Promise<string[]> {
  const r = await runAlembic(["heads"], o);
  if (r.code !== 0)
    throw new Error(
      `\`alembic heads\` failed in ${o.workDir} (exit ${r.code}): ${lastLine(r.stderr)}; check alembic.ini and env.py there`,
    );
  return headsIn(r.stdout);
}

/** The revisions `alembic heads` prints; a head on a labelled branch reads `r5 (feat) (head)`. */
export function headsIn(output: string): string[] {
  return [...output.matchAll(/^(\w+)(?: \([^)]*\))* \(head\)/gm)].map((m) => m[1]);
}

/**
 * The database Alembic's env.py actually connects to, from `alembic current --verbose` ("Current
 * revision(s) for postgresql://user:***@host:port/db:"), and the revisions it reads there; undefined
 * `url` when env.py does not say (a custom one), so the caller falls back to comparing revisions.
 */
export async function alembicTarget(
  o: AlembicRun,
): Promise<{ url?: string; revisions: string[]; code: number; error?: string }> {
  const r = await runAlembic(["current", "--verbose"], o);
  if (r.code !== 0) return { revisions: [], code: r.code, error: lastLine(r.stderr) };
  const url = /^Current revision\(s\) for (\S+?):?$/m.exec(r.stdout)?.[1];
  const revisions = [...r.stdout.matchAll(/^Rev: (\w+)/gm)].map((m) => m[1]);
  return { url, revisions, code: 0 };
}

/** host:port/database of a URL (defaults as libpq), to tell whether two URLs name the same database. */
export function databaseAddress(url: string): string {
  const u = new URL(url.replace(/^[a-z0-9+]+:\/\//i, "postgresql://"));
  const host = decodeURIComponent(u.hostname || "localhost").replace(/^\[|\]$/g, "");
  const local = ["localhost", "127.0.0.1", "::1"].includes(host) ? "localhost" : host;
  return `${local}:${u.port || "5432"}/${decodeURIComponent(u.pathname.replace(/^\//, ""))}`;
}
