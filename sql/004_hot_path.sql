-- The batch transaction's cost (docs/design.md §1), measured with
-- pg_stat_statements on the heavy benchmark stream (bench/compare.sh): the
-- credit INSERT and the referral UPDATE took most of Postgres's time.
--
-- rs_credits: its foreign keys are checked by a trigger per row, a lookup of
-- the referral and of the program for every credit. The batch writes a
-- referral before its credits in the same transaction, and a program cannot
-- go while it has referrals (rs_referrals keeps its foreign key), so these
-- checks guarantee nothing the code and the other tables do not.
ALTER TABLE rs_credits DROP CONSTRAINT rs_credits_referral_id_fkey;
ALTER TABLE rs_credits DROP CONSTRAINT rs_credits_program_id_fkey;

-- A referral is inserted pending and updated when it is credited or
-- reversed; a user row is created bare and updated at its sign-up. No
-- indexed column changes, so with room left on the page the new row version
-- stays on it (a HOT update) and no index is touched.
ALTER TABLE rs_referrals SET (fillfactor = 80);
ALTER TABLE rs_users SET (fillfactor = 80);
