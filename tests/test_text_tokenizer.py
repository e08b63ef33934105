"""Tests for unified_io.common.text_tokenizer with the shipped tokenizers/uio_tiny_2k.model."""

import hashlib
import os

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf
from sentencepiece import sentencepiece_model_pb2

from unified_io.common.text_tokenizer import TextTokenizer, tf_encode, truncate_or_raise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_MODEL = os.path.join(ROOT, "tokenizers", "uio_tiny_2k.model")
SHIPPED_SHA256 = "62e04a00a7b14af04323c047a667256936a5197e2024949ed9bbec081dc08b3a"
EXTRA_TEXT = os.path.join(ROOT, "tokenizers", "extra_text.txt")

# With 2000 pieces: <extra_id_N> = 2000 + 1099 - N, location bin b = <extra_id_{100+b}>.
EXTRA_ID_0 = 3099
EXTRA_ID_99 = 3000
LOCATION_BIN_0 = 2999  # <extra_id_100>
LOCATION_BIN_250 = 2749  # <extra_id_350>
LOCATION_BIN_999 = 2000  # <extra_id_1099>

SENTENCES = [
  "What does the image describe ?",
  'What is the segmentation of " dog " ?',
  "there are three red cars on the left of the picture .",
  "It was a fine day, and I went to the school at eight o'clock.",
  "Ünïcödé and 日本 fall back to bytes.",
]


@pytest.fixture(scope="module")
def tokenizer():
  return TextTokenizer(SHIPPED_MODEL, image_vocab_size=512, expected_text_size=2000)


def test_shipped_model_file_is_the_documented_one():
  with open(SHIPPED_MODEL, "rb") as f:
    assert hashlib.sha256(f.read()).hexdigest() == SHIPPED_SHA256


