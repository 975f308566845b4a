import * as fs from "node:fs";
import * as path from "node:path";
import { redact } from "./redact";

/** Levels of the users' log format (`[YYYY-MM-DD HH:MM:SS] LEVEL: message`); notifications add their types. */
export type LogLevel = "STEP" | "INFO" | "SUCCESS" | "WARNING" | "ERROR" | "ROLLBACK" | (string & {});

/** Extra machine-readable fields of a log entry (shown in `--json` mode only). */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** The logger every engine function takes; redaction happens here, never at call sites. */
export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void;
  step(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  success(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** Registers a literal secret: it is masked in every later line, message and field. */
  addSecret(secret: string | undefined): void;
  /** Masks every registered secret and URL password in `text` (for error messages leaving the tool). */
  redact(text: string): string;
}

/** Where and how a logger writes. */
export interface LoggerOptions {
  /**
   * File the users' format is appended to, e.g. `logs/update.log`: created 0600 in a 0700 directory. When
   * it cannot be written, the logger says so once on the console and goes on without it.
   */
  file?: string;
  /** Stream for console output (e.g. process.stderr); omitted means no console output. */
  console?: { write(chunk: string): unknown };
  /** Console output as one JSON object per line (`--json`); the file keeps the users' format. */
  json?: boolean;
  secrets?: readonly (string | undefined)[];
  /** Injected clock, so tests can pin the time. */
  now?: () => Date;
  /**
   * When the file is at least this many bytes as a run opens it, it becomes `FILE.1` (`FILE.1` becomes
   * `FILE.2`, ... up to `rotateKeep`; the oldest goes). Default 10 MiB and 5: hook and migration output
   * would otherwise grow the log for ever.
   */
  rotateBytes?: number;
  rotateKeep?: number;
}

/** Shifts `file` to `file.1` (and so on up to `keep`) when it has reached `max` bytes; never throws. */
export function rotateLog(file: string, max = 10 << 20, keep = 5): void {
  try {
    if (fs.statSync(file).size < max) return;
    for (let i = keep - 1; i >= 1; i--) {
      try {
        fs.renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      } catch {
        // no such generation yet
      }
    }
    fs.renameSync(file, `${file}.1`);
  } catch {
    // no log yet, or it cannot be moved: appending to it is still better than no log
  }
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** `YYYY-MM-DD HH:MM:SS` in local time, as the users' shell scripts printed with `date`. */
export function formatTimestamp(d: Date): string {
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** The users' line format; a multi-line message becomes one prefixed line each, so `grep LEVEL` sees all. */
export function formatLine(time: Date, level: LogLevel, message: string): string {
  const lines = message.replace(/\r\n/g, "\n").replace(/\n+$/, "").split("\n");
  const prefix = `[${formatTimestamp(time)}] ${level}: `;
  return lines.map((l) => prefix + l).join("\n") + "\n";
}

/** One JSON object per entry (`--json`): time in ISO-8601 UTC, level, message, then the fields. */
export function formatJsonLine(time: Date, level: LogLevel, message: string, fields: LogFields = {}): string {
  const extra = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  return JSON.stringify({ ...extra, time: time.toISOString(), level, message }) + "\n";
}

function redactFields(fields: LogFields | undefined, secrets: readonly string[]): LogFields | undefined {
  if (!fields) return undefined;
  return Object.fromEntries(
    Object.entries(fields).map(([k, v]) => [k, typeof v === "string" ? redact(v, secrets) : v]),
  );
}

/**
 * The ways a secret shows up in output: as is, URL-encoded (in a query string or a URL someone built),
 * JSON-escaped (in a payload or a tool's JSON output) and, when it spans lines (a PEM key), line by line,
 * since output is logged one line at a time.
 */
export function secretForms(secret: string): string[] {
  const forms = [secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)];
  if (/[\r\n]/.test(secret)) forms.push(...secret.split(/\r?\n/).map((l) => l.trim()));
  return [...new Set(forms.filter((f) => f.length >= 4))];
}

/** Creates a logger writing the users' format to a file and, optionally, to a console stream. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const secrets: string[] = [];
  const now = opts.now ?? (() => new Date());
  let file = opts.file;
  let opened = false;
  const toConsole = (time: Date, level: LogLevel, text: string, fields?: LogFields) =>
    opts.console?.write(
      opts.json ? formatJsonLine(time, level, text, fields) : formatLine(time, level, text),
    );
  // A log that cannot be written (read-only logs/, disk full) must never stop a deploy or a rollback.
  const toFile = (line: string) => {
    if (!file) return;
    try {
      if (!opened) {
        // The log holds hook and migration output: its owner's only, as the hook logs are.
        fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
        rotateLog(file, opts.rotateBytes, opts.rotateKeep);
        const fd = fs.openSync(file, "a", 0o600);
        try {
          // A log written by an older version was 0644.
          fs.fchmodSync(fd, 0o600);
        } catch {
          // another user's file keeps its mode
        }
        fs.closeSync(fd);
        opened = true;
      }
      fs.appendFileSync(file, line);
    } catch (e) {
      const failed = file;
      file = undefined;
      const why = redact((e as Error).message, secrets);
      toConsole(now(), "WARNING", `cannot write the log file ${failed} (${why}); going on without it`);
    }
  };
  const logger: Logger = {
    log(level, message, fields) {
      const time = now();
      const text = redact(message, secrets);
      const clean = redactFields(fields, secrets);
      // Synchronous append: lines land in order and survive a crash or SIGINT right after.
      toFile(formatLine(time, level, text));
      toConsole(time, level, text, clean);
    },
    step: (m, f) => logger.log("STEP", m, f),
    info: (m, f) => logger.log("INFO", m, f),
    success: (m, f) => logger.log("SUCCESS", m, f),
    warn: (m, f) => logger.log("WARNING", m, f),
    error: (m, f) => logger.log("ERROR", m, f),
    addSecret(secret) {
      if (!secret) return;
      for (const s of secretForms(secret)) if (!secrets.includes(s)) secrets.push(s);
    },
    redact: (text) => redact(text, secrets),
  };
  for (const s of opts.secrets ?? []) logger.addSecret(s);
  return logger;
}

/** A logger that drops everything but still redacts: the default when a caller passes none. */
export function silentLogger(): Logger {
  return createLogger({});
}
