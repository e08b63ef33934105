"""A deterministic in-code batch source (a copy task) for trainer tests and smoke runs.

Global batch i is a pure function of (seed, i); each host takes its own rows of it. So the
iterator position alone restores it exactly, and any number of hosts see the same global
batch. Text targets copy the first input tokens; image targets are codes
derived from the first input token, so the loss of a working trainer falls quickly.
"""

import numpy as np

from unified_io.common import vocab


class SyntheticBatches:
  def __init__(
    self,
    net_config,
    lengths,
    global_batch_size,
    seed=0,
    process_index=0,
    process_count=1,
    with_images=True,
  ):
    if global_batch_size % process_count:
      raise ValueError(
        f"Global batch size {global_batch_size} is not divisible by the {process_count} processes"
      )
    self.cfg = net_config
    self.lengths = lengths
    self.batch_size = global_batch_size
    self.rows = slice(
      process_index * global_batch_size // process_count,
      (process_index + 1) * global_batch_size // process_count,
    )
    self.seed = seed
    self.with_images = with_images
    self.position = 0

  def get_state(self):
    return {"position": self.position}

  def set_state(self, state):
    self.position = int(state["position"])

  def __iter__(self):
    return self

  def __next__(self):
    batch = self.batch_at(self.position)  # already this host's rows
    self.position += 1
    return batch

  def batch_at(self, position):
    cfg, b = self.cfg, self.batch_size
    rng = np.random.default_rng([self.seed, position])
    text_len, target_len = self.lengths.text_inputs, self.lengths.text_targets
    word_ids = min(cfg.padded_text_size - 1, 400)  # keep the task small enough to learn fast
    text = rng.integers(3, word_ids, (b, text_len))
    used = rng.integers(target_len, text_len + 1, (b,))
    text[np.arange(text_len)[None] >= used[:, None]] = vocab.PAD_ID
    targets = text[:, :target_len].copy()
    targets[:, -1] = vocab.EOS_ID
    batch = {"text_inputs": text.astype(np.int32), "text_targets": targets.astype(np.int32)}
    if self.with_images:
      size, num_patches = cfg.image_size, cfg.encoder_max_image_length
      batch["image_inputs"] = rng.standard_normal((b, size, size, 3)).astype(np.float32)
      batch["image_input_mask"] = np.ones((b, num_patches), bool)
      codes = cfg.vocab_size - cfg.padded_text_size
      image_len = self.lengths.image_targets
      batch["image_targets"] = (
        cfg.padded_text_size + (text[:, :1] + np.arange(image_len)[None]) % codes
      ).astype(np.int32)
    return {k: v[self.rows] for k, v in batch.items()}
