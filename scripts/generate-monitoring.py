#!/usr/bin/env python3
"""Generates the monitoring artefacts that must agree with each other.

    scripts/generate-monitoring.py          # rewrite the generated files
    scripts/generate-monitoring.py --check  # exit 1 if one is out of date

Sources (edit these):
  * deploy/prometheus/mta_exporter.rules.yml   recording + alerting rules
  * the dashboard definitions below             panels and their PromQL

Generated (do not edit by hand):
  * grafana/dashboards/mta-exporter-overview.json
  * grafana/dashboards/mta-exporter-drilldown.json
  * grafana/provisioning/alerting/mta_exporter.yaml   Grafana-managed alerts
  * deploy/kubernetes/base/prometheusrule.yaml        Prometheus Operator

One source per fact: an alert's expression and threshold live only in the
rule file; Grafana and the Prometheus Operator get exact copies.
Needs PyYAML (installed by scripts/test.sh into its tool venv).
"""

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy/prometheus/mta_exporter.rules.yml"

# The schema version that @grafana/schema (13.2) declares as current.
SCHEMA_VERSION = 42
DS = {"type": "prometheus", "uid": "${datasource}"}
OVERVIEW_UID = "mta-exporter-overview"
DRILLDOWN_UID = "mta-exporter-drilldown"

# --------------------------------------------------------------------------
# dashboard building blocks


class Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self):
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1
        self.panels = []

    def _id(self):
        self.next_id += 1
        return self.next_id - 1

    def row(self, title):
        if self.x:
            self.y += self.row_height
        self.x = 0
        self.row_height = 0
        self.panels.append({"type": "row", "id": self._id(), "title": title, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.y += self.row_height
            self.x = 0
            self.row_height = 0
        panel = dict(panel)
        panel["id"] = self._id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)


def target(expr, legend="", ref="A", instant=False, fmt="time_series"):
    t = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend or "__auto"}
    if instant:
        t.update({"instant": True, "range": False, "format": "table"})
    else:
        t.update({"instant": False, "range": True, "format": fmt})
    return t


def timeseries(title, description, targets, unit="short", stack=False, minimum=0):
    defaults = {
        "unit": unit,
        "color": {"mode": "palette-classic"},
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 30 if stack else 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        },
    }
    if minimum is not None:
        defaults["min"] = minimum
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "right", "showLegend": True, "calcs": ["mean", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(title, description, expr, unit="short", thresholds=None, mappings=None):
    steps = thresholds or [{"color": "green", "value": None}]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(expr)],
        "fieldConfig": {
            "defaults": {"unit": unit, "mappings": mappings or [],
                         "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        },
    }


def table(title, description, expr, rename, links=None, sort_by="Value"):
    overrides = []
    for field, url_title, url in links or []:
        overrides.append({
            "matcher": {"id": "byName", "options": field},
            "properties": [{"id": "links", "value": [{"title": url_title, "url": url}]}],
        })
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(expr, instant=True)],
        "fieldConfig": {"defaults": {"unit": "short"}, "overrides": overrides},
        "options": {"showHeader": True, "cellHeight": "sm",
                    "sortBy": [{"displayName": rename.get(sort_by, sort_by), "desc": True}]},
        "transformations": [
            {"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": rename,
                                           "indexByName": {}}},
        ],
    }


def text(title, content):
    return {"type": "text", "title": title, "options": {"mode": "markdown", "content": content}}


def variable_datasource():
    return {"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
            "hide": 0, "refresh": 1, "regex": "", "options": [], "includeAll": False,
            "multi": False}


def variable_query(name, label, query, description):
    return {"type": "query", "name": name, "label": label, "description": description, "datasource": DS,
            "query": query, "refresh": 2, "sort": 1, "multi": True,
            "includeAll": True, "allValue": ".*", "current": {"text": ["All"], "value": ["$__all"]},
            "options": [], "hide": 0, "regex": ""}


def dashboard(uid, title, description, variables, panels, links):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["mta_exporter", "mail"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "refresh": "1m",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": links,
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
        }]},
        "templating": {"list": variables},
        "panels": panels,
    }


def top_codes_expr(selector):
    """Counts by code pair over the dashboard's range, with the catalogue's
    meaning joined from mta_smtp_reply_info where the exporter serves it.
    `or on (code, enhanced)` keeps the pairs that have no meaning (yet)."""
    counts = f"sum by (direction, class, code, enhanced) (increase(mta_smtp_replies_total{{{selector}}}[$__range]))"
    info = 'topk by (code, enhanced) (1, mta_smtp_reply_info{instance=~"$instance"})'
    return (f"topk(25, ({counts} * on (code, enhanced) group_left (meaning) {info})"
            f" or on (code, enhanced) {counts})")


