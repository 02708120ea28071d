"""A client written only from the wire contract, with raw boto3: what an outside author writes.

Integration tests speak through this, never through the package's own client, so they check
the worker against the contract rather than against our own reading of it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Push:
    action: str
    status: int
    body: Any


@dataclass
class Login:
    token: str
    url: str
    user_id: str
    name: str
    dark: bool
    history: list[Push] = field(default_factory=list)


class RawClient:
    def __init__(self, sqs: Any, request_url: str, response_url: str) -> None:
        self.sqs = sqs
        self.request_url = request_url
        self.response_url = response_url

    def send(
        self,
        controller: str,
        method: str,
        body: Any,
        token: str | None = None,
        raw_body: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> str:
        attrs = {"controller": controller, "method": method, **(extra or {})}
        if token:
            attrs["token"] = token
        response = self.sqs.send_message(
            QueueUrl=self.request_url,
            MessageBody=raw_body if raw_body is not None else json.dumps(body),
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attrs.items() if v
            },
        )
        return str(response["MessageId"])

    def reply(self, res_to: str, timeout: float = 30) -> tuple[int, dict[str, Any]]:
        """Wait for the reply to one request; release every other client's reply at once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.sqs.receive_message(
                QueueUrl=self.response_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            found: tuple[int, dict[str, Any]] | None = None
            for m in got:
                attrs = {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
                if attrs.get("resTo") == res_to:
                    self.sqs.delete_message(
                        QueueUrl=self.response_url, ReceiptHandle=m["ReceiptHandle"]
                    )
                    found = int(attrs["statusCode"]), json.loads(m["Body"])
                    continue
                self.sqs.change_message_visibility(
                    QueueUrl=self.response_url,
                    ReceiptHandle=m["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            if found is not None:
                return found
        raise TimeoutError(f"no reply to {res_to}")

    def register(
        self, first: str, last: str, email: str, password: str = "correct horse", **extra: Any
    ) -> tuple[int, dict[str, Any]]:
        body = {"fName": first, "lName": last, "email": email, "password": password, **extra}
        return self.reply(self.send("user", "register", body))

    def login(self, email: str, password: str = "correct horse", history: bool = True) -> Login:
        status, body = self.reply(
            self.send("user", "login", {"email": email, "password": password})
        )
        assert status == 200, body
        login = Login(
            body["token"], body["url"], body["userID"], body["name"], body["darkModeState"]
        )
        if history:
            login.history = self.pushes_until(
                login.url, lambda ps: any(p.action == "historyEnd" for p in ps)
            )
        return login

    def user(self, first: str, last: str | None = None, password: str = "correct horse") -> Login:
        """Register a fresh user with a unique email and log them in."""
        email = f"{first.lower()}.{uuid.uuid4().hex[:8]}@example.com"
        status, body = self.register(first, last or "Tester", email, password)
        assert status == 200, body
        login = self.login(email, password)
        login.email = email  # type: ignore[attr-defined]
        return login

    def pushes(self, url: str, wait: int = 1) -> list[Push]:
        got = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if got:
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ],
            )
        out = []
        for m in got:
            attrs = {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
            out.append(Push(attrs["action"], int(attrs["statusCode"]), json.loads(m["Body"])))
        return out

    def pushes_until(self, url: str, done: Any, timeout: float = 30) -> list[Push]:
        collected: list[Push] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            collected.extend(self.pushes(url))
            if done(collected):
                return collected
        raise TimeoutError(f"condition not met; got {[p.action for p in collected]}")

    def expect(self, url: str, action: str, timeout: float = 30) -> Push:
        pushes = self.pushes_until(url, lambda ps: any(p.action == action for p in ps), timeout)
        return next(p for p in pushes if p.action == action)

    def quiet(self, url: str, seconds: float = 2) -> list[Push]:
        """Everything that arrives within `seconds` (to prove something was NOT sent)."""
        collected: list[Push] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            collected.extend(self.pushes(url))
        return collected

    def depth(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def settle(self, timeout: float = 30) -> None:
        """Wait until the worker has taken every request off the requests queue."""
        deadline = time.monotonic() + timeout
        while self.depth(self.request_url):
            if time.monotonic() > deadline:
                raise TimeoutError("requests queue did not drain")
            time.sleep(0.1)

    def queue_exists(self, url: str) -> bool:
        try:
            self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            return True
        except self.sqs.exceptions.QueueDoesNotExist:
            return False
        except Exception as exc:  # moto answers with the AWS.SimpleQueueService code
            if "NonExistentQueue" in str(exc) or "does not exist" in str(exc):
                return False
            raise
