// The pure parts of a restore, word for word (issue 22, mutation testing of src/core/backup/restore.ts:
// `describeSession`, `previousName`, `localeError`, `parallelShare`, `keepFreeBytes`): what the prompt
// says about a connected client, the name the old database is kept under, the error for a locale the
// server lacks, and how much room the temp copy leaves. In process, no server: first in the
// `backup/restore` key, so a mutant of these costs under a second.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  describeSession,
  keepFreeBytes,
  localeError,
  parallelShare,
  previousName,
} from "../../../src/core/backup/restore";
import { CannotRunError, ConfigError } from "../../../src/core/errors";

test("describeSession: the application in quotes, or `a client` when it gave no name", () => {
  assert.equal(
    describeSession({ pid: 7, application: "web", user: "app_rw", client: "10.0.0.5" }),
    '"web" as "app_rw" from 10.0.0.5',
  );
  assert.equal(
    describeSession({ pid: 8, application: "", user: "app", client: "a local socket" }),
    'a client as "app" from a local socket',
  );
});

test("previousName: the name, `_before_restore_` and the UTC second, cut to 63 bytes from the name's end", () => {
  // Milliseconds and a zone offset in the input: only the UTC year to second is kept.
  const now = new Date("2026-11-23T05:45:07.891+02:00");
  assert.equal(previousName("shop", now), "shop_before_restore_20261123034507");
  const long = "x".repeat(40) + "_and_then_some_more_letters";
  const kept = previousName(long, now);
  assert.equal(kept.length, 63);
  assert.equal(kept, `${long.slice(0, 33)}_before_restore_20261123034507`);
  // 33 bytes of name fit exactly: nothing cut.
  assert.equal(previousName(long.slice(0, 33), now), kept);
});

test("localeError: a refused locale is named with every locale the CREATE gave, the server's last line and the fix", () => {
  const create =
    "CREATE DATABASE \"x\" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = icu LOCALE = 'de_DE.UTF-8' " +
    "LC_COLLATE = 'it''s' LC_CTYPE = 'de_DE.UTF-8' ICU_LOCALE = 'de-DE';";
  const e = localeError(
    new CannotRunError(
      'creating the database to restore into failed:\nDETAIL: one\nERROR:  invalid locale name: "de_DE.UTF-8"',
    ),
    "shop",
    "/var/backups/shop/backup_20261123_034507_manual.pgdump.zst",
    create,
  );
  assert.ok(e instanceof CannotRunError);
  assert.equal(
    e.message,
    "cannot create database \"shop\" as it was in backup_20261123_034507_manual.pgdump.zst (LOCALE 'de_DE.UTF-8', " +
      "LC_COLLATE 'it''s', LC_CTYPE 'de_DE.UTF-8', ICU_LOCALE 'de-DE'): this server lacks that locale " +
      '(ERROR:  invalid locale name: "de_DE.UTF-8"). Install it on the server\'s machine (e.g. add it to ' +
      "/etc/locale.gen, run `locale-gen` and restart PostgreSQL) or restore onto a server that has it; nothing was changed",
  );
  // The words PostgreSQL uses, in any case: a locale, a collation, ICU.
  for (const msg of [
    'Collation "x" for encoding "UTF8" does not exist',
    "ICU is not supported",
    "invalid LOCALE",
  ]) {
    assert.ok(localeError(new Error(msg), "shop", "f", create) instanceof CannotRunError, msg);
  }
});

test("localeError: any other failure, or a thrown value without a message, is passed on as it is", () => {
  const create = "CREATE DATABASE \"x\" LOCALE = 'de_DE.UTF-8';";
  for (const e of [
    new CannotRunError("permission denied to create database"),
    new Error(""),
    "a string",
    { code: 1 },
  ]) {
    assert.equal(localeError(e, "shop", "f", create), e);
  }
});

test("parallelShare: the share of the archive's bytes outside its largest table", () => {
  assert.equal(parallelShare({}), 0);
  assert.equal(parallelShare({ a: 0, b: 0 }), 0, "empty tables: nothing to load alongside");
  assert.equal(parallelShare({ only: 500 }), 0);
  assert.equal(parallelShare({ small: 25, big: 75 }), 0.25);
  assert.equal(parallelShare({ a: 10, b: 30, c: 60 }), 0.4);
});

test("keepFreeBytes: the option (0 too), else the env's bytes, else 1 GiB or the archive's size", () => {
  assert.equal(keepFreeBytes(0, "7", 5 * 2 ** 30), 0);
  assert.equal(keepFreeBytes(12, "7", 5), 12);
  assert.equal(keepFreeBytes(undefined, "4096", 5 * 2 ** 30), 4096);
  assert.equal(keepFreeBytes(undefined, " 0 ", 5), 0);
  assert.equal(keepFreeBytes(undefined, undefined, 5), 2 ** 30);
  assert.equal(keepFreeBytes(undefined, " ", 5), 2 ** 30, "blank: the default");
  assert.equal(keepFreeBytes(undefined, "", 2 ** 31 + 1), 2 ** 31 + 1);
  assert.equal(keepFreeBytes(undefined, undefined, 2 ** 30 - 1), 2 ** 30);
});

test("keepFreeBytes: an env that is not a whole number of bytes is refused, naming it and the fix", () => {
  for (const env of ["1G", "G1", "1 G", "-5", "1e9", "1.5"]) {
    assert.throws(
      () => keepFreeBytes(undefined, env, 5),
      (e: Error) => {
        assert.ok(e instanceof ConfigError, `${env}: ${e.constructor.name}`);
        assert.equal(
          e.message,
          `SAFE_DEPLOY_RESTORE_KEEP_FREE is "${env}": give a number of bytes (e.g. 1073741824), or unset it for the default`,
        );
        return true;
      },
    );
  }
});