def drilldown_link(extra):
    return (f"/d/{DRILLDOWN_UID}/?${{datasource:queryparam}}&${{instance:queryparam}}&${{mta:queryparam}}"
            f"&{extra}&${{__url_time_range}}")


# --------------------------------------------------------------------------
# the overview


def overview():
    inst = 'instance=~"$instance"'
    im = f'{inst}, mta=~"$mta"'
    imd = f'{im}, direction=~"$direction"'
    attempts = 'status=~"sent|deferred|bounced|expired"'
    lay = Layout()

    lay.row("Mail flow (5-minute rates from the recording rules)")
    per_min = "suffix:/min"
    for title, status, desc, color in [
        ("Sent", "sent", "Deliveries accepted by the next hop, per minute.", "green"),
        ("Deferred", "deferred", "Delivery attempts that failed temporarily and stay queued, per minute.", "orange"),
        ("Bounced", "bounced", "Deliveries that failed permanently (a bounce is sent), per minute.", "red"),
        ("Rejected inbound", "rejected", "Messages or recipients our server rejected (reject, milter-reject, proxy-reject), per minute.", "purple"),
    ]:
        lay.add(stat(title, desc, f'sum(mta:deliveries:rate5m{{{im}, status="{status}"}}) * 60', per_min,
                     [{"color": color, "value": None}]), 4, 4)
    lay.add(stat("Bounce ratio", "Bounced share of delivery attempts (sent + deferred + bounced + expired). "
                 "The MtaBounceRatioHigh alert fires above 5 %.",
                 f'sum(mta:deliveries:rate5m{{{im}, status="bounced"}}) / sum(mta:deliveries:rate5m{{{im}, {attempts}}})',
                 "percentunit", [{"color": "green", "value": None}, {"color": "orange", "value": 0.02},
                                 {"color": "red", "value": 0.05}]), 4, 4)
    lay.add(stat("Outbound 5xx share", "Share of permanent (5xx) replies among the replies remote servers gave to our "
                 "deliveries. MtaOutbound5xxSpike fires above 10 % and 3x the 1-day average.",
                 f'sum(mta:smtp_replies_class:rate5m{{{im}, direction="outbound", class="5xx"}})'
                 f' / sum(mta:smtp_replies_class:rate5m{{{im}, direction="outbound"}})',
                 "percentunit", [{"color": "green", "value": None}, {"color": "orange", "value": 0.05},
                                 {"color": "red", "value": 0.1}]), 4, 4)
    lay.add(timeseries("Delivery outcomes", "Delivery status lines per second, by outcome. rejected counts inbound "
                       "rejections; address-verification probes are left out.",
                       [target(f'sum by (status) (mta:deliveries:rate5m{{{im}, status=~"sent|deferred|bounced|expired|rejected"}})',
                               "{{status}}")], "suffix:/s", stack=False), 12, 8)
    lay.add(timeseries("Delivery attempts by outcome (share)", "Share of sent / deferred / bounced / expired among "
                       "delivery attempts. Postfix logs one deferral per attempt, so a message retried ten times "
                       "counts ten deferrals.",
                       [target(f"sum by (status) (mta:deliveries:rate5m{{{im}, {attempts}}})"
                               f" / ignoring (status) group_left () sum (mta:deliveries:rate5m{{{im}, {attempts}}})",
                               "{{status}}")], "percentunit", stack=True), 12, 8)

    lay.row("SMTP replies")
    lay.add(timeseries("4xx and 5xx replies", "Temporary (4xx) and permanent (5xx) replies per second. outbound: "
                       "what remote servers answered us; inbound: what we answered connecting clients.",
                       [target(f'sum by (direction, class) (mta:smtp_replies_class:rate5m{{{imd}, class=~"4xx|5xx"}})',
                               "{{direction}} {{class}}")], "suffix:/s"), 12, 8)
    lay.add(timeseries("4xx and 5xx share of all replies", "Each class's share of all replies in the same direction. "
                       "The spike alerts compare this with its 1-day average.",
                       [target(f'sum by (direction, class) (mta:smtp_replies_class:rate5m{{{imd}, class=~"4xx|5xx"}})'
                               f" / ignoring (class) group_left () sum by (direction) (mta:smtp_replies_class:rate5m{{{imd}}})",
                               "{{direction}} {{class}}")], "percentunit"), 12, 8)
    lay.add(timeseries("Replies by category (4xx and 5xx)", "The RFC 3463 subject of the enhanced code (addressing, "
                       "mailbox, mail_system, network, protocol, content, policy), or the RFC 5321 second digit when "
                       "the reply has no enhanced code.",
                       [target(f'sum by (category) (mta:smtp_replies:rate5m{{{imd}, class=~"4xx|5xx"}})', "{{category}}")],
                       "suffix:/s", stack=True), 12, 8)
    lay.add(timeseries("Replies by cause", "Why replies were not 2xx, from the cause rules (config/causes.yaml). "
                       "Policy causes (blocklisted, reputation, rate_limited, spf, dkim, dmarc) on outbound replies "
                       "mean receivers block us.",
                       [target(f'sum by (cause) (mta:smtp_replies:rate5m{{{imd}, cause!="none"}})', "{{cause}}")],
                       "suffix:/s", stack=True), 12, 8)
    lay.add(timeseries("Inbound vs outbound", "All replies per second by direction and class, regardless of the "
                       "direction filter.",
                       [target(f"sum by (direction, class) (mta:smtp_replies_class:rate5m{{{im}}})",
                               "{{direction}} {{class}}")], "suffix:/s"), 12, 8)
    lay.add(timeseries("Rejections only logged (warn_if_reject)", "Postfix reject_warning lines: what a restriction "
                       "in warn_if_reject mode would reject. Watch this before you enforce a new restriction.",
                       [target(f"sum by (class, cause) (rate(mta_smtp_reject_warnings_total{{{im}}}[$__rate_interval]))",
                               "{{class}} {{cause}}")], "suffix:/s"), 12, 8)
    lay.add(table("Top reply codes in the time range", "The 25 most frequent code pairs in the selected range, with "
                  "the catalogue's meaning (from mta_smtp_reply_info). Click a code to open the drill-down.",
                  top_codes_expr(imd),
                  {"direction": "Direction", "class": "Class", "code": "Code", "enhanced": "Enhanced",
                   "meaning": "Meaning", "Value": "Replies"},
                  links=[("Code", "Drill down into ${__data.fields.Code} ${__data.fields.Enhanced}",
                          drilldown_link("var-direction=${__data.fields.Direction}&var-code=${__data.fields.Code}"
                                         "&var-enhanced=${__data.fields.Enhanced}"))]), 14, 10)
    lay.add(table("Top causes in the time range", "Non-2xx replies by cause in the selected range. Click a cause to "
                  "open the drill-down.",
                  f'topk(15, sum by (direction, cause) (increase(mta_smtp_replies_total{{{imd}, cause!="none"}}[$__range])))',
                  {"direction": "Direction", "cause": "Cause", "Value": "Replies"},
                  links=[("Cause", "Drill down into ${__data.fields.Cause}",
                          drilldown_link("var-direction=${__data.fields.Direction}&var-cause=${__data.fields.Cause}"))]),
            10, 10)

    lay.row("Queue")
    lay.add(timeseries("Messages in the queue", "Messages per queue (incoming, active, deferred, hold …), read from "
                       "the spool at scrape time. MtaQueueGrowing fires above 100 messages and +50 % over the last hour's lowest.",
                       [target(f"sum by (mta, queue) (mta_queue_messages{{{im}}})", "{{mta}} {{queue}}")], "short"),
            9, 8)
    lay.add(timeseries("Oldest message in the queue", "Age of the oldest message per queue. A deferred message "
                       "this old has been retried without success for that long; MtaQueueOldestMessageTooOld fires "
                       "after a day (hold and quarantine queues excluded: those are kept on purpose).",
                       [target(f"max by (mta, queue) (mta_queue_oldest_message_age_seconds{{{im}}})",
                               "{{mta}} {{queue}}")], "s"), 9, 8)
    lay.add(stat("Queue readable", "1 when the exporter could read the queue at the last scrape, 0 when it could "
                 "not or not in time (then the queue panels show the last values read, not an empty queue).",
                 f"min(mta_queue_up{{{im}}})", "short",
                 [{"color": "red", "value": None}, {"color": "green", "value": 1}],
                 [{"type": "value", "options": {"0": {"text": "unreadable", "index": 0},
                                                 "1": {"text": "ok", "index": 1}}}]), 6, 4)
    lay.add(stat("Queue size", "Bytes of all queued messages.",
                 f"sum(mta_queue_size_bytes{{{im}}})", "bytes"), 6, 4)

    lay.row("Delivery delays and messages")
    lay.add(timeseries("Delivery delay by outcome (90th percentile)", "Time from a message's arrival to a delivery "
                       "attempt (Postfix delay=, Exim QT=, Sendmail delay=, OpenSMTPD delay=), 90th percentile of "
                       "the attempts in the interval.",
                       [target(f"histogram_quantile(0.9, sum by (le, status) (rate(mta_delivery_delay_seconds_bucket"
                               f"{{{im}}}[$__rate_interval])))", "{{status}}")], "s"), 8, 8)
    lay.add(timeseries("Postfix delay by stage (90th percentile)", "Postfix delays=a/b/c/d: before the queue "
                       "manager (includes receiving the message), in the queue manager, connection setup (DNS, "
                       "HELO, TLS), transmission. Exim DT= and Sendmail xdelay= are the stage attempt.",
                       [target(f"histogram_quantile(0.9, sum by (le, stage) (rate(mta_delivery_stage_delay_seconds_bucket"
                               f"{{{im}}}[$__rate_interval])))", "{{stage}}")], "s"), 8, 8)
    lay.add(timeseries("Messages received and notifications", "Messages entering the queue per second, and the "
                       "delivery status notifications (bounces, delay warnings) the MTA generated.",
                       [target(f"sum by (mta) (rate(mta_messages_received_total{{{im}}}[$__rate_interval]))",
                               "{{mta}} received", "A"),
                        target(f"sum by (mta, kind) (rate(mta_notifications_total{{{im}}}[$__rate_interval]))",
                               "{{mta}} {{kind}} notifications", "B")], "suffix:/s"), 8, 8)
    lay.add(timeseries("Message size (50th and 95th percentile)", "Size of the messages entering the queue.",
                       [target(f"histogram_quantile(0.5, sum by (le) (rate(mta_message_size_bytes_bucket"
                               f"{{{im}}}[$__rate_interval])))", "median", "A"),
                        target(f"histogram_quantile(0.95, sum by (le) (rate(mta_message_size_bytes_bucket"
                               f"{{{im}}}[$__rate_interval])))", "95th percentile", "B")], "bytes"), 8, 8)
    lay.add(timeseries("Recipients per message (mean)", "Envelope recipients per message entering the queue "
                       "(Postfix nrcpt=, Sendmail nrcpts=, OpenSMTPD nrcpt=).",
                       [target(f"sum by (mta) (rate(mta_message_recipients_sum{{{im}}}[$__rate_interval]))"
                               f" / sum by (mta) (rate(mta_message_recipients_count{{{im}}}[$__rate_interval]))",
                               "{{mta}}")], "short"), 8, 8)
    lay.add(timeseries("Milter and content filter actions", "Verdicts of milters, header/body checks and "
                       "before-queue content filters, per second.",
                       [target(f"sum by (filter, action) (rate(mta_filter_actions_total{{{im}}}[$__rate_interval]))",
                               "{{filter}} {{action}}")], "suffix:/s", stack=True), 8, 8)

    lay.row("Sessions, TLS and authentication")
    lay.add(timeseries("Inbound connections by service", "SMTP connections per second, by service (Postfix "
                       "master.cf service, Exim port, Sendmail daemon name).",
                       [target(f"sum by (mta, service) (rate(mta_smtp_connections_total{{{im}}}[$__rate_interval]))",
                               "{{mta}} {{service}}")], "suffix:/s"), 8, 8)
    lay.add(timeseries("Failed sessions", "Sessions lost, timed out or ended for too many errors, by the command "
                       "after which it happened.",
                       [target(f"sum by (error, phase) (rate(mta_smtp_session_errors_total{{{im}}}[$__rate_interval]))",
                               "{{error}} after {{phase}}")], "suffix:/s", stack=True), 8, 8)
    lay.add(timeseries("SMTP AUTH failures by mechanism", "Failed logins of clients per second (never by user). A "
                       "steady stream is a password-guessing attack.",
                       [target(f"sum by (mta, method) (rate(mta_smtp_auth_failures_total{{{im}}}[$__rate_interval]))",
                               "{{mta}} {{method}}")], "suffix:/s"), 8, 8)
    lay.add(timeseries("TLS sessions by protocol and cipher", "TLS sessions per second, in and out, by protocol "
                       "and cipher class.",
                       [target(f"sum by (direction, protocol, cipher) (rate(mta_tls_connections_total{{{im}}}"
                               f"[$__rate_interval]))", "{{direction}} {{protocol}} {{cipher}}")], "suffix:/s",
                       stack=True), 12, 8)
    lay.add(timeseries("TLS sessions by trust of the peer's certificate", "anonymous: no certificate; untrusted: "
                       "not verified; trusted: chain verified; verified: chain and name verified.",
                       [target(f"sum by (direction, trust) (rate(mta_tls_connections_total{{{im}}}[$__rate_interval]))",
                               "{{direction}} {{trust}}")], "suffix:/s", stack=True), 12, 8)
    lay.add(timeseries("postscreen verdicts", "Postfix postscreen: clients that passed (new, or from the cache), "
                       "allow- and deny-listed clients, per second.",
                       [target(f"sum by (result) (rate(mta_postscreen_results_total{{{inst}}}[$__rate_interval]))",
                               "{{result}}", "A"),
                        target(f"sum (rate(mta_postscreen_connections_total{{{inst}}}[$__rate_interval]))",
                               "connections", "B")], "suffix:/s"), 8, 8)
    lay.add(timeseries("postscreen protocol violations", "Clients that talked before the greeting, pipelined "
                       "without permission, sent HTTP or bare newlines, or hung up during the tests.",
                       [target(f"sum by (test) (rate(mta_postscreen_violations_total{{{inst}}}[$__rate_interval]))",
                               "{{test}}")], "suffix:/s", stack=True), 8, 8)
    lay.add(timeseries("postscreen DNSBL rank (90th percentile)", "DNSBL score of the clients whose score reached "
                       "postscreen_dnsbl_threshold.",
                       [target(f"histogram_quantile(0.9, sum by (le) (rate(mta_postscreen_dnsbl_rank_bucket"
                               f"{{{inst}}}[$__rate_interval])))", "rank")], "short"), 8, 8)

    lay.row("Exporter health")
    lay.add(timeseries("Log lines read", "Lines per second, by how they were understood: reply (carried a counted "
                       "reply), recognized (an MTA line without reply), ignored (another program), unrecognized.",
                       [target(f"sum by (result) (rate(mta_log_lines_total{{{inst}}}[$__rate_interval]))", "{{result}}")],
                       "suffix:/s", stack=True), 8, 8)
    lay.add(timeseries("Unrecognized lines (share)", "Share of lines not understood, per source. Replies in them "
                       "are not counted; MtaLogUnrecognizedLinesHigh fires above 5 %.",
                       [target(f'sum by (source) (rate(mta_log_lines_total{{{inst}, result="unrecognized"}}[$__rate_interval]))'
                               f" / sum by (source) (rate(mta_log_lines_total{{{inst}}}[$__rate_interval]))",
                               "{{source}}")], "percentunit"), 8, 8)
    lay.add(timeseries("Bytes read", "Log bytes read per second, per source.",
                       [target(f"sum by (source) (rate(mta_log_bytes_total{{{inst}}}[$__rate_interval]))", "{{source}}")],
                       "Bps"), 8, 8)
    lay.add(timeseries("Read lag", "Bytes written to each file that the exporter has not read yet. Growing lag with "
                       "no reads is a stuck tailer (MtaLogTailerStuck).",
                       [target(f"sum by (source) (mta_log_lag_bytes{{{inst}}})", "{{source}}")], "bytes"), 8, 8)
    lay.add(timeseries("Age of the newest line and of the last read", "newest line: now minus the log timestamp of "
                       "the last line read; last read: now minus the time the exporter last read the source. An old "
                       "newest line with a recent read is a quiet server; both old is a dead tailer or a dead syslog.",
                       [target(f"time() - max by (source) (mta_log_last_line_timestamp_seconds{{{inst}}})",
                               "{{source}} newest line", "A"),
                        target(f"time() - max by (source) (mta_log_last_read_timestamp_seconds{{{inst}}})",
                               "{{source}} last read", "B")], "s"), 8, 8)
    lay.add(timeseries("Rotations, read errors, truncated lines", "Log rotations by kind, read errors and lines cut "
                       "at the maximum line length, per interval.",
                       [target(f"sum by (source, kind) (increase(mta_log_rotations_total{{{inst}}}[$__rate_interval]))",
                               "{{source}} rotation {{kind}}", "A"),
                        target(f"sum by (source) (increase(mta_log_read_errors_total{{{inst}}}[$__rate_interval]))",
                               "{{source}} read errors", "B"),
                        target(f"sum (increase(mta_log_lines_truncated_total{{{inst}}}[$__rate_interval]))",
                               "truncated lines", "C")], "short"), 8, 8)
    lay.add(stat("Files watched", "Files the exporter follows now (globs can match several).",
                 f"sum(mta_log_files_watched{{{inst}}})"), 4, 8)
    lay.add(timeseries("Series folded into other", "Counts that went to an `other` series because the family "
                       "reached limits.max_series_per_family (MtaMetricsOverflow).",
                       [target(f"sum by (family) (increase(mta_metrics_overflow_total{{{inst}}}[$__rate_interval]))",
                               "{{family}}")], "short"), 6, 8)
    lay.add(timeseries("Exporter memory and CPU", "Resident memory (left) and CPU cores used (right) of each exporter.",
                       [target(f"process_resident_memory_bytes{{{inst}}}", "{{instance}} memory", "A"),
                        target(f"rate(process_cpu_seconds_total{{{inst}}}[$__rate_interval])", "{{instance}} CPU", "B")],
                       "bytes"), 8, 8)
    panel = lay.panels[-1]
    panel["fieldConfig"]["overrides"] = [{
        "matcher": {"id": "byFrameRefID", "options": "B"},
        "properties": [{"id": "unit", "value": "percentunit"}, {"id": "custom.axisPlacement", "value": "right"}],
    }]
    lay.add(table("Exporters", "Scrape state and version of each exporter.",
                  f"max by (instance, version) (mta_exporter_build_info{{{inst}}}) * on (instance) group_left () max by (instance) (up{{{inst}}})",
                  {"instance": "Instance", "version": "Version", "Value": "Up"}, sort_by="instance"), 6, 8)

    variables = [
        variable_datasource(),
        variable_query("instance", "Instance", "label_values(mta_exporter_build_info, instance)",
                       "Exporters (scrape targets)."),
        variable_query("mta", "MTA", 'label_values(mta_smtp_replies_total{instance=~"$instance"}, mta)',
                       "postfix, exim, sendmail, opensmtpd."),
        variable_query("direction", "Direction",
                       'label_values(mta_smtp_replies_total{instance=~"$instance", mta=~"$mta"}, direction)',
                       "outbound: replies remote servers gave us; inbound: replies we gave clients."),
    ]
    links = [{"title": "Drill-down", "type": "dashboards", "tags": ["mta_exporter"], "asDropdown": False,
              "includeVars": True, "keepTime": True, "icon": "dashboard", "targetBlank": False, "tooltip": ""}]
    return dashboard(OVERVIEW_UID, "MTA exporter / Overview",
                     "Mail flow, SMTP reply codes and causes, queue and exporter health from mta_exporter. "
                     "The mail-flow and reply panels use the recording rules of deploy/prometheus/mta_exporter.rules.yml.",
                     variables, lay.panels, links)


