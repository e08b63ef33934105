"""A lease on a workdir, so that two trainers never write one run's checkpoints and log.

WORKDIR/LOCK is a JSON file written by process 0: host, pid, start and heartbeat times (Unix
seconds), a random token and the command line. A daemon thread rewrites the heartbeat every
HEARTBEAT_SECONDS; the file is removed when the run ends (also on errors). A second trainer
finds the file and refuses to start, naming the holder, unless the lease is stale: its pid
is dead on this same host, or its heartbeat is older than STALE_SECONDS (a holder killed
on another machine). A stale lease is taken over with a message.

On a local disk taking the lease is atomic (O_CREAT | O_EXCL; a takeover renames the stale
file away first and backs off if another trainer won the race). On an object store (gs://
through tf.io.gfile) it is a read-check-write and NOT atomic: two trainers started within
the same second can both get it, but one started while another runs is refused.
"""

import itertools
import json
import os
import socket
import sys
import threading
import time
import uuid

import jax

from unified_io.common import checkpointing
from unified_io.common import distributed

HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 600.0
LOCK_NAME = "LOCK"
_CALLS = itertools.count()


class WorkdirLockedError(checkpointing.CheckpointError):
  """Another live trainer holds the workdir's lease; the message names it."""


def _gfile():
  import tensorflow as tf

  return tf.io.gfile


def _pid_alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # exists, owned by someone else
    return True
  return True


def read(path):
  """The lease record at `path`; None if there is none; {} if it is unreadable."""
  try:
    with _gfile().GFile(path) as f:
      record = json.loads(f.read())
    return record if isinstance(record, dict) else {}
  except ValueError:
    return {}
  except Exception as e:
    if not _gfile().exists(path):
      return None
    raise e


def describe(record):
  return (
    f"host {record.get('host')} pid {record.get('pid')}, started "
    f"{time.ctime(record.get('start_time', 0))}, heartbeat "
    f"{time.time() - record.get('heartbeat_time', 0):.0f} s ago"
  )


def stale_reason(record, path, stale_seconds=STALE_SECONDS):
  """Why the lease `record` may be taken over, or None while its holder may be alive."""
  if not record:  # a holder killed while writing it; wait as for a silent heartbeat
    age = time.time() - _gfile().stat(path).mtime_nsec / 1e9
    return f"unreadable for {age:.0f} s" if age > stale_seconds else None
  if record.get("host") == socket.gethostname() and not _pid_alive(int(record.get("pid", -1))):
    return f"its process {record.get('pid')} on this host is gone"
  age = time.time() - float(record.get("heartbeat_time", 0))
  if age > stale_seconds:
    return f"no heartbeat for {age:.0f} s"
  return None


