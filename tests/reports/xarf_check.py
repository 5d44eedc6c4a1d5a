"""xarf_check.py - the XARF v4 checks an abuse report must pass, written from
the published JSON Schemas (xarf-core.json and the type schemas of XARF
4.x: connection-login-attack, messaging-spam, connection-reconnaissance,
reputation-blocklist; https://xarf.org/, github.com/xarf). Each rule below
names the schema keyword it encodes; formats are asserted (uuid, date-time,
email, hostname, ipv4, ipv6), which is what the schemas' conditional
requirements ("source_port when source_identifier is an IP") rest on.

check(report) returns a list of problems, empty when the report is valid."""
import base64, ipaddress, re

CATEGORIES = ["messaging", "content", "copyright", "connection", "vulnerability", "infrastructure",
              "reputation"]
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
TAG = re.compile(r"^[a-z0-9][a-z0-9_+-]*:[a-z0-9][a-z0-9_+-]*$")
HASH = re.compile(r"^(md5|sha1|sha256|sha512):[a-fA-F0-9]+$")
VERSION = re.compile(r"^4\.[0-9]+\.[0-9]+$")


def is_hostname(s):
    return isinstance(s, str) and 0 < len(s) <= 253 and all(LABEL.match(x) for x in s.split("."))


def is_email(s):
    if not isinstance(s, str) or s.count("@") < 1:
        return False
    local, _, domain = s.rpartition("@")
    return bool(LOCAL.match(local)) and is_hostname(domain)


def is_ip(s, version):
    try:
        return ipaddress.ip_address(s).version == version
    except (ValueError, TypeError):
        return False


def is_datetime(s):
    return isinstance(s, str) and bool(DATETIME.match(s))


def _contact_info(name, v, errs):
    # $defs/contact_info: required org, contact, domain; additionalProperties false
    if not isinstance(v, dict):
        errs.append("%s: not an object" % name)
        return
    for k in ("org", "contact", "domain"):
        if k not in v:
            errs.append("%s.%s: required" % (name, k))
    extra = set(v) - {"org", "contact", "domain"}
    if extra:
        errs.append("%s: additional properties %s" % (name, sorted(extra)))
    if "org" in v and not (isinstance(v["org"], str) and len(v["org"]) <= 200):
        errs.append("%s.org: a string of at most 200 characters" % name)
    if "contact" in v and not is_email(v["contact"]):
        errs.append("%s.contact: format email" % name)
    if "domain" in v and not is_hostname(v["domain"]):
        errs.append("%s.domain: format hostname" % name)


def _evidence_item(i, e, errs):
    # $defs/evidence_item: required content_type, payload (base64); additionalProperties false
    if not isinstance(e, dict):
        errs.append("evidence[%d]: not an object" % i)
        return
    for k in ("content_type", "payload"):
        if not isinstance(e.get(k), str):
            errs.append("evidence[%d].%s: a required string" % (i, k))
    extra = set(e) - {"content_type", "description", "payload", "hash", "size"}
    if extra:
        errs.append("evidence[%d]: additional properties %s" % (i, sorted(extra)))
    if "description" in e and not (isinstance(e["description"], str) and len(e["description"]) <= 500):
        errs.append("evidence[%d].description: at most 500 characters" % i)
    if isinstance(e.get("payload"), str):
        try:
            base64.b64decode(e["payload"], validate=True)
        except Exception:
            errs.append("evidence[%d].payload: not base64" % i)
    if "hash" in e and not (isinstance(e["hash"], str) and HASH.match(e["hash"])):
        errs.append("evidence[%d].hash: pattern" % i)
    if "size" in e and not (isinstance(e["size"], int) and 0 <= e["size"] <= 5242880):
        errs.append("evidence[%d].size: 0..5242880" % i)


