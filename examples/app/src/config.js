"use strict";

/**
 * @typedef {object} AppConfig
 * @property {string} databaseUrl  PostgreSQL connection string (a secret: holds the password).
 * @property {number} port         TCP port to listen on.
 * @property {string} host         Address to bind; containers need 0.0.0.0.
 * @property {string} version      Release shown by /health (APP_VERSION, else package.json's version).
 * @property {number} healthTimeoutMs  How long /health waits for `SELECT 1` before answering 503.
 */

/** Thrown for missing or malformed settings; the message names the environment variable. */
class ConfigError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * @param {string | undefined} raw
 * @param {string} name
 * @param {number} fallback
 * @param {number} min
 * @param {number} max
 * @returns {number}
 */
function integer(raw, name, fallback, min, max) {
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return Number(raw);
}

/**
 * Reads the app's settings from an environment object (process.env in production, a plain object in tests).
 * @param {Record<string, string | undefined>} env
 * @returns {AppConfig}
 */
function loadConfig(env) {
  const databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) {
    throw new ConfigError(
      "DATABASE_URL is not set: set it to the app database's URL, e.g. postgres://app:PASSWORD@db:5432/app",
    );
  }
  // Never echo the URL back: it carries the password.
  if (!/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError("DATABASE_URL must start with postgres:// or postgresql://");
  }
  return {
    databaseUrl,
    port: integer(env.PORT, "PORT", 3000, 0, 65535),
    host: env.HOST || "0.0.0.0",
    version: env.APP_VERSION || require("../package.json").version,
    healthTimeoutMs: integer(env.HEALTH_TIMEOUT_MS, "HEALTH_TIMEOUT_MS", 2000, 100, 60000),
  };
}

module.exports = { loadConfig, ConfigError };
