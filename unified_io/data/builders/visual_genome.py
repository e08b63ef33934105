"""TFDS builder `uio_visual_genome`: Visual Genome v1.2, one record per image.

Release files (https://homes.cs.washington.edu/~ranjay/visualgenome/api.html, v1.2; the
same files are at visualgenome.org/api/v0/api_home.html), in `<manual_dir>/uio_visual_genome/`:

- `image_data.json`: [{image_id (v1.0: id), url, width, height, coco_id (null or int),
  flickr_id}]; the url ends in `VG_100K/<id>.jpg` or `VG_100K_2/<id>.jpg`.
- `objects.json`: [{image_id, objects: [{object_id, x, y, w, h, names: [str] (older
  releases: name), synsets: [str], merged_object_ids?}]}].
- `region_descriptions.json`: [{id (the image id), regions: [{region_id, image_id, phrase,
  x, y, width, height}]}].
- `question_answers.json`: [{id (the image id), qas: [{qa_id, image_id, question, answer,
  q_objects, a_objects}]}].
- `relationships.json`: [{image_id, relationships: [{relationship_id, predicate, synsets,
  subject: {object_id, x, y, w, h, name or names, synsets}, object: {same}}]}].
- `VG_100K/`, `VG_100K_2/`: the images (images.zip, images2.zip), `<image_id>.jpg`. Both
  may be symlinks to where the images already are.
- Optional, for the COCO exclusion below: COCO's `annotations/instances_val2014.json`,
  `annotations/captions_val2014.json`, `annotations/instances_val2017.json`,
  `annotations/captions_val2017.json` (any of them; `annotations/` may be a symlink to a COCO
  annotations folder) and/or `excluded_coco_ids.txt` (one COCO image id per line).

Splits. VG has no official split. An image whose `coco_id` is among the `images[].id` of
the COCO files above, or in `excluded_coco_ids.txt`, is left out of both splits: COCO's 2014
val images hold the Karpathy val/test captioning images and VQA v2 val, and 2017 val ids
are COCO 2014 ids too. With none of those files present nothing is excluded (logged as a
warning). The rest are split by `split_of`: validation when sha256 of the decimal image id,
read as an integer, is below VALIDATION_PER_MILLE (20) modulo 1000, i.e. about 2%; train
otherwise. Deterministic and independent of file order.

Record (one per image; boxes are float32 pixel (x1, y1, x2, y2) in the stored image):
  id (str image id), image_id, coco_id (-1: none), flickr_id (-1: none), file_name
  ("VG_100K/1.jpg"), image (JPEG), width, height (of the stored image),
  objects {object_id, box, name, synset}, regions {region_id, box, phrase},
  qas {qa_id, question, answer}, relationships {relationship_id, predicate, synset,
  subject_id, subject_box, subject_name, object_id, object_box, object_name}.

Decisions on the release's awkward cases (each counted in the log):
- An object's class name is the first of its `names` (or its `name`): VG's names list is
  mostly one entry, and later ones are aliases the annotators merged. Names and predicates
  are lower-cased with whitespace collapsed ("Tree " -> "tree"); an object, relationship
  end or predicate with no name is dropped. `synset` is the first synset, or "".
- Boxes are clipped to the image; a box of zero or negative width or height, or wholly
  outside the image, is dropped (with its region or relationship).
- Where the image file's size differs from image_data.json's, the boxes are scaled to the
  file (they were drawn on the size the JSON gives). width/height are always the file's.
- An image whose file is in neither folder is skipped; one PIL cannot open is skipped; one
  not a JPEG in RGB or greyscale (CMYK, PNG renamed .jpg) is re-encoded as an RGB JPEG so
  every reader decodes it to [H, W, 3].
- Empty phrases, questions and answers are dropped; text is otherwise stored as released
  (whitespace collapsed). Images with no annotation at all are kept (image-only tasks use them).

`download_and_prepare(file_format="array_record")` (`python -m unified_io.data.prepare
uio_visual_genome --data_dir=DIR`) is how the training pipeline reads it; TFDS 4.9.10 has
no per-builder default file format.
The annotations are held in memory while preparing: for the full release an estimated 10 GB at
peak (the largest JSON file parsed, beside the compact tuples kept of the others).
"""

from __future__ import annotations

import collections
import hashlib
import io
from typing import Dict, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from unified_io.data.builders import common

NAME = "uio_visual_genome"
IMAGE_FOLDERS = ("VG_100K", "VG_100K_2")
ANNOTATION_FILES = (
  "image_data.json",
  "objects.json",
  "region_descriptions.json",
  "question_answers.json",
  "relationships.json",
)
# COCO annotation files whose images[].id are excluded (any subset may be present).
COCO_EVAL_FILES = (
  "annotations/instances_val2014.json",
  "annotations/captions_val2014.json",
  "annotations/instances_val2017.json",
  "annotations/captions_val2017.json",
)
EXCLUDED_IDS_FILE = "excluded_coco_ids.txt"
VALIDATION_PER_MILLE = 20

