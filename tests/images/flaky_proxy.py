#!/usr/bin/env python3
"""A misbehaving front for a registry, for the image suite.

  flaky_proxy.py PORT UPSTREAM_HOST:PORT

Proxies GETs to UPSTREAM, except that each manifest's first request gets
its connection closed without an answer, and each blob's first request a
503 and its second a 307 redirect to UPSTREAM itself (another host:port, as
blob storage would be).  Logs every request it sees, with whether it
carried an Authorization header, on stdout."""
import http.server
import sys
import urllib.error
import urllib.request

PORT, UP = int(sys.argv[1]), sys.argv[2]
seen = {}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        print(self.path, "auth" if self.headers.get("Authorization") else "-", flush=True)
        if "/manifests/" in self.path and not seen.get(self.path):
            # The first request for each manifest: the connection is closed
            # without an answer (a reset, as a broken proxy would).
            seen[self.path] = 1
            self.close_connection = True
            return
        if "/blobs/" in self.path:
            n = seen.get(self.path, 0)
            seen[self.path] = n + 1
            if n == 0:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if n == 1:
                self.send_response(307)
                self.send_header("Location", f"http://{UP}{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        req = urllib.request.Request(f"http://{UP}{self.path}")
        for h in ("Accept",):
            if self.headers.get(h):
                req.add_header(h, self.headers[h])
        try:
            r = urllib.request.urlopen(req)
            code, body, headers = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            code, body, headers = e.code, e.read(), e.headers
        self.send_response(code)
        for h in ("Content-Type", "Docker-Content-Digest", "WWW-Authenticate"):
            if headers.get(h):
                self.send_header(h, headers[h])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
