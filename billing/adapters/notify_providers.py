"""The outbox's providers and the contacts they need.

- Email over SMTP (smtplib): `smtp://host:port` (plain, for a relay on the same network or
  the local stack's server), `smtp+starttls://user:pass@host:587`, or
  `smtps://user:pass@host:465`. Each connection has the deadline given. A 4xx answer or a
  lost connection is tried again later; a 5xx answer to the recipient is permanent.
- Identifications made at the edge to identity's audit trail (AppendAuditEvent).
- Contacts from identity's GetContact, as billing, with a deadline.
"""

from __future__ import annotations

import json
import smtplib
import socket
import uuid
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import unquote, urlsplit

import grpc

from billing.domain.notifications import Contact, DeliveryFailed, Notification
from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc

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


class IdentityAudit:
    """The audit channel: AppendAuditEvent as billing, with a request id derived from the
    notification, so a resend (a crash before the commit) is appended once by identity."""

    needs_contact = False
    _NAMESPACE = uuid.UUID("a3f0c1e2-5b6d-4e7f-8a9b-0c1d2e3f4a5b")

    def __init__(self, channel: grpc.Channel, timeout_s: float) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)
        self._timeout = timeout_s

    def send(self, notification: Notification, contact: Contact | None) -> None:
        request = identity_pb2.AppendAuditEventRequest(
            request_id=str(uuid.uuid5(self._NAMESPACE, f"billing-outbox/{notification.notification_id}")),
            action=notification.subject, customer_id=notification.customer_id or "",
            attributes=json.loads(notification.body))
        try:
            self._stub.AppendAuditEvent(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            permanent = code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS)
            raise DeliveryFailed(f"identity refused the audit record: {code.name}", permanent=permanent) from None


class IdentityContacts:
    def __init__(self, channel: grpc.Channel, timeout_s: float) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)
        self._timeout = timeout_s

    def contact(self, customer_id: str, purpose: str) -> Contact:
        try:
            c = self._stub.GetContact(identity_pb2.GetContactRequest(customer_id=customer_id, purpose=purpose),
                                      timeout=self._timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                raise DeliveryFailed(f"customer cannot be reached: {exc.details()}", permanent=True) from None
            raise DeliveryFailed(f"identity unavailable: {code.name}") from None
        return Contact(c.display_name, c.email, c.phone_e164)