# --------------------------------------------------------------------------
# the drill-down: one code, cause or category


def drilldown():
    inst = 'instance=~"$instance"'
    base = f'{inst}, mta=~"$mta", direction=~"$direction"'
    sel = (f'{base}, class=~"$class", category=~"$category", cause=~"$cause", code=~"$code", '
           f'enhanced=~"$enhanced"')
    replies = f"mta_smtp_replies_total{{{sel}}}"
    lay = Layout()
    lay.row("Selection")
    lay.add(stat("Replies in the time range", "Replies that match every filter above.",
                 f"sum(increase({replies}[$__range]))"), 6, 5)
    lay.add(stat("Per minute now", "Current rate of the selection.",
                 f"sum(rate({replies}[$__rate_interval])) * 60", "suffix:/min"), 6, 5)
    lay.add(stat("Share of all replies", "The selection's share of all replies of the selected instances, MTAs and "
                 "directions in the time range.",
                 f"sum(increase({replies}[$__range])) / sum(increase(mta_smtp_replies_total{{{base}}}[$__range]))",
                 "percentunit"), 6, 5)
    lay.add(text("What does a code mean?",
                 "Run `mta_exporter explain 550 5.7.26` on any machine with the binary for the meaning, whose "
                 "problem it usually is and the usual fix. The table below shows the catalogue's meaning of each "
                 "code pair the exporter has seen."), 6, 5)
    lay.row("Over time")
    lay.add(timeseries("Replies by code", "Replies per second by basic and enhanced code.",
                       [target(f"sum by (code, enhanced) (rate({replies}[$__rate_interval]))", "{{code}} {{enhanced}}")],
                       "suffix:/s", stack=True), 12, 9)
    lay.add(timeseries("Replies by cause", "Replies per second by cause.",
                       [target(f"sum by (cause) (rate({replies}[$__rate_interval]))", "{{cause}}")],
                       "suffix:/s", stack=True), 12, 9)
    lay.add(timeseries("Replies by SMTP phase", "Where in the dialogue the reply came: connect, helo, auth, mail, "
                       "rcpt, data, end_of_data; none for deliveries without SMTP.",
                       [target(f"sum by (phase) (rate({replies}[$__rate_interval]))", "{{phase}}")],
                       "suffix:/s", stack=True), 12, 9)
    lay.add(timeseries("Share of the selection in its direction", "The selection's share of all replies in the same "
                       "direction, over time.",
                       [target(f"sum by (direction) (rate({replies}[$__rate_interval]))"
                               f" / sum by (direction) (rate(mta_smtp_replies_total{{{base}}}[$__rate_interval]))",
                               "{{direction}}")], "percentunit"), 12, 9)
    lay.add(timeseries("Replies by category and class", "RFC 3463 / RFC 5321 category and class of the selection.",
                       [target(f"sum by (category, class) (rate({replies}[$__rate_interval]))",
                               "{{class}} {{category}}")], "suffix:/s", stack=True), 12, 9)
    lay.add(timeseries("Rejections only logged, same class and cause", "reject_warning lines (warn_if_reject) "
                       "with the selected class and cause: what a restriction would reject if enforced.",
                       [target(f'sum by (phase, cause) (rate(mta_smtp_reject_warnings_total{{{inst}, mta=~"$mta", '
                               f'class=~"$class", cause=~"$cause"}}[$__rate_interval]))', "{{phase}} {{cause}}")],
                       "suffix:/s"), 12, 9)
    lay.row("Codes and meanings")
    lay.add(table("Codes in the selection", "Code pairs of the selection in the time range, with the catalogue's "
                  "meaning (from mta_smtp_reply_info).",
                  top_codes_expr(sel),
                  {"direction": "Direction", "class": "Class", "code": "Code", "enhanced": "Enhanced",
                   "meaning": "Meaning", "Value": "Replies"}), 24, 10)

    def replies_var(name, label, description):
        return variable_query(name, label,
                              f'label_values(mta_smtp_replies_total{{{base}}}, {name})', description)

    variables = [
        variable_datasource(),
        variable_query("instance", "Instance", "label_values(mta_exporter_build_info, instance)",
                       "Exporters (scrape targets)."),
        variable_query("mta", "MTA", 'label_values(mta_smtp_replies_total{instance=~"$instance"}, mta)',
                       "postfix, exim, sendmail, opensmtpd."),
        variable_query("direction", "Direction",
                       'label_values(mta_smtp_replies_total{instance=~"$instance", mta=~"$mta"}, direction)',
                       "outbound: replies remote servers gave us; inbound: replies we gave clients."),
        replies_var("class", "Class", "2xx, 4xx, 5xx."),
        replies_var("category", "Category", "RFC 3463 subject or RFC 5321 second digit."),
        replies_var("cause", "Cause", "Cause from the rule table (config/causes.yaml)."),
        replies_var("code", "Code", "Basic code (550); none when the log has only an enhanced code."),
        replies_var("enhanced", "Enhanced", "Enhanced status code (5.7.26); none when the reply has none."),
    ]
    links = [{"title": "Overview", "type": "dashboards", "tags": ["mta_exporter"], "asDropdown": False,
              "includeVars": True, "keepTime": True, "icon": "dashboard", "targetBlank": False, "tooltip": ""}]
    return dashboard(DRILLDOWN_UID, "MTA exporter / Drill-down",
                     "One code, cause or category of mta_exporter's SMTP replies: over time, by phase and "
                     "direction, with the catalogue's meaning.",
                     variables, lay.panels, links)


