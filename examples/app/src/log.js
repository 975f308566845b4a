"use strict";

/**
 * @typedef {(fields: Record<string, unknown>) => void} Logger
 *   Writes one JSON line; every string that reaches the output has been redacted.
 */

/** `scheme://user:PASSWORD@` in any text, e.g. a driver error that quotes its connection string. */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^:/@\s"]*:)[^@\s/"]*@/gi;

/**
 * The password inside a PostgreSQL URL, raw and percent-decoded, so both spellings can be masked.
 * @param {string} databaseUrl
 * @returns {string[]}
 */
function secretsOf(databaseUrl) {
  try {
    const raw = new URL(databaseUrl).password;
    if (!raw) return [];
    let decoded = raw;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      // A malformed escape: mask the raw form only.
    }
    return [...new Set([raw, decoded])];
  } catch {
    return [];
  }
}

/**
 * Masks URL credentials and each known secret in `text`.
 * @param {string} text
 * @param {string[]} secrets
 * @returns {string}
 */
function redact(text, secrets) {
  let out = text;
  // Longest first, so a secret that contains another is masked whole. Known secrets go before the URL
  // pattern: a password with a raw '@' (pg accepts one) would otherwise be cut at it, its tail shown.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (s.length >= 3) out = out.split(s).join("***");
  }
  return out.replace(URL_PASSWORD, "$1***@");
}

/**
 * A JSON-lines logger that redacts at the sink, so no call site can leak the database password.
 * @param {{ secrets?: string[], write?: (line: string) => void }} [options]
 * @returns {Logger}
 */
function createLogger(options = {}) {
  // Lines are JSON, so a secret with quotes or backslashes appears escaped: mask that form too.
  const secrets = (options.secrets ?? []).flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]);
  const write = options.write ?? ((line) => process.stdout.write(line + "\n"));
  return (fields) => {
    const line = JSON.stringify({ time: new Date().toISOString(), ...fields });
    write(redact(line, secrets));
  };
}

module.exports = { createLogger, redact, secretsOf };
