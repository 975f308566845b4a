import { setTimeout as sleep } from "node:timers/promises";
import { redact } from "../log/redact";
import type { Logger } from "../log/logger";
import { PermanentNotifyError, type NotificationEvent, type Notifier } from "./types";
import { emailNotifier, fileNotifier, slackNotifier, webhookNotifier } from "./channels";

export * from "./types";
export * from "./channels";

/** Retry timing of one notifier. */
export interface RetryPolicy {
  /** Attempts in total (1 = no retry). */
  attempts: number;
  /** Time limit of one attempt in ms. */
  timeoutMs: number;
  /** First pause between attempts in ms; doubled each time up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Defaults: 3 attempts of at most 10 s, 1 s then 2 s apart; `notifyAll`'s deadline still bounds them. */
export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 3,
  timeoutMs: 10_000,
  baseDelayMs: 1000,
  maxDelayMs: 8000,
};

/** Pauses before attempts 2..n: exponential from `baseDelayMs`, capped at `maxDelayMs`. */
export function retryDelays(p: Pick<RetryPolicy, "attempts" | "baseDelayMs" | "maxDelayMs">): number[] {
  const out: number[] = [];
  for (let i = 1; i < Math.max(1, Math.floor(p.attempts)); i++) {
    out.push(Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (i - 1)));
  }
  return out;
}

/** What one notifier did. */
export interface NotifyResult {
  name: string;
  ok: boolean;
  attempts: number;
  /** Redacted reason of the last failure. */
  error?: string;
}

/** Options of `notifyAll`. */
export interface NotifyOptions {
  retry?: Partial<RetryPolicy>;
  /** Overall bound in ms: `notifyAll` resolves by then whatever the notifiers do. */
  deadlineMs?: number;
  logger?: Logger;
}

function reason(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  // A TimeoutError's text is `sendWithRetry`'s, which names the attempt's limit.
  if (e.name === "AbortError") return "aborted at the notification deadline";
  // fetch hides the useful part (ECONNREFUSED, ...) in `cause`.
  const cause = (e as { cause?: unknown }).cause;
  const detail = cause instanceof Error ? `: ${cause.message}` : "";
  return e.message + detail;
}

/**
 * One send, cut after `ms` or when `signal` aborts, whether or not the channel heeds its signal. Its own
 * controller and timer hold strong references: a signal built of `AbortSignal.any` and
 * `AbortSignal.timeout` could be garbage-collected mid-send on Node 20, and its timeout then never fired.
 */
async function attempt(
  n: Notifier,
  event: NotificationEvent,
  ms: number,
  signal: AbortSignal,
): Promise<void> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError")), ms);
  const onAbort = () => ac.abort(signal.reason);
  // `stopped` listens before anything can abort `ac`: an abort fired earlier would never reach it.
  const stopped = new Promise<never>((_, reject) =>
    ac.signal.addEventListener("abort", () => reject(ac.signal.reason), { once: true }),
  );
  stopped.catch(() => {});
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) onAbort();
  try {
    await Promise.race([n.send(event, ac.signal), stopped]);
  } catch (e) {
    throw ac.signal.aborted ? ac.signal.reason : e;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}

/** Sends through one notifier with a per-attempt timeout and retries; never throws. */
export async function sendWithRetry(
  n: Notifier,
  event: NotificationEvent,
  policy: RetryPolicy,
  signal: AbortSignal,
): Promise<NotifyResult> {
  const delays = retryDelays(policy);
  let attempts = 0;
  let last = "not attempted";
  for (;;) {
    attempts++;
    try {
      await attempt(n, event, policy.timeoutMs, signal);
      return { name: n.name, ok: true, attempts };
    } catch (e) {
      last = reason(e);
      if (e instanceof Error && e.name === "TimeoutError") last = `timed out after ${policy.timeoutMs} ms`;
      if (signal.aborted) last = `${last} (notification deadline reached)`;
      if (e instanceof PermanentNotifyError || signal.aborted || attempts > delays.length) break;
    }
    try {
      await sleep(delays[attempts - 1], undefined, { signal });
    } catch {
      last = `${last} (notification deadline reached)`;
      break;
    }
  }
  return { name: n.name, ok: false, attempts, error: redact(last, n.secrets) };
}

/**
 * Sends `event` through every notifier in parallel. Never throws and resolves within `deadlineMs`:
 * a notification must never fail or hold up a deploy or a rollback. Failures are logged (redacted).
 */
export async function notifyAll(
  notifiers: readonly Notifier[],
  event: NotificationEvent,
  opts: NotifyOptions = {},
): Promise<NotifyResult[]> {
  const policy = { ...DEFAULT_RETRY, ...opts.retry };
  const deadlineMs = opts.deadlineMs ?? 30_000;
  for (const n of notifiers) for (const s of n.secrets) opts.logger?.addSecret(s);
  const all = notifiers.flatMap((n) => n.secrets);
  const mask = (t: string) => (opts.logger ? opts.logger.redact(redact(t, all)) : redact(t, all));
  // A message may quote an error that quoted a DATABASE_URL: no channel may carry it.
  const clean: NotificationEvent = {
    ...event,
    message: mask(event.message),
    details: event.details && Object.fromEntries(Object.entries(event.details).map(([k, v]) => [k, mask(v)])),
  };
  const ctl = new AbortController();
  const results: Array<NotifyResult | undefined> = notifiers.map(() => undefined);
  const runs = notifiers.map(async (n, i) => {
    try {
      results[i] = await sendWithRetry(n, clean, policy, ctl.signal);
    } catch (e) {
      results[i] = { name: n.name, ok: false, attempts: 1, error: redact(reason(e), n.secrets) };
    }
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, deadlineMs);
    timer.unref();
  });
  await Promise.race([Promise.all(runs), deadline]);
  clearTimeout(timer);
  ctl.abort();
  const out = results.map(
    (r, i) =>
      r ?? {
        name: notifiers[i].name,
        ok: false,
        attempts: 0,
        error: `gave up at the notification deadline (${deadlineMs} ms)`,
      },
  );
  // The logger masks every notifier's secrets, registered above (redaction at the logger, not here).
  for (const r of out) {
    if (r.ok) continue;
    opts.logger?.warn(
      `notification ${event.type} via ${r.name} failed after ${r.attempts} attempt(s): ${r.error}`,
    );
  }
  return out;
}

/** The secrets and settings that decide which channels exist (from the stack config). */
export interface NotifierSettings {
  /** Directory of `notifications.log` (the users' `logs/`). */
  logsDir: string;
  slackWebhookUrl?: string;
  webhookUrl?: string;
  webhookSecret?: string;
  smtpUrl?: string;
  email?: { from: string; to: string[] };
}

/** Builds the channels a stack configured; the log file is always there. */
export function notifiersFrom(s: NotifierSettings): Notifier[] {
  const out: Notifier[] = [fileNotifier(`${s.logsDir}/notifications.log`)];
  if (s.slackWebhookUrl) out.push(slackNotifier(s.slackWebhookUrl));
  if (s.webhookUrl) out.push(webhookNotifier(s.webhookUrl, s.webhookSecret));
  if (s.smtpUrl && s.email) out.push(emailNotifier({ smtpUrl: s.smtpUrl, ...s.email }));
  return out;
}
