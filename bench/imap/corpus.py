"""The bench mailbox for bench/imap/load.py: deterministic messages of about
4 KB with varied headers (Received, Cc lists, replies with In-Reply-To and
References, list ids, encoded words), two thirds text/plain, the rest
multipart/alternative (text + HTML) or multipart/mixed (text + a small
base64 attachment)."""
import base64
import datetime
import random

USER = "bench@bench.test"
SEARCH_FROM = "quentin.harbrook"     # the From of ~1% of the messages
SEARCH_WORD = "marzipan"             # in the text of ~1% of the bodies

FIRST = ["Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
         "Kemal", "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Rafael", "Sofia", "Tomas", "Ulla",
         "Vera", "Wen", "Ximena", "Yusuf", "Zoe", "Amara", "Björn", "Céline", "Dagny", "Émile"]
LAST = ["Abbott", "Berg", "Castro", "Dalton", "Eriksen", "Fischer", "Garcia", "Holm", "Ivanova",
        "Jansen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Quist", "Rossi",
        "Schmidt", "Tanaka", "Umar", "Varga", "Weber", "Xu", "Young", "Zimmer"]
DOMAINS = ["example.com", "example.net", "example.org", "mail.example.com", "lists.example.org",
           "corp.example", "uni.example.edu", "shop.example", "news.example.net", "dev.example.io"]
WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at which "
         "but have an they you were her she there been one all we their has would when if so what "
         "out up more will into some time them other then only about could now than like over "
         "also back after use two how our work first well way even new want because any these give "
         "day most report meeting budget project invoice schedule review draft release server "
         "deadline customer support ticket update network storage backup quarter forecast team "
         "agenda minutes proposal contract design feedback question answer summary detail issue "
         "change request approval document figure table version patch build test deploy monitor").split()
MAILERS = ["Thunderbird 115.3", "Apple Mail (2.3731)", "Microsoft Outlook 16.0", "K-9 Mail 6.7",
           "Mutt/2.2.9", "Roundcube Webmail/1.6", "Evolution 3.48"]


def _person(rng):
    f, l = rng.choice(FIRST), rng.choice(LAST)
    return f"{f} {l}", f"{f.lower()}.{l.lower()}@{rng.choice(DOMAINS)}"


def _encoded(name):
    """The display name as a phrase: plain ASCII words, or an RFC 2047
    Q-encoded word when it has non-ASCII letters."""
    if all(ord(c) < 128 for c in name):
        return name
    return "=?UTF-8?Q?" + "".join(c if c.isalnum() and ord(c) < 128 else
                                  "".join(f"={b:02X}" for b in c.encode()) for c in name) + "?="


def _paragraphs(rng, size, word=None):
    out, n = [], 0
    while n < size:
        words = [rng.choice(WORDS) for _ in range(rng.randint(30, 90))]
        if word and not out:
            words.insert(rng.randint(0, len(words)), word)
        text = " ".join(words).capitalize() + "."
        lines, line = [], ""
        for w in text.split(" "):
            if len(line) + len(w) + 1 > 72:
                lines.append(line)
                line = w
            else:
                line = (line + " " + w) if line else w
        lines.append(line)
        p = "\r\n".join(lines)
        out.append(p)
        n += len(p) + 4
    return "\r\n\r\n".join(out) + "\r\n"


def make_messages(n, seed=20261124):
    """n messages as CRLF bytes; the counts of the SEARCH targets."""
    rng = random.Random(seed)
    base = datetime.datetime(2026, 1, 5, 8, 0, tzinfo=datetime.timezone.utc)
    msgs, from_hits, word_hits = [], 0, 0
    ids = []
    for i in range(n):
        name, addr = _person(rng)
        if rng.random() < 0.01:
            name, addr = "Quentin Harbrook", "quentin.harbrook@example.org"
            from_hits += 1
        to_name, to_addr = "Bench User", USER
        date = base + datetime.timedelta(minutes=17 * i + rng.randint(0, 16))
        subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))).capitalize()
        if rng.random() < 0.3 and ids:
            subject = "Re: " + subject
        if rng.random() < 0.08:
            subject = "=?UTF-8?Q?Caf=C3=A9_" + subject.replace(" ", "_") + "?="
        mid = f"<{seed}.{i}.{rng.getrandbits(40):010x}@{addr.split('@')[1]}>"
        h = [
            f"Received: from mail.{addr.split('@')[1]} (mail.{addr.split('@')[1]} [192.0.2.{rng.randint(1, 254)}])",
            f"\tby relay.example.net with ESMTPS id {rng.getrandbits(48):012x}",
            f"\tfor <{USER}>; {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
            f"From: {_encoded(name)} <{addr}>",
            f"To: {to_name} <{to_addr}>",
        ]
        if rng.random() < 0.4:
            ccs = [_person(rng) for _ in range(rng.randint(1, 3))]
            h.append("Cc: " + ", ".join(f"{_encoded(a)} <{b}>" for a, b in ccs))
        h += [f"Subject: {subject}",
              f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
              f"Message-ID: {mid}"]
        if subject.startswith("Re: ") and ids:
            parent = rng.choice(ids[-50:])
            h += [f"In-Reply-To: {parent}", f"References: {parent}"]
        if rng.random() < 0.2:
            h.append(f"List-Id: <team-{rng.randint(1, 9)}.lists.example.org>")
        h += [f"X-Mailer: {rng.choice(MAILERS)}", "MIME-Version: 1.0"]
        ids.append(mid)
        word = SEARCH_WORD if rng.random() < 0.01 else None
        if word:
            word_hits += 1
        size = rng.randint(2000, 4200)
        kind = rng.random()
        if kind < 0.22:   # multipart/alternative: plain + html
            b = f"=_alt_{i}_{rng.getrandbits(32):08x}"
            text = _paragraphs(rng, size // 2, word)
            html = "<html><body><p>" + text.replace("\r\n\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n"
            h.append(f'Content-Type: multipart/alternative; boundary="{b}"')
            body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
                    f"{text}\r\n--{b}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
                    f"{html}\r\n--{b}--\r\n")
        elif kind < 0.32:  # multipart/mixed: text + small base64 attachment
            b = f"=_mix_{i}_{rng.getrandbits(32):08x}"
            text = _paragraphs(rng, size - 1400, word)
            blob = bytes(rng.getrandbits(8) for _ in range(900))
            b64 = base64.b64encode(blob).decode()
            b64 = "\r\n".join(b64[k:k + 76] for k in range(0, len(b64), 76))
            h.append(f'Content-Type: multipart/mixed; boundary="{b}"')
            body = (f"This is a multi-part message in MIME format.\r\n\r\n"
                    f"--{b}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\n"
                    f"--{b}\r\nContent-Type: application/pdf; name=\"report-{i}.pdf\"\r\n"
                    f"Content-Disposition: attachment; filename=\"report-{i}.pdf\"\r\n"
                    f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--{b}--\r\n")
        else:
            h.append("Content-Type: text/plain; charset=utf-8; format=flowed")
            h.append("Content-Transfer-Encoding: 8bit")
            body = _paragraphs(rng, size, word)
        msgs.append(("\r\n".join(h) + "\r\n\r\n" + body).encode())
    return msgs, from_hits, word_hits


