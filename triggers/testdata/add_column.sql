-- Create
CREATE OR REPLACE FUNCTION "public"."_online_status_check"() RETURNS void LANGUAGE sql
SET search_path = "public", pg_temp
AS $online$
UPDATE "public"."acct" SET "_new_status" = ('active') WHERE false;
$online$;

DROP FUNCTION "public"."_online_status_check"();

CREATE FUNCTION "public"."_online_status_up"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "public", pg_temp
AS $online$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
BEGIN
    "_online_row"."_new_status" := ('active');
    RETURN "_online_row";
END
$online$;

CREATE TRIGGER "_online_status_2_up_ins"
  BEFORE INSERT ON "public"."acct"
  FOR EACH ROW
  WHEN (NEW."_new_status" IS NULL)
  EXECUTE FUNCTION "public"."_online_status_up"();

CREATE TRIGGER "_online_status_2_up_upd"
  BEFORE UPDATE OF "id" ON "public"."acct"
  FOR EACH ROW
  WHEN (pg_catalog.record_image_eq(ROW(NEW."_new_status"), ROW(OLD."_new_status"))
    AND pg_catalog.current_setting('online.backfill', true) IS DISTINCT FROM 'on'
    AND NEW."_new_status" IS NULL)
  EXECUTE FUNCTION "public"."_online_status_up"();

-- Drop
DROP TRIGGER IF EXISTS "_online_status_0_ins" ON "public"."acct";
DROP TRIGGER IF EXISTS "_online_status_1_down_ins" ON "public"."acct";
DROP TRIGGER IF EXISTS "_online_status_1_down_upd" ON "public"."acct";
DROP TRIGGER IF EXISTS "_online_status_2_up_ins" ON "public"."acct";
DROP TRIGGER IF EXISTS "_online_status_2_up_upd" ON "public"."acct";
DROP FUNCTION IF EXISTS "public"."_online_status_ins"();
DROP FUNCTION IF EXISTS "public"."_online_status_down"();
DROP FUNCTION IF EXISTS "public"."_online_status_up"();
DROP FUNCTION IF EXISTS "public"."_online_status_check"();

-- BackfillExpr(Up)
('active')
