-- The ballot writer keeps the poll tallies itself: one update per option per
-- batch of votes, in the same transaction as the votes it counts, instead of
-- this trigger firing once per vote. Whatever inserts votes updates
-- `poll_options.cast_votes` in the same transaction.
drop trigger votes_count;
