"""Attachments in a private S3 bucket: checked before any AWS call, read through short links.

Files come from other users, so nothing about them is trusted: names are sanitized, types come
from an allow-list (no HTML, SVG or scripts that could run on a shared origin), and downloads
go through presigned GET URLs that force `Content-Disposition: attachment` and live at most
15 minutes. The worker uses `head` and `key_from_url` to check that an attachment message
names a real object in this bucket. Every refusal raises `AttachmentError` with a message
that can be shown to the user as it is.
"""

from __future__ import annotations

import io
import mimetypes
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from .errors import AttachmentError, ConfigError
from .protocol import ATTACHMENT_NAME_MAX_CHARS, ATTACHMENT_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
THUMBNAIL_MAX_BYTES = 5 * 1024 * 1024
PRESIGN_SECONDS = 900  # a leaked link dies within 15 minutes; longer links are refused
MAX_KEY_BYTES = 1024  # S3's own limit
MAX_NAME_BYTES = 255  # most file systems count bytes, not characters
MAX_EXTENSION_CHARS = 16
MAX_URL_CHARS = 4096
FALLBACK_TYPE = "application/octet-stream"
DEFAULT_NAME = "file"

# Media types a user may send, with their extensions (used to guess a missing type).
ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
    "text/plain": (".txt", ".log"),
    "text/csv": (".csv",),
    "text/markdown": (".md", ".markdown"),
    "application/json": (".json",),
    "application/zip": (".zip",),
    "application/msword": (".doc",),
    "application/vnd.ms-excel": (".xls",),
    "application/vnd.ms-powerpoint": (".ppt",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx",),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (".pptx",),
    "application/vnd.oasis.opendocument.text": (".odt",),
    "application/vnd.oasis.opendocument.spreadsheet": (".ods",),
    "application/vnd.oasis.opendocument.presentation": (".odp",),
    "audio/mpeg": (".mp3",),
    "video/mp4": (".mp4",),
}
IMAGE_TYPES = frozenset(t for t in ALLOWED_TYPES if t.startswith("image/"))
# Names a browser or desktop would render or run whatever type was declared for them.
_REFUSED = (
    "html htm xhtml shtml svg svgz xml xsl js mjs hta swf exe com bat cmd scr msi ps1 vbs jar"
)
REFUSED_EXTENSIONS = frozenset(f".{ext}" for ext in _REFUSED.split())

_MIME = mimetypes.MimeTypes()  # our own table: the global one varies with /etc/mime.types
for _type, _extensions in ALLOWED_TYPES.items():
    for _ext in _extensions:
        _MIME.add_type(_type, _ext)

_PLAIN = " ._-()+,=!#&'@[]{}~^"  # ASCII that needs no quoting in a header's filename
_RESERVED = re.compile(r'[<>:"|?*]')
_WINDOWS_DEVICE = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\.|$)", re.IGNORECASE)
_OBJECT_ID = re.compile(r"^[0-9A-Za-z_-]{8,64}$")
_AWS_S3_HOST = re.compile(r"^s3(?:[.-](?:dualstack\.)?[a-z0-9-]+)?\.amazonaws\.com$")
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})

Progress = Callable[[int, int], None]


def sanitize_name(name: str) -> str:
    """A file name safe in an S3 key, a Content-Disposition header and on any desktop.

    Drops directories, control and bidi characters (an RTL override can disguise `gpj.exe`
    as `exe.jpg`), reserved and leading dots; caps the length but keeps the extension.
    """
    text = re.split(r"[/\\]", str(name))[-1]
    text = "".join(
        " " if c.isspace() else c for c in text if c.isspace() or unicodedata.category(c)[0] != "C"
    )
    text = unicodedata.normalize("NFC", text)
    text = " ".join(_RESERVED.sub("", text).split()).lstrip(". ").rstrip(". ")
    if _WINDOWS_DEVICE.match(text):
        text = "_" + text
    return _truncate(text) or DEFAULT_NAME


