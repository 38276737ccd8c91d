// Every ```ts block of the repository's README.md and docs/api.md (and of this package's
// README.md), compiled with tsc against this
// package (`@tollgate/client` resolves to the package itself, by its name and exports). Blocks
// are written to build/snippets/ (one file each) and compiled by test/snippets/tsconfig.json,
// whose globals.d.ts declares the few names the snippets leave to the reader.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageDir, shown, tsc } from "./tsc.js";

const repo = join(packageDir, "..", "..");
const sources = ["README.md", "docs/api.md", "clients/typescript/README.md"];
const outDir = join(packageDir, "build", "snippets");

interface Block {
  source: string;
  /** The line of the block's first line of code in its source. */
  line: number;
  file: string;
  code: string;
}

function blocksOf(source: string): Block[] {
  const lines = readFileSync(join(repo, source), "utf-8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^(\s*)```(ts|typescript)\s*$/);
    if (!open) continue;
    const indent = open[1].length;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end])) end++;
    const code = lines.slice(start, end).map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length))).join("\n");
    const file = join(outDir, `${source.replace(/[/.]/g, "-")}-L${start + 1}.ts`);
    blocks.push({ source, line: start + 1, file, code: `${code}\n` });
    i = end;
  }
  return blocks;
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const blocks = sources.flatMap(blocksOf);
for (const block of blocks) writeFileSync(block.file, block.code);
const result = tsc(join("test", "snippets", "tsconfig.json"));

for (const source of sources) {
  test(`${source} shows @tollgate/client in a ts block`, () => {
    const own = blocks.filter((b) => b.source === source);
    assert.ok(own.length > 0, `no \`\`\`ts block in ${source}`);
    assert.ok(
      own.some((b) => /from "@tollgate\/client"/.test(b.code)),
      `no \`\`\`ts block of ${source} imports "@tollgate/client"`,
    );
  });
}

for (const block of blocks) {
  test(`${block.source}:${block.line} compiles`, () => {
    const errors = result.diagnostics
      .filter((d) => d.file === block.file)
      .map((d) => `${block.source}:${block.line + d.line - 1}: ${d.code} ${d.message}`);
    assert.deepEqual(errors, [], `${shown(block.file)} does not compile:\n${errors.join("\n")}`);
  });
}

test("the snippets' compilation has no error outside the snippets", () => {
  const files = new Set(blocks.map((b) => b.file));
  const others = result.diagnostics.filter((d) => !files.has(d.file)).map((d) => d.text);
  assert.deepEqual(others, []);
  assert.ok(result.status !== null, result.output);
});
