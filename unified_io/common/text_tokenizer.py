"""SentencePiece text tokenizer in the unified-vocabulary layout, for numpy and tf.data.

The model file must use T5's id layout (pad 0, eos 1, unk 2); T5's cc_all.32000 model and
the shipped `tokenizers/uio_tiny_2k.model` do. On load, the 1100 extra ids of the layout
(see `unified_io.common.vocab`) are appended to the model as user-defined pieces, last extra id
first, so `<extra_id_N>` gets id V + 1100 - 1 - N and encodes as one token. The pieces are
named "▁<extra_id_N>" (with SentencePiece's word-start mark) exactly as T5's seqio does when
the released models were trained: an extra id written after whitespace or at the start of the
text, as in "region <extra_id_100> <extra_id_250> ...", is one token, while one glued to the
preceding word ("a<extra_id_0>") is not recognised and is split into ordinary pieces.

Decoding stops at the first eos, drops pad ids and turns extra ids back into "<extra_id_N>"
text. Ids the text tokenizer cannot have produced (padding ids above the extra ids, the image
start token, image tokens, negative ids) raise a ValueError naming the id and its position:
callers that decode model output should cut image tokens off first, so silent garbage never
reaches a metric.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np
import sentencepiece as spm
import tensorflow as tf
from google.protobuf.message import DecodeError
from sentencepiece import sentencepiece_model_pb2

from unified_io.common import vocab

WORD_START = "\u2581"  # SentencePiece's "▁", marks a piece that starts a word


def _extra_id_piece(n: int) -> str:
  return WORD_START + vocab.extra_id_token(n)


def _read_model_proto(model_path: str) -> sentencepiece_model_pb2.ModelProto:
  if not tf.io.gfile.exists(model_path):
    raise FileNotFoundError(
      f"SentencePiece model {model_path} does not exist (see "
      f"tokenizers/README.md for where to get it)"
    )
  with tf.io.gfile.GFile(model_path, "rb") as f:
    serialized = f.read()
  try:
    proto = sentencepiece_model_pb2.ModelProto.FromString(serialized)
  except DecodeError as e:
    raise ValueError(f"{model_path} is not a SentencePiece model: {e}") from e
  if not proto.pieces:
    raise ValueError(f"{model_path} is not a SentencePiece model: it has no pieces")
  return proto


def _check_t5_layout(processor: spm.SentencePieceProcessor, model_path: str):
  found = {"pad": processor.pad_id(), "eos": processor.eos_id(), "unk": processor.unk_id()}
  wanted = {"pad": vocab.PAD_ID, "eos": vocab.EOS_ID, "unk": vocab.UNK_ID}
  if found != wanted:
    raise ValueError(
      f"SentencePiece model {model_path} does not use the T5 id layout: it has ids "
      f"{found}, Unified-IO needs {wanted} (train with --pad_id=0 --eos_id=1 --unk_id=2 "
      f"--bos_id=-1)"
    )


class TextTokenizer:
  """SentencePiece pieces + extra ids of a `VocabLayout`.

  Args:
    model_path: SentencePiece model in the T5 id layout (local path or anything
      tf.io.gfile opens).
    image_vocab_size: VQ-GAN codebook size; only used to complete `layout`.
    expected_text_size: if given, the model's piece count must equal it (configs state the
      count so a wrong file fails loudly instead of silently shifting every id).
    num_location_bins: how many of the extra ids are location bins (`VocabLayout`).
  """

  def __init__(
    self,
    model_path: str,
    image_vocab_size: int,
    expected_text_size: int | None = None,
    num_location_bins: int = vocab.NUM_LOCATION_BINS,
  ):
    self._model_path = os.fspath(model_path)
    proto = _read_model_proto(self._model_path)
    text_size = len(proto.pieces)
    if expected_text_size is not None and text_size != expected_text_size:
      raise ValueError(
        f"SentencePiece model {self._model_path} has {text_size} pieces, the "
        f"config expects {expected_text_size}"
      )
    self._layout = vocab.VocabLayout(
      text_size=text_size, image_vocab_size=image_vocab_size, num_location_bins=num_location_bins
    )

    existing = {piece.piece for piece in proto.pieces}
    clash = [n for n in range(self._layout.num_extra_ids) if _extra_id_piece(n) in existing]
    if clash:
      raise ValueError(
        f"SentencePiece model {self._model_path} already contains "
        f"{vocab.extra_id_token(clash[0])}; pass the plain text model, the "
        f"extra ids are added here"
      )
    # Appending the highest extra id first gives <extra_id_N> the id V + E - 1 - N.
    for n in reversed(range(self._layout.num_extra_ids)):
      proto.pieces.add(
        piece=_extra_id_piece(n),
        score=0.0,
        type=sentencepiece_model_pb2.ModelProto.SentencePiece.USER_DEFINED,
      )

    self._processor = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
    _check_t5_layout(self._processor, self._model_path)

  @property
  def layout(self) -> vocab.VocabLayout:
    return self._layout

  @property
  def vocab_size(self) -> int:
    """Number of text pieces in the SentencePiece model (extra ids not counted)."""
    return self._layout.text_size

  @property
  def model_path(self) -> str:
    return self._model_path

  def encode(self, text: str | bytes, add_eos: bool = False) -> np.ndarray:
    """int32[n] ids of `text`, optionally followed by eos."""
    if isinstance(text, np.ndarray):  # a 0-d string array, as tf.numpy_function passes
      text = text.item()
    if isinstance(text, bytes):
      text = text.decode("utf-8")
    if not isinstance(text, str):
      raise ValueError(f"encode expects one string, got {type(text).__name__}")
    ids = self._processor.encode(text)
    if add_eos:
      ids.append(vocab.EOS_ID)
    return np.asarray(ids, np.int32)

  def encode_batch(self, texts: Iterable[str], add_eos: bool = False) -> list[np.ndarray]:
    return [self.encode(text, add_eos=add_eos) for text in texts]

  def decode(self, ids: Sequence[int] | np.ndarray) -> str:
    """Text of one id sequence: stops at the first eos, skips pad, raises on non-text ids."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
      raise ValueError(
        f"decode expects a 1-D id sequence, got shape {ids.shape} "
        f"(use decode_batch for [batch, length])"
      )
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
      raise ValueError(f"decode expects integer ids, got dtype {ids.dtype}")
    eos_positions = np.flatnonzero(ids == vocab.EOS_ID)
    if eos_positions.size:
      ids = ids[: eos_positions[0]]
    not_decodable = (ids < 0) | (ids >= self._layout.text_with_extra_size)
    if np.any(not_decodable):
      position = int(np.flatnonzero(not_decodable)[0])
      bad = int(ids[position])
      raise ValueError(
        f"id {bad} at position {position} is not a text id (text ids are "
        f"0..{self._layout.text_with_extra_size - 1}; {self._describe(bad)})"
      )
    return self._processor.decode([int(i) for i in ids if i != vocab.PAD_ID])

  def decode_batch(self, rows) -> list[str]:
    return [self.decode(row) for row in rows]

  def _describe(self, token_id: int) -> str:
    if self._layout.is_image(token_id):
      return "it is an image token"
    if token_id == self._layout.image_start_id:
      return "it is the image-decoder start token"
    if 0 <= token_id < self._layout.padded_text_size:
      return "it is vocabulary padding"
    return f"it is outside the {self._layout.total_size}-id vocabulary"