def _core(r, errs):
    for k in ("xarf_version", "report_id", "timestamp", "reporter", "sender", "source_identifier",
              "category", "type"):
        if k not in r:
            errs.append("%s: required" % k)
    if "xarf_version" in r and not (isinstance(r["xarf_version"], str) and VERSION.match(r["xarf_version"])):
        errs.append("xarf_version: pattern ^4.N.N$")
    if "report_id" in r and not (isinstance(r["report_id"], str) and UUID.match(r["report_id"])):
        errs.append("report_id: format uuid")
    if "timestamp" in r and not is_datetime(r["timestamp"]):
        errs.append("timestamp: format date-time")
    if "reporter" in r:
        _contact_info("reporter", r["reporter"], errs)
    if "sender" in r:
        _contact_info("sender", r["sender"], errs)
    if "source_identifier" in r and not isinstance(r["source_identifier"], str):
        errs.append("source_identifier: a string")
    if "source_port" in r and not (isinstance(r["source_port"], int) and not isinstance(r["source_port"], bool)
                                   and 1 <= r["source_port"] <= 65535):
        errs.append("source_port: an integer 1..65535")
    if "category" in r and r["category"] not in CATEGORIES:
        errs.append("category: enum")
    if "type" in r and not isinstance(r["type"], str):
        errs.append("type: a string")
    if "evidence_source" in r and not isinstance(r["evidence_source"], str):
        errs.append("evidence_source: a string")
    if "evidence" in r:
        ev = r["evidence"]
        if not isinstance(ev, list) or len(ev) > 50:
            errs.append("evidence: an array of at most 50 items")
        else:
            for i, e in enumerate(ev):
                _evidence_item(i, e, errs)
    if "tags" in r:
        t = r["tags"]
        if not isinstance(t, list) or len(t) > 20 or not all(isinstance(x, str) and TAG.match(x) for x in t):
            errs.append("tags: at most 20 namespaced tags")
    if "confidence" in r and not (isinstance(r["confidence"], (int, float)) and 0 <= r["confidence"] <= 1):
        errs.append("confidence: 0..1")
    if "description" in r and not (isinstance(r["description"], str) and len(r["description"]) <= 1000):
        errs.append("description: at most 1000 characters")
    if "legacy_version" in r and r["legacy_version"] != "3":
        errs.append("legacy_version: enum")


def _ip_source(r):
    s = r.get("source_identifier")
    return is_ip(s, 4) or is_ip(s, 6)


def _login_attack(r, errs):
    # connection-login-attack.json
    if r.get("protocol") not in ("tcp", "udp", "icmp", "sctp"):
        errs.append("protocol: required, tcp, udp, icmp or sctp")
    if not is_datetime(r.get("first_seen")):
        errs.append("first_seen: required date-time")
    if "last_seen" in r and not is_datetime(r["last_seen"]):
        errs.append("last_seen: date-time")
    if "destination_ip" in r and not (is_ip(r["destination_ip"], 4) or is_ip(r["destination_ip"], 6)):
        errs.append("destination_ip: ipv4 or ipv6")
    if "destination_port" in r and not (isinstance(r["destination_port"], int) and 1 <= r["destination_port"] <= 65535):
        errs.append("destination_port: 1..65535")
    if _ip_source(r) and "source_port" not in r:  # if/then
        errs.append("source_port: required when source_identifier is an IP")


SPAM_EVIDENCE = ["spamtrap", "user_complaint", "automated_filter", "honeypot", "content_analysis",
                 "reputation_feed"]
SPAM_PROTOCOLS = ["smtp", "sms", "whatsapp", "telegram", "signal", "chat", "social_media",
                  "push_notification", "other"]


