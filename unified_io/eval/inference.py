"""One prompt about one image through a trained model: the structured answer and a picture.

`predict(predictor, image, prompt, task=None)` returns a dict with "text" (and, for text
outputs, "log_likelihood": the greedy output's summed token log-probability) and, by
task, "boxes" (pixel x1, y1, x2, y2 of the original image) + "labels", "keypoints"
[17, 3] (x, y, visibility), "masks" + "labels", "depth" (metres), "normals" (unit vectors)
or "image" (a generated image in [0, 1]): the fields of the task's output kind
(`unified_io.eval.outputs`), decoded and post-processed exactly as evaluation does.
A prompt cut to fit the model's text input adds "prompt_truncated" (see `predict`).
`python -m unified_io.predict` is its command line; the one-at-a-time GRIT runner calls it
per sample.

`predict_batch` answers many prompts at once with one compiled call per batch, each row
as `predict` answers it alone (the batched GRIT runner uses it).
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Callable, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec

from unified_io.common import axis_rules
from unified_io.common import locations
from unified_io.common import visualize
from unified_io.common import vocab
from unified_io.data import prompts as prompt_templates
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import outputs
from unified_io.model import generation

O = tasks_lib.Output
# The features the network reads at inference (the rest are training targets).
MODEL_INPUTS = ("text_inputs", "image_inputs", "image_input_mask")
# task -> (prompt key, output kind, what the arguments are). Classification here is free
# text: a lone prompt has no answer options to choose from.
TASKS = {
  "caption": ("image_captioning", O.TEXT, ""),
  "vqa": ("vqa", O.TEXT, "question"),
  "classification": ("image_classification", O.TEXT, ""),
  "categorization": ("object_categorization", O.TEXT, "box"),
  "region_caption": ("region_captioning", O.TEXT, "box"),
  "detection": ("detection", O.BOXES, ""),
  "localization": ("localization", O.BOXES, "class name"),
  "refexp": ("refexp", O.BOXES, "expression"),
  "keypoints": ("keypoint", O.KEYPOINTS, "box"),
  "depth": ("depth", O.DEPTH, ""),
  "normals": ("surface_normal", O.NORMALS, ""),
  "segmentation": ("segmentation", O.SEGMENTATION, "class name"),
  "image_generation": ("image_generation", O.IMAGE, "caption"),
  "inpainting": ("image_inpainting", O.IMAGE, "box + class name"),
}


def kind_of(task: Optional[str]) -> outputs.Kind:
  """The output kind of a `TASKS` task; free text (boxes if it writes any) without one."""
  return outputs.get(TASKS[task][1] if task else O.TEXT)


def make_prompt(
  task: str, image_hw, arg: str = "", box: Optional[Sequence[float]] = None, layout=None
) -> str:
  if task not in TASKS:
    raise ValueError(f"Unknown task {task!r}; tasks: {', '.join(sorted(TASKS))}")
  key, _, wants = TASKS[task]
  if "box" in wants:
    if box is None:
      raise ValueError(f"--task={task} needs --box=x1,y1,x2,y2 (pixels of the input image)")
    region = locations.box_to_text(box, image_hw, layout)
    arg = f"{region} {arg}".strip() if arg else region
  elif wants and not arg.strip():
    raise ValueError(f"--task={task} needs --arg (the {wants})")
  if key == "vqa":
    arg = arg.lower()
  template = prompt_templates.PROMPTS[key][0]
  return template.format(arg) if "{}" in template else template


def raw_input(prompt: str, image) -> dict:
  """A raw example of the prompt and image alone (no targets), for Predictor.features."""
  return {"prompt": prompt, "image": image, "target_text": "", "target_image": None}


def context(predictor) -> outputs.Context:
  """Post-processing of a predictor's outputs: labels read without image ids."""
  return outputs.Context(predictor.layout, predictor.decode_text, predictor.config.data.max_depth)


def _image_hw(predictor, image):
  return (predictor.config.model.image_size,) * 2 if image is None else np.asarray(image).shape[:2]