class Lease:
  """`with Lease(workdir) as lease:` holds WORKDIR/LOCK for the block (module docstring).

  Every process enters it; process 0 takes the lease and all processes agree on the
  outcome (WorkdirLockedError everywhere if it is held). `lease.message` says whether a
  stale lease was taken over ("" if not), for the run's log.
  """

  def __init__(self, workdir, heartbeat_seconds=HEARTBEAT_SECONDS, stale_seconds=STALE_SECONDS):
    self.path = os.path.join(workdir, LOCK_NAME)
    self.workdir = workdir
    self.heartbeat_seconds, self.stale_seconds = heartbeat_seconds, stale_seconds
    self.remote = "://" in workdir
    self.message = ""
    self.lost = False
    self._record = None
    self._stop = threading.Event()
    self._thread = None

  def __enter__(self):
    self.acquire()
    return self

  def __exit__(self, *exc):
    self.release()

  # ---------------------------------------------------------------------------- taking

  def acquire(self):
    refusal = ""
    if jax.process_index() == 0:
      try:
        self._acquire_here()
      except WorkdirLockedError as e:
        refusal = str(e)
      except Exception as e:
        # Said to the other processes too, which would otherwise wait for process 0.
        refusal = f"Could not take the lease {self.path}: {type(e).__name__}: {e}"
    if jax.process_count() > 1:
      key = f"uio_workdir_lock/{next(_CALLS)}"  # the same sequence on every process
      refusal = distributed.all_gather_bytes(key, refusal.encode())[0].decode()
    if refusal:
      raise WorkdirLockedError(refusal)
    if jax.process_index() == 0:
      self._thread = threading.Thread(target=self._heartbeat, daemon=True, name="uio-workdir-lease")
      self._thread.start()

  def _acquire_here(self):
    _gfile().makedirs(self.workdir)
    now = time.time()
    self._record = {
      "host": socket.gethostname(),
      "pid": os.getpid(),
      "start_time": now,
      "heartbeat_time": now,
      "token": uuid.uuid4().hex,
      "command": " ".join(sys.argv)[:1000],
    }
    for _ in range(5):  # a takeover is followed by another create
      if self._create():
        return
      holder = read(self.path)
      if holder is None:  # released in between: try again
        continue
      why = stale_reason(holder, self.path, self.stale_seconds)
      if why is None:
        raise WorkdirLockedError(
          f"{self.workdir} is in use by another trainer ({describe(holder)}; {self.path}). "
          f"Wait for it to finish or stop it; if it is dead, delete {self.path}."
        )
      if not self._remove_stale(holder):
        continue
      self.message = (
        (f"Took over the stale lease {self.path} ({why}; it was {describe(holder)})")
        if holder
        else f"Took over {self.path} ({why})"
      )
    raise WorkdirLockedError(
      f"Could not take the lease {self.path}: other trainers are taking it at the same time."
    )

  def _create(self):
    """Writes our record if there is no lease file; whether we now hold it."""
    text = json.dumps(self._record, indent=1)
    if self.remote:
      if _gfile().exists(self.path):
        return False
      with _gfile().GFile(self.path, "w") as f:
        f.write(text)
      return (read(self.path) or {}).get("token") == self._record["token"]
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, "w") as f:
      f.write(text)
    return True

  def _remove_stale(self, holder):
    """Removes the stale lease `holder`; False if a newer one replaced it meanwhile."""
    if self.remote:
      _gfile().remove(self.path)
      return True
    aside = f"{self.path}.stale.{self._record['token']}"
    try:
      os.rename(self.path, aside)  # atomic: of two trainers taking over, one gets the file
    except FileNotFoundError:
      return False
    if read(aside) != holder:  # we moved a lease taken just now by someone else: put it back
      try:
        os.link(aside, self.path)
      except FileExistsError:
        pass
      os.remove(aside)
      return False
    os.remove(aside)
    return True

  # ------------------------------------------------------------------------- holding

  def _write(self):
    text = json.dumps(self._record, indent=1)
    if self.remote:
      with _gfile().GFile(self.path, "w") as f:
        f.write(text)
      return
    tmp = f"{self.path}.{self._record['token']}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text)
    os.replace(tmp, self.path)  # readers never see a half-written lease

  def _ours(self):
    record = read(self.path)
    return bool(record) and record.get("token") == self._record["token"]

  def _heartbeat(self):
    while not self._stop.wait(self.heartbeat_seconds):
      try:
        if not self._ours():
          self.lost = True
          print(
            f"Warning: lost the lease {self.path} to another trainer ("
            f"{describe(read(self.path) or {})}); this run no longer holds {self.workdir}",
            file=sys.stderr,
            flush=True,
          )
          return
        self._record["heartbeat_time"] = time.time()
        self._write()
      except Exception as e:
        print(f"Warning: could not refresh the lease {self.path}: {e}", file=sys.stderr, flush=True)

  def release(self):
    """Stops the heartbeat and removes the lease if it is still ours (process 0)."""
    if self._thread is None:
      return
    self._stop.set()
    self._thread.join()
    self._thread = None
    try:
      if self._ours():
        _gfile().remove(self.path)
    except Exception as e:
      print(f"Warning: could not remove the lease {self.path}: {e}", file=sys.stderr, flush=True)
