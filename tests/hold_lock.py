"""Hold the lock of a file for a test: ``python hold_lock.py PATH`` takes the
:class:`~gluon_tricks.locks.FileLock` on PATH, prints "locked" and holds it until its stdin
closes (or it is killed), as a second writer's first writer would."""
import sys

from gluon_tricks.locks import FileLock

lock = FileLock(sys.argv[1], sys.argv[1], RuntimeError).acquire()
print("locked", flush=True)
sys.stdin.read()
lock.release()
