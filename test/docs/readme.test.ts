import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { configReferenceMarkdown } from "../../src/config/reference.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

test("the README's configuration table matches the zod schema's settings", () => {
  assert.ok(
    readme.includes(configReferenceMarkdown()),
    "README.md is out of date: paste the output of `npx tsx src/config/reference.ts`",
  );
});
