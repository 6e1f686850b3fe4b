-- A confirmation is bound to the action it was asked for (delete, resize, decommission) as well
-- as the function, user and VM: a press of another kind never uses it. Rows from before this
-- column have no action and are refused (they expire within minutes anyway).
ALTER TABLE confirmations ADD COLUMN action TEXT NOT NULL DEFAULT '';
