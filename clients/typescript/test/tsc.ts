// Runs the package's own tsc on a tsconfig and parses its diagnostics (`--pretty false`).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join, relative, resolve } from "node:path";

/** The package's directory (this file runs from build/test/). */
export const packageDir = fileURLToPath(new URL("../../", import.meta.url));

export interface Diagnostic {
  /** The file, absolute (empty for a diagnostic about no file, such as a bad option). */
  file: string;
  line: number;
  code: string;
  message: string;
  /** The line as tsc printed it. */
  text: string;
}

/** `tsc --noEmit -p <project>`, run in the package's directory. */
export function tsc(project: string): { status: number | null; diagnostics: Diagnostic[]; output: string } {
  const bin = join(packageDir, "node_modules", "typescript", "bin", "tsc");
  const run = spawnSync(process.execPath, [bin, "--noEmit", "--pretty", "false", "-p", project], {
    cwd: packageDir,
    encoding: "utf-8",
  });
  const output = `${run.stdout}${run.stderr}`;
  const diagnostics: Diagnostic[] = [];
  for (const text of output.split("\n")) {
    const located = text.match(/^(.+?)\((\d+),\d+\): error (TS\d+): (.*)$/);
    const bare = text.match(/^error (TS\d+): (.*)$/);
    if (located) {
      const [, file, line, code, message] = located;
      diagnostics.push({ file: resolve(packageDir, file), line: Number(line), code, message, text });
    } else if (bare) {
      diagnostics.push({ file: "", line: 0, code: bare[1], message: bare[2], text });
    }
  }
  return { status: run.status, diagnostics, output };
}

/** A path relative to the package, for messages. */
export const shown = (file: string): string => relative(packageDir, file);
