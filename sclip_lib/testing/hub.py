"""A local stand-in for the Hugging Face hub, on 127.0.0.1, for tests and for trying real mode offline.

It serves a folder laid out as ``models/<org>/<name>/<revision>/...`` and
``datasets/<org>/<name>/<revision>/...`` (a revision with a slash, ``refs/convert/parquet``, is stored as one
folder named ``refs%2Fconvert%2Fparquet``) and speaks the part of the hub's HTTP API that
``huggingface_hub``, ``open_clip`` and ``datasets`` use, so their real code paths run unchanged with
``HF_ENDPOINT=<url>``:

- ``HEAD``/``GET /<repo>/resolve/<rev>/<path>`` (``/datasets/<repo>/...`` for datasets): ``X-Repo-Commit``,
  ``ETag`` (the git blob id) and ``Content-Length``; large binary (LFS) files answer ``302`` with
  ``X-Linked-Etag`` (their SHA-256), ``X-Linked-Size`` and a ``Location`` on a second port that plays the
  CDN, as the hub does; byte ranges are honoured;
- ``GET /api/<models|datasets>/<repo>[/revision/<rev>]``: repo info with ``sha`` and ``siblings``;
- ``GET /api/.../tree/<rev>[/<path>]?recursive=&expand=`` and ``POST /api/.../paths-info/<rev>``;
- errors as the hub sends them: an unknown repo is ``401`` with ``X-Error-Code: RepoNotFound``, an unknown
  revision ``404 RevisionNotFound``, a missing file ``404 EntryNotFound`` (with ``X-Repo-Commit``).

Commit hashes are derived from each revision folder's listing, so any change of the files is a new commit.

By hand (builds the repos the project needs, then serves them until Ctrl-C)::

    python -m sclip_lib.testing --root /tmp/sclip-hub
    export HF_ENDPOINT=http://127.0.0.1:<port> HF_HOME=/tmp/sclip-hub-cache HF_HUB_OFFLINE=0
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import socket
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["LocalHub", "revision_folder", "hub_env", "reserve_endpoint", "LFS_SUFFIXES"]

# Files the hub keeps in LFS (its default .gitattributes); they are served through the "CDN" redirect.
LFS_SUFFIXES = (".parquet", ".safetensors", ".bin", ".pt", ".pth", ".arrow", ".zip", ".tar", ".gz", ".npz")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_DATE = "2024-01-01T00:00:00.000Z"


def revision_folder(revision: str) -> str:
    """The folder name a revision is stored under (``refs/convert/parquet`` -> ``refs%2Fconvert%2Fparquet``)."""
    return quote(revision, safe="")


def hub_env(endpoint: str, home: str | os.PathLike) -> dict[str, str]:
    """The environment that points huggingface_hub, datasets and open_clip at ``endpoint`` with a fresh cache."""
    return {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_ETAG_TIMEOUT": "30",
        "HF_HUB_DOWNLOAD_TIMEOUT": "60",
    }


def reserve_endpoint(home: str | os.PathLike) -> socket.socket:
    """Reserve a port on 127.0.0.1 and point this process's environment at it, with ``home`` as ``HF_HOME``.

    huggingface_hub and datasets read ``HF_ENDPOINT`` and ``HF_HOME`` once, when first imported, so call
    this before anything imports them (load this file by path, as tests/conftest.py does: importing
    ``sclip_lib`` imports them). The
    socket is bound but not listening: until ``LocalHub(root, sock=...)`` serves it, requests are refused,
    as on a machine without network.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    os.environ.update(hub_env(f"http://127.0.0.1:{sock.getsockname()[1]}", home))
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE"):  # they would override HF_HOME
        os.environ.pop(var, None)
    return sock


