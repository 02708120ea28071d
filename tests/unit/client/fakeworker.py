"""A scripted stand-in for the worker: answers requests on an InMemoryTransport as the
contract says, so Session tests exercise real queue round trips without the real worker.

Scripting: `fail[method] = (status, message)` refuses register/login; `silent` holds
methods left unanswered; `history` is pushed after login; `users` answers searches;
`conversations[userID]` answers selectSearchUser/history. Every request it took is kept in
`requests`.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from messenger_widgets.memory import InMemoryTransport
from messenger_widgets.protocol import Push, Reply, Request, now_iso

ME = {"userID": "u-ada", "name": "Ada Lovelace"}
TOKEN = "token-1"


def message(
    order: int,
    user_id: str = "u-bob",
    *,
    name: str = "Bob Babbage",
    to: str | None = None,
    body: Any = "hi",
    read: bool = False,
    message_id: str | None = None,
    date_time: str | None = None,
) -> dict[str, Any]:
    """A wire message as the session sees it; `to` set means the session's user sent it."""
    return {
        "messageID": message_id or f"m-{user_id}-{order}",
        "body": body,
        "userID": user_id,
        "name": name,
        "to": to,
        "dateTime": date_time or f"2026-01-01T00:00:{order % 60:02d}.000Z",
        "isMessageRead": read,
        "order": order,
    }


def group_object(
    group_id: str, name: str, members: list[dict[str, Any]], created_by: str = ME["userID"]
) -> dict[str, Any]:
    """The body of a `groupCreated` push (v1.1); members are {userID, name, readUpTo?}."""
    return {
        "groupID": group_id,
        "name": name,
        "members": [{"readUpTo": 0, **m} for m in members],
        "createdBy": created_by,
        "createdAt": "2026-01-01T00:00:00.000Z",
    }


class FakeWorker:
    def __init__(self, transport: InMemoryTransport, request_url: str, response_url: str) -> None:
        self.transport, self.request_url, self.response_url = transport, request_url, response_url
        self.requests: list[Request] = []
        self.fail: dict[str, tuple[int, str]] = {}
        self.silent: set[str] = set()
        self.history: list[dict[str, Any]] = []
        self.users: list[dict[str, Any]] = []
        self.conversations: dict[str, list[dict[str, Any]]] = {}  # by userID or groupID
        self.groups: dict[str, dict[str, Any]] = {}
        self.session_url: str | None = None
        self._orders: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-worker", daemon=True)

    def start(self) -> FakeWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def push(self, action: str, body: Any, status: int = 200) -> None:
        assert self.session_url, "nobody is logged in"
        self.transport.send(self.session_url, Push(action, body, status).encode())

    def wait_for(self, method: str, timeout: float = 3.0) -> Request:
        """The first request with this method, waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.requests if r.method == method]
            if found:
                return found[0]
            time.sleep(0.01)
        raise AssertionError(f"no {method} request within {timeout} s; got {self.requests}")

    def _run(self) -> None:
        while not self._stop.is_set():
            envelopes = self.transport.receive(self.request_url, 10, 0)
            for envelope in envelopes:
                request = Request.decode(envelope)
                self.requests.append(request)
                if request.method not in self.silent:
                    self._handle(request)
            if envelopes:
                self.transport.delete_batch(self.request_url, [e.receipt_handle for e in envelopes])
            else:
                time.sleep(0.005)

    def _reply(self, request: Request, status: int, body: dict[str, Any]) -> None:
        self.transport.send(self.response_url, Reply(request.message_id, status, body).encode())

    def _handle(self, request: Request) -> None:
        body = request.body
        if request.method in self.fail:
            status, text = self.fail[request.method]
            self._reply(request, status, {"message": text})
        elif request.method == "register":
            self._reply(request, 200, {"message": "Account created."})
        elif request.method == "login":
            self.session_url = self.transport.create_queue(f"messenger-session-{uuid.uuid4().hex}")
            reply = {
                "message": "Logged in.",
                "token": TOKEN,
                "darkModeState": True,
                "url": self.session_url,
            }
            self._reply(request, 200, {**reply, **ME})
            pushes = [Push("message", m).encode() for m in self.history]
            self.transport.send_batch(
                self.session_url, [*pushes, Push("historyEnd", {"count": len(pushes)}).encode()]
            )
        elif request.token != TOKEN:
            raise AssertionError(f"request without the login token: {request}")
        elif request.method == "logout":
            assert self.session_url
            self.transport.delete_queue(self.session_url)
        elif request.method == "searchUser":
            found = [u for u in self.users if body["name"].casefold() in u["name"].casefold()]
            self.push("searchUser", {"listOfUsers": [{**u, "unreadMessages": -1} for u in found]})
        elif request.method == "add":
            to = {k: body[k] for k in ("userID", "groupID") if k in body}  # a group: groupID
            key = next(iter(to.values()))
            order = self._orders[key] = self._orders.get(key, 0) + 1
            sent = {
                "clientMessageId": body["clientMessageId"],
                "messageID": f"m-sent-{key}-{order}",
            }
            self.push("sent", {**sent, "order": order, "dateTime": now_iso(), **to})
        elif request.method == "selectSearchUser":
            key = body.get("userID") or body["groupID"]
            self.push("selectSearchUser", self.conversations.get(key, [])[-20:])
        elif request.method == "history":
            named = {k: body[k] for k in ("userID", "groupID") if k in body}
            held = self.conversations.get(next(iter(named.values())), [])
            older = [m for m in held if m["order"] < body.get("beforeOrder", 2**53)]
            page = older[-body.get("limit", 50) :]
            self.push("history", {**named, "messages": page, "hasMore": len(older) > len(page)})
        elif request.method == "create":  # group/create (v1.1)
            names = {u["userID"]: u["name"] for u in self.users}
            members = [ME, *({"userID": m, "name": names.get(m, m)} for m in body["memberIDs"])]
            group = group_object(f"g-{len(self.groups) + 1}", body["name"], members)
            self.groups[group["groupID"]] = group
            self.push("groupCreated", {**group, "clientGroupId": body.get("clientGroupId")})
        elif request.method == "leave":  # group/leave (v1.1)
            group = self.groups.get(body["groupID"]) or group_object(body["groupID"], "", [ME])
            members = [m for m in group["members"] if m["userID"] != ME["userID"]]
            self.push("groupUpdated", {**group, "members": members, "leftUserID": ME["userID"]})
