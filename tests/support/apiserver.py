#!/usr/bin/env python3
"""A tiny TLS Kubernetes API server for kcc's end-to-end tests.

Why it exists
-------------
kcc is only useful if real kubectl accepts what it serves. kubectl runs exec
plugins only against TLS servers (never for plain http://), so the tests need
a local HTTPS server that authenticates bearer tokens the way a cluster does.
This file is that server: python3 standard library only (``http.server`` +
``ssl``), plus the ``openssl`` command line tool to make certificates.

What it does
------------
* Makes a fresh self-signed CA (EC P-256) and a server certificate for
  ``IP:127.0.0.1`` signed by it, in ``--dir`` (``ca.crt``, ``server.crt``,
  ``server.key``). kubectl trusts the CA through the kubeconfig's
  ``certificate-authority-data``.
* Listens on 127.0.0.1 on a free port and then writes the port number to
  ``<dir>/port`` (atomically: written to a temporary file and renamed, so a
  reader never sees half a number). The port file appearing means "ready".
* Answers ``GET /version`` (what ``kubectl get --raw /version`` asks for), plus
  ``/api``, ``/apis`` and ``/healthz``, ONLY when the request carries
  ``Authorization: Bearer <token>`` with a valid token; otherwise 401 with a
  Kubernetes ``Status`` body, as kube-apiserver does. Unknown paths with a
  valid token get a 404 ``Status``.
* A request without a bearer token is accepted (``auth`` ``"cert"``) when it
  presented the client certificate ``client.crt``/``client.key`` (made beside
  the server's, signed by the same CA; asked for, optional).
* A token is valid when
  (a) it is a line of ``<dir>/allow`` -- re-read on every request, so a test
      revokes a token by rewriting the file; or
  (b) ``--aws-access-key-id`` is given and the token is what
      ``aws eks get-token`` prints: ``k8s-aws-v1.`` + unpadded base64url of a
      presigned STS ``GetCallerIdentity`` URL. Checked like
      aws-iam-authenticator checks it, minus the call to STS: an https URL on
      an STS host, ``Action=GetCallerIdentity``, ``X-Amz-Credential``
      starting with the expected access key id, ``X-Amz-SignedHeaders``
      containing ``x-k8s-aws-id``, ``X-Amz-Date`` within 15 minutes of now and
      a 64-hex-digit ``X-Amz-Signature``. With ``--aws-secret-access-key`` and
      ``--aws-cluster`` the SigV4 signature itself is recomputed and compared,
      so a token that was not signed with that secret for that cluster is
      rejected.
* Logs one JSON line per request to ``<dir>/requests.log``:
  ``{"time", "method", "path", "status", "auth", "token_sha256", "why"}``.
  ``auth`` is ``"allow"``, ``"aws"`` or ``"cert"`` for accepted requests and ``null``
  otherwise; ``token_sha256`` is the hex SHA-256 of the bearer token (never
  the token itself), ``why`` explains a rejection.

It never outlives its test
--------------------------
The process exits by itself after ``--lifetime`` seconds (default 300), when
its parent process changes (the test process died and it was re-parented),
and, with ``--watch-stdin``, when its stdin reaches end of file: the Rust
wrapper keeps the write end of a pipe, so the server goes away with the test
process however that ends. The wrapper also kills it when dropped.

How tests use it
----------------
From Rust, through ``tests/apiserver.rs``::

    let server = ApiServer::start(&world);       // spawns this script, waits for <dir>/port
    server.allow(TOKEN);                          // rewrites <dir>/allow
    kube::write_kubeconfig(&path, &server, &user) // cluster with server.url + server.ca_data_base64
    ... run kubectl ...
    server.requests()                             // the parsed requests.log
    server.revoke(TOKEN);

By hand::

    python3 tests/support/apiserver.py --dir /tmp/api --aws-access-key-id AKIAIOSFODNN7EXAMPLE
    curl --cacert /tmp/api/ca.crt -H "Authorization: Bearer $(head -1 /tmp/api/allow)" \\
        https://127.0.0.1:$(cat /tmp/api/port)/version
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import http.server
import json
import os
import re
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

VERSION_BODY = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0+kcc-test-apiserver",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

AWS_TOKEN_PREFIX = "k8s-aws-v1."
AWS_MAX_SKEW = datetime.timedelta(minutes=15)
STS_HOST = re.compile(r"^sts(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?$")


def make_certificates(directory):
    """A CA and a server certificate for 127.0.0.1, made with the openssl CLI."""

    def openssl(*args):
        try:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)
        except FileNotFoundError:
            sys.exit("apiserver.py: the 'openssl' command is needed to make test certificates; install it (apt-get install openssl)")
        except subprocess.CalledProcessError as e:
            sys.exit("apiserver.py: openssl %s failed: %s" % (" ".join(args), e.stderr.decode(errors="replace")))

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=kcc-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )
    openssl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=IP:127.0.0.1\n"
        )
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
    )
    # A client certificate signed by the same CA, for exec credentials that
    # carry clientCertificateData/clientKeyData (mTLS).
    openssl("req", "-new", *ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=kcc-test-client")
    with open(os.path.join(directory, "client.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n")
    openssl(
        "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "client.crt", "-days", "2", "-extfile", "client.ext",
    )


def sigv4_signature(secret, url, query, cluster):
    """Recomputes the SigV4 signature of a presigned STS URL (botocore's SigV4QueryAuth).

    The payload hash is that of an empty body: botocore presigns STS URLs
    with it, not with S3's "UNSIGNED-PAYLOAD" (checked against aws-cli 1.45, botocore 1.43).
    """
    params = [(k, v) for k, v in query if k != "X-Amz-Signature"]
    quote = lambda s: urllib.parse.quote(s, safe="-_.~")
    canonical_query = "&".join("%s=%s" % (quote(k), quote(v)) for k, v in sorted(params))
    signed_headers = dict(query)["X-Amz-SignedHeaders"]
    headers = {"host": url.netloc, "x-k8s-aws-id": cluster}
    canonical_headers = "".join("%s:%s\n" % (h, headers.get(h, "")) for h in signed_headers.split(";"))
    canonical_request = "\n".join(
        ["GET", url.path or "/", canonical_query, canonical_headers, signed_headers, hashlib.sha256(b"").hexdigest()]
    )
    credential = dict(query)["X-Amz-Credential"]
    _key_id, date, region, service, terminator = credential.split("/")
    scope = "/".join([date, region, service, terminator])
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            dict(query)["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def check_aws_token(token, options, now):
    """None when `token` is a valid `aws eks get-token` token, else why not."""
    if not token.startswith(AWS_TOKEN_PREFIX):
        return "not in the allow file and not an aws token"
    encoded = token[len(AWS_TOKEN_PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "aws token: not base64url"
    url = urllib.parse.urlsplit(raw)
    if url.scheme != "https" or not STS_HOST.match(url.hostname or ""):
        return "aws token: not an https STS URL"
    query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
    q = dict(query)
    if q.get("Action") != "GetCallerIdentity":
        return "aws token: not GetCallerIdentity"
    if not q.get("X-Amz-Credential", "").startswith(options.aws_access_key_id + "/"):
        return "aws token: X-Amz-Credential is not for the expected access key id"
    if "x-k8s-aws-id" not in q.get("X-Amz-SignedHeaders", "").split(";"):
        return "aws token: x-k8s-aws-id is not a signed header"
    try:
        signed_at = datetime.datetime.strptime(q.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ")
        signed_at = signed_at.replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "aws token: bad X-Amz-Date"
    if abs(now - signed_at) > AWS_MAX_SKEW:
        return "aws token: X-Amz-Date is more than 15 minutes away"
    signature = q.get("X-Amz-Signature", "")
    if not re.fullmatch(r"[0-9a-f]{64}", signature):
        return "aws token: no signature"
    if options.aws_secret_access_key is not None:
        try:
            expected = sigv4_signature(options.aws_secret_access_key, url, query, options.aws_cluster)
        except (KeyError, ValueError):
            return "aws token: cannot recompute the signature"
        if not hmac.compare_digest(expected, signature):
            return "aws token: signature mismatch (other secret or cluster)"
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kcc-test-apiserver"

    def log_message(self, format, *args):
        pass  # requests.log is the log; keep stderr quiet

    def authenticate(self):
        """(auth kind or None, token sha256 or None, why rejected)."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            # A client certificate the CA signed (verified in the handshake).
            if self.connection.getpeercert():
                return "cert", None, None
            return None, None, "no bearer token"
        token = header[len("Bearer "):].strip()
        digest = hashlib.sha256(token.encode()).hexdigest()
        try:
            with open(self.server.allow_file) as f:
                allowed = {line.strip() for line in f if line.strip()}
        except FileNotFoundError:
            allowed = set()
        if token in allowed:
            return "allow", digest, None
        if self.server.options.aws_access_key_id:
            why = check_aws_token(token, self.server.options, datetime.datetime.now(datetime.timezone.utc))
            if why is None:
                return "aws", digest, None
            return None, digest, why
        return None, digest, "not in the allow file"

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_any(self):
        auth, digest, why = self.authenticate()
        path = urllib.parse.urlsplit(self.path).path
        # The Python client asks for "/version/"; kube-apiserver answers both.
        if len(path) > 1:
            path = path.rstrip("/")
        if auth is None:
            status = 401
            body = status_body(401, "Unauthorized", "Unauthorized")
        elif path == "/version":
            status, body = 200, VERSION_BODY
        elif path == "/api":
            status = 200
            body = {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.server.address}],
            }
        elif path == "/apis":
            status, body = 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}
        elif path in ("/healthz", "/livez", "/readyz"):
            status, body = 200, "ok"
        else:
            status = 404
            body = status_body(404, "NotFound", "the server could not find the requested resource")
        self.server.log_request_line(
            {
                "time": time.time(),
                "method": self.command,
                "path": path,
                "status": status,
                "auth": auth,
                "token_sha256": digest,
                "why": why,
            }
        )
        self.reply(status, body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def status_body(code, reason, message):
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def __init__(self, options, context):
        super().__init__(("127.0.0.1", 0), Handler)
        self.options = options
        self.context = context
        self.allow_file = os.path.join(options.dir, "allow")
        self.log_file = os.path.join(options.dir, "requests.log")
        self.log_lock = threading.Lock()
        self.address = "127.0.0.1:%d" % self.server_address[1]

    def get_request(self):
        sock, addr = self.socket.accept()
        # The handshake happens in the handler thread (finish_request), so a
        # client that never speaks cannot stall the accept loop.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        request.settimeout(30)
        request.do_handshake()
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # clients hanging up mid-handshake are not the server's problem

    def log_request_line(self, entry):
        with self.log_lock, open(self.log_file, "a") as f:
            f.write(json.dumps(entry) + "\n")


def exit_when_orphaned(lifetime, watch_stdin):
    parent = os.getppid()
    deadline = time.monotonic() + lifetime
    if watch_stdin:

        def wait_for_eof():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)

        threading.Thread(target=wait_for_eof, daemon=True).start()
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="state directory: certificates, port, allow, requests.log")
    parser.add_argument("--lifetime", type=float, default=300, help="exit after this many seconds (default 300)")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin reaches end of file")
    parser.add_argument("--aws-access-key-id", help="accept aws eks get-token tokens signed with this key id")
    parser.add_argument("--aws-secret-access-key", help="also verify the SigV4 signature with this secret")
    parser.add_argument("--aws-cluster", default="", help="cluster name (x-k8s-aws-id) for signature checks")
    parser.add_argument("--server-cert", help="serve this certificate (PEM) instead of the one signed by ca.crt")
    parser.add_argument("--server-key", help="the key of --server-cert (PEM)")
    options = parser.parse_args()

    os.makedirs(options.dir, exist_ok=True)
    make_certificates(options.dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # A test's own certificate (a self-signed CA served as the leaf, an
    # expired one, a wrong name): made by the test, served as given.
    context.load_cert_chain(
        options.server_cert or os.path.join(options.dir, "server.crt"),
        options.server_key or os.path.join(options.dir, "server.key"),
    )
    # Client certificates are asked for but optional (bearer tokens are the norm).
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(os.path.join(options.dir, "ca.crt"))

    server = Server(options, context)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port_file = os.path.join(options.dir, "port")
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(port_file + ".tmp", port_file)
    exit_when_orphaned(options.lifetime, options.watch_stdin)


if __name__ == "__main__":
    main()
