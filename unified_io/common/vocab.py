"""The unified vocabulary: the one place that knows which id means what.

Unified-IO reads and writes a single id space (ids shown for the official layout):

    0 .. V-1             SentencePiece text pieces, T5 layout (pad 0, eos 1, unk 2); V = 32000
    V .. V+1099          1100 extra ids, numbered downward as in T5:
                         <extra_id_N> has id V + 1100 - 1 - N, so
                           <extra_id_0..99>    = 33099..33000  span-corruption sentinels
                           <extra_id_100+b>    = 32999..32000  location bin b (b = 0..999)
    V+1100 .. P-1        padding up to a multiple of 128 (P = padded text size = 33152);
                         the last of these, P-1 = 33151, starts the image decoder
    P .. P+K-1           image token k = VQ-GAN code k (K = 16384), total 49536

Every number derives from the tokenizer's piece count V and the codebook size K, so a small
tokenizer shifts the ids but not the rules. Nothing else in the project writes an id down:
ask a `VocabLayout`.

Padding rule when V + 1100 is already a multiple of 128: padding would add no ids and the
image-decoder start token (last padded text id) would land on <extra_id_0>. Instead the text
part is padded by a further full multiple, i.e. P is the smallest multiple of `pad_multiple`
strictly greater than V + num_extra_ids. For the official vocabulary (52 padding ids) this is
the same as ordinary rounding up, so released checkpoints keep their ids.

The id methods are vectorised: a scalar gives a Python int (or bool), an array gives a numpy
array of the same shape. The `is_*` predicates use only comparisons, so they also work on jax
arrays (e.g. inside jitted decoding).
"""

from __future__ import annotations

import dataclasses
from typing import Union

import numpy as np

# T5's SentencePiece layout; the text tokenizer refuses models that differ.
PAD_ID = 0
EOS_ID = 1
UNK_ID = 2

# Defaults of every layout, as in the released models.
NUM_EXTRA_IDS = 1100
NUM_SENTINELS = 100
NUM_LOCATION_BINS = 1000
PAD_MULTIPLE = 128

OFFICIAL_TEXT_SIZE = 32000  # T5 cc_all.32000
OFFICIAL_IMAGE_VOCAB_SIZE = 16384  # VQ-GAN codebook of the released models

IntLike = Union[int, np.integer, np.ndarray]


def extra_id_token(n: int) -> str:
  """The text form of extra id n, as it appears in prompts: "<extra_id_N>"."""
  return f"<extra_id_{int(n)}>"


def _as_int_array(values, what: str) -> np.ndarray:
  array = np.asarray(values)
  if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
    raise ValueError(f"{what} must be integers, got dtype {array.dtype}")
  return array.astype(np.int64)


def _check_range(values: np.ndarray, low: int, high: int, what: str):
  """Raises naming the first value outside [low, high)."""
  bad = (values < low) | (values >= high)
  if np.any(bad):
    first = int(values[bad].flat[0])
    raise ValueError(f"{what} {first} out of range [{low}, {high})")


def _scalar_or_array(values, like):
  """A Python int for scalar input `like`, else an int32 array (every id fits)."""
  values = np.asarray(values)
  if np.ndim(like) == 0:
    return values.item()
  return values.astype(np.int32)


def location_bins(config) -> int:
  """config.vocab.location_bins; configs written before the key existed used the released
  models' 1000 bins."""
  return config.vocab.get("location_bins", NUM_LOCATION_BINS)


