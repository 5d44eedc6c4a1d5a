"""peers.py - the peers the abuse reports talk to, played on loopback by the
tests: an SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA with
dot-unstuffing, RSET, NOOP, QUIT) that records every transaction, and an
RDAP server (RFC 9083 answers for IP networks) that counts its requests.
Both listen on 127.0.0.1 with a port the kernel picks. Never the Internet."""
import http.server, ipaddress, json, socket, socketserver, threading


class SMTPServer:
    """Records (mail_from, [rcpt], data bytes) per accepted message. fail_next
    transactions are refused with 451 at DATA's end (a busy MTA)."""

    def __init__(self, fail_next=0):
        self.messages = []
        self.refused = 0
        self.fail_next = fail_next
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                w = self.wfile
                w.write(b"220 test.example ESMTP\r\n")
                mail, rcpts = None, []
                while True:
                    line = self.rfile.readline(4096)
                    if not line:
                        return
                    cmd = line.rstrip(b"\r\n")
                    verb = cmd[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        w.write(b"250-test.example\r\n250 8BITMIME\r\n" if verb == b"EHLO" else b"250 ok\r\n")
                    elif cmd.upper().startswith(b"MAIL FROM:"):
                        mail, rcpts = cmd[10:].strip().decode(), []
                        w.write(b"250 ok\r\n")
                    elif cmd.upper().startswith(b"RCPT TO:"):
                        rcpts.append(cmd[8:].strip().decode())
                        w.write(b"250 ok\r\n")
                    elif verb == b"DATA":
                        w.write(b"354 go\r\n")
                        data = []
                        while True:
                            l = self.rfile.readline(1 << 20)
                            if not l or l == b".\r\n":
                                break
                            data.append(l[1:] if l.startswith(b"..") else l)
                        with outer.lock:
                            if outer.fail_next > 0:
                                outer.fail_next -= 1
                                outer.refused += 1
                                w.write(b"451 4.3.0 try again later\r\n")
                            else:
                                outer.messages.append((mail, rcpts, b"".join(data)))
                                w.write(b"250 2.0.0 queued\r\n")
                        mail, rcpts = None, []
                    elif verb == b"RSET":
                        mail, rcpts = None, []
                        w.write(b"250 ok\r\n")
                    elif verb == b"NOOP":
                        w.write(b"250 ok\r\n")
                    elif verb == b"QUIT":
                        w.write(b"221 bye\r\n")
                        return
                    else:
                        w.write(b"500 what\r\n")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.srv = Server(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class RDAPServer:
    """Answers GET /ip/ADDR for the networks given as {cidr: contact or None}
    (the most specific holding ADDR): the network's range and, unless the
    contact is None, an abuse entity nested inside a registrant entity, as
    RIPE and ARIN publish it. Other addresses: 404. Counts requests."""

    def __init__(self, networks):
        self.networks = {ipaddress.ip_network(k): v for k, v in networks.items()}
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                addr = self.path[len("/ip/"):] if self.path.startswith("/ip/") else ""
                try:
                    ip = ipaddress.ip_address(addr)
                except ValueError:
                    self.send_error(400)
                    return
                nets = [n for n in outer.networks if n.version == ip.version and ip in n]
                if not nets:
                    self.send_error(404)
                    return
                net = max(nets, key=lambda n: n.prefixlen)
                body = {"rdapConformance": ["rdap_level_0"], "objectClassName": "ip network",
                        "handle": "NET-TEST", "startAddress": str(net.network_address),
                        "endAddress": str(net.broadcast_address), "ipVersion": "v%d" % ip.version,
                        "entities": [{"objectClassName": "entity", "handle": "ORG-1", "roles": ["registrant"],
                                      "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                                               ["fn", {}, "text", "Test Org"],
                                                               ["email", {}, "text", "noc@org.example"]]],
                                      "entities": []}]}
                contact = outer.networks[net]
                if contact:
                    body["entities"][0]["entities"].append(
                        {"objectClassName": "entity", "handle": "ABUSE-1", "roles": ["abuse"],
                         "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Abuse"],
                                                  ["email", {"type": "work"}, "text", contact]]]})
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/rdap+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def bootstrap(self, path, cidrs):
        """An IANA-style bootstrap file naming this server for cidrs."""
        with open(path, "w") as f:
            json.dump({"version": "1.0", "publication": "2026-11-01T00:00:00Z",
                       "services": [[cidrs, ["http://127.0.0.1:%d/" % self.port]]]}, f)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