# Per-image annotations as parsed, boxes still (x, y, w, h) in the JSON's frame.
Raw = Dict[str, list]


def split_of(image_id: int) -> str:
  digest = int(hashlib.sha256(str(int(image_id)).encode()).hexdigest(), 16)
  return "validation" if digest % 1000 < VALIDATION_PER_MILLE else "train"


def clean_name(value) -> str:
  return " ".join(str(value or "").lower().split())


def clean_text(value) -> str:
  return " ".join(str(value or "").split())


def name_of(entity: dict) -> Tuple[str, int]:
  """(the first of `names`, or `name`, cleaned; how many names the entity has)."""
  names = entity.get("names")
  if names is None:
    names = [entity["name"]] if entity.get("name") is not None else []
  names = [clean_name(n) for n in names if clean_name(n)]
  return (names[0] if names else ""), len(names)


def first(values) -> str:
  return str(values[0]) if values else ""


def xywh(entity: dict, width_key: str = "w", height_key: str = "h") -> Tuple[float, ...]:
  return tuple(float(entity[k]) for k in ("x", "y", width_key, height_key))


def clip_box(box, scale: Tuple[float, float], size: Tuple[int, int]) -> Optional[np.ndarray]:
  """(x, y, w, h) scaled by (sx, sy) -> (x1, y1, x2, y2) clipped to size (w, h); None if
  empty (zero or negative size, or wholly outside)."""
  x, y, w, h = box
  if not (w > 0 and h > 0):
    return None
  sx, sy = scale
  x1, y1 = max(x * sx, 0.0), max(y * sy, 0.0)
  x2, y2 = min((x + w) * sx, float(size[0])), min((y + h) * sy, float(size[1]))
  if x2 <= x1 or y2 <= y1:
    return None
  return np.array([x1, y1, x2, y2], np.float32)


def _image_path(root, entry: dict, image_id: int) -> Optional[str]:
  """The image's path relative to root: the url's folder first, then the other one."""
  parts = str(entry.get("url") or "").rstrip("/").split("/")
  file_name = parts[-1] if parts[-1].endswith(".jpg") else f"{image_id}.jpg"
  named = parts[-2] if len(parts) >= 2 and parts[-2] in IMAGE_FOLDERS else None
  folders = ([named] if named else []) + [f for f in IMAGE_FOLDERS if f != named]
  for folder in folders:
    if common.exists(root / folder / file_name):
      return f"{folder}/{file_name}"
  return None


def _excluded_coco_ids(root) -> set:
  ids, read = set(), []
  for rel in COCO_EVAL_FILES:
    if common.exists(root / rel):
      ids.update(int(image["id"]) for image in common.read_json(root / rel)["images"])
      read.append(rel)
  if common.exists(root / EXCLUDED_IDS_FILE):
    lines = (line.strip() for line in (root / EXCLUDED_IDS_FILE).read_text().splitlines())
    ids.update(int(line) for line in lines if line and not line.startswith("#"))
    read.append(EXCLUDED_IDS_FILE)
  if read:
    logging.info("%s: %d COCO image ids to exclude, from %s", NAME, len(ids), ", ".join(read))
  else:
    logging.warning(
      "%s: no COCO evaluation file (%s, %s): no image is excluded",
      NAME,
      ", ".join(COCO_EVAL_FILES),
      EXCLUDED_IDS_FILE,
    )
  return ids


def _per_image(root, file_name: str, list_key: str, parse, raws: Dict[int, Raw], counts):
  """Adds file_name's entries of each known image to raws[image_id][list_key]."""
  for entry in common.read_json(root / file_name):
    image_id = int(entry["image_id"] if "image_id" in entry else entry["id"])
    if image_id not in raws:
      counts[f"{file_name}: entries of images not in image_data.json"] += 1
      continue
    for item in entry.get(list_key) or []:
      parsed = parse(item, counts)
      if parsed is not None:
        raws[image_id][list_key].append(parsed)


def _parse_object(obj, counts):
  name, num_names = name_of(obj)
  if not name:
    counts["objects dropped: no name"] += 1
    return None
  counts["objects with several names (first kept)"] += num_names > 1
  return int(obj["object_id"]), xywh(obj), name, first(obj.get("synsets"))


def _parse_region(region, counts):
  phrase = clean_text(region.get("phrase"))
  if not phrase:
    counts["regions dropped: empty phrase"] += 1
    return None
  region_id = region["region_id"] if "region_id" in region else region["id"]
  return int(region_id), xywh(region, "width", "height"), phrase


