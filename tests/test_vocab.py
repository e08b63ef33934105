"""Tests for unified_io.common.vocab; every expected id is worked out by hand in the comments."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from unified_io.common import vocab
from unified_io.common.vocab import VocabLayout

OFFICIAL = VocabLayout.official()
# The shipped 2000-piece tokenizer with the tiny config's 512-code VQ-GAN.
TINY = VocabLayout(text_size=2000, image_vocab_size=512)


def test_official_layout_numbers():
  assert (OFFICIAL.text_size, OFFICIAL.image_vocab_size) == (32000, 16384)
  assert (OFFICIAL.pad_id, OFFICIAL.eos_id, OFFICIAL.unk_id) == (0, 1, 2)
  assert OFFICIAL.text_with_extra_size == 33100  # 32000 + 1100
  assert OFFICIAL.padded_text_size == 33152  # 259 * 128, 52 padding ids
  assert OFFICIAL.image_start_id == 33151
  assert OFFICIAL.total_size == 49536  # 33152 + 16384


def test_official_extra_sentinel_location_and_image_ids():
  assert OFFICIAL.extra_id(0) == 33099  # 32000 + 1100 - 1 - 0
  assert OFFICIAL.extra_id(1099) == 32000
  assert OFFICIAL.sentinel_id(0) == 33099
  assert OFFICIAL.sentinel_id(99) == 33000
  assert OFFICIAL.location_id(0) == 32999  # extra_id_100
  assert OFFICIAL.location_id(999) == 32000  # extra_id_1099
  assert OFFICIAL.location_extra_index(0) == 100
  assert OFFICIAL.image_id(0) == 33152
  assert OFFICIAL.image_id(16383) == 49535
  assert OFFICIAL.location_id_range == (32000, 33000)
  assert OFFICIAL.sentinel_id_range == (33000, 33100)


def test_tiny_layout_numbers():
  # 2000 + 1100 = 3100 -> next multiple of 128 is 25 * 128 = 3200 (100 padding ids).
  assert TINY.text_with_extra_size == 3100
  assert TINY.padded_text_size == 3200
  assert TINY.image_start_id == 3199
  assert TINY.total_size == 3712  # 3200 + 512
  assert TINY.extra_id(0) == 3099  # 2000 + 1099
  assert TINY.sentinel_id(99) == 3000
  assert TINY.location_id(0) == 2999
  assert TINY.location_id(999) == 2000
  assert TINY.image_id(0) == 3200
  assert TINY.image_id(511) == 3711


def test_exact_multiple_is_padded_by_a_further_block():
  # 2100 + 1100 = 3200 = 25 * 128: no padding would put the image start on <extra_id_0>
  # (3199), so the text part grows to 26 * 128 = 3328.
  layout = VocabLayout(text_size=2100, image_vocab_size=10)
  assert layout.extra_id(0) == 3199
  assert layout.padded_text_size == 3328
  assert layout.image_start_id == 3327
  assert not layout.is_extra(layout.image_start_id)
  assert layout.image_id(0) == 3328
  assert layout.total_size == 3338


def test_inverses():
  assert OFFICIAL.location_bin(32999) == 0
  assert OFFICIAL.location_bin(32000) == 999
  assert OFFICIAL.image_code(33152) == 0
  assert OFFICIAL.image_code(49535) == 16383
  assert OFFICIAL.extra_index(33099) == 0
  assert OFFICIAL.extra_index(32000) == 1099


def test_vectorised_over_arrays():
  bins = np.array([[0, 1], [998, 999]])
  ids = OFFICIAL.location_id(bins)
  np.testing.assert_array_equal(ids, [[32999, 32998], [32001, 32000]])
  assert ids.dtype == np.int32 and ids.shape == (2, 2)
  np.testing.assert_array_equal(
    OFFICIAL.location_bin(np.array([32999, 32500, 32000])), [0, 499, 999]
  )
  np.testing.assert_array_equal(OFFICIAL.image_id(np.array([0, 5])), [33152, 33157])
  np.testing.assert_array_equal(OFFICIAL.image_code(np.array([33152, 33157])), [0, 5])
  np.testing.assert_array_equal(OFFICIAL.sentinel_id(np.arange(3)), [33099, 33098, 33097])
  assert isinstance(OFFICIAL.location_id(np.int64(3)), int)


def test_predicates_at_boundaries():
  ids = np.array([-1, 0, 31999, 32000, 32999, 33000, 33099, 33100, 33151, 33152, 49535, 49536])
  np.testing.assert_array_equal(OFFICIAL.is_text(ids), [0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
  np.testing.assert_array_equal(OFFICIAL.is_extra(ids), [0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0])
  np.testing.assert_array_equal(OFFICIAL.is_location(ids), [0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0])
  np.testing.assert_array_equal(OFFICIAL.is_sentinel(ids), [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0])
  np.testing.assert_array_equal(OFFICIAL.is_image(ids), [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0])
  assert OFFICIAL.is_image(33152) is True
  assert OFFICIAL.is_location(33000) is False


def test_predicates_work_on_jax_arrays():
  result = OFFICIAL.is_location(jnp.array([31999, 32000, 32999, 33000]))
  assert isinstance(result, jnp.ndarray)
  np.testing.assert_array_equal(np.asarray(result), [False, True, True, False])


@pytest.mark.parametrize(
  "call, message",
  [
    (lambda: OFFICIAL.sentinel_id(100), "sentinel index 100 out of range"),
    (lambda: OFFICIAL.sentinel_id(-1), "sentinel index -1 out of range"),
    (lambda: OFFICIAL.location_id(1000), "location bin 1000 out of range"),
    (lambda: OFFICIAL.location_id(np.array([5, -3])), "location bin -3 out of range"),
    (lambda: OFFICIAL.extra_id(1100), "extra id index 1100 out of range"),
    (lambda: OFFICIAL.image_id(16384), "image code 16384 out of range"),
    (lambda: OFFICIAL.location_bin(33000), "location token id 33000 out of range"),
    (lambda: OFFICIAL.location_bin(np.array([32000, 5])), "location token id 5 out of range"),
    (lambda: OFFICIAL.image_code(33151), "image token id 33151 out of range"),
    (lambda: OFFICIAL.location_id(1.0), "location bin must be integers"),
    (lambda: OFFICIAL.image_id(True), "image code must be integers"),
  ],
)
def test_out_of_range_arguments_are_named(call, message):
  with pytest.raises(ValueError, match=message):
    call()


@pytest.mark.parametrize(
  "kwargs, message",
  [
    (dict(text_size=3, image_vocab_size=10), "text_size 3"),
    (dict(text_size=100, image_vocab_size=0), "image_vocab_size 0"),
    (dict(text_size=100, image_vocab_size=10, num_extra_ids=1099), "num_extra_ids 1099"),
    (dict(text_size=100, image_vocab_size=10, pad_multiple=0), "pad_multiple 0"),
    (dict(text_size=100.0, image_vocab_size=10), "text_size must be an int"),
  ],
)
def test_bad_layout_arguments(kwargs, message):
  with pytest.raises(ValueError, match=message):
    VocabLayout(**kwargs)


def test_layout_is_frozen_and_hashable():
  with pytest.raises(dataclasses.FrozenInstanceError):
    OFFICIAL.text_size = 5
  assert VocabLayout(32000, 16384) == OFFICIAL
  assert len({OFFICIAL, VocabLayout(32000, 16384)}) == 1


def test_extra_id_token_text():
  assert vocab.extra_id_token(0) == "<extra_id_0>"
  assert vocab.extra_id_token(np.int32(1099)) == "<extra_id_1099>"
