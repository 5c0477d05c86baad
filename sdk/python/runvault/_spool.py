"""The durable offline spool of one run: ROOT/<run_id>/.

    spool.jsonl  one JSON record per line, appended and fsync'd:
                 {"key": "<client_id>/<seq>", "method": "POST",
                  "path": "/api/v2/runs/<id>/log-batch", "body": {...},
                  "points": N}
                 (an artifact keeps its bytes as "body_b64" with
                 "content_type" instead of "body")
    spool.pos    byte offset of the first record not yet acknowledged
    meta.json    run id, project, experiment, the client ids that wrote here
    lock         flock'd by the Run that owns the spool

Records are replayed strictly in file order with their own keys; one is
passed over (pos advanced) only after the server acknowledged it or refused
it for good, so a replay interrupted at any point sends a record again with
the same key and the server applies it once. When every record is
acknowledged the file is truncated.
"""

import base64
import fcntl
import json
import os

from ._errors import SpoolBusyError

DEFAULT_ROOT = os.path.join("~", ".runvault", "spool")


def spool_root(spool_dir=None):
    root = spool_dir or os.environ.get("RUNVAULT_SPOOL_DIR") or DEFAULT_ROOT
    return os.path.abspath(os.path.expanduser(root))


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_record(key, method, path, body, points=0,
                  content_type="application/json"):
    """A spool line (bytes, newline-terminated). body: a JSON-able object
    for JSON requests, bytes for a raw upload."""
    rec = {"key": key, "method": method, "path": path, "points": points}
    if isinstance(body, (bytes, bytearray)):
        rec["body_b64"] = base64.b64encode(bytes(body)).decode("ascii")
        rec["content_type"] = content_type
    else:
        rec["body"] = body
    return (json.dumps(rec, separators=(",", ":"), ensure_ascii=False)
            + "\n").encode("utf-8")


def record_request(rec):
    """(method, path, body bytes, content type) of a decoded record."""
    if "body_b64" in rec:
        return (rec["method"], rec["path"], base64.b64decode(rec["body_b64"]),
                rec.get("content_type", "application/octet-stream"))
    body = json.dumps(rec["body"], separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")
    return rec["method"], rec["path"], body, "application/json"


class Spool:
    def __init__(self, root, run_id):
        self.dir = os.path.join(root, run_id)
        self.run_id = run_id
        self._data_path = os.path.join(self.dir, "spool.jsonl")
        self._pos_path = os.path.join(self.dir, "spool.pos")
        self._meta_path = os.path.join(self.dir, "meta.json")
        self._lock_fd = None
        self._wfile = None
        self._rfile = None
        self._pos_fd = None
        self.pos = 0
        self.size = 0
        self._head = None  # (record, line length) cached

    # -- open/close ---------------------------------------------------------

    def open(self):
        created = not os.path.isdir(self.dir)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        if created:
            _fsync_dir(os.path.dirname(self.dir))
        fd = os.open(os.path.join(self.dir, "lock"),
                     os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolBusyError("the spool %s is held by another Run"
                                 % self.dir) from None
        self._lock_fd = fd
        self._wfile = open(self._data_path, "ab")
        self._rfile = open(self._data_path, "rb")
        self._pos_fd = os.open(self._pos_path, os.O_RDWR | os.O_CREAT, 0o600)
        self._recover()
        return self

    def _recover(self):
        size = os.fstat(self._wfile.fileno()).st_size
        if size > 0:
            # Drop a torn last line (a crash in the middle of an append).
            self._rfile.seek(max(0, size - 1))
            if self._rfile.read(1) != b"\n":
                self._rfile.seek(0)
                data = self._rfile.read()
                keep = data.rfind(b"\n") + 1
                os.truncate(self._data_path, keep)
                size = keep
        raw = os.pread(self._pos_fd, 64, 0).strip()
        try:
            pos = int(raw) if raw else 0
        except ValueError:
            pos = 0
        if pos > size or pos < 0:
            pos = 0
        if pos > 0:
            # pos must sit at a line start.
            self._rfile.seek(pos - 1)
            if self._rfile.read(1) != b"\n":
                pos = 0
        self.pos, self.size = pos, size
        self._head = None

    def close(self, remove_if_empty=True):
        if self._lock_fd is None:
            return
        empty = self.pos >= self.size
        for f in (self._wfile, self._rfile):
            try:
                f.close()
            except Exception:
                pass
        os.close(self._pos_fd)
        if remove_if_empty and empty:
            for p in (self._data_path, self._pos_path, self._meta_path,
                      os.path.join(self.dir, "lock")):
                try:
                    os.unlink(p)
                except OSError:
                    pass
            try:
                os.rmdir(self.dir)
            except OSError:
                pass
        os.close(self._lock_fd)
        self._lock_fd = None

    # -- meta ---------------------------------------------------------------

    def read_meta(self):
        try:
            with open(self._meta_path, "rb") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def write_meta(self, meta):
        tmp = self._meta_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._meta_path)
        _fsync_dir(self.dir)

    # -- records ------------------------------------------------------------

    def pending(self):
        return self.pos < self.size

    def append(self, lines):
        """Append encoded records (bytes lines) and fsync."""
        if not lines:
            return
        first = self.size == 0
        data = b"".join(lines)
        self._wfile.write(data)
        self._wfile.flush()
        os.fsync(self._wfile.fileno())
        if first:
            _fsync_dir(self.dir)
        self.size += len(data)

    def head(self):
        """The first unacknowledged record (decoded dict) or None."""
        if self.pos >= self.size:
            return None
        if self._head is None:
            self._rfile.seek(self.pos)
            line = self._rfile.readline()
            if not line.endswith(b"\n"):
                return None
            try:
                rec = json.loads(line)
            except ValueError:
                rec = {"corrupt": True}
            self._head = (rec, len(line))
        return self._head[0]

    def advance(self):
        """Pass over the head record (acknowledged or refused for good)."""
        if self._head is None and self.head() is None:
            return
        self.pos += self._head[1]
        self._head = None
        if self.pos >= self.size:
            # Everything acknowledged: empty the file, then the offset.
            self._wfile.truncate(0)
            self._wfile.flush()
            os.fsync(self._wfile.fileno())
            self.pos = self.size = 0
        os.pwrite(self._pos_fd, b"%020d\n" % self.pos, 0)
        os.fsync(self._pos_fd)

    def head_key(self):
        rec = self.head()
        return rec.get("key") if rec else None
