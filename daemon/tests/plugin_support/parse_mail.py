"""Parses a received message with Python's `email` package and prints what
the plugin tests assert on, as JSON: decoded headers and body parts.

Usage: parse_mail.py FILE.eml
"""

import email
import email.policy
import json
import sys


def main():
    with open(sys.argv[1], "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    headers = {}
    for name in ("From", "To", "Cc", "Bcc", "Reply-To", "Subject", "Message-ID",
                 "Date", "MIME-Version", "Auto-Submitted", "Content-Type"):
        value = msg.get(name)
        if value is not None:
            headers[name] = str(value)
    parts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        parts.append({
            "content_type": part.get_content_type(),
            "charset": part.get_content_charset(),
            "transfer_encoding": part.get("Content-Transfer-Encoding"),
            "content": part.get_content(),
        })
    print(json.dumps({
        "headers": headers,
        "content_type": msg.get_content_type(),
        "defects": [str(d) for d in msg.defects],
        "parts": parts,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