def test_shipped_model_uses_t5_layout():
  processor = spm.SentencePieceProcessor(model_file=SHIPPED_MODEL)
  assert processor.get_piece_size() == 2000
  assert (processor.pad_id(), processor.eos_id(), processor.unk_id(), processor.bos_id()) == (
    0,
    1,
    2,
    -1,
  )
  assert [processor.id_to_piece(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]


def test_layout_from_piece_count(tokenizer):
  layout = tokenizer.layout
  assert tokenizer.vocab_size == 2000
  assert layout.padded_text_size == 3200  # 2000 + 1100 = 3100 -> 25 * 128
  assert layout.image_start_id == 3199
  assert layout.total_size == 3712  # 3200 + 512


@pytest.mark.parametrize("text", SENTENCES)
def test_round_trip(tokenizer, text):
  ids = tokenizer.encode(text)
  assert ids.dtype == np.int32 and ids.ndim == 1 and len(ids) > 0
  assert np.all((ids > 2) & (ids < 2000))  # ordinary pieces only: no pad/eos/unk/extra ids
  assert tokenizer.decode(ids) == text


def test_prompt_tokenises_into_whole_words(tokenizer):
  # The prompt templates are in the training text, so each word is one piece.
  assert len(tokenizer.encode("What does the image describe ?")) == 6


def test_extra_ids_encode_to_single_ids(tokenizer):
  assert tokenizer.encode("<extra_id_0>").tolist() == [EXTRA_ID_0]
  assert tokenizer.encode("<extra_id_99>").tolist() == [EXTRA_ID_99]
  assert tokenizer.encode("<extra_id_1099>").tolist() == [LOCATION_BIN_999]
  plain = tokenizer.encode("a b").tolist()
  with_location = tokenizer.encode("a <extra_id_100> b").tolist()
  assert with_location == [plain[0], LOCATION_BIN_0, plain[1]]
  region = tokenizer.encode("region <extra_id_350> <extra_id_100> <extra_id_1099> .").tolist()
  assert region[-4:] == [
    LOCATION_BIN_250,
    LOCATION_BIN_0,
    LOCATION_BIN_999,
    tokenizer.encode(".")[0],
  ]


def test_extra_ids_decode_to_their_text(tokenizer):
  assert tokenizer.decode([EXTRA_ID_0]) == "<extra_id_0>"
  ids = tokenizer.encode("the cat <extra_id_100> <extra_id_1099> sat")
  assert tokenizer.decode(ids) == "the cat <extra_id_100> <extra_id_1099> sat"


def test_add_eos(tokenizer):
  ids = tokenizer.encode("the cat", add_eos=True)
  assert ids[-1] == 1
  assert ids[:-1].tolist() == tokenizer.encode("the cat").tolist()


def test_decode_stops_at_eos_and_skips_pad(tokenizer):
  cat = tokenizer.encode("the cat").tolist()
  dog = tokenizer.encode("the dog").tolist()
  assert tokenizer.decode(cat + [1] + dog) == "the cat"
  assert tokenizer.decode([0] + cat + [0, 0]) == "the cat"
  # Anything after eos is ignored, even ids that would not decode.
  assert tokenizer.decode(cat + [1, 3300]) == "the cat"
  assert tokenizer.decode([]) == ""


@pytest.mark.parametrize(
  "bad_id, why",
  [
    (3100, "vocabulary padding"),  # first id after the extra ids
    (3199, "image-decoder start"),
    (3200, "image token"),
    (3711, "image token"),
    (3712, "outside the 3712-id vocabulary"),
    (-1, "outside"),
  ],
)
def test_decode_rejects_non_text_ids(tokenizer, bad_id, why):
  ids = tokenizer.encode("the cat").tolist() + [bad_id]
  with pytest.raises(ValueError, match=rf"id {bad_id} at position {len(ids) - 1} .*{why}"):
    tokenizer.decode(ids)


def test_decode_rejects_batches(tokenizer):
  with pytest.raises(ValueError, match="decode_batch"):
    tokenizer.decode(np.zeros((2, 3), np.int32))


def test_batches(tokenizer):
  encoded = tokenizer.encode_batch(SENTENCES[:3], add_eos=True)
  assert [e.tolist() for e in encoded] == [
    tokenizer.encode(s, add_eos=True).tolist() for s in SENTENCES[:3]
  ]
  padded = np.zeros((3, 20), np.int32)
  for row, ids in zip(padded, encoded):
    row[: len(ids)] = ids
  assert tokenizer.decode_batch(padded) == SENTENCES[:3]


def test_tf_data_matches_numpy(tokenizer):
  texts = SENTENCES + ["a <extra_id_100> b", ""]
  dataset = tf.data.Dataset.from_tensor_slices(texts).map(
    lambda text: tf_encode(tokenizer, text, add_eos=True)
  )
  assert dataset.element_spec == tf.TensorSpec([None], tf.int32)
  results = [ids.numpy().tolist() for ids in dataset]
  assert results == [tokenizer.encode(text, add_eos=True).tolist() for text in texts]
  assert results[-1] == [1]


def test_tf_encode_rejects_non_scalar(tokenizer):
  with pytest.raises(ValueError, match="scalar"):
    tf_encode(tokenizer, tf.constant(["a", "b"]))


def _train_default_layout_model(model_dir):
  # SentencePiece's own defaults: unk 0, bos 1, eos 2, no pad; not the T5 layout.
  prefix = os.path.join(model_dir, "default_ids")
  spm.SentencePieceTrainer.train(
    input=EXTRA_TEXT, model_prefix=prefix, vocab_size=120, num_threads=1, minloglevel=2
  )
  return prefix + ".model"


def test_rejects_model_without_t5_layout(tmp_path):
  path = _train_default_layout_model(str(tmp_path))
  with pytest.raises(ValueError, match=r"default_ids\.model does not use the T5 id layout"):
    TextTokenizer(path, image_vocab_size=512)


def test_rejects_wrong_piece_count():
  with pytest.raises(ValueError, match="has 2000 pieces, the config expects 32000"):
    TextTokenizer(SHIPPED_MODEL, image_vocab_size=512, expected_text_size=32000)


def test_rejects_model_that_already_has_extra_ids(tmp_path):
  proto = sentencepiece_model_pb2.ModelProto()
  with open(SHIPPED_MODEL, "rb") as f:
    proto.ParseFromString(f.read())
  proto.pieces.add(
    piece="\u2581<extra_id_0>",
    score=0.0,
    type=sentencepiece_model_pb2.ModelProto.SentencePiece.USER_DEFINED,
  )
  path = tmp_path / "with_extra.model"
  path.write_bytes(proto.SerializeToString())
  with pytest.raises(ValueError, match="already contains <extra_id_0>"):
    TextTokenizer(str(path), image_vocab_size=512)


def test_missing_and_non_model_files(tmp_path):
  with pytest.raises(FileNotFoundError, match="nowhere.model"):
    TextTokenizer(str(tmp_path / "nowhere.model"), image_vocab_size=512)
  empty = tmp_path / "empty.model"
  empty.write_bytes(b"")
  with pytest.raises(ValueError, match="empty.model is not a SentencePiece model"):
    TextTokenizer(str(empty), image_vocab_size=512)


def test_truncate_or_raise():
  ids = np.array([5, 6, 7, 8, 1], np.int32)
  kept, truncated = truncate_or_raise(ids, 5)
  assert kept.tolist() == [5, 6, 7, 8, 1] and not truncated
  kept, truncated = truncate_or_raise(ids, 3)
  assert kept.tolist() == [5, 6, 1] and truncated  # eos kept at the end
  kept, truncated = truncate_or_raise(ids, 3, keep_eos=False)
  assert kept.tolist() == [5, 6, 7] and truncated
  kept, truncated = truncate_or_raise(np.array([5, 6, 7, 8]), 2)
  assert kept.tolist() == [5, 6] and truncated
  with pytest.raises(ValueError, match="text_inputs has 5 tokens, more than the maximum 4"):
    truncate_or_raise(ids, 4, policy="error", name="text_inputs")
  kept, truncated = truncate_or_raise(ids, 5, policy="error", name="text_inputs")
  assert not truncated
  with pytest.raises(ValueError, match="policy 'drop'"):
    truncate_or_raise(ids, 4, policy="drop")
  with pytest.raises(ValueError, match="max_len 0"):
    truncate_or_raise(ids, 0)


def test_extra_id_glued_to_a_word_is_not_recognised(tokenizer):
  # As with T5's seqio, the piece is "▁<extra_id_N>": it needs whitespace (or the text start)
  # before it.
  assert EXTRA_ID_0 not in tokenizer.encode("a<extra_id_0>").tolist()
