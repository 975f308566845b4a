-- Up Migration
-- GET /notes pages newest first; without this index every page sorts the whole table.
CREATE INDEX notes_created_at_id_idx ON notes (created_at DESC, id DESC);

-- Down Migration
DROP INDEX notes_created_at_id_idx;
