// Pulumi's entry point (Pulumi.yaml `main`, with `runtime.options.typescript: false`), issue 14.
// The language host would otherwise type-check the whole program with its vendored ts-node on every
// `up` and rollback (about 45 s), and without dev dependencies it falls back to a TypeScript 3.8 that
// cannot read this code. tsx (a production dependency) transpiles each file as it is required, from the
// tree this file is in, so a rollback's worktree runs its own sources; `npm run typecheck` checks types.
require("tsx/cjs/api").register();
module.exports = require("./index.ts");
