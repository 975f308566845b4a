// The app's least-privilege database role (issue 15). The app used to connect as `database.user`, which
// the postgres image makes a superuser: one SQL injection was `COPY ... TO PROGRAM` on the database
// host. The owner (`database.user`) keeps running migrations and backups; the app gets a role with DML
// only. Pure: the SQL and the command string are built here and executed by components/app-role.ts.
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { literal } from "./quote";

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** `"name"` after checking it is a plain PostgreSQL identifier (the config schema enforces the same). */
function ident(name: string, what: string): string {
  if (!IDENT.test(name))
    throw new Error(`\`${what}\` must be a PostgreSQL identifier, got ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** The app role of an owner: `<owner>_rw`, cut so it stays within PostgreSQL's 63 characters. Pure. */
export function appRoleName(owner: string): string {
  return `${owner.slice(0, 60)}_rw`;
}

/**
 * The app role's password when `dbAppPassword` is not set: HMAC-SHA256 of a fixed label keyed by the
 * owner's password, so a stack created before the split gets a strong, stable, secret password without
 * a config change, and rotating `dbPassword` rotates it too. Knowing it reveals nothing of `dbPassword`.
 */
export function derivedAppPassword(ownerPassword: string): string {
  return createHmac("sha256", ownerPassword).update("safe-deploy app role v1").digest("base64url");
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677, PostgreSQL's format), so
 * the plaintext never reaches psql, the server's statement log or an error message. The salt is derived
 * from password and role: the same password gives the same SQL, so an unchanged stack declares no
 * change, and a new password gives a new verifier. Pure.
 */
export function scramVerifier(password: string, role: string, iterations = 4096): string {
  const pw = password.normalize("NFKC");
  const salt = createHmac("sha256", pw).update(`salt:${role}`).digest().subarray(0, 16);
  const salted = pbkdf2Sync(pw, salt, iterations, 32, "sha256");
  const hmac = (key: Buffer, s: string) => createHmac("sha256", key).update(s).digest();
  const storedKey = createHash("sha256").update(hmac(salted, "Client Key")).digest();
  const serverKey = hmac(salted, "Server Key");
  const b64 = (b: Buffer) => b.toString("base64");
  return `SCRAM-SHA-256$${iterations}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
}

/** What the role set-up needs: owner, app role, database and the app role's SCRAM verifier. */
export interface AppRoleSpec {
  owner: string;
  role: string;
  database: string;
  /** From {@link scramVerifier}; never a plaintext password. */
  verifier: string;
}

/**
 * The idempotent set-up, run as the owner in one transaction (psql `-1`): create the role if missing,
 * force its attributes (LOGIN, not superuser, no CREATEDB/CREATEROLE/REPLICATION/BYPASSRLS), drop every
 * role membership it has (pg_execute_server_program and friends), CONNECT, USAGE on every non-system
 * schema and no CREATE there, DML on all tables, USAGE/SELECT/UPDATE on all sequences, and default
 * privileges so what the owner's later migrations create is covered. Pure.
 */
export function appRoleSql(spec: AppRoleSpec): string {
  const owner = ident(spec.owner, "database.user");
  const role = ident(spec.role, "app role");
  const db = ident(spec.database, "database.name");
  if (spec.role === spec.owner) throw new Error("the app role must differ from `database.user`");
  if (!/^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/.test(spec.verifier)) {
    throw new Error("`verifier` must be a SCRAM-SHA-256 verifier (see scramVerifier)");
  }
  return `SET client_min_messages = warning;
DO $sd$
DECLARE
  m record;
  s text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${literal(spec.role)}) THEN
    CREATE ROLE ${role};
  END IF;
  FOR m IN SELECT r.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid
           WHERE a.member = (SELECT oid FROM pg_roles WHERE rolname = ${literal(spec.role)}) LOOP
    EXECUTE format('REVOKE %I FROM ${role}', m.rolname);
  END LOOP;
  FOR s IN SELECT nspname FROM pg_namespace
           WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%' LOOP
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM ${role}', s);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO ${role}', s);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO ${role}', s);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO ${role}', s);
  END LOOP;
  -- Databases created before PostgreSQL 15 let everyone create objects in "public".
  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
  END IF;
END
$sd$;
ALTER ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD ${literal(spec.verifier)};
GRANT CONNECT ON DATABASE ${db} TO ${role};
ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} GRANT USAGE ON SCHEMAS TO ${role};
ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role};
ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${role};
`;
}

/**
 * The shell command that runs {@link appRoleSql} (on stdin) as the owner inside the database container.
 * It names no secret: the container comes from `$SAFE_DEPLOY_DB_CONTAINER` and the owner's password
 * from `$PGPASSWORD`, which `docker exec -e PGPASSWORD` forwards from the command's environment. Pure.
 */
export function appRoleCommand(owner: string, database: string): string {
  ident(owner, "database.user");
  ident(database, "database.name");
  return (
    `docker exec -i -e PGPASSWORD "$SAFE_DEPLOY_DB_CONTAINER" ` +
    `psql -X -q -1 -v ON_ERROR_STOP=1 -h 127.0.0.1 -U ${owner} -d ${database} -f -`
  );
}
