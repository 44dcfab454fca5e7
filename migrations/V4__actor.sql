-- Who did it: the person behind the command that wrote an audit row
-- (SUDO_USER through sudo, else the login name; `grant --by NAME` names the
-- person a grant was made for). NULL on rows written before this migration.
ALTER TABLE audit ADD COLUMN actor TEXT;
