-- Create
CREATE OR REPLACE FUNCTION "public"."_online_email_check"() RETURNS void LANGUAGE sql
SET search_path = "public", pg_temp
AS $online$
UPDATE "public"."users" SET "_online_email" = (lower(email)) WHERE false;
UPDATE "public"."users" SET "email" = (SELECT (email) FROM (SELECT CAST("_online_email" AS text) AS "email") AS "_online_in") WHERE false;
$online$;

DROP FUNCTION "public"."_online_email_check"();

CREATE FUNCTION "public"."_online_email_down"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "public", pg_temp
AS $online$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
    "email" text := "_online_row"."_online_email";
BEGIN
    "_online_row"."email" := (email);
    RETURN "_online_row";
END
$online$;

CREATE FUNCTION "public"."_online_email_up"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "public", pg_temp
AS $online$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
    "email" text := "_online_row"."email";
BEGIN
    "_online_row"."_online_email" := (lower(email));
    RETURN "_online_row";
END
$online$;

CREATE FUNCTION "public"."_online_email_ins"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "public", pg_temp
AS $online$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
BEGIN
    IF "_online_row"."_online_email" IS NULL THEN
        DECLARE
            "email" text := "_online_row"."email";
        BEGIN
            "_online_row"."_online_email" := (lower(email));
        END;
    ELSE
        DECLARE
            "email" text := "_online_row"."_online_email";
        BEGIN
            "_online_row"."email" := (email);
        END;
    END IF;
    RETURN "_online_row";
END
$online$;

CREATE TRIGGER "_online_email_0_ins"
  BEFORE INSERT ON "public"."users"
  FOR EACH ROW
  EXECUTE FUNCTION "public"."_online_email_ins"();

CREATE TRIGGER "_online_email_1_down_upd"
  BEFORE UPDATE OF "_online_email" ON "public"."users"
  FOR EACH ROW
  WHEN (pg_catalog.current_setting('online.backfill', true) IS DISTINCT FROM 'on'
    AND pg_catalog.record_image_eq(ROW(NEW."email"), ROW(OLD."email"))
    AND NOT pg_catalog.record_image_eq(ROW(NEW."_online_email"), ROW(OLD."_online_email")))
  EXECUTE FUNCTION "public"."_online_email_down"();

CREATE TRIGGER "_online_email_2_up_upd"
  BEFORE UPDATE OF "email", "id" ON "public"."users"
  FOR EACH ROW
  WHEN (pg_catalog.record_image_eq(ROW(NEW."_online_email"), ROW(OLD."_online_email"))
    AND pg_catalog.current_setting('online.backfill', true) IS DISTINCT FROM 'on'
    AND (NEW."_online_email" IS NULL OR NOT pg_catalog.record_image_eq(ROW(NEW."email"), ROW(OLD."email"))))
  EXECUTE FUNCTION "public"."_online_email_up"();

-- Drop
DROP TRIGGER IF EXISTS "_online_email_0_ins" ON "public"."users";
DROP TRIGGER IF EXISTS "_online_email_1_down_ins" ON "public"."users";
DROP TRIGGER IF EXISTS "_online_email_1_down_upd" ON "public"."users";
DROP TRIGGER IF EXISTS "_online_email_2_up_ins" ON "public"."users";
DROP TRIGGER IF EXISTS "_online_email_2_up_upd" ON "public"."users";
DROP FUNCTION IF EXISTS "public"."_online_email_ins"();
DROP FUNCTION IF EXISTS "public"."_online_email_down"();
DROP FUNCTION IF EXISTS "public"."_online_email_up"();
DROP FUNCTION IF EXISTS "public"."_online_email_check"();

-- BackfillExpr(Up)
(lower(email))

-- BackfillExpr(Down)
(SELECT (email) FROM (SELECT CAST("_online_email" AS text) AS "email") AS "_online_in")
