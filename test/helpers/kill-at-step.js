// Preloaded (`node --require`) into the real CLI by test/cli/backup-crash.test.ts: a fault-injecting
// layer over node:fs/promises that SIGKILLs the process at one chosen step of its file work in one
// directory, as a power cut or the OOM killer would (issue 22). A step is "before" or "after" one
// open, write, sync, close, link, unlink or rename on a path under KILL_DIR, named by the role of the
// file, not its name (which holds the time and a random part), and counted: `after write dump.tmp #3`.
// KILL_LOG, if set, gets one line per step so a first, unkilled run can list them all; KILL_AT is the
// step to die at, as written in that log.
"use strict";
const fs = require("node:fs");
const fsp = require("node:fs/promises");
const path = require("node:path");

const dir = process.env.KILL_DIR ? path.resolve(process.env.KILL_DIR) : undefined;
const at = process.env.KILL_AT;
const log = process.env.KILL_LOG;
const seen = new Map();

const inDir = (p) => dir !== undefined && typeof p === "string" && path.resolve(p).startsWith(dir);
/** The role of a path in the backup directory, as create.ts names its files. */
function rel(p) {
  const name = path.relative(dir, path.resolve(p)) || ".";
  if (name === ".") return "dir";
  if (/^\.backup_.*\.json\.tmp-[0-9a-f]+$/.test(name)) return "manifest.tmp";
  if (/^\.backup_.*\.tmp-[0-9a-f]+$/.test(name)) return "dump.tmp";
  if (/^backup_.*\.json$/.test(name)) return "manifest";
  if (/^backup_/.test(name)) return "dump";
  return name;
}

function step(what) {
  const n = (seen.get(what) ?? 0) + 1;
  seen.set(what, n);
  const label = `${what} #${n}`;
  if (log) fs.appendFileSync(log, `${label}\n`);
  if (label === at) process.kill(process.pid, "SIGKILL");
}

async function around(what, call) {
  step(`before ${what}`);
  const r = await call();
  step(`after ${what}`);
  return r;
}

const handles = new WeakMap();
let patchedHandle = false;
function patchHandle(fh) {
  if (patchedHandle) return;
  patchedHandle = true;
  const proto = Object.getPrototypeOf(fh);
  for (const m of ["write", "writeFile", "sync", "datasync", "close"]) {
    const orig = proto[m];
    proto[m] = function (...args) {
      const p = handles.get(this);
      return p === undefined ? orig.apply(this, args) : around(`${m} ${p}`, () => orig.apply(this, args));
    };
  }
}

if (dir) {
  const open = fsp.open;
  fsp.open = async (p, ...rest) => {
    if (!inDir(p)) return open(p, ...rest);
    const fh = await around(`open ${rel(p)} ${rest[0] ?? "r"}`, () => open(p, ...rest));
    patchHandle(fh);
    handles.set(fh, rel(p));
    return fh;
  };
  for (const m of ["link", "rename"]) {
    const orig = fsp[m];
    fsp[m] = (a, b) => (inDir(b) ? around(`${m} ${rel(a)} ${rel(b)}`, () => orig(a, b)) : orig(a, b));
  }
  const unlink = fsp.unlink;
  fsp.unlink = (p) => (inDir(p) ? around(`unlink ${rel(p)}`, () => unlink(p)) : unlink(p));
}
