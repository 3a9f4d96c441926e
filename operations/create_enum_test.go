package operations

import (
	"strings"
	"testing"
)

// enumFixture has enums used in each way drop_enum must see: a column with
// a default, an array column, a function, nothing.
var enumFixture = []string{
	`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
	`CREATE TYPE weather AS ENUM ('sun', 'rain')`,
	`CREATE TYPE color AS ENUM ('red', 'blue')`,
	`CREATE TYPE unused AS ENUM ('x')`,
	`CREATE TYPE "Mixed Case" AS ENUM ('a')`,
	`CREATE DOMAIN dom AS text`,
	`CREATE TABLE feelings (id int PRIMARY KEY, m mood DEFAULT 'ok', note text)`,
	`CREATE TABLE paints (id int PRIMARY KEY, colors color[] NOT NULL DEFAULT '{}')`,
	`CREATE TABLE mixed (id int PRIMARY KEY, v "Mixed Case")`,
	`CREATE FUNCTION forecast(w weather) RETURNS int LANGUAGE sql AS 'SELECT 1'`,
}

func TestReadEnums(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", enumFixture...)
	eq(t, "labels", strings.Join(s.Enums["mood"], ","), "sad,ok,happy")
	eq(t, "enum type", s.Types["mood"], "e")
	eq(t, "domain", s.Types["dom"], "d")
	eq(t, "row type", s.Types["feelings"], "c")
	_, arr := s.Types["_mood"]
	eq(t, "array types left out", arr, false)
	var uses []string
	for _, u := range s.EnumUses["mood"] {
		uses = append(uses, u.Object)
		if !u.Table || u.Relation != "feelings" || u.Column != "m" {
			t.Errorf("use %+v: want table feelings, column m", u)
		}
	}
	eq(t, "uses of mood", strings.Join(uses, "; "), "column m of table feelings; default value for column m of table feelings")
	eq(t, "uses of weather", len(s.EnumUses["weather"]), 1)
	eq(t, "function", s.EnumUses["weather"][0].Object, "function forecast(weather)")
	eq(t, "uses of unused", len(s.EnumUses["unused"]), 0)
	eq(t, "array column", s.EnumUses["color"][0].Column, "colors")
}

func TestCreateEnumPlans(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", enumFixture...)
	p, ns, err := compileYAML(t, s, publicOpts, `- create_enum: {name: status, values: [new, "it's done", 'back\slash']}`)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "steps", len(p.Expand), 1)
	eq(t, "sql", p.Expand[0].SQL[0], `CREATE TYPE "public"."status" AS ENUM ('new', 'it''s done', E'back\\slash')`)
	eq(t, "undo", strings.Join(p.Expand[0].Undo, ";"), `DROP TYPE IF EXISTS "public"."status"`)
	eq(t, "model", strings.Join(ns.Enums["status"], "|"), `new|it's done|back\slash`)
	eq(t, "no contract", len(p.Contract), 0)
	_, before := s.Enums["status"]
	eq(t, "catalog model untouched", before, false)

	// In another schema, the type goes there.
	p, _, err = compileYAML(t, s, Options{Schema: "app", StateSchema: "online"}, "- create_enum: {name: status, values: [a]}")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "other schema", p.Expand[0].SQL[0], `CREATE TYPE "app"."status" AS ENUM ('a')`)
}

func TestCreateEnumErrors(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", enumFixture...)
	long := strings.Repeat("v", 64)
	cases := []struct {
		name, ops string
		op        int
		kind      string
		field     string
		msg       string
	}{
		{"no name", "- create_enum: {values: [a]}", 1, "create_enum", "name", "is required"},
		{"name too long", "- create_enum: {name: " + long + ", values: [a]}", 1, "create_enum", "name", "at most 63 bytes"},
		{"no values", "- create_enum: {name: status}", 1, "create_enum", "values", "at least one value"},
		{"empty value", "- create_enum: {name: status, values: [a, '']}", 1, "create_enum", "values[1]", "is empty"},
		{"duplicate value", "- create_enum: {name: status, values: [a, b, a]}", 1, "create_enum", "values[2]", "listed twice"},
		{"value too long", "- create_enum: {name: status, values: [" + long + "]}", 1, "create_enum", "values[0]", "64 bytes"},
		{"enum exists", "- create_enum: {name: mood, values: [a]}", 1, "create_enum", "name", `enum "mood" already exists`},
		{"domain of that name", "- create_enum: {name: dom, values: [a]}", 1, "create_enum", "name", "a domain"},
		{"table of that name", "- create_enum: {name: feelings, values: [a]}", 1, "create_enum", "name", "row type"},
		{"table created earlier", "- create_table: {name: status, columns: [{name: id, type: int, pk: true}]}\n- create_enum: {name: status, values: [a]}", 2, "create_enum", "name", `table "status"`},
		{"table renamed to it at complete", "- rename_table: {from: feelings, to: status}\n- create_enum: {name: status, values: [a]}", 2, "create_enum", "name", `table "status"`},
		{"enum dropped earlier", "- drop_enum: {name: unused}\n- create_enum: {name: unused, values: [a]}", 2, "create_enum", "name", "until the migration that drops it completes"},
		{"created twice", "- create_enum: {name: status, values: [a]}\n- create_enum: {name: status, values: [b]}", 2, "create_enum", "name", "already exists"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := compileYAML(t, s, publicOpts, c.ops)
			checkCompileErr(t, err, c.op, c.kind, c.field, c.msg)
		})
	}
}
