-- Up Migration
-- GET /notes pages newest first; without this index every page sorts the whole table.
-- On purpose: notes is created one migration earlier and still small, and node-pg-migrate runs .sql
-- files in a transaction, where CONCURRENTLY is impossible.
-- safe-deploy: allow create-index-without-concurrently
CREATE INDEX notes_created_at_id_idx ON notes (created_at DESC, id DESC);

-- Down Migration
DROP INDEX notes_created_at_id_idx;