@dataclasses.dataclass(frozen=True)
class VocabLayout:
  """Id layout of the unified vocabulary for a `text_size`-piece tokenizer and a
  `image_vocab_size`-code VQ-GAN."""

  text_size: int
  image_vocab_size: int
  num_extra_ids: int = NUM_EXTRA_IDS
  num_sentinels: int = NUM_SENTINELS
  num_location_bins: int = NUM_LOCATION_BINS
  pad_multiple: int = PAD_MULTIPLE

  def __post_init__(self):
    for name in (
      "text_size",
      "image_vocab_size",
      "num_extra_ids",
      "num_sentinels",
      "num_location_bins",
      "pad_multiple",
    ):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    # pad, eos and unk must exist, plus at least one real piece.
    if self.text_size <= UNK_ID + 1:
      raise ValueError(
        f"text_size {self.text_size} must be > {UNK_ID + 1} (pad, eos, unk and at least one piece)"
      )
    if self.image_vocab_size < 1:
      raise ValueError(f"image_vocab_size {self.image_vocab_size} must be >= 1")
    if self.num_sentinels < 0 or self.num_location_bins < 2:
      raise ValueError(
        f"need num_sentinels >= 0 and num_location_bins >= 2, got "
        f"{self.num_sentinels} and {self.num_location_bins}"
      )
    if self.num_extra_ids < self.num_sentinels + self.num_location_bins:
      raise ValueError(
        f"num_extra_ids {self.num_extra_ids} cannot hold {self.num_sentinels} "
        f"sentinels and {self.num_location_bins} location bins"
      )
    if self.pad_multiple < 1:
      raise ValueError(f"pad_multiple {self.pad_multiple} must be >= 1")

  @classmethod
  def from_config(cls, config) -> "VocabLayout":
    """The layout `config.vocab` describes (text pieces, image codes, location bins)."""
    return cls(
      text_size=config.vocab.text_pieces,
      image_vocab_size=config.vocab.image_codes,
      num_location_bins=location_bins(config),
    )

  @classmethod
  def official(cls) -> "VocabLayout":
    """The released models' layout: T5's 32000 pieces and a 16384-code VQ-GAN."""
    return cls(text_size=OFFICIAL_TEXT_SIZE, image_vocab_size=OFFICIAL_IMAGE_VOCAB_SIZE)

  # -- sizes and single ids ---------------------------------------------------------------

  @property
  def pad_id(self) -> int:
    return PAD_ID

  @property
  def eos_id(self) -> int:
    return EOS_ID

  @property
  def unk_id(self) -> int:
    return UNK_ID

  @property
  def text_with_extra_size(self) -> int:
    """Ids a tokenizer can produce: text pieces plus extra ids."""
    return self.text_size + self.num_extra_ids

  @property
  def padded_text_size(self) -> int:
    # Strictly greater (see module doc) so the image start token is never an extra id.
    return (self.text_with_extra_size // self.pad_multiple + 1) * self.pad_multiple

  @property
  def image_start_id(self) -> int:
    """First input of the image decoder: the last id of the padded text part."""
    return self.padded_text_size - 1

  @property
  def total_size(self) -> int:
    return self.padded_text_size + self.image_vocab_size

  # -- extra ids ----------------------------------------------------------------------------

  def extra_id(self, n: IntLike):
    """Id of <extra_id_n>."""
    n_array = _as_int_array(n, "extra id index")
    _check_range(n_array, 0, self.num_extra_ids, "extra id index")
    return _scalar_or_array(self.text_with_extra_size - 1 - n_array, n)

  def extra_index(self, ids: IntLike):
    """Inverse of `extra_id`: n such that ids == extra_id(n)."""
    id_array = _as_int_array(ids, "extra id")
    _check_range(id_array, self.text_size, self.text_with_extra_size, "extra id")
    return _scalar_or_array(self.text_with_extra_size - 1 - id_array, ids)

  def sentinel_id(self, i: IntLike):
    """Id of span-corruption sentinel i, which is <extra_id_i>."""
    _check_range(_as_int_array(i, "sentinel index"), 0, self.num_sentinels, "sentinel index")
    return self.extra_id(i)

  def location_extra_index(self, bins: IntLike):
    """n such that location bin b is <extra_id_n> (n = num_sentinels + b)."""
    bin_array = _as_int_array(bins, "location bin")
    _check_range(bin_array, 0, self.num_location_bins, "location bin")
    return _scalar_or_array(self.num_sentinels + bin_array, bins)

  def location_id(self, bins: IntLike):
    """Id of location bin b."""
    return self.extra_id(self.location_extra_index(bins))

  def location_bin(self, ids: IntLike):
    """Inverse of `location_id`; raises naming the first id that is not a location token."""
    id_array = _as_int_array(ids, "location token id")
    start, stop = self.location_id_range
    _check_range(id_array, start, stop, "location token id")
    return _scalar_or_array(self.extra_index(id_array) - self.num_sentinels, ids)

  @property
  def location_id_range(self) -> tuple[int, int]:
    """Half-open [start, stop) of the location ids (bin num_location_bins-1 .. bin 0)."""
    last_bin_id = self.text_with_extra_size - 1 - (self.num_sentinels + self.num_location_bins - 1)
    return last_bin_id, last_bin_id + self.num_location_bins

  @property
  def sentinel_id_range(self) -> tuple[int, int]:
    """Half-open [start, stop) of the sentinel ids (sentinel num_sentinels-1 .. sentinel 0)."""
    return self.text_with_extra_size - self.num_sentinels, self.text_with_extra_size

  # -- image tokens -------------------------------------------------------------------------

  def image_id(self, codes: IntLike):
    """Id of VQ-GAN code k."""
    code_array = _as_int_array(codes, "image code")
    _check_range(code_array, 0, self.image_vocab_size, "image code")
    return _scalar_or_array(self.padded_text_size + code_array, codes)

  def image_code(self, ids: IntLike):
    """Inverse of `image_id`; raises naming the first id that is not an image token."""
    id_array = _as_int_array(ids, "image token id")
    _check_range(id_array, self.padded_text_size, self.total_size, "image token id")
    return _scalar_or_array(id_array - self.padded_text_size, ids)

  # -- predicates (numpy or jax) ------------------------------------------------------------

  def is_text(self, ids):
    """True for ids of the padded text part (pieces, extra ids, padding, image start)."""
    return _in_range(ids, 0, self.padded_text_size)

  def is_extra(self, ids):
    return _in_range(ids, self.text_size, self.text_with_extra_size)

  def is_sentinel(self, ids):
    return _in_range(ids, *self.sentinel_id_range)

  def is_location(self, ids):
    return _in_range(ids, *self.location_id_range)

  def is_image(self, ids):
    return _in_range(ids, self.padded_text_size, self.total_size)


def _in_range(ids, low: int, high: int):
  # No np.asarray: keeps jax arrays (and tracers) on their own side.
  ids = ids if hasattr(ids, "dtype") else np.asarray(ids)
  result = (ids >= low) & (ids < high)
  if isinstance(result, (np.ndarray, np.bool_)) and np.ndim(result) == 0:
    return bool(result)
  return result