def _truncate(text: str) -> str:
    if len(text) <= ATTACHMENT_NAME_MAX_CHARS and len(text.encode()) <= MAX_NAME_BYTES:
        return text
    stem, dot, ext = text.rpartition(".")
    if not dot or not stem or len(ext) > MAX_EXTENSION_CHARS:
        stem, ext = text, ""
    else:
        ext = "." + ext
    budget, kept = MAX_NAME_BYTES - len(ext.encode()), []
    for char in stem[: ATTACHMENT_NAME_MAX_CHARS - len(ext)]:
        budget -= len(char.encode())
        if budget < 0:
            break
        kept.append(char)
    return "".join(kept).rstrip(". ") + ext


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback and the RFC 5987 UTF-8 name modern browsers use."""
    safe = sanitize_name(name)
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", safe) if unicodedata.category(c) != "Mn"
    )
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in _PLAIN) else "_" for c in plain)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(safe, safe='')}"


def media_type(content_type: str) -> str:
    """`Text/Plain; charset=utf-8` -> `text/plain`: parameters never decide what is allowed."""
    return content_type.split(";", 1)[0].strip().lower()


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "S3 error")
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


@contextmanager
def _s3_errors(action: str) -> Iterator[None]:
    """Callers see one domain error, never botocore's, whatever S3 or the network did."""
    try:
        yield
    except (Boto3Error, BotoCoreError, ClientError) as exc:
        raise AttachmentError(f"could not {action}: {_reason(exc)}") from exc


def _is_missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _MISSING_CODES or status == 404


def _new_id() -> str:
    return secrets.token_hex(16)


class _Progress:
    """Turns boto3's per-chunk byte counts (from transfer threads) into rising (done, total)."""

    def __init__(self, total: int, callback: Progress | None) -> None:
        self._total, self._callback = total, callback
        self._done, self._reported = 0, -1
        self._lock = threading.Lock()

    def __call__(self, amount: int) -> None:
        with self._lock:  # retries report negative amounts; the bar never goes back
            self._done = min(max(self._done + amount, 0), self._total)
            self._report(self._done)

    def finish(self) -> None:
        with self._lock:
            self._report(self._total)

    def _report(self, done: int) -> None:
        if self._callback is not None and done > self._reported:
            self._reported = done
            self._callback(done, self._total)


