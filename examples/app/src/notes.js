"use strict";

/**
 * @typedef {object} Note
 * @property {number} id
 * @property {string} title
 * @property {string} body
 * @property {string} createdAt  ISO 8601.
 */

/**
 * @typedef {object} NewNote
 * @property {string} body
 * @property {string} title
 */

const MAX_BODY = 10000;
const MAX_TITLE = 200;
const DERIVED_TITLE = 80;

/**
 * Length in characters (code points), the unit PostgreSQL's char_length() counts.
 * @param {string} s
 */
function chars(s) {
  return Array.from(s).length;
}

/**
 * The title the 20261110090000000 migration backfills: the body's first line, trimmed, at most 80
 * characters, or "Untitled". Kept identical so old and new rows read the same.
 * @param {string} body
 * @returns {string}
 */
function deriveTitle(body) {
  const first = body.split("\n", 1)[0].replace(/^[ \t\r]+|[ \t\r]+$/g, "");
  return first === "" ? "Untitled" : Array.from(first).slice(0, DERIVED_TITLE).join("");
}

/**
 * Checks a POST /notes body. Returns the note to insert, or the list of problems (each names the field).
 * @param {unknown} input
 * @returns {{ ok: true, value: NewNote } | { ok: false, errors: string[] }}
 */
function validateNewNote(input) {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return { ok: false, errors: ['the request body must be a JSON object like {"body": "..."}'] };
  }
  const { body, title, ...rest } = /** @type {Record<string, unknown>} */ (input);
  const errors = [];
  if (typeof body !== "string") errors.push("`body` is required and must be a string");
  else if (body.trim() === "") errors.push("`body` must not be blank");
  else if (chars(body) > MAX_BODY) errors.push(`\`body\` must be at most ${MAX_BODY} characters`);
  if (title !== undefined) {
    if (typeof title !== "string") errors.push("`title` must be a string");
    else if (title.trim() === "") errors.push("`title` must not be blank");
    else if (chars(title.trim()) > MAX_TITLE)
      errors.push(`\`title\` must be at most ${MAX_TITLE} characters`);
  }
  for (const key of Object.keys(rest))
    errors.push(`\`${key}\` is not a known field (use \`body\`, \`title\`)`);
  if (errors.length > 0) return { ok: false, errors };
  const text = /** @type {string} */ (body);
  return {
    ok: true,
    value: { body: text, title: typeof title === "string" ? title.trim() : deriveTitle(text) },
  };
}

/**
 * @param {{ id: string, title: string, body: string, created_at: Date }} row
 * @returns {Note}
 */
function toNote(row) {
  return { id: Number(row.id), title: row.title, body: row.body, createdAt: row.created_at.toISOString() };
}

const COLUMNS = "id, title, body, created_at";

/**
 * @param {import("pg").Pool} pool
 * @param {NewNote} note
 * @returns {Promise<Note>}
 */
async function insertNote(pool, note) {
  const { rows } = await pool.query(`INSERT INTO notes (title, body) VALUES ($1, $2) RETURNING ${COLUMNS}`, [
    note.title,
    note.body,
  ]);
  return toNote(rows[0]);
}

/**
 * @param {import("pg").Pool} pool
 * @param {number} id
 * @returns {Promise<Note | undefined>}
 */
async function getNote(pool, id) {
  const { rows } = await pool.query(`SELECT ${COLUMNS} FROM notes WHERE id = $1`, [id]);
  return rows[0] ? toNote(rows[0]) : undefined;
}

/**
 * Newest first, served by the notes_created_at_id_idx index.
 * @param {import("pg").Pool} pool
 * @param {number} limit
 * @returns {Promise<Note[]>}
 */
async function listNotes(pool, limit) {
  const { rows } = await pool.query(
    `SELECT ${COLUMNS} FROM notes ORDER BY created_at DESC, id DESC LIMIT $1`,
    [limit],
  );
  return rows.map(toNote);
}

module.exports = { deriveTitle, validateNewNote, insertNote, getNote, listNotes };
