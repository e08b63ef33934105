"""Input pipeline throughput: unified examples per second for a mixture on this machine.

  python benchmarks/input_pipeline.py --mixture=builtin_multitask --config=configs/small.py \
      --batch=8 --batches=20 --workers=2
  python benchmarks/input_pipeline.py --real_size --config=configs/small.py

Builds examples at the given config's sizes (image, text lengths, VQ-GAN target
resolution) and prints examples/s and tokens/s after one warm-up batch. The official T5
SentencePiece model is not shipped, so text is tokenized with the built-in 2k-piece model
(tokenization is a small part of the cost). Compare with the examples/s the train step of
the same config consumes (benchmarks/train_step.py): input must not be the bottleneck.

`--real_size` writes COCO-like mock records (coco/2017 and coco_captions/2014 with 640x480
photo JPEGs) into a temporary data_dir and times the real preprocessing of four COCO tasks
on them: one thread, per stage (and cProfile), the image encodes eager vs the entry points, then
thread workers (pipeline.Batches) and process workers (process_workers.ProcessBatches) in
interleaved rounds with CPU time counted in every process, and the CPU cost per example
against what one TPU v4 host consumes (Small and XL, from AOT FLOPs; flags give the inputs).
TensorFlow runs one intra-op and one inter-op thread (env TF_NUM_INTRAOP_THREADS /
TF_NUM_INTEROP_THREADS, set before it starts unless already set), so one worker is one core.
"""

import argparse
import collections
import cProfile
import functools
import importlib.util
import io
import os
import pickle
import pstats
import sys
import tempfile
import time

if "--real_size" in sys.argv:  # before TensorFlow starts: one worker = one core
  os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
  os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from unified_io.common import text_tokenizer
from unified_io.data import pipeline
from unified_io.data import from_config
from vqgan import configs as vqgan_configs


