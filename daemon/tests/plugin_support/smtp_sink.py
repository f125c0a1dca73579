"""A real SMTP server for the plugin tests: aiosmtpd on loopback.

Usage: smtp_sink.py PORT OUTDIR

Each message received is written to OUTDIR/NNNN.eml (the bytes as sent)
with its envelope in OUTDIR/NNNN.json; the reply names the file. Prints
"ready" once the server accepts connections, then runs until killed.
"""

import asyncio
import itertools
import json
import os
import sys

from aiosmtpd.controller import Controller


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
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 Ok: queued as VAKT%04d" % n


def main():
    port, outdir = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(outdir), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
