"""Rebuild the shipped SentencePiece model tokenizers/uio_tiny_2k.model, byte for byte.

  python tokenizers/build_tokenizer.py            # fetch botchan.txt, rebuild the model
  python tokenizers/build_tokenizer.py --check    # rebuild into a temp dir, compare with shipped
  python tokenizers/build_tokenizer.py --botchan /path/to/botchan.txt

A 2000-piece unigram model in T5's id layout (pad 0, eos 1, unk 2, no bos) with byte
fallback, trained on `test/botchan.txt` from the sentencepiece 0.2.3 source distribution (an
English novel, fetched with `pip download`) plus tokenizers/extra_text.txt (the Unified-IO
prompt templates and simple words about objects, colours, shapes, counts and positions).
Determinism: one thread, every input sentence in file order (no sampling or shuffling), a
fixed random seed, and the model is written from memory, so no input path or other machine
detail ends up in the file.
"""

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED_MODEL = os.path.join(HERE, "uio_tiny_2k.model")
EXTRA_TEXT = os.path.join(HERE, "extra_text.txt")

SENTENCEPIECE_SDIST = "sentencepiece==0.2.3"
SDIST_FILE = "sentencepiece-0.2.3.tar.gz"
SDIST_SHA256 = "21618ad31f0453a1ebf5ec58defed99758d54af0b670546ecac639ddd8b86fbd"
BOTCHAN_MEMBER = "sentencepiece-0.2.3/test/botchan.txt"
BOTCHAN_SHA256 = "464bd5300c24fce16fcc4555d4231a57632caae4d0090ad6aa92854a3b227ba7"

VOCAB_SIZE = 2000
RANDOM_SEED = 20220617  # any fixed value; the trainer reads it only where it samples

# Every option is spelled out so the model does not depend on trainer defaults.
TRAINER_OPTIONS = dict(
  model_type="unigram",
  vocab_size=VOCAB_SIZE,
  pad_id=0,
  eos_id=1,
  unk_id=2,
  bos_id=-1,  # T5 layout
  byte_fallback=True,  # any UTF-8 text encodes without <unk>
  character_coverage=0.9995,
  normalization_rule_name="nmt_nfkc",  # as T5's vocabulary
  num_threads=1,
  input_sentence_size=0,  # use every sentence, so nothing is sampled
  shuffle_input_sentence=False,
  minloglevel=2,  # the trainer's own log is long; this script prints progress instead
)


def sha256_of(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def file_sha256(path: str) -> str:
  with open(path, "rb") as f:
    return sha256_of(f.read())


def check_sha256(data: bytes, expected: str, what: str):
  actual = sha256_of(data)
  if actual != expected:
    raise SystemExit(f"{what} has sha256 {actual}, expected {expected}")


def fetch_botchan(work_dir: str) -> bytes:
  print(f"downloading the {SENTENCEPIECE_SDIST} source distribution with pip ...", flush=True)
  subprocess.run(
    [
      sys.executable,
      "-m",
      "pip",
      "download",
      SENTENCEPIECE_SDIST,
      "--no-binary",
      ":all:",
      "--no-deps",
      "--quiet",
      "-d",
      work_dir,
    ],
    check=True,
  )
  with open(os.path.join(work_dir, SDIST_FILE), "rb") as f:
    sdist = f.read()
  check_sha256(sdist, SDIST_SHA256, SDIST_FILE)
  with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as tar:
    return tar.extractfile(BOTCHAN_MEMBER).read()


def read_botchan(path) -> bytes:
  if path is None:
    with tempfile.TemporaryDirectory() as work_dir:
      data = fetch_botchan(work_dir)
  else:
    with open(path, "rb") as f:
      data = f.read()
  check_sha256(data, BOTCHAN_SHA256, "botchan.txt")
  return data


def training_sentences(botchan: bytes) -> list:
  with open(EXTRA_TEXT, encoding="utf-8") as f:
    extra = f.read()
  # utf-8-sig: botchan.txt starts with a byte-order mark, which is not text.
  lines = botchan.decode("utf-8-sig").splitlines() + extra.splitlines()
  return [line.strip() for line in lines if line.strip()]


def train(sentences: list) -> bytes:
  print(
    f"training a {VOCAB_SIZE}-piece unigram model on {len(sentences)} sentences ...", flush=True
  )
  spm.set_random_generator_seed(RANDOM_SEED)
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
    sentence_iterator=iter(sentences), model_writer=model, **TRAINER_OPTIONS
  )
  serialized = model.getvalue()
  check_model(serialized)
  return serialized


def check_model(serialized: bytes):
  proto = sentencepiece_model_pb2.ModelProto.FromString(serialized)
  if len(proto.pieces) != VOCAB_SIZE:
    raise SystemExit(f"trained model has {len(proto.pieces)} pieces, expected {VOCAB_SIZE}")
  processor = spm.SentencePieceProcessor(model_proto=serialized)
  ids = (processor.pad_id(), processor.eos_id(), processor.unk_id(), processor.bos_id())
  if ids != (0, 1, 2, -1):
    raise SystemExit(f"trained model has pad/eos/unk/bos ids {ids}, expected (0, 1, 2, -1)")


def build(botchan_path, output_path: str) -> str:
  serialized = train(training_sentences(read_botchan(botchan_path)))
  with open(output_path, "wb") as f:
    f.write(serialized)
  digest = sha256_of(serialized)
  print(f"wrote {output_path} ({len(serialized)} bytes, sha256 {digest})", flush=True)
  return digest


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
    "--botchan",
    help="path to an already downloaded botchan.txt "
    "(skips pip download; its sha256 is still checked)",
  )
  parser.add_argument("--output", default=SHIPPED_MODEL, help="where to write the model")
  parser.add_argument(
    "--check",
    action="store_true",
    help="rebuild into a temp dir and compare with the shipped model",
  )
  args = parser.parse_args(argv)
  if not args.check:
    build(args.botchan, args.output)
    return 0
  with tempfile.TemporaryDirectory() as out_dir:
    rebuilt = build(args.botchan, os.path.join(out_dir, os.path.basename(SHIPPED_MODEL)))
  shipped = file_sha256(SHIPPED_MODEL)
  if rebuilt != shipped:
    print(f"MISMATCH: rebuilt sha256 {rebuilt} != shipped {SHIPPED_MODEL} sha256 {shipped}")
    return 1
  print(f"OK: the rebuilt model is identical to {SHIPPED_MODEL}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