def predict(
  predictor,
  image,
  prompt: str,
  task: Optional[str] = None,
  seed: int = 0,
  region: Optional[Sequence[float]] = None,
  name: str = "input",
) -> dict:
  """Structured prediction for one image (uint8/float [H, W, 3] or None) and prompt.

  Decoded and post-processed by the task's output kind (`unified_io.eval.outputs`), as in
  evaluation. region: for task="keypoints", the person box x1, y1, x2, y2 of the prompt
  (pixels); joints the model leaves unlocated are placed at its centre rather than the
  image's. A prompt longer than the model's text input is cut to fit, and the result then
  carries "prompt_truncated" (a predictor.PromptTruncation, `.notice()` says it); `name`
  names the input there.
  """
  if not prompt or not prompt.strip():
    raise ValueError("The prompt is empty")
  kind = kind_of(task)
  image_hw = _image_hw(predictor, image)
  features, cut = predictor.features_and_truncations([raw_input(prompt, image)], names=[name])
  pred = outputs.decode(kind, predictor, features, seed=seed)[0]
  out = {"prompt": prompt, "task": task, "text": pred["text"]}
  if cut:
    out["prompt_truncated"] = cut[0]
  if "log_likelihood" in pred:
    out["log_likelihood"] = pred["log_likelihood"]
  out.update(kind.parse(pred, image_hw, context(predictor), region))
  return out


def predict_batch(
  predictor,
  images: Sequence,
  prompts: Sequence[str],
  task: Optional[str] = None,
  seed: int = 0,
  regions: Optional[Sequence[Optional[Sequence[float]]]] = None,
  names: Optional[Sequence[str]] = None,
  place: Optional[Callable[[dict], dict]] = None,
) -> List[dict]:
  """`predict` for every (images[i], prompts[i], regions[i]) in one batch.

  Row i is what `predict(predictor, images[i], prompts[i], task, seed, regions[i],
  names[i])` returns: the same tokens, text and fields, and a log-likelihood equal up to
  float rounding (a batch changes XLA's reduction order, by about 1e-7 relative). Output
  images are sampled as `predict` samples them, every row with the key of `seed`, as if
  it ran alone (`_row_seeded_image_fn`); plain batched sampling would draw other noise.
  place: features -> the features the model runs on, e.g. padded to a fixed batch size
  (rows past len(prompts) are dropped) and sharded over devices; the identity by default.
  """
  if len(images) != len(prompts):
    raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
  if not prompts:
    return []
  for i, prompt in enumerate(prompts):
    if not prompt or not prompt.strip():
      raise ValueError(f"The prompt of {names[i] if names else f'input {i}'} is empty")
  n = len(prompts)
  regions = regions if regions is not None else [None] * n
  names = names if names is not None else [f"input {i}" for i in range(n)]
  kind = kind_of(task)
  rows, cuts = [], []  # row by row, so each truncation is its row's (names may repeat)
  for prompt, image, name in zip(prompts, images, names):
    row, cut = predictor.features_and_truncations([raw_input(prompt, image)], names=[name])
    rows.append(row)
    cuts.append(cut[0] if cut else None)
  features = {k: np.concatenate([row[k] for row in rows]) for k in rows[0]}
  features = place(features) if place is not None else features
  # Text the batched way (every row decodes independently); images row-seeded below.
  preds = outputs.decode(dataclasses.replace(kind, image_decoding=None), predictor, features)
  if kind.image_decoding is not None:
    for pred, image in zip(preds, _row_seeded_images(predictor, features, seed, kind)):
      pred["image"] = image
  out = []
  for i in range(n):
    pred = preds[i]
    row = {"prompt": prompts[i], "task": task, "text": pred["text"]}
    if cuts[i] is not None:
      row["prompt_truncated"] = cuts[i]
    if "log_likelihood" in pred:
      row["log_likelihood"] = pred["log_likelihood"]
    row.update(kind.parse(pred, _image_hw(predictor, images[i]), context(predictor), regions[i]))
    out.append(row)
  return out


