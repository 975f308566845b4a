import * as http from "node:http";
import * as https from "node:https";
import type { ProbeResult } from "./types";

/** An assertion on a JSON response body: the value at a dotted path (`checks.db`, `items.0.ok`) equals a value. */
export interface JsonAssertion {
  path: string;
  equals: unknown;
}

/** What an HTTP check expects. */
export interface HttpCheck {
  url: string;
  /** Accepted statuses, default [200]. */
  expectStatus?: number[];
  /** Optional assertion on the JSON body. */
  json?: JsonAssertion;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** PEM CA certificate(s) to trust for HTTPS (a private CA or a self-signed staging certificate). */
  ca?: string;
}

const MAX_BODY = 256 * 1024;

/** Reads the value at a dotted path of a parsed JSON document; undefined when absent. */
export function valueAtPath(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const key of path.split(".").filter((k) => k !== "")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** Checks a body against a JSON assertion; returns null when it holds, else why not. */
export function checkJsonBody(body: string, a: JsonAssertion): string | null {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return `body is not JSON (starts ${JSON.stringify(body.slice(0, 40))})`;
  }
  const got = valueAtPath(doc, a.path);
  if (JSON.stringify(got) === JSON.stringify(a.equals)) return null;
  return `body ${a.path} is ${got === undefined ? "missing" : JSON.stringify(got)}, expected ${JSON.stringify(a.equals)}`;
}

/** One HTTP(S) GET with a hard timeout covering connect, headers and body; never throws. */
export function httpProbe(check: HttpCheck, timeoutMs: number): Promise<ProbeResult> {
  const expect = check.expectStatus && check.expectStatus.length > 0 ? check.expectStatus : [200];
  return new Promise((resolve) => {
    // Declared before `finish` captures them: Pulumi's closure serializer rejects later declarations.
    // eslint-disable-next-line prefer-const
    let timer: NodeJS.Timeout | undefined;
    // eslint-disable-next-line prefer-const
    let req: http.ClientRequest | undefined;
    let settled = false;
    const finish = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req?.destroy();
      resolve(r);
    };
    let url: URL;
    try {
      url = new URL(check.url);
    } catch {
      resolve({ ok: false, detail: "invalid URL" });
      return;
    }
    const mod = url.protocol === "https:" ? https : http;
    // agent: false so no pooled keep-alive socket outlives the check (the provider host must exit).
    req = mod.request(url, {
      method: "GET",
      agent: false,
      headers: { ...check.headers, connection: "close" },
      ...(check.ca ? { ca: check.ca } : {}),
    });
    timer = setTimeout(() => finish({ ok: false, detail: `timed out after ${timeoutMs} ms` }), timeoutMs);
    req.on("error", (e: NodeJS.ErrnoException) => finish({ ok: false, detail: e.code ?? e.message }));
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      if (!expect.includes(status)) {
        res.resume();
        // Redirects are not followed (an https:// or login page is no health answer): say where it points.
        const to = status >= 300 && status < 400 ? res.headers.location : undefined;
        finish({
          ok: false,
          status,
          // The location last: a masked `?token=` value runs to the next space, taking any text after it.
          detail: `status ${status}, expected ${expect.join("|")}${to ? `; redirects to ${to.slice(0, 200)}` : ""}`,
        });
        return;
      }
      if (!check.json) {
        res.resume();
        finish({ ok: true, status });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
      });
      res.on("error", (e: NodeJS.ErrnoException) =>
        finish({ ok: false, status, detail: e.code ?? e.message }),
      );
      res.on("end", () => {
        const why = checkJsonBody(Buffer.concat(chunks).toString("utf8"), check.json!);
        finish(why === null ? { ok: true, status } : { ok: false, status, detail: why });
      });
    });
    req.end();
  });
}
