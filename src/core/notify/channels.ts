import { createHmac, timingSafeEqual } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { insecureUrlProblem, isLoopbackHost } from "../address";
import { formatLine, rotateLog } from "../log/logger";
import { colorFor, PermanentNotifyError, summaryLine, type NotificationEvent, type Notifier } from "./types";

/** Appends `[YYYY-MM-DD HH:MM:SS] TYPE: message` to `logs/notifications.log` (the users' record of every notification). */
export function fileNotifier(file: string): Notifier {
  return {
    name: "log",
    secrets: [],
    async send(e) {
      await fs.promises.mkdir(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
      rotateLog(file);
      const where = [
        `stack=${e.stack}`,
        e.release && `release=${e.release}`,
        e.commit && `commit=${e.commit}`,
      ];
      const extra = Object.entries(e.details ?? {}).map(([k, v]) => `${k}: ${v}`);
      const text = [`${e.message} (${where.filter(Boolean).join(" ")})`, ...extra].join("\n");
      await fs.promises.appendFile(file, formatLine(e.time, e.type, text), { mode: 0o600 });
    },
  };
}

/** The Slack incoming-webhook payload: one attachment coloured by type with commit, stack, release and time. */
export function slackPayload(e: NotificationEvent): object {
  const fields = [
    { title: "Stack", value: e.stack, short: true },
    { title: "Commit", value: e.commit ?? "-", short: true },
    { title: "Release", value: e.release ?? "-", short: true },
    { title: "Time", value: e.time.toISOString(), short: true },
    ...Object.entries(e.details ?? {}).map(([title, value]) => ({ title, value, short: false })),
  ];
  return {
    text: summaryLine(e),
    attachments: [
      {
        color: colorFor(e.type),
        fallback: summaryLine(e),
        title: `${e.type}: ${e.stack}`,
        text: e.message,
        fields,
        ts: Math.floor(e.time.getTime() / 1000),
      },
    ],
  };
}

/** The generic webhook's JSON body. */
export function webhookPayload(e: NotificationEvent): object {
  return {
    type: e.type,
    message: e.message,
    stack: e.stack,
    commit: e.commit ?? null,
    release: e.release ?? null,
    time: e.time.toISOString(),
    details: e.details ?? {},
  };
}

/**
 * The `X-Safe-Deploy-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as
 * Stripe signs its webhooks. The time is inside the MAC, so a captured request cannot be replayed
 * once it falls outside the receiver's tolerance (issue 15 C: the body alone was signed before).
 */
export function signBody(secret: string, body: string, unixSeconds: number): string {
  const t = Math.floor(unixSeconds);
  return `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`, "utf8").digest("hex")}`;
}

/**
 * Checks an `X-Safe-Deploy-Signature` header, for receivers written in Node: a `v1` MAC of
 * `"<t>.<body>"` under `secret`, compared in constant time, and `t` within `toleranceSeconds`
 * (default 300) of `now`.
 */
export function verifySignature(
  secret: string,
  body: string,
  header: string | undefined,
  o: { toleranceSeconds?: number; now?: Date } = {},
): boolean {
  if (!header) return false;
  const parts = header.split(",").map((p) => p.trim().split("="));
  const t = parts.find(([k]) => k === "t")?.[1];
  if (!t || !/^\d+$/.test(t)) return false;
  const now = (o.now ?? new Date()).getTime() / 1000;
  if (Math.abs(now - Number(t)) > (o.toleranceSeconds ?? 300)) return false;
  const want = createHmac("sha256", secret).update(`${t}.${body}`, "utf8").digest();
  return parts.some(([k, v]) => {
    if (k !== "v1" || !v || !/^[0-9a-f]{64}$/.test(v)) return false;
    return timingSafeEqual(want, Buffer.from(v, "hex"));
  });
}

/**
 * POSTs `body` with node's http client rather than `fetch`: on Node 20, undici's fetch could lose the
 * abort of a signal after a garbage collection (nodejs/node#55428), so a hung receiver held every attempt
 * until the notification deadline. `signal` here has a listener on the request itself.
 */
function postJson(url: string, body: string, headers: Record<string, string>, signal: AbortSignal) {
  const insecure = insecureUrlProblem(url);
  if (insecure) return Promise.reject(new PermanentNotifyError(`refusing to send: the URL ${insecure}`));
  const u = new URL(url);
  const client = u.protocol === "https:" ? https : http;
  return new Promise<void>((resolve, reject) => {
    const req = client.request(
      u,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "user-agent": "safe-deploy",
          ...headers,
        },
        signal,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text = (text + d).slice(0, 200)));
        res.on("error", reject);
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve();
          const msg = `HTTP ${status}${text.trim() ? `: ${text.trim()}` : ""}`;
          // 408/429 and 5xx may pass on a later attempt; other 4xx mean the URL or payload is wrong.
          if (status >= 500 || status === 408 || status === 429) return reject(new Error(msg));
          if (status >= 300 && status < 400 && res.headers.location) {
            return reject(
              new PermanentNotifyError(
                `${msg} (redirected to ${res.headers.location}): configure that URL instead`,
              ),
            );
          }
          reject(new PermanentNotifyError(msg));
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A webhook URL's path is its credential (Slack's `/services/T../B../xxx`), so it is masked on its own too. */
export function webhookSecrets(url: string): string[] {
  const p = URL.canParse(url) ? new URL(url).pathname : "";
  return p.length >= 12 ? [url, p] : [url];
}

/** Slack incoming webhook; the URL is a secret (it is the credential). */
export function slackNotifier(webhookUrl: string): Notifier {
  return {
    name: "slack",
    secrets: webhookSecrets(webhookUrl),
    send: (e, signal) => postJson(webhookUrl, JSON.stringify(slackPayload(e)), {}, signal),
  };
}

/** Generic JSON webhook; with a secret, signs time and body (`X-Safe-Deploy-Signature: t=..,v1=..`, `signBody`). */
export function webhookNotifier(url: string, secret?: string, now: () => Date = () => new Date()): Notifier {
  return {
    name: "webhook",
    secrets: [...webhookSecrets(url), ...(secret ? [secret] : [])],
    send(e, signal) {
      const body = JSON.stringify(webhookPayload(e));
      const t = Math.floor(now().getTime() / 1000);
      // The timestamp header is informational; only the `t=` inside the signature is authenticated.
      const headers: Record<string, string> = {
        "x-safe-deploy-timestamp": String(t),
        "x-safe-deploy-event": e.type,
      };
      if (secret) headers["x-safe-deploy-signature"] = signBody(secret, body, t);
      return postJson(url, body, headers, signal);
    },
  };
}

/** Email settings: `smtpUrl` (a secret, e.g. `smtp://user:pass@host:587`) plus config's `notifications.email`. */
export interface EmailOptions {
  smtpUrl: string;
  from: string;
  to: string[];
  /** Per-connection timeout in ms; the notify deadline still bounds the whole send. */
  timeoutMs?: number;
}

