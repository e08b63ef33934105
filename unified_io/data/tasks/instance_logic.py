"""Targets and inputs painted from instance masks: segmentation (A.1.3: every instance of
one class in its own palette colour on black) and segmentation-based image generation
(A.1.1: the instance map in, the image out). The task files call these with the masks their
dataset gives (built-in scenes, COCO, LVIS, Open Images); vision_logic.py holds the rest of
the vision task logic.
"""

from __future__ import annotations

import collections
from typing import Collection, List, Sequence

import numpy as np

from unified_io.common import dense_labels
from unified_io.data.tasks import vision_logic as vt

# Instances one segmentation image can tell apart: one palette colour each.
PALETTE_SIZE = len(dense_labels.NAMED_COLORS)


def _visible(masks: Sequence[np.ndarray]) -> List[int]:
  visible = [k for k, mask in enumerate(masks) if mask.any()]
  if not visible:
    raise vt.Skip("no object has visible pixels")
  return visible


def _paint(image_hw, masks: Sequence[np.ndarray], members: Sequence[int]) -> np.ndarray:
  """Instance map [H, W]: 0 background, j + 1 on masks[members[j]].

  Larger instances are painted first: real datasets' masks overlap (LVIS), and a small
  object painted last stays visible. Disjoint masks give the same map in any order.
  """
  instance_map = np.zeros(image_hw, np.int64)
  areas = [int(masks[k].sum()) for k in members]
  for j in sorted(range(len(members)), key=lambda j: -areas[j]):
    instance_map[masks[members[j]]] = j + 1
  return instance_map


def segmentation(
  objs: vt.Objects,
  masks: Sequence[np.ndarray],
  rng,
  ctx,
  prompt: vt.Prompt,
  exclude: Collection[str] = (),
) -> dict:
  """Every instance of one class, each a palette colour on black (A.1.3).

  The colours: distinct random ones (the paper), or with ctx.object_order "raster" the
  palette's first colours in order, given to the instances in `raster_order` of their boxes.

  masks[k]: bool [H, W] of kept object k. The class is drawn among those with a visible
  instance, except classes in `exclude` (their annotation misses instances, so the target
  would paint some of them black) and classes with more instances than the palette has
  colours (the output could not tell them apart).
  """
  visible = _visible(masks)
  counts = collections.Counter(objs.names[k] for k in visible)
  present = sorted(n for n, c in counts.items() if n not in exclude and c <= PALETTE_SIZE)
  if not present:
    crowded = sum(c > PALETTE_SIZE for c in counts.values())
    raise vt.Skip(
      f"no class to segment: {len(counts)} visible, {crowded} with more than "
      f"{PALETTE_SIZE} instances, {sum(n in exclude for n in counts)} not exhaustively annotated"
    )
  name = present[vt.pick(len(present), rng)]
  members = [k for k in visible if objs.names[k] == name]
  if ctx.object_order == "raster":
    members = [members[j] for j in vt.raster_order(objs.boxes[members])]
    colors = np.arange(len(members))
  else:
    colors = dense_labels.pick_colors(len(members), rng)
  instance_map = _paint(objs.image_hw, masks, members)
  return vt.raw_example(
    prompt(name),
    objs.image,
    objs.image_hw,
    objs.example_id,
    target_image=dense_labels.instances_to_image(instance_map, colors),
    nearest=True,
    class_name=name,
    masks=np.stack([masks[k] for k in members]),
    boxes=objs.boxes[members],
    colors=[dense_labels.COLOR_NAMES[c] for c in colors],
  )


def segmentation_generation(
  objs: vt.Objects, masks: Sequence[np.ndarray], rng, prompt: vt.Prompt, keep_largest: bool = False
) -> dict:
  """The image from its instance map and the prompt's "colour : class" list (A.1.1).

  More visible instances than palette colours skip the example, or with `keep_largest` only
  the largest PALETTE_SIZE are drawn (the paper's map covers "some or all of the pixels";
  real images often hold more instances than the palette). An instance that others cover
  completely is left out of the list, so every listed colour is in the map.
  """
  visible = _visible(masks)
  if len(visible) > PALETTE_SIZE:
    if not keep_largest:
      raise vt.Skip(f"{len(visible)} instances, more than the palette's colours")
    largest = sorted(visible, key=lambda k: -int(masks[k].sum()))[:PALETTE_SIZE]
    visible = sorted(largest)
  colors = dense_labels.pick_colors(len(visible), rng)
  instance_map = _paint(objs.image_hw, masks, visible)
  shown = set(np.unique(instance_map).tolist())
  listed = [j for j in range(len(visible)) if j + 1 in shown]
  color_names = [dense_labels.COLOR_NAMES[colors[j]] for j in listed]
  names = [objs.names[visible[j]] for j in listed]
  mapping = " , ".join(f"{color} : {name}" for color, name in zip(color_names, names))
  return vt.raw_example(
    prompt(mapping),
    dense_labels.instances_to_image(instance_map, colors),
    objs.image_hw,
    objs.example_id,
    target_image=vt.to_float(objs.image),
    colors=color_names,
    labels=names,
  )
