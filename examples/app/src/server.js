"use strict";

const http = require("node:http");
const net = require("node:net");
const { loadConfig, ConfigError } = require("./config");
const { createLogger, secretsOf } = require("./log");
const { createPool, ping, isUnavailable } = require("./db");
const { validateNewNote, insertNote, getNote, listNotes } = require("./notes");

const MAX_BODY_BYTES = 64 * 1024;

/**
 * @typedef {object} ServerOptions
 * @property {string} databaseUrl
 * @property {string} [version]          Reported by /health; defaults to package.json's version.
 * @property {number} [healthTimeoutMs]  Default 2000.
 * @property {(line: string) => void} [write]  Where log lines go; default stdout.
 */

/**
 * @typedef {object} App
 * @property {http.Server} server
 * @property {import("pg").Pool} pool
 * @property {(port?: number, host?: string) => Promise<{ port: number, url: string }>} listen
 * @property {() => Promise<void>} close  Stops accepting, lets in-flight requests finish, closes the pool.
 */

/** An HTTP error with the status and client-facing message it maps to. */
class HttpError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {string[]} [details]
   */
  constructor(status, message, details) {
    super(message);
    this.status = status;
    this.details = details;
  }
}

/**
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {unknown} payload
 * @param {Record<string, string>} [headers]
 */
function sendJson(res, status, payload, headers = {}) {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(body);
}

/**
 * Reads a JSON request body of at most MAX_BODY_BYTES.
 * @param {http.IncomingMessage} req
 * @returns {Promise<unknown>}
 */
async function readJson(req) {
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new HttpError(415, "send the body as JSON with `content-type: application/json`");
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the body must be at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "the body is not valid JSON");
  }
}

/**
 * @param {string} raw
 * @returns {number}
 */
function parseId(raw) {
  if (!/^[1-9]\d{0,14}$/.test(raw)) throw new HttpError(400, "the note id must be a positive whole number");
  return Number(raw);
}

/**
 * @param {string | null} raw
 * @returns {number}
 */
function parseLimit(raw) {
  if (raw === null) return 50;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 200) {
    throw new HttpError(400, "`limit` must be a whole number from 1 to 200");
  }
  return Number(raw);
}

/**
 * Builds the app without listening, so tests run it in-process on a random port.
 * @param {ServerOptions} options
 * @returns {App}
 */
