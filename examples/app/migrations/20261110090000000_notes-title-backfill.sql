-- Up Migration
-- Expand, backfill, then tighten, so no step holds a long exclusive lock on a big table:
-- adding a nullable column without a volatile default is instant; the NOT NULL comes from a
-- validated CHECK (PostgreSQL 12+ then skips the full-table scan in SET NOT NULL).
-- The DEFAULT keeps the previous release, which inserts without a title, working during a rollout
-- or after rolling back the app alone; the app itself derives titles exactly like this backfill.
ALTER TABLE notes ADD COLUMN title text;

UPDATE notes
SET title = left(coalesce(nullif(btrim(split_part(body, E'\n', 1), E' \t\r'), ''), 'Untitled'), 80)
WHERE title IS NULL;

ALTER TABLE notes ALTER COLUMN title SET DEFAULT 'Untitled';

ALTER TABLE notes ADD CONSTRAINT notes_title_not_null CHECK (title IS NOT NULL) NOT VALID;
ALTER TABLE notes VALIDATE CONSTRAINT notes_title_not_null;
ALTER TABLE notes ALTER COLUMN title SET NOT NULL;
ALTER TABLE notes DROP CONSTRAINT notes_title_not_null;

ALTER TABLE notes ADD CONSTRAINT notes_title_length CHECK (char_length(title) BETWEEN 1 AND 200) NOT VALID;
ALTER TABLE notes VALIDATE CONSTRAINT notes_title_length;

-- Down Migration
ALTER TABLE notes DROP COLUMN title;
