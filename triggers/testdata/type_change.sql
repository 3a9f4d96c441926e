-- Create
CREATE OR REPLACE FUNCTION "online"."_online_score_check"() RETURNS void LANGUAGE sql
SET search_path = "public", pg_temp
AS $online$
UPDATE "public"."users" SET "_new_score" = (score::bigint) WHERE false;
UPDATE "public"."users" SET "score" = (SELECT (score::integer) FROM (SELECT CAST("_new_score" AS bigint) AS "score") AS "_online_in") WHERE false;
$online$;

DROP FUNCTION "online"."_online_score_check"();

CREATE FUNCTION "online"."_online_score_down"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "public", pg_temp
AS $online$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
    "score" bigint := "_online_row"."_new_score";
BEGIN
    "_online_row"."score" := (score::integer);
    RETURN "_online_row";
END
$online$;

CREATE FUNCTION "online"."_online_score_up"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "public", pg_temp
AS $online$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
    "score" integer := "_online_row"."score";
BEGIN
    "_online_row"."_new_score" := (score::bigint);
    RETURN "_online_row";
END
$online$;

CREATE FUNCTION "online"."_online_score_ins"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "public", pg_temp
AS $online$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
BEGIN
    IF "_online_row"."_new_score" IS NULL THEN
        DECLARE
            "score" integer := "_online_row"."score";
        BEGIN
            "_online_row"."_new_score" := (score::bigint);
        END;
    ELSE
        DECLARE
            "score" bigint := "_online_row"."_new_score";
        BEGIN
            "_online_row"."score" := (score::integer);
        END;
    END IF;
    RETURN "_online_row";
END
$online$;

CREATE TRIGGER "_online_score_0_ins"
  BEFORE INSERT ON "public"."users"
  FOR EACH ROW
  EXECUTE FUNCTION "online"."_online_score_ins"();

CREATE TRIGGER "_online_score_1_down_upd"
  BEFORE UPDATE OF "_new_score" ON "public"."users"
  FOR EACH ROW
  WHEN (pg_catalog.current_setting('online.backfill', true) IS DISTINCT FROM 'on'
    AND pg_catalog.record_image_eq(ROW(NEW."score"), ROW(OLD."score"))
    AND NOT pg_catalog.record_image_eq(ROW(NEW."_new_score"), ROW(OLD."_new_score")))
  EXECUTE FUNCTION "online"."_online_score_down"();

CREATE TRIGGER "_online_score_2_up_upd"
  BEFORE UPDATE OF "score", "id" ON "public"."users"
  FOR EACH ROW
  WHEN (pg_catalog.record_image_eq(ROW(NEW."_new_score"), ROW(OLD."_new_score"))
    AND pg_catalog.current_setting('online.backfill', true) IS DISTINCT FROM 'on'
    AND (NEW."_new_score" IS NULL OR NOT pg_catalog.record_image_eq(ROW(NEW."score"), ROW(OLD."score"))))
  EXECUTE FUNCTION "online"."_online_score_up"();

-- Drop
DROP TRIGGER IF EXISTS "_online_score_0_ins" ON "public"."users";
DROP TRIGGER IF EXISTS "_online_score_1_down_ins" ON "public"."users";
DROP TRIGGER IF EXISTS "_online_score_1_down_upd" ON "public"."users";
DROP TRIGGER IF EXISTS "_online_score_2_up_ins" ON "public"."users";
DROP TRIGGER IF EXISTS "_online_score_2_up_upd" ON "public"."users";
DROP FUNCTION IF EXISTS "online"."_online_score_ins"();
DROP FUNCTION IF EXISTS "online"."_online_score_down"();
DROP FUNCTION IF EXISTS "online"."_online_score_up"();
DROP FUNCTION IF EXISTS "online"."_online_score_check"();

-- BackfillExpr(Up)
(score::bigint)

-- BackfillExpr(Down)
(SELECT (score::integer) FROM (SELECT CAST("_new_score" AS bigint) AS "score") AS "_online_in")
