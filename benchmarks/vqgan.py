"""VQ-GAN tokenizer benchmark: encode/decode throughput and reconstruction quality.

  .venv/bin/python benchmarks/vqgan.py --weights=vqgan/weights/builtin
  .venv/bin/python benchmarks/vqgan.py --weights=vqgan/weights/builtin --num_scenes=500 --batch=64

Prints
- encode and decode images/s: jitted `encode_codes` / `decode_codes` on --batch images, after
  one warm-up call, median of --repeats timed calls (block_until_ready; host transfers
  excluded);
- reconstruction PSNR (dB) and SSIM (skimage.metrics, data range 1, over RGB) of held-out
  images, each a mean over images: the built-in validation scenes as RGB and as each dense
  rendering (vqgan/data.py; max_depth as given, which must match the training config), and
  photos bundled with scikit-image, centre-cropped to a square and resized (Lanczos) to the
  model's resolution. A tokenizer trained on the built-in scenes has never seen photos: their
  numbers show how far it is from a general-purpose image tokenizer.
"""

import argparse
import os
import statistics
import sys
import time

import jax
import numpy as np
import PIL.Image
from skimage import data as skdata
from skimage import metrics

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import vqgan
from vqgan import data

PHOTOS = (
  "astronaut",
  "camera",
  "chelsea",
  "coffee",
  "rocket",
  "coins",
  "moon",
  "hubble_deep_field",
  "immunohistochemistry",
  "retina",
)


def photo(name, size):
  """A scikit-image sample as float32 [size, size, 3] in [0, 1]."""
  image = np.asarray(getattr(skdata, name)())
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, axis=-1)
  image = image[..., :3].astype(np.uint8)
  h, w = image.shape[:2]
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  square = PIL.Image.fromarray(image[top : top + side, left : left + side])
  return np.asarray(square.resize((size, size), PIL.Image.LANCZOS), np.float32) / 255.0


def reconstruct(vq, images, batch):
  """images [N, H, W, 3] in [0, 1] -> reconstructions in [0, 1]."""
  codes = vq.encode(images * 2.0 - 1.0, chunk_size=batch)
  return (np.asarray(vq.decode(codes, chunk_size=batch)) + 1.0) / 2.0


def quality(images, recon):
  psnr = data.psnr(images, recon)
  ssim = [
    metrics.structural_similarity(a, b, channel_axis=-1, data_range=1.0)
    for a, b in zip(images.astype(np.float64), recon.astype(np.float64))
  ]
  return float(np.mean(psnr)), float(np.mean(ssim))


def throughput(fn, x, repeats):
  jax.block_until_ready(fn(x))  # compile + warm-up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(x))
    times.append(time.perf_counter() - start)
  return x.shape[0] / statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--weights",
    default="vqgan/weights/builtin",
    help="directory written by vqgan.save (config.json + params.msgpack)",
  )
  parser.add_argument("--num_scenes", type=int, default=200, help="validation scenes")
  parser.add_argument("--batch", type=int, default=64, help="images per encode/decode call")
  parser.add_argument("--repeats", type=int, default=5, help="timed calls")
  parser.add_argument(
    "--max_depth", type=float, default=20.0, help="metres mapped to white in depth renderings"
  )
  args = parser.parse_args()

  vq = vqgan.load(args.weights)
  cfg = vq.config
  print(
    f"{args.weights}: {cfg.resolution}x{cfg.resolution} -> {cfg.grid_size}x{cfg.grid_size} "
    f"codes of {cfg.n_codes}; {jax.devices()[0].platform} ({jax.device_count()} devices)"
  )

  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (args.batch, cfg.resolution, cfg.resolution, 3)).astype(np.float32)
  images = jax.device_put(images)
  codes = jax.device_put(
    rng.integers(cfg.n_codes, size=(args.batch, cfg.grid_size, cfg.grid_size)).astype(np.int32)
  )
  encode = jax.jit(vq.encode_fn)
  decode = jax.jit(vq.decode_fn)
  enc = throughput(lambda x: encode(vq.params, x), images, args.repeats)
  dec = throughput(lambda c: decode(vq.params, c), codes, args.repeats)
  print(f"throughput (batch {args.batch}): encode {enc:.1f} images/s, decode {dec:.1f} images/s")

  rows = []
  if cfg.resolution != data.IMAGE_SIZE:
    print(
      f"(built-in scenes are {data.IMAGE_SIZE}x{data.IMAGE_SIZE}; skipped for a "
      f"{cfg.resolution}x{cfg.resolution} model)"
    )
  else:
    for modality in data.MODALITIES:
      heldout = data.heldout_images(modality, args.num_scenes, args.max_depth)
      rows.append(
        (
          f"scenes/{modality}",
          len(heldout),
          *quality(heldout, reconstruct(vq, heldout, args.batch)),
        )
      )
  photos = np.stack([photo(name, cfg.resolution) for name in PHOTOS])
  recon = reconstruct(vq, photos, args.batch)
  for name, image, rec in zip(PHOTOS, photos, recon):
    rows.append((f"photo/{name}", 1, *quality(image[None], rec[None])))
  rows.append(("photos (mean)", len(photos), *quality(photos, recon)))

  print(f"\n{'held-out images':30s} {'n':>5s} {'PSNR dB':>8s} {'SSIM':>7s}")
  for name, n, psnr, ssim in rows:
    print(f"{name:30s} {n:5d} {psnr:8.2f} {ssim:7.4f}")


if __name__ == "__main__":
  main()
