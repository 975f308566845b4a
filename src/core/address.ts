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
  // A bracketed IPv6 host is taken whole (its colons are not a port's); any other host ends at the first `:`.
  const port = /^(?:\[[^\]]*\]|[^:[]*):(.*)$/.exec(hostPort)?.[1];
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

/** Whether a URL's hostname is this machine (`localhost`, 127.0.0.0/8, `::1`): plaintext there never crosses a network. Pure. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * Why `url` may not carry a notification, or undefined: plain `http://` only to this machine, since a
 * webhook URL is a credential and a payload names releases and failures. Pure.
 */
export function insecureUrlProblem(url: string): string | undefined {
  if (!URL.canParse(url)) return "is not a URL";
  const u = new URL(url);
  if (u.protocol === "https:") return undefined;
  if (u.protocol === "http:" && isLoopbackHost(u.hostname)) return undefined;
  if (u.protocol === "http:")
    return "is plain http:// to another machine: anyone on the way reads and replays it; use https:// (http:// only to localhost/127.0.0.1/::1)";
  return "is not an http(s) URL";
}
