// Shared by the provider harness (test process) and its guard (inside Pulumi's provider host): plain
// JavaScript because the host runs plain node.
"use strict";

/** Returns "where: what" for the first value below `value` that Struct would reject or mangle. */
function findUnmarshallable(value, where) {
  if (value === undefined) return `${where} is undefined`;
  if (value === null) return null;
  const t = typeof value;
  if (t === "string" || t === "boolean") return null;
  if (t === "number") return Number.isFinite(value) ? null : `${where} is ${value}`;
  if (t !== "object") return `${where} is a ${t}`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = findUnmarshallable(value[i], `${where}[${i}]`);
      if (bad) return bad;
    }
    return null;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const name = (value.constructor && value.constructor.name) || "object";
    return `${where} is a ${name} (Struct keeps only plain objects' own fields)`;
  }
  for (const key of Object.keys(value)) {
    const bad = findUnmarshallable(
      value[key],
      /^[A-Za-z_$][\w$]*$/.test(key) ? `${where}.${key}` : `${where}[${JSON.stringify(key)}]`,
    );
    if (bad) return bad;
  }
  return null;
}

module.exports = { findUnmarshallable };
