// test/types/wrong-names.ts compiled with tsc: every `@ts-expect-error` must meet its error (an
// unused one is TS2578), and nothing else in the file may fail to compile.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageDir, shown, tsc } from "./tsc.js";

const file = join(packageDir, "test", "types", "wrong-names.ts");
const lines = readFileSync(file, "utf-8").split("\n");
const expectations = lines.flatMap((text, index) => {
  const directive = text.match(/\/\/ @ts-expect-error (.*)$/);
  return directive ? [{ line: index + 1, what: directive[1].trim() }] : [];
});
const result = tsc(join("test", "types", "tsconfig.json"));

test("wrong-names.ts has its expectations", () => {
  assert.ok(expectations.length >= 3, `only ${expectations.length} @ts-expect-error lines in ${shown(file)}`);
});

for (const { line, what } of expectations) {
  test(`type error: ${what}`, () => {
    const unused = result.diagnostics.find((d) => d.file === file && d.line === line && d.code === "TS2578");
    assert.equal(
      unused,
      undefined,
      `${shown(file)}:${line + 1} compiles, but should not (${what}): the generated types accept it ` +
        "(openapi-typescript makes an enum a union of literals, but a numeric bound such as minimum is no type)",
    );
  });
}

test("wrong-names.ts has no other compile error", () => {
  const others = result.diagnostics.filter((d) => d.code !== "TS2578");
  assert.deepEqual(others.map((d) => d.text), []);
  assert.ok(result.status !== null, result.output);
});