def tf_encode(tokenizer: TextTokenizer, text: tf.Tensor, add_eos: bool = False) -> tf.Tensor:
  """int32[None] ids of a scalar tf.string; usable inside `tf.data.Dataset.map`."""
  text = tf.convert_to_tensor(text, tf.string)
  if text.shape.rank not in (None, 0):
    raise ValueError(f"tf_encode expects a scalar string, got shape {text.shape}")
  ids = tf.numpy_function(
    lambda t: tokenizer.encode(t, add_eos=add_eos), [text], tf.int32, stateful=False
  )
  ids.set_shape([None])
  return ids


TRUNCATION_POLICIES = ("truncate", "error")


def truncate_or_raise(
  ids: np.ndarray, max_len: int, policy: str = "truncate", name: str = "text", keep_eos: bool = True
) -> tuple[np.ndarray, bool]:
  """Fits `ids` into `max_len`; returns (ids, was_truncated).

  policy "truncate" cuts the tail (callers count the returned flag); "error" raises a
  ValueError naming the field `name`. With keep_eos, a sequence that ended with eos still
  ends with eos after cutting, so a truncated target still teaches the model to stop.
  """
  if policy not in TRUNCATION_POLICIES:
    raise ValueError(f"policy {policy!r} for {name} must be one of {TRUNCATION_POLICIES}")
  if max_len < 1:
    raise ValueError(f"max_len {max_len} for {name} must be >= 1")
  ids = np.asarray(ids)
  if ids.ndim != 1:
    raise ValueError(f"{name} ids must be 1-D, got shape {ids.shape}")
  if len(ids) <= max_len:
    return ids, False
  if policy == "error":
    raise ValueError(f"{name} has {len(ids)} tokens, more than the maximum {max_len}")
  if keep_eos and ids[-1] == vocab.EOS_ID:
    return np.concatenate([ids[: max_len - 1], ids[-1:]]), True
  return ids[:max_len], True
