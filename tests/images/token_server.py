#!/usr/bin/env python3
"""A registry token server for the image suite (Docker's token protocol).

  token_server.py PORT KEY CERT ISSUER USER:PASSWORD

GET /token?service=S&scope=repository:NAME:pull: anonymous callers get pull
on every repository but private/*; USER:PASSWORD (Basic) gets pull on all;
wrong credentials get 401.  Tokens are RS256 JWTs signed with `openssl dgst`
carrying the signing certificate in x5c (the registry's rootcertbundle)."""
import base64
import http.server
import json
import subprocess
import sys
import time
import urllib.parse

PORT, KEY, CERT, ISSUER, CRED = sys.argv[1:6]
DER = subprocess.check_output(["openssl", "x509", "-in", CERT, "-outform", "DER"])
HEADER = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(DER).decode()]}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(sub, service, access):
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": sub, "aud": service, "exp": now + 300, "nbf": now - 10, "iat": now,
              "jti": str(now) + sub, "access": access}
    signing = b64(json.dumps(HEADER).encode()) + "." + b64(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=signing.encode(),
                         stdout=subprocess.PIPE, check=True).stdout
    return signing + "." + b64(sig)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path != "/token":
            return self.reply(404, {})
        q = urllib.parse.parse_qs(u.query)
        user = "anonymous"
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            if base64.b64decode(auth[6:]).decode() != CRED:
                return self.reply(401, {"details": "bad credentials"},
                                  [("WWW-Authenticate", 'Basic realm="token"')])
            user = CRED.split(":")[0]
        access = []
        for scope in q.get("scope", []):
            parts = scope.split(":")
            if len(parts) == 3 and parts[0] == "repository":
                if user == "anonymous" and parts[1].startswith("private/"):
                    continue
                access.append({"type": "repository", "name": parts[1], "actions": ["pull"]})
        self.reply(200, {"token": token(user, q.get("service", [""])[0], access), "expires_in": 300})


http.server.ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler).serve_forever()