def _parse_qa(qa, counts):
  question, answer = clean_text(qa.get("question")), clean_text(qa.get("answer"))
  if not question or not answer:
    counts["qas dropped: empty question or answer"] += 1
    return None
  return int(qa["qa_id"]), question, answer


def _parse_relationship(rel, counts):
  subject, obj = rel["subject"], rel["object"]
  (subject_name, _), (object_name, _) = name_of(subject), name_of(obj)
  predicate = clean_name(rel.get("predicate"))
  if not (subject_name and object_name and predicate):
    counts["relationships dropped: no subject/object name or predicate"] += 1
    return None
  return (
    int(rel["relationship_id"]),
    predicate,
    first(rel.get("synsets")),
    (int(subject["object_id"]), xywh(subject), subject_name),
    (int(obj["object_id"]), xywh(obj), object_name),
  )


def _optional_id(value) -> int:
  return -1 if value is None else int(value)


def _boxes(rows: Sequence[np.ndarray]) -> np.ndarray:
  return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 4), np.float32)


class UioVisualGenome(tfds.core.GeneratorBasedBuilder):
  """Visual Genome v1.2: objects, regions, QAs and relationships of each image."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Visual Genome v1.2, COCO eval images excluded, 2% validation."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  From https://homes.cs.washington.edu/~ranjay/visualgenome/api.html (version 1.2) put
  into `<manual_dir>/{NAME}/`, unzipped, under their original names:
    image_data.json, objects.json, region_descriptions.json, question_answers.json,
    relationships.json
    VG_100K/ (images.zip) and VG_100K_2/ (images2.zip), holding <image_id>.jpg;
    either may be a symlink to where the images already are.
  Optional, to leave COCO evaluation images out of both splits (see the module docstring):
    annotations/instances_val2014.json, annotations/captions_val2014.json,
    annotations/instances_val2017.json, annotations/captions_val2017.json (COCO's
    annotation files, https://cocodataset.org/#download; `annotations/` may be a symlink)
    and/or {EXCLUDED_IDS_FILE} (one COCO image id per line).
  Then: python -m unified_io.data.prepare uio_visual_genome --data_dir=DIR
  """

  def _info(self) -> tfds.core.DatasetInfo:
    box = tfds.features.Tensor(shape=(4,), dtype=np.float32)
    text = tfds.features.Text()
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          "id": text,
          "image_id": np.int64,
          "coco_id": np.int64,
          "flickr_id": np.int64,
          "file_name": text,
          "image": tfds.features.Image(encoding_format="jpeg"),
          "width": np.int32,
          "height": np.int32,
          "objects": tfds.features.Sequence(
            {"object_id": np.int64, "box": box, "name": text, "synset": text}
          ),
          "regions": tfds.features.Sequence({"region_id": np.int64, "box": box, "phrase": text}),
          "qas": tfds.features.Sequence({"qa_id": np.int64, "question": text, "answer": text}),
          "relationships": tfds.features.Sequence(
            {
              "relationship_id": np.int64,
              "predicate": text,
              "synset": text,
              "subject_id": np.int64,
              "subject_box": box,
              "subject_name": text,
              "object_id": np.int64,
              "object_box": box,
              "object_name": text,
            }
          ),
        }
      ),
      homepage="https://visualgenome.org",
    )

  def _split_generators(self, dl_manager):
    root = common.release_dir(dl_manager, NAME)
    common.require(root, NAME, ANNOTATION_FILES + tuple(f"{f}/" for f in IMAGE_FOLDERS))
    excluded = _excluded_coco_ids(root)
    counts = collections.Counter()
    entries, raws = {}, {}
    for entry in common.read_json(root / "image_data.json"):
      image_id = int(entry["image_id"] if "image_id" in entry else entry["id"])
      if image_id in entries:
        counts["image_data.json: repeated image ids (first kept)"] += 1
        continue
      entries[image_id] = entry
      raws[image_id] = {"objects": [], "regions": [], "qas": [], "relationships": []}
    # One file at a time, reduced to tuples, so only one parsed JSON is in memory at once.
    _per_image(root, "objects.json", "objects", _parse_object, raws, counts)
    _per_image(root, "region_descriptions.json", "regions", _parse_region, raws, counts)
    _per_image(root, "question_answers.json", "qas", _parse_qa, raws, counts)
    _per_image(root, "relationships.json", "relationships", _parse_relationship, raws, counts)
    splits = {"train": [], "validation": []}
    for image_id in sorted(entries):
      coco_id = entries[image_id].get("coco_id")
      if coco_id is not None and int(coco_id) in excluded:
        counts["images excluded: COCO evaluation image"] += 1
        continue
      splits[split_of(image_id)].append(image_id)
    for reason, n in sorted(c for c in counts.items() if c[1]):
      logging.info("%s: %s: %d", NAME, reason, n)
    logging.info(
      "%s: %d images to train, %d to validation",
      NAME,
      len(splits["train"]),
      len(splits["validation"]),
    )
    return {
      split: self._generate_examples(root, split, ids, entries, raws)
      for split, ids in splits.items()
    }

  def _generate_examples(self, root, split: str, image_ids: List[int], entries, raws):
    counts = collections.Counter()
    for image_id in image_ids:
      record = _record(root, image_id, entries[image_id], raws[image_id], counts)
      if record is not None:
        yield image_id, record
    for reason, n in sorted(c for c in counts.items() if c[1]):
      logging.info("%s[%s]: %s: %d", NAME, split, reason, n)