function createServer(options) {
  if (!options || typeof options.databaseUrl !== "string" || options.databaseUrl === "") {
    throw new ConfigError("createServer: `databaseUrl` is required");
  }
  const version = options.version ?? require("../package.json").version;
  const healthTimeoutMs = options.healthTimeoutMs ?? 2000;
  const log = createLogger({ secrets: secretsOf(options.databaseUrl), write: options.write });
  const pool = createPool(options.databaseUrl, {
    timeoutMs: healthTimeoutMs,
    onError: (err) => log({ level: "warn", msg: "idle database connection lost", error: err.message }),
  });
  let lastHealth = "unknown";

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   * @param {URL} url
   */
  async function route(req, res, url) {
    const path = url.pathname;
    const method = req.method ?? "GET";

    if (path === "/health") {
      if (method !== "GET" && method !== "HEAD") throw new HttpError(405, "use GET");
      const result = await ping(pool, healthTimeoutMs);
      const state = result.up ? "up" : "down";
      // One line when the state changes, not one per probe: Docker polls this every few seconds.
      if (state !== lastHealth) {
        log({ level: result.up ? "info" : "error", msg: `database ${state}`, error: result.error?.message });
        lastHealth = state;
      }
      return sendJson(res, result.up ? 200 : 503, {
        status: result.up ? "ok" : "unavailable",
        database: state,
        version,
      });
    }

    if (path === "/notes" || path === "/notes/") {
      if (method === "GET")
        return sendJson(res, 200, {
          notes: await listNotes(pool, parseLimit(url.searchParams.get("limit"))),
        });
      if (method === "POST") {
        const checked = validateNewNote(await readJson(req));
        if (!checked.ok) throw new HttpError(400, "the note is invalid", checked.errors);
        const note = await insertNote(pool, checked.value);
        return sendJson(res, 201, note, { location: `/notes/${note.id}` });
      }
      throw new HttpError(405, "use GET or POST");
    }

    const match = /^\/notes\/([^/]+)$/.exec(path);
    if (match) {
      if (method !== "GET") throw new HttpError(405, "use GET");
      const note = await getNote(pool, parseId(match[1]));
      if (!note) throw new HttpError(404, `note ${match[1]} does not exist`);
      return sendJson(res, 200, note);
    }

    throw new HttpError(404, `no route for ${method} ${path}`);
  }

  // Responses not yet sent, so close() can end their keep-alive connection after they answer.
  /** @type {Set<http.ServerResponse>} */
  const pending = new Set();
  let stopping = false;

  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    // While stopping, each answer ends its connection: a keep-alive client would otherwise keep
    // sending on it until the forced cut, which drops whatever request is running then.
    if (stopping) res.setHeader("connection", "close");
    else {
      pending.add(res);
      res.on("close", () => pending.delete(res));
    }
    /** @type {URL | undefined} */
    let url;
    try {
      url = new URL(req.url ?? "/", "http://localhost");
    } catch {
      // An absolute-form target with a bad port, say: the HTTP parser accepted it, URL does not.
    }
    res.on("finish", () => {
      log({
        level: "info",
        msg: "request",
        method: req.method,
        // Only the path is logged: query strings are where people put tokens.
        path: url?.pathname ?? "(invalid)",
        status: res.statusCode,
        ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
      });
    });
    if (!url) return sendJson(res, 400, { error: "the request target is not a valid URL" });
    const target = url;
    route(req, res, target).catch((err) => {
      if (res.headersSent) return res.destroy();
      if (err instanceof HttpError) {
        const allow =
          err.status === 405 ? { allow: /^\/notes\/?$/.test(target.pathname) ? "GET, POST" : "GET" } : {};
        return sendJson(
          res,
          err.status,
          { error: err.message, ...(err.details ? { details: err.details } : {}) },
          allow,
        );
      }
      if (isUnavailable(err)) {
        log({ level: "error", msg: "database unavailable", path: target.pathname, error: err.message });
        return sendJson(res, 503, { error: "the database is unavailable, try again shortly" });
      }
      log({
        level: "error",
        msg: "unhandled error",
        path: target.pathname,
        error: String(err?.stack ?? err),
      });
      return sendJson(res, 500, { error: "internal error" });
    });
  });
  server.keepAliveTimeout = 5_000;

  let closing;
  return {
    server,
    pool,
    listen: (port = 0, host = "127.0.0.1") =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          const addr = /** @type {import("node:net").AddressInfo} */ (server.address());
          // The URL says which database this release talks to; the logger masks its password.
          log({ level: "info", msg: "listening", port: addr.port, version, database: options.databaseUrl });
          resolve({ port: addr.port, url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${addr.port}` });
        });
      }),
    close: () => {
      closing ??= (async () => {
        stopping = true;
        for (const res of pending) if (!res.headersSent) res.setHeader("connection", "close");
        await new Promise((resolve) => {
          // Stop accepting, but leave idle keep-alive connections open: http's close() would cut them,
          // racing a request the client is sending on one right now (issue 18: lost in a pm2 reload).
          // Each one's next answer closes it (`stopping`); one that stays idle ends at keepAliveTimeout.
          net.Server.prototype.close.call(server, () => resolve(undefined));
        });
        await pool.end();
      })();
      return closing;
    },
  };
}

/**
 * Entry point when run as `node src/server.js`: reads the environment, listens, and shuts down
 * cleanly on SIGTERM (what `docker stop` sends) or SIGINT.
 */
async function main() {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`demo-app: ${err.message}\n`);
    process.exit(2);
  }
  const app = createServer({
    databaseUrl: config.databaseUrl,
    version: config.version,
    healthTimeoutMs: config.healthTimeoutMs,
  });
  await app.listen(config.port, config.host);
  const log = createLogger({ secrets: secretsOf(config.databaseUrl) });
  const stop = (/** @type {string} */ signal) => {
    log({ level: "info", msg: "shutting down", signal });
    // Cut requests still running after 8 s, before Docker's default 10 s grace ends in SIGKILL.
    setTimeout(() => app.server.closeAllConnections?.(), 8_000).unref();
    app.close().then(
      () => {
        log({ level: "info", msg: "stopped" });
        process.exit(0);
      },
      (err) => {
        log({ level: "error", msg: "shutdown failed", error: String(err) });
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

if (require.main === module) {
  main().catch((err) => {
    const log = createLogger({ secrets: secretsOf(process.env.DATABASE_URL ?? "") });
    log({ level: "error", msg: "could not start", error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  });
}

module.exports = { createServer, main };
