"use strict";

const { Pool } = require("pg");

/**
 * A connection pool that fails fast: a dead or unreachable database must turn into a 503 within the
 * health timeout, never into a request that hangs until the client gives up.
 * @param {string} databaseUrl
 * @param {{ timeoutMs: number, onError?: (err: Error) => void }} options
 * @returns {import("pg").Pool}
 */
function createPool(databaseUrl, options) {
  const pool = new Pool({
    connectionString: databaseUrl,
    max: 10,
    connectionTimeoutMillis: options.timeoutMs,
    idleTimeoutMillis: 30_000,
    query_timeout: 10_000,
    application_name: "safe-deploy-demo-app",
  });
  // An idle client loses its server (restart, failover): pg emits 'error' on the pool, which would
  // crash the process if unhandled. The pool drops that client and the next query reconnects.
  pool.on("error", (err) => options.onError?.(err));
  return pool;
}

/**
 * Resolves true when `SELECT 1` answers within `timeoutMs`, false otherwise (refused, bad password,
 * timeout). Never rejects.
 * @param {import("pg").Pool} pool
 * @param {number} timeoutMs
 * @returns {Promise<{ up: boolean, error?: Error }>}
 */
async function ping(pool, timeoutMs) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(
      () => resolve({ up: false, error: new Error(`no answer to SELECT 1 within ${timeoutMs} ms`) }),
      timeoutMs,
    );
  });
  const query = pool.query("SELECT 1").then(
    () => ({ up: true }),
    (/** @type {Error} */ error) => ({ up: false, error }),
  );
  try {
    return /** @type {{ up: boolean, error?: Error }} */ (await Promise.race([query, timeout]));
  } finally {
    clearTimeout(timer);
  }
}

/**
 * True for errors that mean "the database is not there" rather than "this request is wrong", so the
 * route answers 503 (retry later) instead of 500.
 * @param {unknown} err
 * @returns {boolean}
 */
function isUnavailable(err) {
  if (!(err instanceof Error)) return false;
  const code = /** @type {{ code?: string }} */ (err).code ?? "";
  return (
    ["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EPIPE"].includes(code) ||
    // 08 connection exception, 28 invalid authorization, 57P0x admin shutdown / crash / cannot connect now.
    /^(08|28|57P0)/.test(code) ||
    /timeout|Connection terminated/i.test(err.message)
  );
}

module.exports = { createPool, ping, isUnavailable };
