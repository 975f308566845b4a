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
