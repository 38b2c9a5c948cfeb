#!/usr/bin/env python3
"""A throw-away PKI for the TLS scenarios (openssl CLI, loopback names only).

    pki.py DIR

writes DIR/ca.crt, DIR/ca.key, and a key and certificate signed by the CA for
each of: server (CN mx1.example.test, SAN mx1.example.test, localhost,
127.0.0.1, ::1 — what the MTAs under test present), sink (CN mx.sink.test,
SAN mx.sink.test, localhost, 127.0.0.1 — what the sink presents to the MTAs'
SMTP clients) and client (CN client.example.test — a client certificate that
no MTA trusts). Keys are world-readable: they protect nothing but a test bed.
"""

import os
import subprocess
import sys


def run(*args):
    subprocess.run(args, check=True, capture_output=True)


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    j = lambda n: os.path.join(d, n)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mta test CA",
        "-keyout", j("ca.key"), "-out", j("ca.crt"))
    for name, cn, sans in [
        ("server", "mx1.example.test", "DNS:mx1.example.test,DNS:localhost,IP:127.0.0.1,IP:::1"),
        ("sink", "mx.sink.test", "DNS:mx.sink.test,DNS:localhost,IP:127.0.0.1"),
        ("client", "client.example.test", "DNS:client.example.test"),
    ]:
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn,
            "-keyout", j(name + ".key"), "-out", j(name + ".csr"))
        with open(j(name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n" % sans)
        run("openssl", "x509", "-req", "-in", j(name + ".csr"), "-CA", j("ca.crt"), "-CAkey", j("ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", j(name + ".ext"), "-out", j(name + ".crt"))
        with open(j(name + ".pem"), "w") as f:
            f.write(open(j(name + ".key")).read() + open(j(name + ".crt")).read())
    for n in os.listdir(d):
        os.chmod(j(n), 0o644)
    os.chmod(d, 0o755)


if __name__ == "__main__":
    main()
