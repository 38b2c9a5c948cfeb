# Classify Postfix log lines that carry an SMTP reply (or a local dsn-only
# result) into "direction phase code enhanced status", one line of output per
# reply. Hand-written for check.sh; works with mawk (no interval expressions).
#
# Covered shapes: delivery status lines (status=sent|deferred|bounced|
# deliverable|undeliverable|SOFTBOUNCE), non-final "QID: host H said:" /
# "refused to talk to me" / "SASL authentication failed; server H said:" lines,
# smtpd/postscreen "(milter-)reject: STAGE from ...: <reply>" lines and cleanup
# "reject: header|body ...: <enhanced> text" lines. reject_warning and
# status=expired lines are skipped (they are no replies).

function parse_reply(r) {
  code = "none"; enh = "none"
  if (r ~ /^[2-5][0-9][0-9]([ -]|$)/) { code = substr(r, 1, 3); r = substr(r, 5) }
  if (match(r, /^[245]\.[0-9]+\.[0-9]+/) && substr(r, RLENGTH + 1, 1) ~ /^([ ;]|)$/)
    enh = substr(r, 1, RLENGTH)
}

function reply_phase(s,   cmd) {
  if (!match(s, /\(in reply to [A-Za-z ]+ command\)/)) return "other"
  cmd = substr(s, RSTART + 13, RLENGTH - 22)
  if (cmd == "RCPT TO") return "rcpt"
  if (cmd == "MAIL FROM") return "mail"
  if (cmd == "DATA") return "data"
  if (cmd == "end of DATA") return "end_of_data"
  if (cmd ~ /^(EHLO|HELO|LHLO|STARTTLS)$/) return "helo"
  if (cmd == "AUTH") return "auth"
  return "other"
}

function stage_phase(st) {
  if (st == "CONNECT") return "connect"
  if (st == "EHLO" || st == "HELO") return "helo"
  if (st == "MAIL") return "mail"
  if (st == "RCPT") return "rcpt"
  if (st == "DATA" || st == "BDAT") return "data"
  if (st == "END-OF-MESSAGE") return "end_of_data"
  if (st == "AUTH") return "auth"
  return "other"
}

function classify_detail(d) {
  if (match(d, /^host [^ ]+ said: /)) { parse_reply(substr(d, RLENGTH + 1)); phase = reply_phase(d) }
  else if (match(d, /^host [^ ]+ refused to talk to me: /)) { parse_reply(substr(d, RLENGTH + 1)); phase = "connect" }
  else if (match(d, /^SASL authentication failed; server [^ ]+ said: /)) { parse_reply(substr(d, RLENGTH + 1)); phase = "auth" }
  else if (d ~ /^[2-5][0-9][0-9]([ -]|$)/) {
    parse_reply(d)
    phase = (status == "deliverable" || status == "undeliverable") ? "rcpt" : "end_of_data"
  }
  else { code = "none"; enh = dsn; phase = (d ~ /^connect to /) ? "connect" : "none" }
}

{
  if (!match($0, / postfix[^ \/]*\/[^ ]*\[[0-9]+\]: /)) next
  msg = substr($0, RSTART + RLENGTH)

  if (msg ~ /^(NOQUEUE|[0-9A-F]+): reject_warning: /) next

  if (msg ~ /^(NOQUEUE|[0-9A-F]+): (milter-)?reject: /) {
    r = msg
    sub(/^[^:]+: (milter-)?reject: /, "", r)
    if (r ~ /^(header|body) /) {
      phase = "end_of_data"
      if (match(r, /helo=<[^>]*>: /)) parse_reply(substr(r, RSTART + RLENGTH)); else parse_reply("")
    } else {
      st = r; sub(/ .*/, "", st)
      phase = stage_phase(st)
      if (match(r, /^[A-Z-]+ from [^ ]*\]: /) || match(r, /^[A-Z-]+ from \[[0-9A-Fa-f:.]*\]:[0-9]+: /))
        parse_reply(substr(r, RSTART + RLENGTH))
      else
        parse_reply("")
    }
    print "inbound", phase, code, enh, "rejected"
    next
  }

  if (msg ~ /, status=expired, /) next

  if (match(msg, /, status=[A-Za-z-]+ \(/)) {
    status = substr(msg, RSTART + 9, RLENGTH - 11)
    detail = substr(msg, RSTART + RLENGTH)
    sub(/\)$/, "", detail)
    if (status == "SOFTBOUNCE") status = "deferred"
    dsn = "none"
    if (match(msg, /, dsn=[245]\.[0-9]+\.[0-9]+,/)) dsn = substr(msg, RSTART + 6, RLENGTH - 7)
    classify_detail(detail)
    print "outbound", phase, code, enh, status
    next
  }

  if (msg ~ /^[0-9A-F]+: (host [^ ]+ (said|refused to talk to me): |SASL authentication failed; server )/) {
    detail = msg; sub(/^[0-9A-F]+: /, "", detail)
    status = "none"; dsn = "none"
    classify_detail(detail)
    print "outbound", phase, code, enh, "none"
  }
}
