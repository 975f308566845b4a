// The lint baseline: findings a team accepted once (years of applied history), kept in the repository so
// later lints judge only what is new (issue 21). Works for Python and JS/TS migrations, where a
// `-- safe-deploy: allow` comment cannot go.
import { readFile } from "node:fs/promises";
import { basename, dirname, relative, resolve, sep } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { ConfigError } from "../errors";

/** What the baseline reads of a lint finding (`LintFinding` of lint.ts, which imports this file). */
export interface BaselineFinding {
  rule: string;
  file: string;
  message: string;
  /** The migration's file when `file` is not one (an Alembic revision). */
  source?: string;
  fingerprint?: string;
}

/** Where `lint --write-baseline` writes and every lint looks, relative to the project directory. */
export const DEFAULT_BASELINE = ".safe-deploy/lint-baseline.json";

/** One accepted finding: the rule, the migration file, the statement's fingerprint. */
export interface BaselineEntry {
  rule: string;
  /** The migration file, relative to the project directory, `/`-separated. */
  file: string;
  /** the finding's fingerprint (lint.ts): survives reformatting and moved lines, not a changed statement. */
  fingerprint: string;
  /** The finding's message when it was accepted, for the reader of the file (not matched). */
  message?: string;
}

/** The baseline file's content. */
export interface Baseline {
  version: 1;
  entries: BaselineEntry[];
}

/**
 * The project directory of a baseline file: the parent of its `.safe-deploy/` directory, else the
 * directory holding it. Entries' paths are relative to it, so lint from any directory matches them.
 */
export function baselineRoot(baselineFile: string): string {
  const dir = dirname(resolve(baselineFile));
  return basename(dir) === ".safe-deploy" ? dirname(dir) : dir;
}

/** The finding's migration file relative to `root`, `/`-separated (an Alembic finding: its revision file). */
export function findingFile(f: BaselineFinding, root: string): string {
  const file = f.source ?? f.file;
  return relative(root, resolve(file)).split(sep).join("/");
}

const keyOf = (e: { rule: string; file: string; fingerprint: string }) =>
  `${e.rule}\u0000${e.file}\u0000${e.fingerprint}`;

/** The baseline accepting every finding of `findings` (sorted, so the file diffs well). Pure. */
export function baselineOf(findings: BaselineFinding[], root: string): Baseline {
  const entries = findings
    .filter((f) => f.fingerprint)
    .map((f) => ({
      rule: f.rule,
      file: findingFile(f, root),
      fingerprint: f.fingerprint!,
      message: f.message,
    }))
    .sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
  return { version: 1, entries };
}

/**
 * The findings the baseline does not accept. Each entry accepts one finding with the same rule, file and
 * fingerprint (a statement repeated in a file needs as many entries). Pure.
 */
export function applyBaseline<F extends BaselineFinding>(
  findings: F[],
  entries: BaselineEntry[],
  root: string,
): F[] {
  const left = new Map<string, number>();
  for (const e of entries) left.set(keyOf(e), (left.get(keyOf(e)) ?? 0) + 1);
  return findings.filter((f) => {
    if (!f.fingerprint) return true;
    const k = keyOf({ rule: f.rule, file: findingFile(f, root), fingerprint: f.fingerprint });
    const n = left.get(k) ?? 0;
    if (n === 0) return true;
    left.set(k, n - 1);
    return false;
  });
}

/** The entries of a baseline file; undefined when there is none. A damaged file is a ConfigError. */
export async function readBaseline(file: string): Promise<BaselineEntry[] | undefined> {
  const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined;
    throw e;
  });
  if (text === undefined) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(
      `the lint baseline ${file} is not JSON (${(e as Error).message}): restore it from git or write it again with \`safe-deploy lint --write-baseline\``,
    );
  }
  const entries = (data as Partial<Baseline> | null)?.entries;
  const ok =
    Array.isArray(entries) &&
    entries.every(
      (e: Partial<BaselineEntry>) =>
        typeof e?.rule === "string" && typeof e.file === "string" && typeof e.fingerprint === "string",
    );
  if (!ok)
    throw new ConfigError(
      `the lint baseline ${file} has no valid \`entries\` (each needs rule, file, fingerprint): restore it from git or write it again with \`safe-deploy lint --write-baseline\``,
    );
  return entries as BaselineEntry[];
}

/** Writes the baseline accepting `findings` (atomically: a reader never sees half a file). */
export async function writeBaseline(file: string, findings: BaselineFinding[]): Promise<Baseline> {
  const { mkdir } = await import("node:fs/promises");
  const baseline = baselineOf(findings, baselineRoot(file));
  await mkdir(dirname(resolve(file)), { recursive: true });
  await writeFileAtomic(file, JSON.stringify(baseline, null, 2) + "\n");
  return baseline;
}

/** `accept` for `lintMigrations` from a baseline file, or undefined when the file does not exist. */
export async function baselineFilter(
  file: string,
): Promise<(<F extends BaselineFinding>(findings: F[]) => F[]) | undefined> {
  const entries = await readBaseline(file);
  if (!entries) return undefined;
  const root = baselineRoot(file);
  return <F extends BaselineFinding>(findings: F[]) => applyBaseline(findings, entries, root);
}
