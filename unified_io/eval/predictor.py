"""Run a trained Unified-IO on unified examples: text, images and answer-option scores.

    predictor = Predictor.from_workdir("workdir/tiny")        # config + latest checkpoint
    features = predictor.features([raw_example, ...])         # registry.py raw examples
    texts, tokens = predictor.text(features)                  # greedy by default
    images, _ = predictor.image(features, seed=0)              # [B, H, W, 3] in [0, 1]
    best, scores = predictor.choose(features, [["yes", "no"], ...])

Decoding follows the released model: greedy (or beam) text, top-p 0.9 sampling for image
codes; which decoding each output kind uses (depth and normal maps average several samples)
is `unified_io.eval.outputs`. Every generate function is jitted once per batch shape.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import List, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import vqgan as vqgan_lib
from unified_io.common import checkpointing
from unified_io.model import decoding
from unified_io.model import generation
from unified_io.model import builder as model_lib
from unified_io.eval import postprocess
from unified_io.common import vocab
from unified_io.data import from_config
from unified_io.data import pipeline


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """WORKDIR/config.json; FileNotFoundError / ValueError naming the file when it is not
  there or not a JSON object."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(
      f"{path} not found: {workdir} is not a training workdir (pass --config as well)"
    )
  try:
    with open(path) as f:
      saved = json.load(f)
  except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
    raise ValueError(
      f"{path} is damaged (not valid JSON: {e}); pass --config with the run's config file"
    ) from e
  if not isinstance(saved, dict):
    raise ValueError(
      f"{path} holds a JSON {type(saved).__name__}, not a config object; pass --config "
      f"with the run's config file"
    )
  return ml_collections.ConfigDict(saved)


def load_params(config, checkpoint: str):
  """Parameters for `config` from a workdir, a step directory or a converted checkpoint.

  Raises FileNotFoundError when there is none, checkpointing.CheckpointError when the step
  is corrupt, and ValueError when it does not fit the config's model."""
  model = model_lib.build(config)
  abstract = nn.unbox(model_lib.abstract_params(model))
  try:
    return checkpointing.restore_params(checkpoint, abstract, what="checkpoint")
  except checkpointing.CheckpointError:
    raise  # names the step and what is wrong with it already
  except (ValueError, KeyError) as e:
    raise ValueError(
      f"Checkpoint {checkpoint} does not match the config's model (wrong config "
      f"for this checkpoint?): {e}"
    ) from e


@dataclasses.dataclass(frozen=True)
class PromptTruncation:
  """A prompt longer than the model's text input: `tokens` (EOS included) cut to `limit`."""

  name: str
  tokens: int
  limit: int

  def notice(self) -> str:
    return (
      f"note: the prompt ({self.name}) has {self.tokens} tokens, more than the model's "
      f"limit of {self.limit} (config.lengths.text_inputs): the model saw only its first "
      f"{self.limit}"
    )