# --------------------------------------------------------------------------
# alert rules for Grafana and the Prometheus Operator


def load_rules():
    return yaml.safe_load(RULES.read_text())


def grafana_template(text):
    """Prometheus annotation templates use $labels/$value; Grafana's file
    provisioning would treat `$name` as an environment variable in some
    fields, so use the equivalent `.Labels` / `.Values` forms, which contain
    no `$`. B is the expression that carries the query's value."""
    text = text.replace("$labels.", ".Labels.")
    text = text.replace("$value", ".Values.B.Value")
    if "$" in text:
        raise SystemExit(f"a '$' is left in an annotation after translation: {text!r}")
    return text


def grafana_uid(alert):
    uid = "mta-" + re.sub(r"(?<!^)(?=[A-Z])", "-", alert).lower().removeprefix("mta-")
    if len(uid) > 40:
        raise SystemExit(f"Grafana rule uid {uid!r} is longer than 40 characters")
    return uid


def grafana_alerting(rules):
    out_groups = []
    for group in rules["groups"]:
        alerts = [r for r in group["rules"] if "alert" in r]
        if not alerts:
            continue
        out_rules = []
        for r in alerts:
            out_rules.append({
                "uid": grafana_uid(r["alert"]),
                "title": r["alert"],
                "condition": "C",
                "data": [
                    {"refId": "A", "relativeTimeRange": {"from": 600, "to": 0},
                     "datasourceUid": "${MTA_PROMETHEUS_DATASOURCE_UID}",
                     "model": {"refId": "A", "expr": r["expr"].strip(), "instant": True, "range": False,
                               "intervalMs": 60000, "maxDataPoints": 43200}},
                    # The PromQL already compares against its thresholds, as
                    # in Prometheus: every series it returns is a firing
                    # instance. B passes the value through for the
                    # annotations; C is true for any value.
                    {"refId": "B", "datasourceUid": "__expr__", "relativeTimeRange": {"from": 0, "to": 0},
                     "model": {"refId": "B", "type": "math", "expression": "$A",
                               "datasource": {"type": "__expr__", "uid": "__expr__"}}},
                    {"refId": "C", "datasourceUid": "__expr__", "relativeTimeRange": {"from": 0, "to": 0},
                     "model": {"refId": "C", "type": "math",
                               "expression": "is_number($A) || is_nan($A) || is_inf($A)",
                               "datasource": {"type": "__expr__", "uid": "__expr__"}}},
                ],
                "noDataState": "OK",
                "execErrState": "Error",
                "for": r.get("for", "0m"),
                "labels": dict(r.get("labels", {})),
                "annotations": {k: grafana_template(v) for k, v in r.get("annotations", {}).items()},
                "isPaused": False,
            })
        out_groups.append({"orgId": 1, "name": group["name"], "folder": "mta_exporter",
                           "interval": group.get("interval", "1m"), "rules": out_rules})
    return {"apiVersion": 1, "groups": out_groups}


