-- An append that committed although its answer was lost is found again by its first
-- event's id (unique already), so the command id column and its index, one more index
-- entry for every event written, go.
DROP INDEX events_command_id;
ALTER TABLE events DROP COLUMN command_id;
