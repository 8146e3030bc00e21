"""Hand one email to an SMTP server: TLS verified, login when configured, errors as MailError.

Nothing here knows about digests; `digest.py` decides what to send and when to retry.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage

from .config import ENV_SMTP_PASSWORD, SmtpConfig
from .errors import MonitorError
from .text import is_loopback

log = logging.getLogger(__name__)

_BAD_ADDRESS_CHARS = set("\r\n<>,;\"'() \t")


class MailError(MonitorError):
    """The message was not accepted. `temporary` says whether the server or the network may
    accept it later (connection refused, 4xx) rather than needing an operator (5xx, TLS)."""

    def __init__(self, message: str, *, temporary: bool = True) -> None:
        super().__init__(message)
        self.temporary = temporary


def check_address(address: str) -> str:
    """A bare address (user@host) or ValueError; names and lists are not accepted."""
    local, _, domain = address.strip().rpartition("@")
    dotted = "." in domain.strip(".") or domain == "localhost"
    if not local or not dotted or any(c in _BAD_ADDRESS_CHARS for c in address.strip()):
        raise ValueError(f"{address!r} is not an email address (write user@example.org)")
    return address.strip()


def tls_context(smtp: SmtpConfig) -> ssl.SSLContext:
    """A verifying context: the system's CAs, or only those in smtp.ca_file."""
    try:
        return ssl.create_default_context(cafile=smtp.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise MailError(f"smtp.ca_file: cannot load {smtp.ca_file}: {exc}",
                        temporary=False) from None


def send(msg: EmailMessage, smtp: SmtpConfig, *, sender: str, recipients: Sequence[str],
         context: ssl.SSLContext | None = None) -> dict[str, tuple[int, bytes]]:
    """Send `msg`; return the recipients the server refused (others got it).

    Raises MailError when nobody got it.
    """
    if smtp.username and not smtp.password:
        raise MailError(f"smtp.username is set but {ENV_SMTP_PASSWORD} is empty",
                        temporary=False)
    if smtp.username and smtp.security == "none" and not is_loopback(smtp.host):
        raise MailError(f"smtp: refusing to send the password to {smtp.host} without TLS "
                        "(set security = \"starttls\" or \"ssl\")", temporary=False)
    where = f"{smtp.host}:{smtp.port}"
    if smtp.security in ("starttls", "ssl") and context is None:
        context = tls_context(smtp)
    try:
        if smtp.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout,
                                                    context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with client:
            client.ehlo()
            if smtp.security == "starttls":
                if not client.has_extn("starttls"):
                    raise MailError(f"SMTP server {where} does not offer STARTTLS "
                                    "(set smtp.security to \"ssl\" or \"none\")",
                                    temporary=False)
                client.starttls(context=context)
                client.ehlo()
            if smtp.username:
                client.login(smtp.username, smtp.password)
            refused = client.send_message(msg, from_addr=sender, to_addrs=list(recipients))
    except MailError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {_text(reply)}"
                           for rcpt, (code, reply) in exc.recipients.items())
        raise MailError(f"SMTP server {where} refused every recipient: {detail}",
                        temporary=all(400 <= c < 500 for c in codes)) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"SMTP server {where} refused the login as {smtp.username!r}: "
                        f"{exc.smtp_code} {_text(exc.smtp_error)}", temporary=False) from None
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"SMTP server {where} answered {exc.smtp_code} "
                        f"{_text(exc.smtp_error)}",
                        temporary=400 <= exc.smtp_code < 500) from None
    except smtplib.SMTPException as exc:
        raise MailError(f"SMTP conversation with {where} failed: {exc}") from None
    except ssl.SSLCertVerificationError as exc:
        raise MailError(f"TLS certificate of {where} not trusted: {exc.verify_message} "
                        "(smtp.ca_file can name the CA to trust)", temporary=False) from None
    except ssl.SSLError as exc:
        raise MailError(f"TLS with {where} failed: {exc.reason or exc}") from None
    except TimeoutError:
        raise MailError(f"SMTP server {where} timed out after {smtp.timeout:g}s") from None
    except OSError as exc:
        raise MailError(f"cannot reach SMTP server {where}: {exc.strerror or exc}") from None
    if refused:
        log.warning("SMTP server %s refused %d of %d recipients: %s", where, len(refused),
                    len(recipients), ", ".join(refused))
    return refused


def describe_refused(refused: dict[str, tuple[int, bytes]]) -> str:
    return "refused: " + "; ".join(f"{rcpt}: {code} {_text(reply)}"
                                   for rcpt, (code, reply) in refused.items())


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:300]
