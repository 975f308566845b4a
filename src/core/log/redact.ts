/**
 * Replaces the password of every `scheme://user:password@` URL with `***`. A tool may print the URL
 * decoded, so the password can hold `@`: it runs to the `@` whose host part has none.
 */
export function redactUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)(\S+?)@(?=[^@\s/?#]*(?:[\s/?#]|$))/gi, "$1***@");
}

/**
 * Replaces the value of every libpq keyword/value or environment-style password (`password=...`,
 * `password='a b'`, `PGPASSWORD=...`) with `***`.
 */
export function redactKeywordPasswords(text: string): string {
  return text.replace(/\b((?:pg)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'"]+)/gi, "$1***");
}

/** Redacts URL and keyword passwords and every literal secret given (longest first, so overlaps don't leak a tail). */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = redactKeywordPasswords(redactUrls(text));
  for (const s of [...secrets].filter((x) => x.length >= 4).sort((a, b) => b.length - a.length)) {
    out = out.split(s).join("***");
  }
  return out;
}

/**
 * A connection URL and its password, raw and decoded: a tool may print the password on its own (its
 * config, a connection string it built), not only inside the URL.
 */
export function urlSecrets(url: string): string[] {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:(\S+?)@(?=[^@\s/?#]*(?:[/?#]|$))/i.exec(url);
  if (!m) return [url];
  let decoded = m[1];
  try {
    decoded = decodeURIComponent(m[1]);
  } catch {
    // Not percent-encoded as it should be: the raw text is what a tool would print.
  }
  return [...new Set([url, m[1], decoded])];
}
