-- Create
CREATE OR REPLACE FUNCTION "fn sch"."_online_h0_x_check"() RETURNS void LANGUAGE sql
SET search_path = "My ""Sch"" ü", pg_temp
AS $online1$
UPDATE "My ""Sch"" ü"."select" SET "$online$ ""x"" ü" = (SELECT (SELECT (upper("select") || '$online$' -- a trailing comment
) FROM (SELECT CAST(("new" || '-' || "select") AS text) AS "select") AS "_online_s1") FROM (SELECT CAST("new" AS text) AS "new", CAST("a.b" AS integer) AS "select") AS "_online_in") WHERE false;
UPDATE "My ""Sch"" ü"."select" SET "new" = (SELECT (lower("new")) FROM (SELECT CAST("$online$ ""x"" ü" AS text) AS "new") AS "_online_in") WHERE false;
$online1$;

DROP FUNCTION "fn sch"."_online_h0_x_check"();

CREATE FUNCTION "fn sch"."_online_h0_x_down"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "My ""Sch"" ü", pg_temp
AS $online1$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
    "new" text := "_online_row"."$online$ ""x"" ü";
BEGIN
    "_online_row"."new" := (lower("new"));
    RETURN "_online_row";
END
$online1$;

CREATE FUNCTION "fn sch"."_online_h0_x_up"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "My ""Sch"" ü", pg_temp
AS $online1$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
    "new" text := "_online_row"."new";
    "select" integer := "_online_row"."a.b";
BEGIN
    DECLARE
        "select" text := ("new" || '-' || "select");
    BEGIN
        "_online_row"."$online$ ""x"" ü" := (upper("select") || '$online$' -- a trailing comment
);
    END;
    RETURN "_online_row";
END
$online1$;

CREATE FUNCTION "fn sch"."_online_h0_x_ins"() RETURNS trigger LANGUAGE plpgsql
SET search_path = "My ""Sch"" ü", pg_temp
AS $online1$
#variable_conflict use_variable
DECLARE
    "_online_row" ALIAS FOR NEW;
BEGIN
    IF "_online_row"."$online$ ""x"" ü" IS NULL THEN
        DECLARE
            "new" text := "_online_row"."new";
            "select" integer := "_online_row"."a.b";
        BEGIN
            DECLARE
                "select" text := ("new" || '-' || "select");
            BEGIN
                "_online_row"."$online$ ""x"" ü" := (upper("select") || '$online$' -- a trailing comment
);
            END;
        END;
    ELSE
        DECLARE
            "new" text := "_online_row"."$online$ ""x"" ü";
        BEGIN
            "_online_row"."new" := (lower("new"));
        END;
    END IF;
    RETURN "_online_row";
END
$online1$;

CREATE TRIGGER "_online_h0_x_0_ins"
  BEFORE INSERT ON "My ""Sch"" ü"."select"
  FOR EACH ROW
  EXECUTE FUNCTION "fn sch"."_online_h0_x_ins"();

CREATE TRIGGER "_online_h0_x_1_down_upd"
  BEFORE UPDATE OF "$online$ ""x"" ü" ON "My ""Sch"" ü"."select"
  FOR EACH ROW
  WHEN (pg_catalog.current_setting('online.backfill', true) IS DISTINCT FROM 'on'
    AND pg_catalog.record_image_eq(ROW(NEW."new"), ROW(OLD."new"))
    AND NOT pg_catalog.record_image_eq(ROW(NEW."$online$ ""x"" ü"), ROW(OLD."$online$ ""x"" ü")))
  EXECUTE FUNCTION "fn sch"."_online_h0_x_down"();

CREATE TRIGGER "_online_h0_x_2_up_upd"
  BEFORE UPDATE OF "new", "a.b", "old" ON "My ""Sch"" ü"."select"
  FOR EACH ROW
  WHEN (pg_catalog.record_image_eq(ROW(NEW."$online$ ""x"" ü"), ROW(OLD."$online$ ""x"" ü"))
    AND pg_catalog.current_setting('online.backfill', true) IS DISTINCT FROM 'on'
    AND (NEW."$online$ ""x"" ü" IS NULL OR NOT pg_catalog.record_image_eq(ROW(NEW."new", NEW."a.b"), ROW(OLD."new", OLD."a.b"))))
  EXECUTE FUNCTION "fn sch"."_online_h0_x_up"();

-- Drop
DROP TRIGGER IF EXISTS "_online_h0_x_0_ins" ON "My ""Sch"" ü"."select";
DROP TRIGGER IF EXISTS "_online_h0_x_1_down_ins" ON "My ""Sch"" ü"."select";
DROP TRIGGER IF EXISTS "_online_h0_x_1_down_upd" ON "My ""Sch"" ü"."select";
DROP TRIGGER IF EXISTS "_online_h0_x_2_up_ins" ON "My ""Sch"" ü"."select";
DROP TRIGGER IF EXISTS "_online_h0_x_2_up_upd" ON "My ""Sch"" ü"."select";
DROP FUNCTION IF EXISTS "fn sch"."_online_h0_x_ins"();
DROP FUNCTION IF EXISTS "fn sch"."_online_h0_x_down"();
DROP FUNCTION IF EXISTS "fn sch"."_online_h0_x_up"();
DROP FUNCTION IF EXISTS "fn sch"."_online_h0_x_check"();

-- BackfillExpr(Up)
(SELECT (SELECT (upper("select") || '$online$' -- a trailing comment
) FROM (SELECT CAST(("new" || '-' || "select") AS text) AS "select") AS "_online_s1") FROM (SELECT CAST("new" AS text) AS "new", CAST("a.b" AS integer) AS "select") AS "_online_in")

-- BackfillExpr(Down)
(SELECT (lower("new")) FROM (SELECT CAST("$online$ ""x"" ü" AS text) AS "new") AS "_online_in")