class Predictor:
  def __init__(self, config, params, vq: Optional[vqgan_lib.VQGAN] = None):
    self.config = config
    self.model = model_lib.build(config)
    self.params = params
    self.vq = vq if vq is not None else from_config.image_tokenizer(config)
    self.spec = from_config.example_spec(config, self.vq)
    self.tokenizer = self.spec.tokenizer
    self.layout = self.tokenizer.layout

  @classmethod
  def from_workdir(cls, workdir: str, config=None, checkpoint: Optional[str] = None):
    config = config if config is not None else load_config(workdir)
    return cls(config, load_params(config, checkpoint or workdir))

  # ------------------------------------------------------------------------------ inputs

  def features(self, raws: Sequence[dict], names: Optional[Sequence[str]] = None):
    """Raw examples (data/tasks/registry.py contract) -> batched model features (numpy)."""
    return self.features_and_truncations(raws, names)[0]

  def features_and_truncations(
    self, raws: Sequence[dict], names: Optional[Sequence[str]] = None
  ) -> Tuple[dict, List[PromptTruncation]]:
    """`features`, and the prompts that were cut to fit the text input (in order)."""
    rows, cut = [], []
    for i, raw in enumerate(raws):
      name = names[i] if names else f"example {i}"
      features, truncated = pipeline.finalize(raw, self.spec, name=name)
      rows.append(features)
      if truncated.get("text_inputs"):
        tokens = len(self.tokenizer.encode(raw["prompt"], add_eos=True))
        cut.append(PromptTruncation(name, tokens, self.spec.text_inputs))
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}, cut

  @staticmethod
  def _model_inputs(features):
    keys = ("text_inputs", "image_inputs", "image_input_mask")
    return {k: jnp.asarray(features[k]) for k in keys}

  # ----------------------------------------------------------------------------- outputs

  @functools.cached_property
  def _text_fns(self):
    return {}

  @functools.cached_property
  def keypoint_mask_fn(self):
    """Paper A.1: the not-visible token is masked at inference, so every joint gets a guess.
    One function object per predictor, because `text` compiles once per mask function."""
    return decoding.allow_only(
      postprocess.not_visible_logit_mask(self.layout, self.model.config.vocab_size)
    )

  @functools.cached_property
  def box_list_mask_fn(self):
    """Box lists stop only when EOS is likelier than all location tokens together
    (`decoding.stop_against_group`); one function object per predictor, like the above."""
    return decoding.stop_against_group(vocab.EOS_ID, *self.layout.location_id_range)

  def text(
    self,
    features,
    max_len: Optional[int] = None,
    method: str = "greedy",
    num_beams: int = 4,
    logit_mask_fn=None,
  ):
    """(decoded strings, token ids [B, max_len]) of the text output."""
    texts, tokens, _ = self.text_with_scores(features, max_len, method, num_beams, logit_mask_fn)
    return texts, tokens

  def text_with_scores(
    self,
    features,
    max_len: Optional[int] = None,
    method: str = "greedy",
    num_beams: int = 4,
    logit_mask_fn=None,
    *,
    alpha: Optional[float] = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
  ):
    """`text` plus each output's log-likelihood [B]: the sum of its tokens' log-probabilities
    (EOS included) for greedy decoding, beam search's length-normalised score for "beam".

    method "sample": temperature / top_k (0: off) / top_p (1.0: off) sampling, drawn from
    `seed`. alpha: beam search's length-penalty exponent (None: generate_text's default)."""
    max_len = max_len or self.config.lengths.text_targets
    settings = dict(method=method, num_beams=num_beams, logit_mask_fn=logit_mask_fn)
    if method == "sample":
      settings.update(temperature=temperature, top_k=top_k, top_p=top_p)
    if alpha is not None:
      settings["alpha"] = alpha
    key = (max_len, *sorted(settings.items(), key=lambda item: item[0]))
    if key not in self._text_fns:
      self._text_fns[key] = jax.jit(
        functools.partial(
          generation.generate_text, self.model, max_len=max_len, eos_id=vocab.EOS_ID, **settings
        )
      )
    sampling = {}
    if method == "sample":
      # Folded apart from jax.random.key(seed), which `image` draws a batch's first image
      # sample from: a text+mask task's answer and mask are then drawn independently.
      sampling["rng"] = jax.random.fold_in(jax.random.key(seed), 1)
    tokens, scores = self._text_fns[key](self.params, self._model_inputs(features), **sampling)
    tokens = np.asarray(tokens)
    return [self.decode_text(row) for row in tokens], tokens, np.asarray(scores, np.float64)

  def decode_text(self, ids) -> str:
    ids = np.asarray(ids)
    ids = ids[(ids < self.layout.text_with_extra_size)]  # image ids never belong in text
    return self.tokenizer.decode(ids)

  @functools.cached_property
  def _image_fns(self):
    def run(params, vq_params, batch, rng, top_p, temperature, expected_codes):
      text, ids = generation.generate_image(
        self.model,
        params,
        batch,
        eos_id=vocab.EOS_ID,
        rng=rng,
        top_p=top_p,
        temperature=temperature,
      )
      grid, n_codes = self.vq.grid_size, self.vq.n_codes
      codes = jnp.clip(ids - self.model.config.padded_text_size, 0, n_codes - 1)
      if expected_codes:
        probs = generation.image_code_distributions(self.model, params, batch, text, ids, n_codes)
        images = vqgan_lib.decode_code_probabilities(
          self.vq.config, vq_params, probs.reshape(-1, grid, grid, n_codes)
        )
      else:
        images = self.vq.decode_fn(vq_params, codes.reshape(-1, grid, grid))
      return text, codes, (images + 1.0) / 2.0

    return {
      expected: jax.jit(functools.partial(run, expected_codes=expected)) for expected in (0, 1)
    }

  def image(
    self,
    features,
    seed: int = 0,
    top_p: float = 0.9,
    temperature: float = 1.0,
    num_samples: int = 1,
    expected_codes: bool = False,
  ):
    """(images float32 [B, H, W, 3] in [0, 1], codes [B, grid * grid]).

    num_samples > 1: the images are the pixel-wise mean of that many samples (seeds seed,
    seed + 1, ...) and the codes those of the first. expected_codes: each sample's image is
    decoded from its positions' expected codebook vectors under the distributions its codes
    were drawn from (`vqgan.decode_code_probabilities`) instead of from the drawn codes.
    """
    if num_samples < 1:
      raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    inputs = self._model_inputs(features)
    image_fn = self._image_fns[int(bool(expected_codes))]
    total, first_codes = None, None
    for k in range(num_samples):
      _, codes, images = image_fn(
        self.params, self.vq.params, inputs, jax.random.key(seed + k), top_p, temperature
      )
      images = np.asarray(images)
      total = images if total is None else total + images
      first_codes = np.asarray(codes) if first_codes is None else first_codes
    return total / num_samples, first_codes

  @functools.cached_property
  def _score_fn(self):
    return jax.jit(functools.partial(generation.score_options, self.model))

  def choose(self, features, options: Sequence[Sequence[str]]):
    """Index of the most likely option per example, and all scores [B, K].

    Options are scored as complete targets, so the answer is always one of them.
    """
    width = max(len(o) for o in options)
    encoded = [[self.tokenizer.encode(text, add_eos=True) for text in row] for row in options]
    length = max(len(ids) for row in encoded for ids in row)
    table = np.zeros((len(options), width, length), np.int32)
    valid = np.zeros((len(options), width), bool)
    for i, row in enumerate(encoded):
      for j, ids in enumerate(row):
        table[i, j, : len(ids)] = ids
        valid[i, j] = True
    scores = np.asarray(
      self._score_fn(self.params, self._model_inputs(features), jnp.asarray(table))
    )
    scores = np.where(valid, scores, -np.inf)
    return scores.argmax(axis=1), scores


def batched(items: List, size: int):
  for start in range(0, len(items), size):
    yield items[start : start + size]