class _Files:
    """The repos under ``root``, with hashes computed once per file version."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._hashes: dict[tuple, tuple[str, str]] = {}
        self._blobs: dict[str, Path] = {}  # sha256 -> file, for the CDN
        self._lock = threading.Lock()

    def repo(self, kind: str, repo_id: str) -> Path | None:
        path = self.root / kind / repo_id
        return path if path.is_dir() and repo_id.count("/") == 1 else None

    def revision(self, repo: Path, kind: str, repo_id: str, rev: str) -> tuple[Path, str] | None:
        """The revision folder and its commit hash for a branch, tag or commit hash."""
        folder = repo / revision_folder(rev)
        if folder.is_dir():
            return folder, self.commit(folder, kind, repo_id)
        if _COMMIT.match(rev):
            for folder in repo.iterdir():
                if folder.is_dir() and self.commit(folder, kind, repo_id) == rev:
                    return folder, rev
        return None

    def commit(self, folder: Path, kind: str, repo_id: str) -> str:
        h = hashlib.sha1(f"{kind}/{repo_id}@{folder.name}".encode())
        for p in sorted(self.files(folder)):
            st = (folder / p).stat()
            h.update(f"\n{p}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()

    @staticmethod
    def files(folder: Path) -> list[str]:
        return [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]

    def hashes(self, path: Path) -> tuple[str, str]:
        """(git blob id, sha256) of a file; for an LFS file the blob id is that of its pointer file."""
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            if key in self._hashes:
                return self._hashes[key]
        sha256 = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha256.update(chunk)
        digest = sha256.hexdigest()
        if is_lfs(path):
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{digest}\nsize {st.st_size}\n".encode()
            blob = _git_blob(pointer)
        else:
            blob = _git_blob(path.read_bytes())
        with self._lock:
            self._hashes[key] = (blob, digest)
            self._blobs[digest] = path
        return blob, digest

    def blob(self, sha256: str) -> Path | None:
        with self._lock:
            return self._blobs.get(sha256)

    def entry(self, folder: Path, rel: str, expand: bool, commit: str) -> dict:
        """A tree / paths-info entry, as the hub's API returns it."""
        path = folder / rel
        if path.is_dir():
            out = {"type": "directory", "oid": hashlib.sha1(rel.encode()).hexdigest(), "size": 0, "path": rel}
        else:
            blob, sha256 = self.hashes(path)
            size = path.stat().st_size
            out = {"type": "file", "oid": blob, "size": size, "path": rel}
            if is_lfs(path):
                out["lfs"] = {"oid": sha256, "size": size, "pointerSize": 134}
        if expand:
            out["lastCommit"] = {"id": commit, "title": "local hub", "date": _DATE}
        return out


