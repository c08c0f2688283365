"""One writer per output: an exclusive lock on a file beside what is written (a run folder's
``.lock``, an export's ``OUT.lock``, a pack's ``PREFIX.lock``). The lock is ``flock``'s, so
the operating system releases it when its process dies: ``kill -9`` leaves no stale lock.
The file holds who took it (host, pid, since when), for the message a second writer gets.

    with FileLock("runs/a/.lock", "runs/a", RunError):
        ...   # a second process here raises RunError naming this one
"""
import errno
import fcntl
import os
import socket
import time


class FileLock:
    """An exclusive lock on the file ``path`` for ``what`` (named in messages), held from
    :meth:`acquire` to :meth:`release` (or a ``with`` block). ``error`` is the exception
    class (one-line message) raised when another process holds it, or when ``path`` cannot
    be created (the output is not writable). The file is removed on release."""

    def __init__(self, path, what, error):
        self.path, self.what, self.error = path, what, error
        self._fd = None

    def acquire(self):
        while self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise self.error(f"{self.what}: cannot write there ({e.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _read(fd)
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise self.error(f"{self.path}: cannot lock ({e.strerror})") from None
                raise self.error(f"{self.what} is in use by {holder or 'another process'} "
                                 f"(lock {self.path}); wait for it to finish or stop it") \
                    from None
            if _same_file(fd, self.path):
                self._fd = fd
            else:  # its holder removed it between our open and our lock: take a new one
                os.close(fd)
        try:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, (f"pid {os.getpid()} on {socket.gethostname()} since "
                                f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n").encode())
        except OSError as e:
            self.release()
            raise self.error(f"{self.what}: cannot write there ({e.strerror})") from None
        return self

    def release(self):
        if self._fd is None:
            return
        # removed while still held, so that a process waiting for it never locks a file
        # that is gone (acquire checks that the file it locked is the one at the path)
        try:
            os.remove(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read(fd):
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def _same_file(fd, path):
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def output_lock(path, error):
    """The :class:`FileLock` ``path.lock`` of the output file ``path``, after making its
    folder: taken before the work, it says that no other process writes ``path`` and that
    its folder is writable. ``error`` as for :class:`FileLock`."""
    directory = os.path.dirname(path)
    try:
        if directory:
            os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise error(f"{path}: cannot write there ({e.strerror})") from None
    return FileLock(path + ".lock", path, error)