# Predictor -> {mesh: jitted image function}; weak, so a dropped predictor frees them.
_IMAGE_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _row_seeded_image_fn(predictor, mesh):
  """Predictor.image's computation for a batch whose rows are each sampled alone.

  `jax.random.categorical` on [B, V] logits draws different noise for row i than on that
  row alone, so a batch would not reproduce one-at-a-time sampling. Generating under
  `jax.vmap` with the key unbatched gives every row the draws of a batch of one. The
  VQ-GAN decodes one row at a time too (`lax.map`: a batched convolution sums in another
  order), on each device its own rows (`shard_map` over the data axis).
  """
  model, vq = predictor.model, predictor.vq
  grid = vq.grid_size

  def one_row(params, row, rng, top_p, temperature):
    _, ids = generation.generate_image(
      model,
      params,
      {k: v[None] for k, v in row.items()},
      eos_id=vocab.EOS_ID,
      rng=rng,
      top_p=top_p,
      temperature=temperature,
    )
    return ids[0]

  def decode_rows(vq_params, codes):
    one = lambda c: vq.decode_fn(vq_params, c.reshape(1, grid, grid))[0]
    return jax.lax.map(one, codes)

  data = PartitionSpec(axis_rules.DATA_AXIS)
  decode = jax.shard_map(
    decode_rows, mesh=mesh, in_specs=(PartitionSpec(), data), out_specs=data, check_vma=False
  )

  def run(params, vq_params, batch, rng, top_p, temperature):
    ids = jax.vmap(one_row, in_axes=(None, 0, None, None, None))(
      params, batch, rng, top_p, temperature
    )
    codes = jnp.clip(ids - model.config.padded_text_size, 0, vq.n_codes - 1)
    return (decode(vq_params, codes) + 1.0) / 2.0

  return jax.jit(run)


def _mesh_of(features):
  sharding = getattr(features["text_inputs"], "sharding", None)
  if isinstance(sharding, NamedSharding) and axis_rules.DATA_AXIS in sharding.mesh.axis_names:
    return sharding.mesh
  # One device; Auto like the training mesh (jax.make_mesh's default is Explicit).
  return jax.make_mesh(
    (1,), (axis_rules.DATA_AXIS,), axis_types=(AxisType.Auto,), devices=jax.local_devices()[:1]
  )


def _row_seeded_images(predictor, features, seed: int, kind: outputs.Kind) -> np.ndarray:
  """Images [B, H, W, 3] in [0, 1] as `Predictor.image(**kind.image_decoding)` makes each
  row alone: num_samples > 1 averages the samples of seeds seed, seed + 1, ..."""
  settings = dict(kind.image_decoding)
  num_samples = int(settings.pop("num_samples", 1))
  mesh = _mesh_of(features)
  fns = _IMAGE_FNS.setdefault(predictor, {})
  if mesh not in fns:
    fns[mesh] = _row_seeded_image_fn(predictor, mesh)
  inputs = {k: jnp.asarray(features[k]) for k in MODEL_INPUTS}
  total = None
  for k in range(num_samples):  # summed in Predictor.image's order, so the mean is equal
    images = np.asarray(
      fns[mesh](
        predictor.params,
        predictor.vq.params,
        inputs,
        jax.random.key(seed + k),
        settings["top_p"],
        settings["temperature"],
      )
    )
    total = images if total is None else total + images
  return total / num_samples


def picture(image, result: dict, max_depth: Optional[float] = None):
  """The input with the result drawn on it, and beside it the map or image it is."""
  kind = kind_of(result.get("task"))
  tiles = []
  if image is not None:
    drawn = kind.draw(image, result, 256, max_depth) if kind.draws_on_input else None
    if drawn is None:
      drawn, _ = visualize.upscale(visualize.as_pil(image), 256)
    tiles.append((drawn, result["prompt"]))
  if not kind.draws_on_input:
    drawn = kind.draw(None, result, 256, max_depth)
    if drawn is not None:
      tiles.append((drawn, kind.label))
  if result.get("text"):
    tiles.append((None, f"answer: {result['text']}"))
  return visualize.grid([tiles], tile_size=(256, 256))