def _spam(r, errs):
    # messaging-spam.json
    if r.get("protocol") not in SPAM_PROTOCOLS:
        errs.append("protocol: required, enum")
    if "evidence_source" in r and r["evidence_source"] not in SPAM_EVIDENCE:
        errs.append("evidence_source: enum of the spam type")
    if r.get("protocol") == "smtp":  # if/then
        if "smtp_from" not in r:
            errs.append("smtp_from: required when protocol is smtp")
        if "source_port" not in r:
            errs.append("source_port: required when protocol is smtp")
    for k in ("smtp_from", "smtp_to"):
        if k in r and not is_email(r[k]):
            errs.append("%s: format email" % k)
    for k, n in (("subject", 500), ("sender_name", 200), ("message_id", 200), ("user_agent", 200)):
        if k in r and not (isinstance(r[k], str) and len(r[k]) <= n):
            errs.append("%s: at most %d characters" % (k, n))
    if "recipient_count" in r and not (isinstance(r["recipient_count"], int) and r["recipient_count"] >= 1):
        errs.append("recipient_count: >= 1")
    if "language" in r and not re.match(r"^[a-z]{2}(-[A-Z]{2})?$", str(r["language"])):
        errs.append("language: pattern")


def _reconnaissance(r, errs):
    # connection-reconnaissance.json
    if r.get("protocol") not in ("tcp", "udp"):
        errs.append("protocol: required, tcp or udp")
    p = r.get("probed_resources")
    if not (isinstance(p, list) and all(isinstance(x, str) for x in p)):
        errs.append("probed_resources: a required array of strings")
    if not is_datetime(r.get("first_seen")):
        errs.append("first_seen: required date-time")
    if "last_seen" in r and not is_datetime(r["last_seen"]):
        errs.append("last_seen: date-time")
    if "total_probes" in r and not (isinstance(r["total_probes"], int) and r["total_probes"] >= 1):
        errs.append("total_probes: >= 1")
    if "automated_tool" in r and not isinstance(r["automated_tool"], bool):
        errs.append("automated_tool: boolean")


def _blocklist(r, errs):
    # reputation-blocklist.json
    if not isinstance(r.get("threat_type"), str):
        errs.append("threat_type: a required string")


TYPES = {("connection", "login_attack"): _login_attack, ("messaging", "spam"): _spam,
         ("connection", "reconnaissance"): _reconnaissance, ("reputation", "blocklist"): _blocklist}


def check(r):
    errs = []
    if not isinstance(r, dict):
        return ["not an object"]
    _core(r, errs)
    t = TYPES.get((r.get("category"), r.get("type")))
    if t is None:
        errs.append("no schema for %s/%s here" % (r.get("category"), r.get("type")))
    else:
        t(r, errs)
    return errs


if __name__ == "__main__":  # self-test: the schemas' own examples, and broken ones
    ok = {"xarf_version": "4.2.0", "report_id": "123e4567-e89b-12d3-a456-426614174000",
          "timestamp": "2024-01-15T14:30:25Z",
          "reporter": {"org": "S", "contact": "reports@spam-reports.example", "domain": "spam-reports.example"},
          "sender": {"org": "S", "contact": "reports@spam-reports.example", "domain": "spam-reports.example"},
          "source_identifier": "192.0.2.123", "source_port": 25, "category": "messaging", "type": "spam",
          "protocol": "smtp", "smtp_from": "fake@example.com", "evidence_source": "spamtrap",
          "tags": ["spam:commercial", "campaign:fake_bank_2024"], "confidence": 0.92}
    assert check(ok) == [], check(ok)
    bad = dict(ok)
    del bad["source_port"]
    assert check(bad) == ["source_port: required when protocol is smtp"], check(bad)
    bad = dict(ok, reporter={"org": "S", "contact": "x", "domain": "d.example", "type": "automated"})
    assert len(check(bad)) == 2, check(bad)
    la = dict(ok, category="connection", type="login_attack", protocol="tcp", first_seen="2024-01-15T14:30:25Z")
    del la["source_port"]
    assert check(la) == ["source_port: required when source_identifier is an IP"], check(la)
    la["source_identifier"] = "192.0.2.0/24"
    assert check(la) == [], check(la)
    print("xarf_check: self-test ok")