/** Plain-text email body: the message, then every field a person needs. */
export function emailText(e: NotificationEvent): string {
  const rows: Array<[string, string | undefined]> = [
    ["Type", e.type],
    ["Stack", e.stack],
    ["Commit", e.commit],
    ["Release", e.release],
    ["Time", e.time.toISOString()],
    ...Object.entries(e.details ?? {}),
  ];
  return `${e.message}\n\n${rows
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${v}`)
    .join("\n")}\n`;
}

/**
 * Why `smtpUrl` could carry the login or the mail in plaintext over a network, or undefined (issue 15
 * B). `smtps://` is TLS from the first byte; `smtp://` must upgrade with STARTTLS (required, so a
 * server or attacker that does not offer it gets no login) except to loopback. Query options are
 * refused: nodemailer lets them override TLS settings (`?ignoreTLS=true`, `?tls.rejectUnauthorized=false`).
 * Pure; never quotes the URL.
 */
export function smtpUrlProblem(smtpUrl: string): string | undefined {
  if (!URL.canParse(smtpUrl)) return "is not a URL";
  const u = new URL(smtpUrl);
  if (u.protocol !== "smtp:" && u.protocol !== "smtps:") return "is not an smtp:// or smtps:// URL";
  if (!u.hostname) return "has no host";
  if (u.search)
    return "has query options (`?...`), which are not supported: TLS follows the scheme (smtps:// TLS from the start, port 465; smtp:// STARTTLS, required, port 587)";
  return undefined;
}

/** Nodemailer transport settings of a checked `smtpUrl`: TLS always, except plain SMTP to loopback. Pure. */
export function smtpTransportOptions(smtpUrl: string) {
  const problem = smtpUrlProblem(smtpUrl);
  if (problem) throw new PermanentNotifyError(`smtpUrl ${problem}`);
  const u = new URL(smtpUrl);
  const secure = u.protocol === "smtps:";
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return {
    host: u.hostname.replace(/^\[|\]$/g, ""),
    ...(u.port ? { port: Number(u.port) } : {}),
    secure,
    requireTLS: !secure && !isLoopbackHost(u.hostname),
    ...(u.username || u.password ? { auth: { user: decode(u.username), pass: decode(u.password) } } : {}),
  };
}

/** Email over SMTP with nodemailer; the SMTP URL (with its password) is a secret. */
export function emailNotifier(opts: EmailOptions): Notifier {
  let password: string | undefined;
  try {
    password = decodeURIComponent(new URL(opts.smtpUrl).password) || undefined;
  } catch {
    password = undefined;
  }
  return {
    name: "email",
    secrets: [opts.smtpUrl, ...(password ? [password] : [])],
    async send(e, signal) {
      const nodemailer: typeof import("nodemailer") = require("nodemailer");
      const t = opts.timeoutMs ?? 10_000;
      // Options, not `url`: nodemailer lets a URL's query override `requireTLS` and certificate checks.
      const transport = nodemailer.createTransport({
        ...smtpTransportOptions(opts.smtpUrl),
        connectionTimeout: t,
        greetingTimeout: t,
        socketTimeout: t,
      });
      try {
        signal.throwIfAborted();
        // The deadline ends the SMTP connection through the signal (nodemailer 10 honours it): closing a
        // non-pooled transport, as this did before, left a hung server's socket open for `t` more.
        await transport.sendMail({
          from: opts.from,
          to: opts.to,
          subject: summaryLine(e),
          text: emailText(e),
          signal,
        });
      } catch (err) {
        // A refused login or address won't pass on a retry.
        const code = (err as { code?: string }).code;
        if (code === "EAUTH" || code === "EENVELOPE") throw new PermanentNotifyError((err as Error).message);
        if (code === "ETLS")
          throw new PermanentNotifyError(
            `the SMTP server did not start TLS (${(err as Error).message}), so the login and mail were not sent: use smtps:// (port 465), or a server that offers STARTTLS on smtp:// (port 587)`,
          );
        throw err;
      } finally {
        transport.close();
      }
      signal.throwIfAborted();
    },
  };
}
