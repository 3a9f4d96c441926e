-- Create
CREATE OR REPLACE FUNCTION "public"."_online_legacy_check"() RETURNS void LANGUAGE sql
SET search_path = "public", pg_temp
AS $online$
UPDATE "public"."t" SET "legacy" = ('from-' || a) WHERE false;
$online$;

DROP FUNCTION "public"."_online_legacy_check"();

CREATE FUNCTION "public"."_online_legacy_down"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "public", pg_temp
AS $online$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
    "a" text := "_online_row"."a";
BEGIN
    "_online_row"."legacy" := ('from-' || a);
    RETURN "_online_row";
END
$online$;

CREATE TRIGGER "_online_legacy_1_down_ins"
  BEFORE INSERT ON "public"."t"
  FOR EACH ROW
  WHEN (NEW."legacy" IS NULL)
  EXECUTE FUNCTION "public"."_online_legacy_down"();

-- Drop
DROP TRIGGER IF EXISTS "_online_legacy_0_ins" ON "public"."t";
DROP TRIGGER IF EXISTS "_online_legacy_1_down_ins" ON "public"."t";
DROP TRIGGER IF EXISTS "_online_legacy_1_down_upd" ON "public"."t";
DROP TRIGGER IF EXISTS "_online_legacy_2_up_ins" ON "public"."t";
DROP TRIGGER IF EXISTS "_online_legacy_2_up_upd" ON "public"."t";
DROP FUNCTION IF EXISTS "public"."_online_legacy_ins"();
DROP FUNCTION IF EXISTS "public"."_online_legacy_down"();
DROP FUNCTION IF EXISTS "public"."_online_legacy_up"();
DROP FUNCTION IF EXISTS "public"."_online_legacy_check"();

-- BackfillExpr(Down)
('from-' || a)