def load_config(path):
  spec = importlib.util.spec_from_file_location("benchmark_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def _spec(config) -> pipeline.ExampleSpec:
  vq_config = vqgan_configs.get_config(config.vqgan.preset)
  tokenizer = text_tokenizer.TextTokenizer("tokenizers/uio_tiny_2k.model", config.vocab.image_codes)
  return pipeline.ExampleSpec(
    tokenizer=tokenizer,
    text_inputs=config.lengths.text_inputs,
    text_targets=config.lengths.text_targets,
    input_image_size=config.model.image_size,
    patch_size=config.model.patch_size,
    target_image_size=vq_config.resolution,
    target_downsample=vq_config.downsample_factor,
  )


def main():
  if "--real_size" in sys.argv:
    return real_size_main()
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mixture", default="builtin_multitask")
  parser.add_argument("--config", default="configs/small.py")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--batches", type=int, default=20)
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--data_dir", default="")
  args = parser.parse_args()

  config = load_config(args.config)
  config.data.source = "mixture"
  config.data.mixture = args.mixture
  config.data.data_dir = args.data_dir
  config.data.workers = args.workers
  config.train.batch_size = args.batch
  vq_config = vqgan_configs.get_config(config.vqgan.preset)
  spec = _spec(config)
  batches = from_config.train_batches(config, spec, 0, 1)
  next(batches)  # warm-up: opens the sources, builds the built-in dataset if needed
  start = time.perf_counter()
  examples = tokens = 0
  for _ in range(args.batches):
    batch = next(batches)
    examples += len(batch["text_inputs"])
    tokens += int(
      np.sum(batch["text_inputs"] > 0)
      + np.sum(batch["text_targets"] > 0)
      + np.sum(batch["image_target_mask"])
      + np.sum(batch["image_input_mask"])
    )
  seconds = time.perf_counter() - start
  batches.close()
  print(
    f"mixture {args.mixture} at {os.path.basename(args.config)} sizes (image "
    f"{config.model.image_size}, text {config.lengths.text_inputs}/"
    f"{config.lengths.text_targets}, target image {vq_config.resolution}), "
    f"{args.workers} workers, batch {args.batch}:"
  )
  print(
    f"  {examples / seconds:.1f} examples/s, {tokens / seconds:.0f} tokens/s "
    f"({args.batches} batches in {seconds:.1f} s)"
  )
  skipped = batches.stream.counters.summary()
  if skipped:
    print(f"  {skipped}")


# ----------------------------------------------------------------- --real_size: COCO-like

# What one TPU v4 host consumes. AOT FLOPs per device per train step from
# `python -m unified_io.aot` (TPU v4 topology): Small at global batch 2048 on 128 chips
# (data parallel), XL at 1024 on 512 chips (model=4, data=128). Peak: 275 TFLOP/s bf16 per
# chip (TPU v4 spec). Host: 4 chips; 240 vCPUs = 120 physical cores is an assumption (the
# TPU v4 VM's published vCPU count), not measured.
REAL_SIZE_TASKS = (
  "coco_detection",
  "coco_captioning",
  "coco_inpainting",
  "coco_image_generation",
)
PHOTOS = (
  "astronaut.png",
  "chelsea.png",
  "coffee.png",
  "rocket.jpg",
  "motorcycle_left.png",
  "hubble_deep_field.jpg",
  "retina.jpg",
  "ihc.png",
)
WORDS = (
  "a man riding a wave on top of a surfboard",
  "two dogs playing with a frisbee in a grassy park",
  "a plate of food with broccoli and a sandwich on a table",
  "a red bus driving down a city street next to tall buildings",
  "a cat sitting on a laptop keyboard in a dark room",
)


def _photo_jpegs(count: int, quality: int, grain: float, seed: int = 0):
  """`count` 640x480 (one in four 480x640, as in COCO) JPEGs of scikit-image sample photos:
  a random 4:3 crop of 50-100% of the photo, bicubic to size, random flip, light sensor
  grain. Photo-like content, so decode cost and file size are those of photos (noise
  images give 3-4x bigger files)."""
  import PIL.Image
  import skimage

  rng = np.random.default_rng(seed)
  folder = os.path.join(os.path.dirname(skimage.__file__), "data")
  photos = [PIL.Image.open(os.path.join(folder, n)).convert("RGB") for n in PHOTOS]
  out = []
  for i in range(count):
    photo = photos[i % len(photos)]
    portrait = i % 4 == 3
    w, h = photo.size
    aspect = 3 / 4 if portrait else 4 / 3
    scale = rng.uniform(0.5, 1.0)
    cw = int(min(w, h * aspect) * scale)
    ch = int(cw / aspect)
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    size = (480, 640) if portrait else (640, 480)
    image = photo.crop((x, y, x + cw, y + ch)).resize(size, PIL.Image.BICUBIC)
    pixels = np.asarray(image, np.float32)
    if rng.random() < 0.5:
      pixels = pixels[:, ::-1]
    pixels = np.clip(pixels + rng.normal(0, grain, pixels.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    out.append(buffer.getvalue())
  return out


def _coco_records(jpegs, seed: int = 1, captions: bool = False):
  """COCO-like records (TFDS coco/2017 or coco_captions/2014 features): 1-20 objects per
  image (COCO averages 7.3), boxes of plausible sizes, 5 captions of about 10 words."""
  rng = np.random.default_rng(seed)
  for i, jpeg in enumerate(jpegs):
    n = int(np.clip(rng.poisson(7), 1, 20))
    size = rng.uniform(0.05, 0.6, (n, 2))
    low = rng.uniform(0, 1, (n, 2)) * (1 - size)
    record = {
      "image": jpeg,
      "image/filename": f"{i:012d}.jpg",
      "image/id": i + 1,
      "objects": {
        "area": (size.prod(1) * 640 * 480).astype(np.int64),
        "bbox": np.concatenate([low, low + size], 1).astype(np.float32),
        "id": np.arange(n, dtype=np.int64) + 1000 * i,
        "is_crowd": rng.random(n) < 0.01,
        "label": rng.integers(0, 80, n),
      },
    }
    if captions:
      texts = [WORDS[int(k)] for k in rng.integers(0, len(WORDS), 5)]
      record["captions"] = {"id": np.arange(5, dtype=np.int64) + 10 * i, "text": texts}
    yield f"train-{i}", record


def write_coco_like(data_dir: str, records: int, quality: int, grain: float) -> float:
  """Prepares mock coco/2017 and coco_captions/2014 (train splits, ArrayRecord) in data_dir;
  returns the mean JPEG size in bytes."""
  import tensorflow_datasets as tfds

  jpegs = _photo_jpegs(records, quality, grain)
  for name, captions in (("coco/2017", False), ("coco_captions/2014", True)):
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
    builder._split_generators = lambda dl_manager, c=captions: {
      "train": _coco_records(jpegs, captions=c)
    }
    builder.download_and_prepare()
  return float(np.mean([len(j) for j in jpegs]))


class StageTimer:
  """Wall time inside wrapped functions (one thread only); `restore()` unwraps them."""

  def __init__(self):
    self.seconds = collections.Counter()
    self._undo = []

  def wrap(self, owner, attr: str, stage: str):
    original = getattr(owner, attr)

    def timed(*args, **kwargs):
      start = time.perf_counter()
      try:
        return original(*args, **kwargs)
      finally:
        self.seconds[stage] += time.perf_counter() - start

    setattr(owner, attr, timed)
    self._undo.append((owner, attr, original))

  def restore(self):
    for owner, attr, original in reversed(self._undo):
      setattr(owner, attr, original)
    self._undo.clear()


def _stage_breakdown(stream, indices):
  """Exclusive ms per example of each preprocessing stage, over `indices`."""
  import tensorflow_datasets as tfds
  from unified_io.common import image_preprocessing

  timer = StageTimer()
  timer.wrap(tfds.features.Image, "decode_example_np", "decode")
  timer.wrap(pipeline.RecordSource, "__getitem__", "record")
  timer.wrap(pipeline, "prepare", "prepare")
  timer.wrap(pipeline, "finalize", "finalize")
  timer.wrap(text_tokenizer.TextTokenizer, "encode", "tokenize")
  timer.wrap(image_preprocessing, "preprocess_image", "input_image")
  timer.wrap(pipeline, "_target_pixels", "target")
  start = time.perf_counter()
  try:
    for e in indices:
      stream.element(e)
  finally:
    timer.restore()
  total = time.perf_counter() - start
  t = timer.seconds
  parts = [
    ("JPEG decode (PIL, in TFDS deserialize)", t["decode"]),
    ("record read + deserialize, other fields", t["record"] - t["decode"]),
    ("task preprocess (boxes, text, inpaint blanking)", t["prepare"] - t["finalize"]),
    ("tokenize prompt + target", t["tokenize"]),
    ("input image: resize 384, pad, normalise, patch mask", t["input_image"]),
    ("target rendering: resize 256, [-1, 1], mask", t["target"]),
    (
      "finalize, other (padding, casts)",
      t["finalize"] - t["tokenize"] - t["input_image"] - t["target"],
    ),
    ("schedule, permutation, fallbacks", total - t["record"] - t["prepare"]),
  ]
  n = len(indices)
  return [(label, 1e3 * seconds / n) for label, seconds in parts], 1e3 * total / n


def _proc_cpu_seconds(pids) -> float:
  """User + system CPU seconds of processes `pids` so far (/proc/<pid>/stat, Linux)."""
  total = 0
  for pid in pids:
    with open(f"/proc/{pid}/stat") as f:
      fields = f.read().rsplit(")", 1)[1].split()
    total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
  return total / os.sysconf("SC_CLK_TCK")


class _Runner:
  """One way of making examples: `run(n)` makes n of them, returns (wall s, CPU s)."""

  def __init__(self, label, make, cpu=time.process_time):
    self.label, self._make, self._cpu = label, make, cpu
    self.walls, self.cpus, self.mains = [], [], []

  def run(self, n: int):
    cpu, main, start = self._cpu(), time.process_time(), time.perf_counter()
    self._make(n)
    self.walls.append(time.perf_counter() - start)
    self.cpus.append(self._cpu() - cpu)
    self.mains.append(time.process_time() - main)  # this process's part (collecting)


def _batch_maker(batches, batch: int):
  def make(n):
    for _ in range(n // batch):
      next(batches)

  next(batches)  # warm-up: worker start-up, first records
  return make


def _eager_vs_compiled(jpeg: bytes, spec, repeats: int = 20):
  """CPU ms of the input and target image encodes: the TF ops run eagerly one by one (how
  the numpy entry points ran them before), and the entry points the pipeline calls
  (`preprocess_image` / `preprocess_target_image`: one tf.function each, then numpy)."""
  import PIL.Image
  import tensorflow as tf
  from unified_io.common import image_preprocessing as ip

  photo = np.asarray(PIL.Image.open(io.BytesIO(jpeg)))
  image01 = tf.constant(ip._standardise_numpy_image(photo, "photo"))
  encodes = {
    "input": (
      lambda: ip._tf_encode_input(image01, spec.input_image_size, spec.patch_size),
      lambda: ip.preprocess_image(
        photo, image_size=spec.input_image_size, patch_size=spec.patch_size
      ),
    ),
    "target": (
      lambda: ip._tf_encode_target(image01, spec.target_image_size, spec.target_downsample),
      lambda: ip.preprocess_target_image(
        photo, image_size=spec.target_image_size, patch_size=spec.target_downsample
      ),
    ),
  }
  rows = []
  for name, (eager, entry) in encodes.items():
    times, outputs = {}, {}
    for kind, fn in (("eager", eager), ("entry", entry)):
      outputs[kind] = [np.asarray(t) for t in fn()]
      start = time.process_time()
      for _ in range(repeats):
        [np.asarray(t) for t in fn()]
      times[kind] = 1e3 * (time.process_time() - start) / repeats
    pairs = zip(outputs["eager"], outputs["entry"])
    diff = max(float(np.max(np.abs(a.astype(np.float64) - b))) for a, b in pairs)
    rows.append((name, times["eager"], times["entry"], diff))
  return rows


def _host_demand(tflop, global_batch, chips, host_chips, peak_tflops, utilisation):
  step = tflop / (peak_tflops * utilisation)  # seconds per step
  per_host = global_batch * host_chips / chips  # examples per host per step
  return step, per_host, per_host / step


def real_size_main():
  from unified_io.data import process_workers

  parser = argparse.ArgumentParser(description="COCO-like 640x480 records, real preprocessing")
  parser.add_argument("--real_size", action="store_true")
  parser.add_argument("--config", default="configs/small.py")
  parser.add_argument("--data_dir", default="", help="default: a temporary directory")
  parser.add_argument("--records", type=int, default=64, help="per dataset")
  parser.add_argument("--jpeg_quality", type=int, default=95)
  parser.add_argument("--grain", type=float, default=3.0, help="sensor noise std (0-255)")
  parser.add_argument("--examples", type=int, default=48, help="single-thread timed examples")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--batches", type=int, default=6)
  parser.add_argument("--workers", default="1,2", help="thread and process worker counts")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--profile", type=int, default=12, help="cProfile rows (0: none)")
  # Demand of one TPU v4 host (sources above REAL_SIZE_TASKS).
  parser.add_argument("--peak_tflops", type=float, default=275.0)
  parser.add_argument("--utilisation", type=float, default=0.4)
  parser.add_argument("--host_chips", type=int, default=4)
  parser.add_argument("--host_cores", type=int, default=120, help="assumed physical cores")
  parser.add_argument("--host_vcpus", type=int, default=240, help="assumed vCPUs")
  parser.add_argument("--small_tflop", type=float, default=4.958)
  parser.add_argument("--small_batch", type=int, default=2048)
  parser.add_argument("--small_chips", type=int, default=128)
  parser.add_argument("--xl_tflop", type=float, default=16.8)
  parser.add_argument("--xl_batch", type=int, default=1024)
  parser.add_argument("--xl_chips", type=int, default=512)
  args = parser.parse_args()

  config = load_config(args.config)
  spec = _spec(config)
  scratch = None if args.data_dir else tempfile.TemporaryDirectory(prefix="uio_real_size_")
  data_dir = args.data_dir or scratch.name  # a temporary one is removed at exit
  start = time.perf_counter()
  jpeg_bytes = write_coco_like(data_dir, args.records, args.jpeg_quality, args.grain)
  print(
    f"wrote {args.records} COCO-like records x 2 datasets (640x480 JPEG, quality "
    f"{args.jpeg_quality}, mean {jpeg_bytes / 1e3:.0f} KB) to {data_dir} in "
    f"{time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.1f} on "
    f"{os.cpu_count()} CPUs; TF intra/inter-op threads "
    f"{os.environ.get('TF_NUM_INTRAOP_THREADS')}/{os.environ.get('TF_NUM_INTEROP_THREADS')}"
  )
  names = list(REAL_SIZE_TASKS)
  factory = functools.partial(
    pipeline.MixtureStream,
    names,
    [1 / len(names)] * len(names),
    spec,
    seed=0,
    data_dir=data_dir,
  )
  stream = factory()
  print(
    f"tasks {', '.join(names)} (uniform) at {os.path.basename(args.config)} sizes: image "
    f"{spec.input_image_size}/{spec.patch_size}, target {spec.target_image_size}, text "
    f"{spec.text_inputs}/{spec.text_targets}"
  )
  for e in range(4):
    stream.element(10_000 + e)  # warm-up: opens sources, traces nothing (eager TF)

  # One thread, plain.
  indices = list(range(args.examples))
  start, cpu = time.perf_counter(), time.process_time()
  for e in indices:
    features = stream.element(e)
  single = len(indices) / (time.perf_counter() - start)
  single_cpu_ms = 1e3 * (time.process_time() - cpu) / len(indices)
  blob = pickle.dumps(features, protocol=pickle.HIGHEST_PROTOCOL)
  start = time.perf_counter()
  for _ in range(20):
    pickle.loads(pickle.dumps(features, protocol=pickle.HIGHEST_PROTOCOL))
  pickle_ms = 1e3 * (time.perf_counter() - start) / 20
  print(
    f"\none thread: {single:.1f} examples/s wall ({1e3 / single:.1f} ms/example), "
    f"{single_cpu_ms:.1f} CPU ms/example = {1e3 / single_cpu_ms:.1f} examples/s per core"
  )
  print(f"  one example pickled: {len(blob) / 1e6:.2f} MB, {pickle_ms:.2f} ms to pickle+unpickle")

  # Per stage (wrapped functions; a separate pass, so the plain rate above is unwrapped).
  parts, total_ms = _stage_breakdown(stream, indices)
  print(
    f"\nper stage, wall ms/example (one thread, {len(indices)} examples, {total_ms:.1f} ms total):"
  )
  for label, ms in parts:
    print(f"  {label:<55} {ms:7.2f}  {100 * ms / total_ms:5.1f}%")
  if args.profile:
    profiler = cProfile.Profile()
    profiler.enable()
    for e in indices[:16]:
      stream.element(e)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "tottime" in line)
    print(f"\ncProfile, 16 examples, top {args.profile} by own time:")
    print("\n".join("  " + line for line in lines[start:]))

  jpeg = _photo_jpegs(1, args.jpeg_quality, args.grain)[0]
  print(
    "\nimage encodes on one 640x480 photo, CPU ms: the TF ops eagerly vs the entry point "
    "(one tf.function, then numpy):"
  )
  for name, eager, entry, diff in _eager_vs_compiled(jpeg, spec):
    print(
      f"  {name:<6}: eager {eager:5.1f}, entry point {entry:5.1f} ({eager / entry:.1f}x), "
      f"max abs difference {diff:.1e}"
    )

  # Workers: threads (pipeline.Batches) and processes (process_workers.ProcessBatches),
  # timed in interleaved rounds so that load from other jobs hits all alike. No prefetch:
  # nothing runs between timed segments, and the workers share each batch.
  counts = [int(w) for w in args.workers.split(",")]
  n = args.batch * args.batches
  position = iter(range(10**6, 10**9))
  runners = [
    _Runner("1 plain thread", lambda k: [stream.element(next(position)) for _ in range(k)])
  ]
  closers = []
  for w in counts:
    batches = pipeline.Batches(stream, args.batch, workers=w, prefetch=0)
    runners.append(_Runner(f"{w} thread workers", _batch_maker(batches, args.batch)))
    closers.append(batches)
  for w, transfer in [(counts[0], "pipe")] + [(w, "shm") for w in counts]:
    batches = process_workers.ProcessBatches(
      factory, args.batch, workers=w, prefetch=0, stream=stream, transfer=transfer
    )
    make = _batch_maker(batches, args.batch)
    pids = batches.worker_pids()
    cpu = lambda pids=pids: time.process_time() + _proc_cpu_seconds(pids)  # noqa: E731
    runners.append(_Runner(f"{w} process workers, {transfer}", make, cpu))
    closers.append(batches)
  for _ in range(args.rounds):
    for runner in runners:
      runner.run(n)
  for batches in closers:
    batches.close()
  print(
    f"\n{args.rounds} interleaved rounds of {n} examples each (batches of {args.batch}); "
    f"best round's wall rate, CPU ms/example summed over all processes, and cores busy "
    f"(CPU s / wall s, mean over rounds):"
  )
  best = {}
  for runner in runners:
    rate = best[runner.label] = n / min(runner.walls)
    cpu_ms = 1e3 * float(np.median(runner.cpus)) / n
    main_ms = 1e3 * float(np.median(runner.mains)) / n
    busy = sum(runner.cpus) / sum(runner.walls)
    part = f" ({main_ms:.1f} in the collecting process)" if "process" in runner.label else ""
    print(
      f"  {runner.label:<25}: {rate:6.1f} examples/s ({rate / best[runners[0].label]:.2f}x "
      f"of 1 plain thread), {cpu_ms:5.1f} CPU ms/example{part}, {busy:.2f} cores busy"
    )
  print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs after the runs")
  process_cpu_ms = 1e3 * float(np.median(runners[-1].cpus)) / n

  # What one TPU v4 host consumes, against the CPU cost per example in process workers
  # (worker + collecting process): cores needed if the workers scale linearly.
  per_core = 1e3 / process_cpu_ms
  print(
    f"\none TPU v4 host ({args.host_chips} chips at {100 * args.utilisation:.0f}% of "
    f"{args.peak_tflops:.0f} TFLOP/s; {args.host_cores} cores / {args.host_vcpus} vCPUs "
    f"assumed) vs {process_cpu_ms:.1f} CPU ms/example = {per_core:.1f} examples/s per core "
    f"(process workers, shm, measured here):"
  )
  for name, tflop, batch, chips in (
    ("Small", args.small_tflop, args.small_batch, args.small_chips),
    ("XL", args.xl_tflop, args.xl_batch, args.xl_chips),
  ):
    step, per_host, demand = _host_demand(
      tflop, batch, chips, args.host_chips, args.peak_tflops, args.utilisation
    )
    cores = demand / per_core
    verdict = "keeps up" if cores <= args.host_cores else "does NOT keep up"
    print(
      f"  {name:<5}: {tflop} TFLOP/device/step -> {1e3 * step:.1f} ms/step, {per_host:.0f} "
      f"examples/host/step -> {demand:.0f} examples/s/host = {cores:.1f} cores of "
      f"{args.host_cores} ({100 * cores / args.host_cores:.0f}%): input {verdict}"
    )


if __name__ == "__main__":
  main()
