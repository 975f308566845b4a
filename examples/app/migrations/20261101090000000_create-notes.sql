-- Up Migration
-- The demo's only domain table: short text notes, newest first.
CREATE TABLE notes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT notes_body_length CHECK (char_length(body) BETWEEN 1 AND 10000)
);

-- Down Migration
DROP TABLE notes;
