"""The outbox's email provider: SMTP (smtplib). `smtp://host:port` (plain, for a relay on
the same network or the local stack's server), `smtp+starttls://user:pass@host:587`, or
`smtps://user:pass@host:465`. Each connection has the deadline given. A 4xx answer or a lost
connection is tried again later; a 5xx answer to the recipient is permanent. (The audit
channel and the contacts are identity's: billing.adapters.mesh_clients.)
"""

from __future__ import annotations

import smtplib
import socket
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import unquote, urlsplit

from billing.domain.notifications import Contact, DeliveryFailed, Notification

_SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class SmtpMailer:
    needs_contact = True

    def __init__(self, url: str, sender: str, timeout_s: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError(f"GAITPAY_SMTP_URL must be smtp://, smtp+starttls:// or smtps://host[:port], got {url!r}")
        self._scheme, self._host = parts.scheme, parts.hostname
        self._port = parts.port or _SCHEMES[parts.scheme]
        self._user, self._password = unquote(parts.username or ""), unquote(parts.password or "")
        self._sender, self._timeout = sender, timeout_s

    def message(self, notification: Notification, contact: Contact) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = formataddr((contact.display_name, contact.email))
        mail["Subject"] = notification.subject
        # Stable per notification: a resend after a crash is the same message to the reader.
        mail["Message-ID"] = make_msgid(idstring=f"notification-{notification.notification_id}",
                                        domain="gaitpay.invalid")
        mail.set_content("Your receipt is attached as HTML; open this mail in an HTML-capable client to see it.")
        mail.add_alternative(notification.body, subtype="html")
        return mail

    def send(self, notification: Notification, contact: Contact | None) -> None:
        if contact is None or not contact.email:
            raise DeliveryFailed("the customer gave no email address", permanent=True)
        mail = self.message(notification, contact)
        try:
            smtp_class = smtplib.SMTP_SSL if self._scheme == "smtps" else smtplib.SMTP
            with smtp_class(self._host, self._port, timeout=self._timeout) as smtp:
                if self._scheme == "smtp+starttls":
                    smtp.starttls()
                if self._user:
                    smtp.login(self._user, self._password)
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code = min(c for c, _ in exc.recipients.values())
            raise DeliveryFailed(f"recipient refused ({code})", permanent=code >= 500) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:300],
                                 permanent=exc.smtp_code >= 500) from None
        except (smtplib.SMTPException, OSError, socket.timeout) as exc:
            raise DeliveryFailed(f"SMTP server unreachable: {exc}") from None
