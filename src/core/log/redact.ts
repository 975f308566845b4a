/**
 * `scheme://user:` (group 1) and the password (group 2) of a URL. A tool may print the URL decoded, so
 * the user and password can hold raw `@ : / #`: the password runs to the LAST `@` of the word whose
 * host part has none (issue 15 D: stopping at the first `@` printed the rest of the password).
 */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^:/\s]*:)(\S+)@(?=[^@\s/?#]*(?:[\s/?#]|$))/gi;

/**
 * A query parameter that carries a credential (`?token=`, `&api_key=`, `sig=`, `access_token=`...): a
 * health URL like `/health?token=...` is printed in gate failures, logs and notifications.
 */
const QUERY_SECRET =
  /([?&;](?:[a-z0-9_.-]*(?:token|secret|passw(?:or)?d|pwd|key|sig|signature|auth|credential)[a-z0-9_.-]*)=)(["']?)([^&;#\s"'<>]+)/gi;

/** Replaces the password of every `scheme://user:password@` URL, and credential query values, with `***`. */
export function redactUrls(text: string): string {
  return text.replace(URL_PASSWORD, "$1***@").replace(QUERY_SECRET, "$1$2***");
}

/**
 * Replaces the value of every libpq keyword/value or environment-style password (`password=...`,
 * `password='a b'`, `PGPASSWORD=...`) and of a JSON `"password": "..."` with `***`.
 */
export function redactKeywordPasswords(text: string): string {
  return text
    .replace(/\b((?:pg)?password\s*=\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)/gi, "$1***")
    .replace(/("(?:pg)?password"\s*:\s*)("(?:[^"\\]|\\.)*")/gi, "$1***");
}

/** Replaces every literal secret given of 4+ characters with `***` (longest first, so overlaps don't leak a tail). */
export function maskLiterals(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of [...secrets].filter((x) => x.length >= 4).sort((a, b) => b.length - a.length)) {
    out = out.split(s).join("***");
  }
  return out;
}

/** Redacts URL and keyword passwords and every literal secret given. */
export function redact(text: string, secrets: readonly string[] = []): string {
  return maskLiterals(redactKeywordPasswords(redactUrls(text)), secrets);
}

/**
 * A connection URL and its password, raw and decoded: a tool may print the password on its own (its
 * config, a connection string it built), not only inside the URL.
 */
export function urlSecrets(url: string): string[] {
  const password = new RegExp(`^${URL_PASSWORD.source}`, "i").exec(url)?.[2];
  if (!password) return [url];
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch {
    // Not percent-encoded as it should be: the raw text is what a tool would print.
  }
  return [...new Set([url, password, decoded])];
}
