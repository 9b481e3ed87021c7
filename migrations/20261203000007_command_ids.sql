-- The append that wrote each event. A committer whose connection broke after the
-- append's statement cannot know whether it committed; its retry looks its own
-- command id up here and answers with the earlier commit instead of appending again.
ALTER TABLE events ADD COLUMN command_id uuid;
CREATE INDEX events_command_id ON events (command_id);
