-- The referral UPDATE of the batch transaction (pending -> credited, and
-- later reversed) is a HOT update again: no index of rs_referrals may look
-- at a column it changes, and the page must have room for the new version
-- (docs/design.md §1).
--
-- rs_referrals_held_due (sql/007_hold_fraud.sql) had `status` in its
-- predicate, so every status change wrote a new entry into each of the
-- table's indexes. The due referrals are the held ones: release_at set, not
-- yet released, not cancelled. The columns of this predicate change only for
-- referrals of a program with a hold.
DROP INDEX rs_referrals_held_due;
CREATE INDEX rs_referrals_held_due ON rs_referrals (release_at)
    WHERE release_at IS NOT NULL AND released_at IS NULL AND cancelled_at IS NULL;

-- A referral is inserted at its sign-up and updated once when it qualifies:
-- half of each new page is left for that update. Existing pages keep their
-- layout.
ALTER TABLE rs_referrals SET (fillfactor = 50);
