"""An SMTP submission server for the plugin TLS tests: aiosmtpd on loopback
that requires STARTTLS, then AUTH (PLAIN or LOGIN) with one user and
password, before it takes mail.

Usage: smtp_tls_auth.py PORT OUTDIR CERT KEY USER PASSWORD_FILE

Each message accepted is written like smtp_sink.py does (OUTDIR/NNNN.eml
and NNNN.json, the envelope with the authenticated user). Failed logins are
counted in OUTDIR/auth_failures. Prints "ready" once the server accepts
connections, then runs until killed.
"""

import asyncio
import itertools
import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, outdir):
        self.outdir = outdir
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        base = os.path.join(self.outdir, "%04d" % n)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(base + ".tmp", "wb") as f:
            f.write(data)
        login = session.auth_data.login if session.auth_data else None
        if isinstance(login, bytes):
            login = login.decode("utf-8")
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "tls": session.ssl is not None, "login": login}, f)
        os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 Ok: queued as VAKTTLS%04d" % n


class Authenticator:
    def __init__(self, user, password, outdir):
        self.user = user.encode("utf-8")
        self.password = password.encode("utf-8")
        self.failures = os.path.join(outdir, "auth_failures")

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == self.user
              and auth_data.password == self.password)
        if not ok:
            with open(self.failures, "a") as f:
                f.write("x")
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class TlsController(Controller):
    def __init__(self, handler, context, authenticator, **kwargs):
        self.context = context
        self.authenticator = authenticator
        super().__init__(handler, **kwargs)

    def factory(self):
        return SMTP(self.handler, tls_context=self.context, require_starttls=True,
                    auth_required=True, auth_require_tls=True,
                    authenticator=self.authenticator, hostname="localhost")


def main():
    port, outdir, cert, key, user, password_file = sys.argv[1:7]
    with open(password_file) as f:
        password = f.read().rstrip("\r\n")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controller = TlsController(Sink(outdir), context, Authenticator(user, password, outdir),
                               hostname="127.0.0.1", port=int(port))
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
