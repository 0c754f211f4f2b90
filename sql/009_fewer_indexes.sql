-- Fewer index entries per referral and per credit (docs/design.md §1): each
-- insert writes an entry into every index of its table, and on the heavy
-- benchmark stream the referral and credit inserts were two of the three
-- most expensive statements.
--
-- rs_referrals: the batch looks up a referee's referrals by referee, through
-- an index of its own, while the uniqueness of (program, referee) had
-- another. One unique index on (referee_user_id, program_id) serves both.
-- Program-wide counts (admin) read all of a program's referrals either way.
CREATE UNIQUE INDEX rs_referrals_referee_program
    ON rs_referrals (referee_user_id, program_id);
ALTER TABLE rs_referrals DROP CONSTRAINT rs_referrals_program_id_referee_user_id_key;
DROP INDEX rs_referrals_referee;

-- rs_credits: (program_id, role) served only the program-wide sums of
-- `admin`, which read all of a program's credits either way.
DROP INDEX rs_credits_program;
