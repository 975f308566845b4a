// Preloaded (`node --require`) into Pulumi's real dynamic provider host by test/helpers/provider.ts.
// It changes nothing the host does; it adds two things a test needs:
// 1. Every value a provider method hands back to the host (create/update outs, check inputs, read
//    props, a partial failure's properties, diff's replaces) is walked first. `undefined` anywhere, or
//    a value protobuf's Struct cannot carry faithfully (function, Date, Buffer, Map, NaN...), makes the
//    call fail with the exact path. The host itself reports only "Unexpected struct type." with no
//    path (pulumi/pulumi#7576), or, for a partial failure, never answers at all.
// 2. The host exits when the test process that started it goes away (its stdin closes), so a killed
//    test run leaves no gRPC server behind.
"use strict";
const path = require("node:path");
const { findUnmarshallable } = require("./provider-values.js");

const GUARD_TAG = "[provider-host guard]";

function fail(method, bad) {
  return new Error(
    `${GUARD_TAG} ${method}: ${bad}. Pulumi's provider host sends every value as a google.protobuf.Struct, ` +
      `whose fromJavaScript throws "Unexpected struct type." on undefined (pulumi/pulumi#7576): ` +
      `leave the key out (or use null) and pass only plain JSON values.`,
  );
}

// Which part of each method's result the host marshals with Struct.fromJavaScript.
const MARSHALLED = {
  check: (r) => [["inputs", r && r.inputs]],
  create: (r) => [["outs", r && r.outs]],
  update: (r) => [["outs", r && r.outs]],
  read: (r) => [
    ["props", r && r.props],
    ["inputs", r && r.inputs],
  ],
  diff: (r) => [["replaces", r && r.replaces]],
};

function guardProvider(provider) {
  const guarded = {};
  for (const method of Object.keys(provider)) {
    const fn = provider[method];
    if (typeof fn !== "function") {
      guarded[method] = fn;
      continue;
    }
    guarded[method] = async (...args) => {
      let result;
      try {
        result = await fn.apply(provider, args);
      } catch (e) {
        // A partial failure's properties go through Struct inside the host's catch: a bad value there
        // is an unhandled rejection and the call never returns.
        if (e && e.id && e.properties !== undefined) {
          const bad = findUnmarshallable(e.properties, "error.properties");
          if (bad) throw fail(method, bad);
        }
        throw e;
      }
      for (const [name, part] of (MARSHALLED[method] || (() => []))(result)) {
        if (part === undefined) continue; // the host treats a missing part as empty
        const bad = findUnmarshallable(part, name);
        if (bad) throw fail(method, bad);
      }
      return result;
    };
  }
  return guarded;
}

// The host loads each `__provider` text with require-from-string (resolved from @pulumi/pulumi) and
// calls `.handler()`: wrap that one function before the host requires it.
// SAFE_DEPLOY_PROVIDER_GUARD=off leaves the host exactly as Pulumi ships it (to show its own errors).
if (process.env.SAFE_DEPLOY_PROVIDER_GUARD !== "off") {
  const pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
  const rfsPath = require.resolve("require-from-string", { paths: [pulumiDir] });
  const requireFromString = require(rfsPath);
  require.cache[rfsPath].exports = function guardedRequireFromString(...args) {
    const mod = requireFromString(...args);
    if (!mod || typeof mod.handler !== "function") return mod;
    return { ...mod, handler: () => guardProvider(mod.handler()) };
  };
}

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