def _read_image(root, file_name: str, counts) -> Optional[Tuple[bytes, Tuple[int, int]]]:
  """(JPEG bytes, (width, height)) of the file, or None if PIL cannot open it."""
  data = (root / file_name).read_bytes()
  try:
    with Image.open(io.BytesIO(data)) as image:
      size = image.size
      data, reencoded = common.storable_jpeg(image, data)
      counts["images re-encoded as RGB JPEG"] += reencoded
  except (OSError, ValueError, SyntaxError) as e:
    logging.warning("%s: %s cannot be read (%s): skipped", NAME, file_name, e)
    counts["images skipped: unreadable file"] += 1
    return None
  return data, size


def _record(root, image_id: int, entry: dict, raw: Raw, counts) -> Optional[dict]:
  file_name = _image_path(root, entry, image_id)
  if file_name is None:
    counts["images skipped: file in neither VG_100K/ nor VG_100K_2/"] += 1
    return None
  read = _read_image(root, file_name, counts)
  if read is None:
    return None
  data, size = read
  json_size = (entry.get("width") or size[0], entry.get("height") or size[1])
  scale = (size[0] / float(json_size[0]), size[1] / float(json_size[1]))
  if tuple(size) != tuple(json_size):
    counts["images whose file size differs from image_data.json (boxes scaled)"] += 1

  def place(kind: str, box):
    """The box clipped (None: empty), counted under `kind`."""
    clipped = clip_box(box, scale, size)
    if clipped is None:
      counts[f"{kind} dropped: empty box or wholly outside the image"] += 1
    else:
      x, y, w, h = box
      inside = x * scale[0], y * scale[1], (x + w) * scale[0], (y + h) * scale[1]
      counts[f"{kind} boxes clipped to the image"] += not np.allclose(clipped, inside)
    return clipped

  objects = [(o, place("objects", o[1])) for o in raw["objects"]]
  objects = [(o, b) for o, b in objects if b is not None]
  regions = [(r, place("regions", r[1])) for r in raw["regions"]]
  regions = [(r, b) for r, b in regions if b is not None]
  relationships = []
  for r in raw["relationships"]:
    boxes = place("relationships (subject)", r[3][1]), place("relationships (object)", r[4][1])
    if boxes[0] is not None and boxes[1] is not None:  # otherwise counted as dropped
      relationships.append((r, boxes))
  return {
    "id": str(image_id),
    "image_id": image_id,
    "coco_id": _optional_id(entry.get("coco_id")),
    "flickr_id": _optional_id(entry.get("flickr_id")),
    "file_name": file_name,
    "image": data,
    "width": size[0],
    "height": size[1],
    "objects": {
      "object_id": [o[0] for o, _ in objects],
      "box": _boxes([b for _, b in objects]),
      "name": [o[2] for o, _ in objects],
      "synset": [o[3] for o, _ in objects],
    },
    "regions": {
      "region_id": [r[0] for r, _ in regions],
      "box": _boxes([b for _, b in regions]),
      "phrase": [r[2] for r, _ in regions],
    },
    "qas": {
      "qa_id": [q[0] for q in raw["qas"]],
      "question": [q[1] for q in raw["qas"]],
      "answer": [q[2] for q in raw["qas"]],
    },
    "relationships": {
      "relationship_id": [r[0] for r, _ in relationships],
      "predicate": [r[1] for r, _ in relationships],
      "synset": [r[2] for r, _ in relationships],
      "subject_id": [r[3][0] for r, _ in relationships],
      "subject_box": _boxes([b[0] for _, b in relationships]),
      "subject_name": [r[3][2] for r, _ in relationships],
      "object_id": [r[4][0] for r, _ in relationships],
      "object_box": _boxes([b[1] for _, b in relationships]),
      "object_name": [r[4][2] for r, _ in relationships],
    },
  }
