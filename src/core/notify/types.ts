/** The users' notification types (seeds: "Tipos de Notificaciones"). */
export const NOTIFICATION_TYPES = [
  "INFO",
  "SUCCESS",
  "WARNING",
  "ERROR",
  "ROLLBACK_SUCCESS",
  "ROLLBACK_FAILED",
] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

/** What happened, sent to every notifier. */
export interface NotificationEvent {
  type: NotificationType;
  message: string;
  stack: string;
  commit?: string;
  release?: string;
  time: Date;
  /** Extra lines a person needs (e.g. the steps to finish a failed rollback by hand). */
  details?: Record<string, string>;
}

/** One channel; `send` throws on failure and must stop when `signal` aborts. */
export interface Notifier {
  readonly name: string;
  /** Literal secrets of this channel (webhook URL, SMTP URL): masked in every log line and error. */
  readonly secrets: readonly string[];
  send(event: NotificationEvent, signal: AbortSignal): Promise<void>;
}

/** Failure that retrying can't fix (e.g. HTTP 400/404): the retry loop stops at once. */
export class PermanentNotifyError extends Error {}

/** Slack-style colour per type: green for good news, yellow for a recovered failure or warning, red for action needed. */
export function colorFor(type: NotificationType): "#2eb67d" | "#ecb22e" | "#e01e5a" {
  switch (type) {
    case "INFO":
    case "SUCCESS":
      return "#2eb67d";
    case "WARNING":
    case "ROLLBACK_SUCCESS":
      return "#ecb22e";
    case "ERROR":
    case "ROLLBACK_FAILED":
      return "#e01e5a";
  }
}

/** One-line summary used as email subject and Slack fallback. */
export function summaryLine(e: NotificationEvent): string {
  return `[safe-deploy] ${e.type} ${e.stack}: ${e.message.split("\n")[0]}`;
}
