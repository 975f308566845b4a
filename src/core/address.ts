/**
 * The host part of a URL that reaches, from this machine, a port published on `bindAddress`: a
 * wildcard address becomes loopback and an IPv6 literal gets the brackets a URL needs (`::1` alone
 * makes `http://::1:8080`, which is no URL). Pure.
 */
export function urlHost(bindAddress: string): string {
  const bare = bindAddress.replace(/^\[(.*)\]$/, "$1");
  if (bare === "0.0.0.0") return "127.0.0.1";
  if (bare === "::") return "[::1]";
  return bare.includes(":") ? `[${bare}]` : bare;
}

/**
 * What is wrong with the port of URL-like `text` (`has port 99999, out of range (1-65535)`), or
 * undefined when it has none or a good one; never quotes anything but the digits. Pure.
 */
export function portProblem(text: string): string | undefined {
  const scheme = /^\s*[a-z][a-z0-9+.-]*:\/\//i.exec(text);
  if (!scheme) return undefined;
  // The host is after the last `@` (a decoded password may hold `@` and `/`), up to the path.
  const rest = text.trim().slice(scheme[0].trim().length);
  const hostPort = rest.slice(rest.lastIndexOf("@") + 1).split(/[/?#]/)[0];
  const port = /^(?:\[[^\]]*\]|[^:]*):(.*)$/.exec(hostPort)?.[1];
  if (port === undefined || port === "") return undefined;
  if (!/^\d+$/.test(port)) return "has a port that is not a number";
  const n = Number(port);
  return n < 1 || n > 65535 ? `has port ${n}, out of range (1-65535)` : undefined;
}

/**
 * Why `text` is not a URL, in words that never quote it (it may hold a password), or undefined when it
 * is one. Pure.
 */
export function urlProblem(text: string): string | undefined {
  if (URL.canParse(text)) return undefined;
  const t = text.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(t)) {
    return /^[a-z_]+\s*=/i.test(t)
      ? "it is a libpq key=value string, not a URL"
      : "it does not start with a scheme such as postgres://";
  }
  const port = portProblem(t);
  if (port) return `it ${port}`;
  return "a space, or a raw `@ : / ? # %` in the user or password, makes it no URL";
}