def prometheus_rule(rules):
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "mta-exporter", "namespace": "mail", "labels": {"app.kubernetes.io/name": "mta-exporter",
                                                        "app.kubernetes.io/component": "metrics"}},
        "spec": rules,
    }


# --------------------------------------------------------------------------
# output


class BlockDumper(yaml.SafeDumper):
    """Multi-line strings as | blocks, so the generated YAML reads like the source."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _str(dumper, data):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


BlockDumper.add_representer(str, _str)


def dump_yaml(header, data):
    body = yaml.dump(data, Dumper=BlockDumper, sort_keys=False, width=120, allow_unicode=True)
    return header + "---\n" + body


def outputs():
    rules = load_rules()
    gen = "# Generated by scripts/generate-monitoring.py from deploy/prometheus/mta_exporter.rules.yml: do not edit.\n"
    alerting_header = gen + (
        "# Grafana-managed alert rules, the same alerts as the Prometheus rules.\n"
        "# Set MTA_PROMETHEUS_DATASOURCE_UID in Grafana's environment to the uid of\n"
        "# your Prometheus data source (Connections > Data sources > the URL's last part).\n")
    return {
        ROOT / "grafana/dashboards/mta-exporter-overview.json": json.dumps(overview(), indent=2) + "\n",
        ROOT / "grafana/dashboards/mta-exporter-drilldown.json": json.dumps(drilldown(), indent=2) + "\n",
        ROOT / "grafana/provisioning/alerting/mta_exporter.yaml": dump_yaml(alerting_header, grafana_alerting(rules)),
        ROOT / "deploy/kubernetes/base/prometheusrule.yaml": dump_yaml(gen, prometheus_rule(rules)),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if a generated file is out of date")
    args = ap.parse_args()
    stale = []
    for path, content in outputs().items():
        rel = path.relative_to(ROOT)
        if args.check:
            if not path.exists() or path.read_text() != content:
                stale.append(str(rel))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {rel}")
    if stale:
        print("out of date (run scripts/generate-monitoring.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    if args.check:
        print("generated monitoring files are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
