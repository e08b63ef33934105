"""A run's log: console + WORKDIR/log.txt (+ TensorBoard), and its saved config."""

import os
import time

import jax

# Object stores (gs://...) cannot append, so there the whole file is rewritten, at most
# this often (and on close): a line per step would otherwise cost a quadratic upload.
REMOTE_REWRITE_SECONDS = 30.0


class Log:
  """Console + WORKDIR/log.txt (+ TensorBoard) on process 0 only; WORKDIR may be gs://.

  On a local disk every line is appended as it comes; on an object store the file is
  rewritten at most every REMOTE_REWRITE_SECONDS and by `flush`/`close`.
  """

  def __init__(self, workdir, tensorboard=True):
    import tensorflow as tf

    self.tf = tf
    self.main = jax.process_index() == 0
    self.path = os.path.join(workdir, "log.txt")
    self.remote = "://" in self.path
    self.lines, self.unwritten, self.last_write = [], False, 0.0
    if self.main:
      tf.io.gfile.makedirs(workdir)
      if self.remote and tf.io.gfile.exists(self.path):
        with tf.io.gfile.GFile(self.path) as f:
          self.lines = f.read().splitlines()
    self.writer = None
    if self.main and tensorboard:
      self.writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))

  def line(self, text):
    if not self.main:
      return
    print(text, flush=True)
    if not self.remote:
      with open(self.path, "a", encoding="utf-8") as f:
        f.write(text + "\n")
      return
    self.lines.append(text)
    self.unwritten = True
    if time.time() - self.last_write >= REMOTE_REWRITE_SECONDS:
      self.flush()

  def flush(self):
    if self.main and self.remote and self.unwritten:
      with self.tf.io.gfile.GFile(self.path, "w") as f:
        f.write("\n".join(self.lines) + "\n")
      self.unwritten, self.last_write = False, time.time()

  def close(self):
    self.flush()
    if self.writer is not None:
      self.writer.flush()

  def scalars(self, step, values):
    if self.writer is not None:
      with self.writer.as_default(step=step):
        for k, v in values.items():
          self.tf.summary.scalar(k, v)
      self.writer.flush()


def write_config(config, workdir):
  """WORKDIR/config.json, which evaluate and predict rebuild the model from."""
  if jax.process_index() == 0:
    import tensorflow as tf

    tf.io.gfile.makedirs(workdir)
    with tf.io.gfile.GFile(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))
