// Type-checks every dashboard in grafana/dashboards against the Dashboard
// type of @grafana/schema: each JSON file is wrapped as
// `export const d: Json<Dashboard> = <json>;` (importing the JSON directly
// makes tsc widen literals and report false errors) and compiled with
// --strict, so unknown properties, wrong types and missing required fields
// are errors. Json<T> is T with each string enum replaced by the union of
// its values ("absolute" for ThresholdsMode.Absolute): that is how JSON
// spells an enum member, and TypeScript would otherwise reject every one.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const PRELUDE = `import type { Dashboard } from "@grafana/schema";
type Json<T> = T extends string ? \`\${T}\`
  : T extends readonly (infer U)[] ? Json<U>[]
  : T extends object ? { [K in keyof T]: Json<T[K]> }
  : T;
`;
const here = dirname(fileURLToPath(import.meta.url));
const dir = resolve(here, "../../grafana/dashboards");
const work = mkdtempSync(join(here, ".tsc-"));
try {
  const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  if (files.length === 0) throw new Error(`no dashboards in ${dir}`);
  const sources = files.map((f, i) => {
    const json = readFileSync(join(dir, f), "utf8");
    JSON.parse(json); // a syntax error names the file here, not in tsc
    const ts = join(work, `d${i}.ts`);
    writeFileSync(ts, `// ${f}\n${PRELUDE}export const d: Json<Dashboard> = ${json};\n`);
    return [f, ts];
  });
  const tsc = join(here, "node_modules/typescript/bin/tsc");
  try {
    execFileSync(process.execPath, [tsc, "--noEmit", "--strict", "--skipLibCheck", "--target", "es2022",
      "--module", "nodenext", "--moduleResolution", "nodenext", ...sources.map(([, ts]) => ts)],
      { cwd: here, stdio: "pipe" });
  } catch (e) {
    let out = e.stdout.toString();
    sources.forEach(([f, ts]) => { out = out.split(ts.slice(here.length + 1)).join(f).split(ts).join(f); });
    console.error(out);
    process.exit(1);
  }
  for (const [f] of sources) console.log(`ok  ${f} is a valid @grafana/schema Dashboard`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
