-- Create
CREATE OR REPLACE FUNCTION "public"."_online_code_check"() RETURNS void LANGUAGE sql
SET search_path = "public", pg_temp
AS $online$
UPDATE "public"."items" SET "_new_code" = (SELECT (COALESCE(code, 0)) FROM (SELECT CAST((nullif(trim(code), '')::integer) AS integer) AS "code") AS "_online_s1") WHERE false;
UPDATE "public"."items" SET "code" = (SELECT (code::text) FROM (SELECT CAST("_new_code" AS integer) AS "code") AS "_online_in") WHERE false;
$online$;

DROP FUNCTION "public"."_online_code_check"();

CREATE FUNCTION "public"."_online_code_down"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "public", pg_temp
AS $online$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
    "code" integer := "_online_row"."_new_code";
BEGIN
    "_online_row"."code" := (code::text);
    RETURN "_online_row";
END
$online$;

CREATE FUNCTION "public"."_online_code_up"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "public", pg_temp
AS $online$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
    "code" text := "_online_row"."code";
BEGIN
    DECLARE
        "code" integer := (nullif(trim(code), '')::integer);
    BEGIN
        "_online_row"."_new_code" := (COALESCE(code, 0));
    END;
    RETURN "_online_row";
END
$online$;

CREATE FUNCTION "public"."_online_code_ins"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "public", pg_temp
AS $online$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
BEGIN
    IF "_online_row"."_new_code" IS NULL THEN
        DECLARE
            "code" text := "_online_row"."code";
        BEGIN
            DECLARE
                "code" integer := (nullif(trim(code), '')::integer);
            BEGIN
                "_online_row"."_new_code" := (COALESCE(code, 0));
            END;
        END;
    ELSE
        DECLARE
            "code" integer := "_online_row"."_new_code";
        BEGIN
            "_online_row"."code" := (code::text);
        END;
    END IF;
    RETURN "_online_row";
END
$online$;

CREATE TRIGGER "_online_code_0_ins"
  BEFORE INSERT ON "public"."items"
  FOR EACH ROW
  EXECUTE FUNCTION "public"."_online_code_ins"();

CREATE TRIGGER "_online_code_1_down_upd"
  BEFORE UPDATE OF "_new_code" ON "public"."items"
  FOR EACH ROW
  WHEN (pg_catalog.current_setting('online.backfill', true) IS DISTINCT FROM 'on'
    AND pg_catalog.record_image_eq(ROW(NEW."code"), ROW(OLD."code"))
    AND NOT pg_catalog.record_image_eq(ROW(NEW."_new_code"), ROW(OLD."_new_code")))
  EXECUTE FUNCTION "public"."_online_code_down"();

CREATE TRIGGER "_online_code_2_up_upd"
  BEFORE UPDATE OF "code", "id" ON "public"."items"
  FOR EACH ROW
  WHEN (pg_catalog.record_image_eq(ROW(NEW."_new_code"), ROW(OLD."_new_code"))
    AND pg_catalog.current_setting('online.backfill', true) IS DISTINCT FROM 'on'
    AND (NEW."_new_code" IS NULL OR NOT pg_catalog.record_image_eq(ROW(NEW."code"), ROW(OLD."code"))))
  EXECUTE FUNCTION "public"."_online_code_up"();

-- Drop
DROP TRIGGER IF EXISTS "_online_code_0_ins" ON "public"."items";
DROP TRIGGER IF EXISTS "_online_code_1_down_ins" ON "public"."items";
DROP TRIGGER IF EXISTS "_online_code_1_down_upd" ON "public"."items";
DROP TRIGGER IF EXISTS "_online_code_2_up_ins" ON "public"."items";
DROP TRIGGER IF EXISTS "_online_code_2_up_upd" ON "public"."items";
DROP FUNCTION IF EXISTS "public"."_online_code_ins"();
DROP FUNCTION IF EXISTS "public"."_online_code_down"();
DROP FUNCTION IF EXISTS "public"."_online_code_up"();
DROP FUNCTION IF EXISTS "public"."_online_code_check"();

-- BackfillExpr(Up)
(SELECT (COALESCE(code, 0)) FROM (SELECT CAST((nullif(trim(code), '')::integer) AS integer) AS "code") AS "_online_s1")

-- BackfillExpr(Down)
(SELECT (code::text) FROM (SELECT CAST("_new_code" AS integer) AS "code") AS "_online_in")