class Attachments:
    """Upload, check and link attachments of one bucket through an injected s3v4 client."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        if not bucket:
            raise ConfigError("MESSENGER_BUCKET is not set: attachments need a bucket")
        if getattr(s3.meta.config, "signature_version", None) != "s3v4":
            raise ConfigError("the S3 client must use Config(signature_version='s3v4')")
        self._s3, self._bucket, self._new_id = s3, bucket, new_id
        self._endpoint: tuple[str, str, int | None, str] | None = None
        if endpoint_url:
            parts = urlsplit(endpoint_url)
            origin = (parts.scheme.lower(), parts.hostname or "", _port(parts.scheme, parts.port))
            self._endpoint = (*origin, parts.path.rstrip("/"))

    @property
    def bucket(self) -> str:
        return self._bucket

    @staticmethod
    def check(name: str, size: int, content_type: str) -> str:
        """Refuse what S3 must never see; returns the media type the object will carry."""
        safe = sanitize_name(name)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise AttachmentError(f"{safe}: the file size is not a number of bytes")
        if size == 0:
            raise AttachmentError(f"{safe} is empty: there is nothing to send")
        if size > MAX_ATTACHMENT_BYTES:
            limit = MAX_ATTACHMENT_BYTES // (1024 * 1024)
            raise AttachmentError(
                f"{safe} is {size / (1024 * 1024):.1f} MiB; attachments can be at most {limit} MiB"
            )
        extension = "." + safe.rpartition(".")[2].lower() if "." in safe else ""
        if extension in REFUSED_EXTENSIONS:
            raise AttachmentError(f"{safe}: {extension} files cannot be sent")
        media = media_type(content_type or "")
        if media in ("", FALLBACK_TYPE):
            media = _MIME.guess_type(safe, strict=False)[0] or ""
        if media not in ALLOWED_TYPES:
            raise AttachmentError(f"{safe}: files of type {media or 'unknown'} cannot be sent")
        return media

    @staticmethod
    def validate_key(key: str) -> str:
        """A key under attachments/ that no path trick can move elsewhere."""
        if not isinstance(key, str) or not key.startswith(ATTACHMENT_PREFIX):
            raise AttachmentError(f"attachment key must start with {ATTACHMENT_PREFIX}")
        if len(key.encode()) > MAX_KEY_BYTES:
            raise AttachmentError(f"attachment key is longer than {MAX_KEY_BYTES} bytes")
        segments = key[len(ATTACHMENT_PREFIX) :].split("/")
        if any(s in ("", ".", "..") for s in segments):
            raise AttachmentError("attachment key has an empty, '.' or '..' segment")
        if "\\" in key or any(unicodedata.category(c)[0] == "C" for c in key):
            raise AttachmentError("attachment key has a backslash or control character")
        return key

    def upload(
        self,
        name: str,
        data: bytes | bytearray | memoryview,
        content_type: str,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Store privately, encrypted, under a random key; returns the `message/add` body."""
        media = self.check(name, memoryview(data).nbytes, content_type)
        payload = bytes(data)
        safe = sanitize_name(name)
        object_id = self._new_id()
        if not isinstance(object_id, str) or not _OBJECT_ID.match(object_id):
            raise AttachmentError("could not make an attachment key")
        key = self.validate_key(f"{ATTACHMENT_PREFIX}{object_id}/{safe}")
        extra = {
            "ContentType": media,
            "ContentDisposition": content_disposition(safe),
            "ServerSideEncryption": "AES256",
        }
        report = _Progress(len(payload), progress)
        report(0)
        with _s3_errors(f"upload {safe}"):
            self._s3.upload_fileobj(
                io.BytesIO(payload), self._bucket, key, ExtraArgs=extra, Callback=report
            )
        report.finish()
        return {"key": key, "name": safe, "type": media, "size": len(payload)}

    def presigned_url(
        self, key: str, name: str, content_type: str, seconds: int = PRESIGN_SECONDS
    ) -> str:
        """A short-lived GET link that always downloads, never renders, the object."""
        key = self.validate_key(key)
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise AttachmentError("link lifetime must be a whole number of seconds")
        if not 1 <= seconds <= PRESIGN_SECONDS:
            raise AttachmentError(f"download links last 1-{PRESIGN_SECONDS} seconds, not {seconds}")
        media = media_type(content_type or "")
        params = {
            "Bucket": self._bucket,
            "Key": key,
            "ResponseContentDisposition": content_disposition(name),
            "ResponseContentType": media if media in ALLOWED_TYPES else FALLBACK_TYPE,
        }
        with _s3_errors("make a download link"):
            return self._s3.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=seconds, HttpMethod="GET"
            )

    def head(self, key: str) -> tuple[int, str] | None:
        """(size, content type), or None when no such object: how the worker checks a message."""
        key = self.validate_key(key)
        with _s3_errors("check the attachment"):
            try:
                found = self._s3.head_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if _is_missing(exc):
                    return None
                raise
        return int(found.get("ContentLength", 0)), found.get("ContentType") or FALLBACK_TYPE

    def fetch(self, key: str, max_bytes: int = THUMBNAIL_MAX_BYTES) -> bytes:
        """The object's bytes for an inline thumbnail; big objects are refused, never read."""
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise AttachmentError("max_bytes must be a positive number of bytes")
        found = self.head(key)
        if found is None:
            raise AttachmentError("the attachment no longer exists")
        if found[0] > max_bytes:
            raise AttachmentError("the attachment is too large to preview")
        with _s3_errors("read the attachment"):
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
            try:
                data = body.read(max_bytes + 1)  # the object may have grown since the head
            finally:
                body.close()
        if len(data) > max_bytes:
            raise AttachmentError("the attachment is too large to preview")
        return data

    def key_from_url(self, url: str) -> str | None:
        """The key a legacy `{url}` body names, only if the URL points into this bucket."""
        if not isinstance(url, str) or len(url) > MAX_URL_CHARS:
            return None
        try:
            parts = urlsplit(url.strip())
            port = _port(parts.scheme, parts.port)
        except ValueError:
            return None
        scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
        if scheme not in ("http", "https") or "@" in parts.netloc:
            return None
        bucket, path, raw = self._bucket.lower(), parts.path, None
        if self._endpoint and (scheme, host, port) == self._endpoint[:3]:
            raw = _after(path, f"{self._endpoint[3]}/{self._bucket}/")
        elif port == _port(scheme, None):
            if host.startswith(bucket + ".") and _AWS_S3_HOST.match(host[len(bucket) + 1 :]):
                raw = _after(path, "/")
            elif _AWS_S3_HOST.match(host):
                raw = _after(path, f"/{self._bucket}/")
        if not raw:
            return None
        try:
            return self.validate_key(unquote(raw))
        except AttachmentError:
            return None


def _port(scheme: str, port: int | None) -> int | None:
    return port if port is not None else {"http": 80, "https": 443}.get(scheme.lower())


def _after(path: str, prefix: str) -> str | None:
    return path[len(prefix) :] if path.startswith(prefix) else None
