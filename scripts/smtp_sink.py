"""The SMTP server of estore's e-mail tests: aiosmtpd's Maildir handler, plus
recipients it refuses on purpose, so the tests see how the host reports each kind
of refusal.

    python -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_sink.Sink MAILDIR

Recipients whose local part starts with
  - ``refused`` get ``550 5.1.1`` (permanent: the component's ``invalid``);
  - ``later`` get ``451 4.3.0`` (transient: the component's ``unavailable``).
Every other message is stored whole in MAILDIR (``new/``, written atomically), with
aiosmtpd's ``X-MailFrom`` and ``X-RcptTo`` headers recording the envelope.
"""

from aiosmtpd.handlers import Mailbox


class Sink(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("refused"):
            return f"550 5.1.1 <{address}>: no such mailbox"
        if local.startswith("later"):
            return f"451 4.3.0 <{address}>: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"
