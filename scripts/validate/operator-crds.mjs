// Validates every ServiceMonitor and PrometheusRule in the given YAML files
// (multi-document) against the Prometheus Operator's CRD schemas, as
// packaged by @kubernetes-models/prometheus-operator.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { ServiceMonitor, PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const kinds = { ServiceMonitor, PrometheusRule };
let checked = 0;
let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) {
      console.error(`${file}: ${doc.errors.map(String).join("; ")}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (!obj || obj.apiVersion !== "monitoring.coreos.com/v1") continue;
    const Model = kinds[obj.kind];
    if (!Model) {
      console.error(`${file}: no validator for ${obj.kind}`);
      failed++;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`ok  ${file}: ${obj.kind} ${obj.metadata?.name}`);
    } catch (e) {
      console.error(`${file}: ${obj.kind} ${obj.metadata?.name}: ${e.message}`);
      failed++;
    }
    checked++;
  }
}
if (checked === 0) {
  console.error("no ServiceMonitor or PrometheusRule found");
  process.exit(1);
}
process.exit(failed ? 1 : 0);
