-- Up Migration
-- Expand, backfill, then tighten, each step in its cheap form: adding a nullable column without a
-- volatile default rewrites nothing; NOT NULL comes from a validated CHECK, so SET NOT NULL skips
-- its full-table scan (PostgreSQL 12+). node-pg-migrate runs this file in one transaction, so the
-- lock taken by ADD COLUMN lasts until the backfill commits: fine at the demo's size; on a big table,
-- move the UPDATE into batches in a migration of its own.
-- The DEFAULT keeps the previous release, which inserts without a title, working during a rollout
-- or after rolling back the app alone; the app derives titles for new notes exactly like this UPDATE.
ALTER TABLE notes ADD COLUMN title text;

UPDATE notes
SET title = left(coalesce(nullif(btrim(split_part(body, E'\n', 1), E' \t\r'), ''), 'Untitled'), 80)
WHERE title IS NULL; -- safe-deploy: allow backfill-in-one-statement (a demo-sized table: on a big one, backfill in batches from a script)

ALTER TABLE notes ALTER COLUMN title SET DEFAULT 'Untitled';

ALTER TABLE notes ADD CONSTRAINT notes_title_not_null CHECK (title IS NOT NULL) NOT VALID;
ALTER TABLE notes VALIDATE CONSTRAINT notes_title_not_null; -- safe-deploy: allow validate-in-same-transaction (a demo-sized table: on a big one, VALIDATE in a migration of its own)
ALTER TABLE notes ALTER COLUMN title SET NOT NULL;
ALTER TABLE notes DROP CONSTRAINT notes_title_not_null;

ALTER TABLE notes ADD CONSTRAINT notes_title_length CHECK (char_length(title) BETWEEN 1 AND 200) NOT VALID;
ALTER TABLE notes VALIDATE CONSTRAINT notes_title_length; -- safe-deploy: allow validate-in-same-transaction

-- Down Migration
ALTER TABLE notes DROP COLUMN title;
