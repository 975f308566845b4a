// Stand-in for Pulumi's dynamic provider host: a plain node process (no tsx) that loads the serialized
// `__provider` text with require-from-string and calls one method, exactly as
// @pulumi/pulumi/cmd/dynamic-provider does. Reads {text, method, args} as JSON on stdin, writes
// {ok, result} or {ok: false, error} as JSON on stdout.
"use strict";
const requireFromString = require("require-from-string");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", async () => {
  const { text, method, args } = JSON.parse(input);
  try {
    const provider = requireFromString(text).handler();
    if (typeof provider[method] !== "function") {
      process.stdout.write(JSON.stringify({ ok: true, result: null, missing: true }));
      return;
    }
    const result = await provider[method](...args);
    process.stdout.write(JSON.stringify({ ok: true, result: result === undefined ? null : result }));
  } catch (e) {
    const err =
      e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : { message: String(e) };
    process.stdout.write(JSON.stringify({ ok: false, error: err }));
  }
});
