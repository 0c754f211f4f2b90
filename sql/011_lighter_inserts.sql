-- The batch's inserts into rs_referrals, rs_referrer_stats and rs_rejections
-- (docs/design.md §1): the foreign key of each on rs_programs is checked by
-- a trigger per inserted row, which looks the program up and locks its row
-- (FOR KEY SHARE). Two parts of a batch (or two instances) inserting
-- referrals of one program at once share that lock, which Postgres records
-- as a MultiXact. The batch writes these rows only for a program it has
-- read, reached through a code it holds locked (FOR UPDATE), and rs_codes
-- keeps its foreign key: the program cannot be deleted meanwhile.
--
-- What else the keys did, refusing to delete a program (or change its id)
-- while rows name it, a trigger on rs_programs now does; it runs only then.
ALTER TABLE rs_referrals DROP CONSTRAINT rs_referrals_program_id_fkey;
ALTER TABLE rs_referrer_stats DROP CONSTRAINT rs_referrer_stats_program_id_fkey;
ALTER TABLE rs_rejections DROP CONSTRAINT rs_rejections_program_id_fkey;

CREATE FUNCTION rs_programs_keep_referenced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    holder text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    SELECT t INTO holder
      FROM (VALUES ('rs_referrals', EXISTS (SELECT FROM rs_referrals
                                             WHERE program_id = OLD.id)),
                   ('rs_referrer_stats', EXISTS (SELECT FROM rs_referrer_stats
                                                  WHERE program_id = OLD.id)),
                   ('rs_credits', EXISTS (SELECT FROM rs_credits
                                           WHERE program_id = OLD.id)),
                   ('rs_rejections', EXISTS (SELECT FROM rs_rejections
                                              WHERE program_id = OLD.id))) AS v(t, used)
     WHERE used
     LIMIT 1;
    IF holder IS NOT NULL THEN
        RAISE EXCEPTION 'program % (id %) is still referenced from table %',
                        OLD.key, OLD.id, holder
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE TRIGGER rs_programs_keep_referenced
    BEFORE DELETE OR UPDATE OF id ON rs_programs
    FOR EACH ROW EXECUTE FUNCTION rs_programs_keep_referenced();

-- rs_credits_beneficiary served one query, `admin stats user`, which finds
-- the same credits through the user's referrals (a credit's beneficiary is
-- the referrer or the referee of its referral: both are indexed in
-- rs_referrals) and then rs_credits' (referral_id, role) key. One index entry
-- less for every credit the batch writes.
DROP INDEX rs_credits_beneficiary;