def is_lfs(path: Path) -> bool:
    return path.suffix in LFS_SUFFIXES


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _HubError(Exception):
    def __init__(self, status: int, code: str, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit


def _repo_not_found() -> _HubError:
    # The hub answers 401 (not 404) for a repo that does not exist or that an anonymous caller may not see.
    return _HubError(401, "RepoNotFound", "Repository not found")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: LocalHub  # set on the subclass made per server
    cdn: bool = False

    def log_message(self, fmt, *args):  # quiet by default; --verbose turns it on
        if self.hub.verbose:
            sys.stderr.write(f"[local hub{' cdn' if self.cdn else ''}] {fmt % args}\n")

    def do_HEAD(self):
        self._dispatch(head=True)

    def do_GET(self):
        self._dispatch(head=False)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self._dispatch(head=False, body=body)

    # -- routing --------------------------------------------------------------------------------
    def _dispatch(self, head: bool, body: str | None = None) -> None:
        url = urlsplit(self.path)
        parts = url.path.lstrip("/").split("/")  # still quoted: a revision may hold an encoded '/'
        try:
            self.hub.requests.append(f"{self.command} {url.path}")
            if self.cdn:
                return self._cdn(parts, head)
            if parts[0] == "api" and len(parts) >= 4 and parts[1] in ("models", "datasets"):
                return self._api(parts[1], parts[2:], parse_qs(url.query), body)
            kind = "datasets" if parts[0] == "datasets" else "models"
            rest = parts[1:] if kind == "datasets" else parts
            if len(rest) >= 5 and rest[2] == "resolve":
                return self._resolve(
                    kind,
                    f"{unquote(rest[0])}/{unquote(rest[1])}",
                    unquote(rest[3]),
                    "/".join(unquote(p) for p in rest[4:]),
                    head,
                )
            raise _HubError(404, "", "Sorry, we can't find the page you are looking for.")
        except _HubError as e:
            self._error(e, head)

    def _locate(self, kind: str, repo_id: str, rev: str) -> tuple[Path, str]:
        repo = self.hub.files.repo(kind, repo_id)
        if repo is None:
            raise _repo_not_found()
        found = self.hub.files.revision(repo, kind, repo_id, rev)
        if found is None:
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return found

    # -- resolve: file contents and their metadata -------------------------------------------------
    def _resolve(self, kind: str, repo_id: str, rev: str, rel: str, head: bool) -> None:
        folder, commit = self._locate(kind, repo_id, rev)
        path = folder / rel
        if not rel or not path.is_file() or ".." in Path(rel).parts:
            raise _HubError(404, "EntryNotFound", "Entry not found", commit)
        blob, sha256 = self.hub.files.hashes(path)
        size = path.stat().st_size
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if is_lfs(path):  # large files live on the CDN: the hub redirects there and names the blob
            headers.update(
                {
                    "X-Linked-Etag": f'"{sha256}"',
                    "X-Linked-Size": str(size),
                    "ETag": f'"{blob}"',
                    "Location": f"{self.hub.cdn_url}/blobs/{sha256}",
                }
            )
            return self._send(302, b"", headers, head)
        headers["ETag"] = f'"{blob}"'
        self._send_file(path, headers, head)

    def _cdn(self, parts: list[str], head: bool) -> None:
        path = self.hub.files.blob(parts[1]) if len(parts) == 2 and parts[0] == "blobs" else None
        if path is None or not path.is_file():
            return self._send(404, b"NoSuchKey", {"Content-Type": "text/plain"}, head)
        self._send_file(path, {"ETag": f'"{parts[1]}"', "Accept-Ranges": "bytes"}, head)

    def _send_file(self, path: Path, headers: dict, head: bool) -> None:
        size = path.stat().st_size
        start, end = 0, size - 1
        status = 200
        rng = re.match(r"bytes=(\d*)-(\d*)$", self.headers.get("Range", "").strip())
        if rng and size:
            a, b = rng.groups()
            if a:
                start, end = int(a), min(int(b), size - 1) if b else size - 1
            else:  # suffix range: the last N bytes
                start, end = max(size - int(b or 0), 0), size - 1
            if start > end or start >= size:
                return self._send(416, b"", {"Content-Range": f"bytes */{size}"}, head)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(end - start + 1, 0)
        self.send_response(status)
        for k, v in {"Content-Type": "application/octet-stream", **headers, "Content-Length": str(length)}.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        with open(path, "rb") as f:
            f.seek(start)
            left = length
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)

    # -- the JSON API ------------------------------------------------------------------------------
    def _api(self, kind: str, parts: list[str], query: dict, body: str | None) -> None:
        repo_id = f"{unquote(parts[0])}/{unquote(parts[1])}"
        action, rest = (parts[2], parts[3:]) if len(parts) > 2 else ("revision", ["main"])
        rev = unquote(rest[0]) if rest else "main"
        folder, commit = self._locate(kind, repo_id, rev)
        expand = _true(query.get("expand", ["false"])[-1])
        if action == "revision":
            files = sorted(_Files.files(folder))
            info = {
                "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": commit,
                "lastModified": _DATE,
                "createdAt": _DATE,
                "private": False,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "cardData": {},
                "siblings": [{"rfilename": f} for f in files],
            }
            if kind == "models":
                info["modelId"] = repo_id
            return self._json(info)
        if action == "tree":
            rel = "/".join(unquote(p) for p in rest[1:]).strip("/")
            base = folder / rel
            if not base.is_dir():
                raise _HubError(404, "EntryNotFound", f'{rel} does not exist on "{rev}"', commit)
            recursive = _true(query.get("recursive", ["false"])[-1])
            children = sorted(base.rglob("*") if recursive else base.iterdir())
            entries = [self.hub.files.entry(folder, c.relative_to(folder).as_posix(), expand, commit) for c in children]
            return self._json(entries)
        if action == "paths-info":
            form = parse_qs(body or "")
            expand = _true((form.get("expand") or ["false"])[-1])
            paths = [p.strip("/") for p in form.get("paths", [])]
            found = [p for p in paths if (folder / p).exists() and ".." not in Path(p).parts]
            return self._json([self.hub.files.entry(folder, p, expand, commit) for p in found])
        raise _HubError(404, "", "Sorry, we can't find the page you are looking for.")

    # -- responses ---------------------------------------------------------------------------------
    def _json(self, obj) -> None:
        self._send(200, json.dumps(obj).encode(), {"Content-Type": "application/json; charset=utf-8"}, False)

    def _error(self, e: _HubError, head: bool) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Error-Message": e.message}
        if e.code:
            headers["X-Error-Code"] = e.code
        if e.commit:
            headers["X-Repo-Commit"] = e.commit
        self._send(e.status, json.dumps({"error": e.message}).encode(), headers, head)

    def _send(self, status: int, body: bytes, headers: dict, head: bool) -> None:
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)


def _true(value: str) -> bool:
    return str(value).lower() in ("1", "true", "yes")


class LocalHub:
    """Serve ``root`` as a Hugging Face hub on 127.0.0.1; ``with LocalHub(root) as hub: hub.url``.

    ``sock``: an already bound (not yet listening) socket to serve on, e.g. one reserved before
    huggingface_hub was imported (it reads ``HF_ENDPOINT`` once, at import). ``requests`` records every
    request path, for tests.
    """

    def __init__(
        self, root: str | os.PathLike, *, port: int = 0, sock: socket.socket | None = None, verbose: bool = False
    ) -> None:
        self.files = _Files(Path(root))
        self.verbose = verbose
        self.requests: list[str] = []
        self._servers = [self._server(port, sock, cdn=False), self._server(0, None, cdn=True)]
        self._threads: list[threading.Thread] = []

    def _server(self, port: int, sock: socket.socket | None, cdn: bool) -> http.server.ThreadingHTTPServer:
        handler = type("Handler", (_Handler,), {"hub": self, "cdn": cdn})
        if sock is None:
            return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        server = http.server.ThreadingHTTPServer(sock.getsockname(), handler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.server_address = sock.getsockname()
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    def start(self) -> LocalHub:
        for server in self._servers:
            server.daemon_threads = True
            server.server_activate()  # listen(); a no-op for sockets already listening
            t = threading.Thread(target=server.serve_forever, name="local-hub", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
